"""The knowledge index: one Chroma collection per database, built incrementally.

Documents come from memory/index_documents.py. Every document carries its group's fingerprint
and the group's document count, so an interrupted build is detected (a group whose documents
do not all carry the expected fingerprint, or are fewer than its count) and completed by the
next run. Writers to one database take a file lock; readers never wait.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from pydantic import BaseModel, Field

from memory.index_documents import (
    EXAMPLES_GROUP,
    GLOSSARY_GROUP,
    KINDS,
    IndexDoc,
    fingerprint,
    knowledge_documents,
    table_documents,
)
from tools.errors import DATABASE_UNREACHABLE, INVALID_CONFIG, SqlsageError

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

    from tools.databases import Database

log = logging.getLogger("sqlsage.index")

VALUES_PER_COLUMN = 100  # a text column with more distinct values gets no value documents
STATS_TIMEOUT_S = 5.0
EMBED_BATCH = 256
Progress = Callable[[str, int, int], None]  # (stage, done, total)


class IndexReport(BaseModel):
    """What one indexing run did."""

    database: str
    groups_total: int
    groups_changed: int
    groups_removed: int
    documents: int = Field(description="Documents in the index after the run.")
    embedded: int = Field(description="Documents written in this run (values are not embedded).")
    elapsed_s: float
    problems: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


@dataclass
class _Cached:
    version: str
    docs: list[IndexDoc]
    extra: dict[str, Any] = field(default_factory=dict)


def collection_name(database: str) -> str:
    """A valid Chroma collection name for a database name (stable, collision-free)."""
    import hashlib

    slug = re.sub(r"[^a-zA-Z0-9_-]+", "-", database).strip("-_")[:40] or "db"
    return f"sqlsage-{slug}-{hashlib.sha1(database.encode()).hexdigest()[:8]}"


class KnowledgeIndex:
    """Index and query the knowledge of every database; built on first use if missing."""

    def __init__(
        self,
        *,
        path: Path,
        embedding: Any,
        chroma_url: str | None = None,
        knowledge_dir: Path | None = None,
        knowledge_file: Callable[[str], Path] | None = None,
    ) -> None:
        self.path = Path(path)
        self.embedding = embedding
        self.chroma_url = chroma_url
        self.knowledge_dir = knowledge_dir
        self.knowledge_file = knowledge_file
        self._client: ClientAPI | None = None
        self._lock = threading.RLock()
        self._cache: dict[str, _Cached] = {}
        self._dimension: int | None = None
        self.warnings: list[str] = []

    # ---- client and collections ----------------------------------------------------------
    @property
    def client(self) -> ClientAPI:
        """The Chroma client: embedded on disk, or a server when chroma_url is set."""
        with self._lock:
            if self._client is None:
                self._client = self._open_client()
            return self._client

    def _open_client(self) -> ClientAPI:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
        if self.chroma_url:
            from urllib.parse import urlparse

            url = urlparse(self.chroma_url)
            try:
                return chromadb.HttpClient(
                    host=url.hostname or "localhost",
                    port=url.port or 8000,
                    ssl=url.scheme == "https",
                    settings=settings,
                )
            except Exception as exc:
                raise SqlsageError(
                    DATABASE_UNREACHABLE,
                    f"Cannot reach the Chroma server at {self.chroma_url}: {exc}",
                    hint="Start it, or unset SQLSAGE_CHROMA_URL to use the embedded index.",
                ) from None
        if not (self.path / "chroma.sqlite3").exists():
            # Deleted while this process had it open: Chroma would hand back the cached,
            # now dangling system for the path. Start clean.
            _forget_cached_system(str(self.path))
        try:
            client = chromadb.PersistentClient(path=str(self.path), settings=settings)
            client.list_collections()
            return client
        except Exception as exc:
            # A corrupt index is only a cache of the databases and knowledge files: move it
            # aside (never delete what a user might want to inspect) and start over.
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            message = (
                f"The index at '{self.path}' could not be opened ({type(exc).__name__}: "
                f"{str(exc)[:200]}); moved it to '{aside}' and rebuilding."
            )
            log.warning(message)
            self.warnings.append(message)
            if self.path.exists():
                shutil.move(str(self.path), str(aside))
            _forget_cached_system(str(self.path))
            return chromadb.PersistentClient(path=str(self.path), settings=settings)

    def close(self) -> None:
        """Release the Chroma client (its files stay as they are)."""
        with self._lock:
            if self._client is not None:
                with contextlib.suppress(Exception):
                    self._client.close()  # type: ignore[attr-defined]
                self._client = None

    def _collection(self, database: str, *, values: bool = False) -> Collection:
        # Value documents live apart: they are matched lexically and carry a placeholder
        # vector, and hundreds of identical vectors in the main HNSW graph made filtered
        # vector queries miss real documents.
        return self.client.get_or_create_collection(
            collection_name(database) + ("-values" if values else ""),
            configuration={"hnsw": {"space": "cosine"}},
            metadata={"database": database},
            embedding_function=None,
        )

    # ---- building ------------------------------------------------------------------------
    def _lock_for(self, database: str) -> Any:
        from filelock import FileLock

        self.path.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.path / f"{collection_name(database)}.lock"), timeout=600)

    def knowledge_for(self, database: Database) -> tuple[Any, list[str]]:
        """The database's knowledge file (checked), and its problems as text."""
        from memory.knowledge import check_knowledge, knowledge_path, load_knowledge

        if self.knowledge_file is not None:
            path = self.knowledge_file(database.name)
        elif self.knowledge_dir is not None:
            path = knowledge_path(self.knowledge_dir, database.name)
        else:
            return None, []
        loaded = check_knowledge(load_knowledge(path), database)
        return loaded.knowledge, [f"{p.path}:{p.line}: {p.message}" for p in loaded.problems]

    def desired_documents(
        self,
        database: Database,
        progress: Progress | None = None,
        *,
        changed_only: dict[str, str] | None = None,
    ) -> tuple[dict[str, list[IndexDoc] | None], list[str]]:
        """Documents per group as the database and knowledge file say now; None for a table
        whose structure matches `changed_only` (its stored documents stay as they are)."""
        from tools.table_stats import distinct_values, is_text_column

        knowledge, problems = self.knowledge_for(database)
        catalog = database.catalog
        names = catalog.table_names()
        groups: dict[str, list[IndexDoc] | None] = {}
        for done, name in enumerate(names, start=1):
            info = catalog.table(name)
            if info is None:
                continue
            notes = _find_notes(knowledge.tables, name) if knowledge is not None else None
            structural = table_documents(info, {}, notes)
            key = fingerprint(structural)
            if progress:
                progress("tables", done, len(names))
            if changed_only is not None and changed_only.get(name) == key:
                groups[name] = None  # structure unchanged: keep what is stored, values too
                continue
            values: dict[str, list[str]] = {}
            for column in info.columns:
                if is_text_column(column.type) and not column.primary_key:
                    found = distinct_values(
                        database,
                        name,
                        column.name,
                        limit=VALUES_PER_COLUMN,
                        timeout_s=STATS_TIMEOUT_S,
                    )
                    if found:
                        values[column.name] = found
            docs = table_documents(info, values, notes)
            docs[0].payload["structural"] = key
            groups[name] = docs
        extra = knowledge_documents(knowledge, names) if knowledge is not None else []
        groups[GLOSSARY_GROUP] = [d for d in extra if d.kind == "glossary"]
        groups[EXAMPLES_GROUP] = [d for d in extra if d.kind == "example"]
        return groups, problems

    def stored_groups(self, database: str) -> dict[str, tuple[str, str, int, int]]:
        """group -> (fingerprint, structural key, expected count, count found), as stored."""
        collection = self._collection(database)
        # Fast path: every group has head documents (its table, or each glossary term and
        # example) carrying the group's size. If the sizes add up to what is stored, nothing
        # is half-written and the other ~95 % of the metadata need not be read.
        heads = collection.get(
            where=cast(Any, {"kind": {"$in": ["table", "glossary", "example"]}}),
            include=["metadatas"],
        )
        groups = self._summarize(heads["metadatas"] or [], assume_complete=True)
        values = self._collection(database, values=True)
        if sum(n for _, _, n, _ in groups.values()) == collection.count() + values.count():
            return groups
        everything = collection.get(include=["metadatas"])["metadatas"] or []
        everything += values.get(include=["metadatas"])["metadatas"] or []
        return self._summarize(everything, assume_complete=False)

    @staticmethod
    def _summarize(
        metadatas: Sequence[Any], *, assume_complete: bool
    ) -> dict[str, tuple[str, str, int, int]]:
        groups: dict[str, tuple[str, str, int, int]] = {}
        fingerprints: dict[str, set[str]] = {}
        for meta in metadatas:
            group = str(meta["group"])
            fingerprints.setdefault(group, set()).add(str(meta["fp"]))
            fp, key, expected, found = groups.get(group, (str(meta["fp"]), "", int(meta["n"]), 0))
            key = key or str(meta.get("structural", "") or "")
            groups[group] = (fp, key, expected, expected if assume_complete else found + 1)
        for group, fps in fingerprints.items():
            if len(fps) > 1:  # a half-replaced group: mark it so it is rebuilt
                fp, key, expected, found = groups[group]
                groups[group] = ("mixed", key, expected, found)
        return groups

    def build(
        self, database: Database, *, rebuild: bool = False, progress: Progress | None = None
    ) -> IndexReport:
        """Bring the index of one database up to date (only changed groups are re-embedded)."""
        started = time.monotonic()
        with self._lock_for(database.name):
            if rebuild:
                self._drop(database.name)
            stored = self.stored_groups(database.name)
            complete = {
                g: key for g, (fp, key, n, found) in stored.items() if fp != "mixed" and n == found
            }
            groups, problems = self.desired_documents(
                database, progress, changed_only=None if rebuild else complete
            )
            collection = self._collection(database.name)
            values = self._collection(database.name, values=True)
            fresh = {g: docs for g, docs in groups.items() if docs is not None}
            prints = {g: fingerprint(docs) for g, docs in fresh.items()}
            changed = [
                g
                for g, docs in fresh.items()
                if (g not in stored and docs)
                or (g in stored and (stored[g][0] != prints[g] or stored[g][2] != stored[g][3]))
            ]
            removed = [g for g in stored if g not in groups or groups[g] == []]
            for group in removed:
                collection.delete(where={"group": group})
                values.delete(where={"group": group})
            # Similar lengths in one batch means little padding: about twice as fast.
            to_embed = sorted(
                ((g, d) for g in changed for d in fresh[g]), key=lambda item: len(item[1].text)
            )
            for group in changed:
                collection.delete(where={"group": group})
                values.delete(where={"group": group})
            embedded = self._write((collection, values), to_embed, fresh, prints, progress)
            count = collection.count() + values.count()
            if changed or removed:
                self._cache.pop(database.name, None)
                collection.modify(
                    metadata={"database": database.name, "version": f"{time.time_ns()}"}
                )
        return IndexReport(
            database=database.name,
            groups_total=len(groups),
            groups_changed=len(changed),
            groups_removed=len(removed),
            documents=count,
            embedded=embedded,
            elapsed_s=round(time.monotonic() - started, 3),
            problems=problems,
            warnings=list(self.warnings),
        )

    def _write(
        self,
        collections: tuple[Collection, Collection],
        to_embed: list[tuple[str, IndexDoc]],
        groups: dict[str, list[IndexDoc]],
        prints: dict[str, str],
        progress: Progress | None,
    ) -> int:
        """Embed batch after batch while the previous batch is written to Chroma."""
        from concurrent.futures import Future, ThreadPoolExecutor

        written = 0
        pending: Future[None] | None = None
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlsage-upsert") as writer:
            try:
                for start in range(0, len(to_embed), EMBED_BATCH):
                    batch = to_embed[start : start + EMBED_BATCH]
                    rows = self._rows(batch, groups, prints)
                    if pending is not None:
                        pending.result()
                    pending = writer.submit(self._upsert, collections, rows)
                    written += len(batch)
                    if progress:
                        progress("embedding", written, len(to_embed))
                if pending is not None:
                    pending.result()
            finally:
                if pending is not None and not pending.done():
                    pending.cancel()
        return written

    def _rows(
        self,
        batch: Sequence[tuple[str, IndexDoc]],
        groups: dict[str, list[IndexDoc]],
        prints: dict[str, str],
    ) -> dict[str, Any]:
        docs = [d for _, d in batch]
        # Values are matched lexically (exact and typo-tolerant); embedding them cost a third
        # of build time and did not improve recall (benchmarks/schema_linking.py). They carry
        # a fixed vector and are left out of vector queries.
        semantic = [i for i, d in enumerate(docs) if d.kind != "value"]
        vectors: list[list[float]] = [self._placeholder()] * len(docs)
        if semantic:
            embedded = self.embed([docs[i].text for i in semantic])
            for i, vector in zip(semantic, embedded, strict=True):
                vectors[i] = vector
        metadatas = [
            {
                "kind": doc.kind,
                "group": group,
                "table": doc.table,
                "column": doc.column,
                "value": doc.value,
                "tables": "\x1f".join(doc.all_tables()),
                "fp": prints[group],
                "n": len(groups[group]),
                "structural": str(doc.payload.get("structural", "")),
                "sql": str(doc.payload.get("sql", "")),
                "definition": str(doc.payload.get("definition", "")),
                "term": str(doc.payload.get("term", "")),
            }
            for group, doc in batch
        ]
        return {
            "ids": [d.id for d in docs],
            "documents": [d.text for d in docs],
            "embeddings": vectors,
            "metadatas": metadatas,
        }

    def _upsert(self, collections: tuple[Collection, Collection], rows: dict[str, Any]) -> None:
        main, values = collections
        for target, is_value in ((main, False), (values, True)):
            keep = [
                i for i, m in enumerate(rows["metadatas"]) if (m["kind"] == "value") == is_value
            ]
            if keep:
                target.upsert(**{key: [column[i] for i in keep] for key, column in rows.items()})

    def _placeholder(self) -> list[float]:
        """The fixed unit vector value documents carry (of the embedding's dimension)."""
        if self._dimension is None:
            self._dimension = len(self.embed(["dimension"])[0])
        return [1.0] + [0.0] * (self._dimension - 1)

    def _drop(self, database: str) -> None:
        for name in (collection_name(database), collection_name(database) + "-values"):
            with contextlib.suppress(Exception):  # a missing collection is what we want
                self.client.delete_collection(name)
        self._cache.pop(database, None)

    def embed(self, texts: list[str]) -> Any:
        """Vectors for texts with the configured embedding function."""
        try:
            return [list(map(float, v)) for v in self.embedding(texts)]
        except SqlsageError:
            raise
        except Exception as exc:
            raise SqlsageError(
                INVALID_CONFIG,
                f"The embedding backend failed: {exc}",
                hint="Check SQLSAGE_EMBEDDING (builtin works offline).",
            ) from None

    # ---- reading -------------------------------------------------------------------------
    def ensure(self, database: Database) -> None:
        """Build the index of a database on first use."""
        if database.name in self._cache:
            return
        if self._collection(database.name).count() == 0:
            report = self.build(database)
            for problem in report.problems:
                log.warning("knowledge: %s", problem)

    def documents(self, database: Database) -> list[IndexDoc]:
        """Every indexed document of a database (cached until the index changes)."""
        self.ensure(database)
        collection = self._collection(database.name)
        version = str((collection.metadata or {}).get("version", ""))
        cached = self._cache.get(database.name)
        if cached is not None and cached.version == version:
            return cached.docs
        docs: list[IndexDoc] = []
        for part in (collection, self._collection(database.name, values=True)):
            got = part.get(include=["documents", "metadatas"])
            docs += [
                _doc_from(text, meta)
                for text, meta in zip(got["documents"] or [], got["metadatas"] or [], strict=True)
            ]
        self._cache[database.name] = _Cached(version=version, docs=docs)
        return docs

    def cached(self, database: str) -> _Cached | None:
        """The in-process cache entry of a database (lexical structures live there too)."""
        return self._cache.get(database)

    def vector_search(
        self, database: Database, text: str, n: int, kinds: Sequence[str] | None = None
    ) -> list[tuple[IndexDoc, float]]:
        """The n nearest documents with their cosine similarity."""
        collection = self._collection(database.name)
        total = collection.count()
        if total == 0:
            return []
        wanted = [k for k in (kinds or KINDS) if k != "value"]
        if not wanted:
            return []
        # The main collection holds only embedded kinds: filter only when asked for fewer.
        where = {"kind": {"$in": wanted}} if len(wanted) < len(KINDS) - 1 else None
        result = collection.query(
            query_embeddings=self.embed([text]),
            n_results=min(n, total),
            where=where,  # type: ignore[arg-type]
            include=["documents", "metadatas", "distances"],
        )
        docs = result["documents"][0] if result["documents"] else []
        metas = result["metadatas"][0] if result["metadatas"] else []
        distances = result["distances"][0] if result["distances"] else []
        return [
            (_doc_from(t, m), 1.0 - float(d))
            for t, m, d in zip(docs, metas, distances, strict=True)
        ]


def _forget_cached_system(path: str) -> None:
    """Chroma shares one open system per path within a process; after moving a corrupt index
    aside, the stale one must go or the fresh client would reuse its broken handles."""
    with contextlib.suppress(Exception):
        from chromadb.api.shared_system_client import SharedSystemClient

        system = SharedSystemClient._identifier_to_system.pop(path, None)
        SharedSystemClient._identifier_to_refcount.pop(path, None)
        if system is not None:
            system.stop()


def _doc_from(text: str | None, meta: Any) -> IndexDoc:
    tables = tuple(t for t in str(meta.get("tables", "")).split("\x1f") if t)
    payload = {k: meta[k] for k in ("sql", "definition", "term") if meta.get(k)}
    return IndexDoc(
        kind=str(meta["kind"]),
        text=text or "",
        group=str(meta["group"]),
        table=str(meta.get("table", "")),
        column=str(meta.get("column", "")),
        value=str(meta.get("value", "")),
        tables=tables,
        payload=payload,
    )


def _find_notes(notes: dict[str, Any], name: str) -> Any:
    lowered = name.lower()
    return next((v for k, v in notes.items() if k.lower() == lowered), None)
