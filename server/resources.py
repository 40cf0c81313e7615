"""build_resources: the ONLY place shared resources are built (CLI, HTTP, MCP and evals)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from server.settings import DEFAULT_DB_FROM_URL, SAMPLE_DB, DatabaseSettings, Settings
from tools.databases import Database, DatabaseConfig, DatabaseRegistry
from tools.urls import looks_like_url

if TYPE_CHECKING:
    from memory.index import KnowledgeIndex

CLI_URL_DB = "cli"
SAMPLE_KNOWLEDGE = Path(__file__).with_name("sample_knowledge.yml")


@dataclass
class Resources:
    """Everything long-lived that the faces share, built once and passed in."""

    settings: Settings
    databases: DatabaseRegistry
    _index: KnowledgeIndex | None = field(default=None, repr=False)
    _index_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def index(self) -> KnowledgeIndex:
        """The knowledge index (Chroma + embeddings), opened on first use: commands that do
        not search never import chromadb or load the embedding model. Locked: two threads
        opening it at once (a server's warm-up and its first question) would make two Chroma
        clients race over the same files."""
        with self._index_lock:
            if self._index is None:
                self._index = build_index(self.settings)
            return self._index

    def database(self, name: str | None = None, *, allow_url: bool = False) -> Database:
        """A configured database by name (default when None); URLs only where allowed."""
        if name and allow_url and looks_like_url(name):
            return self.databases.register(DatabaseConfig(name=CLI_URL_DB, url=name))
        return self.databases.get(name or self.settings.default_db())

    def close(self) -> None:
        """Release every pooled connection."""
        self.databases.close()


def database_config(name: str, db: DatabaseSettings) -> DatabaseConfig:
    """A DatabaseConfig from its settings table."""
    return DatabaseConfig(
        name=name,
        url=db.url,
        description=db.description,
        max_rows=db.max_rows,
        timeout_s=db.timeout_s,
        schemas=tuple(db.schemas) if db.schemas else None,
        include_tables=tuple(db.include_tables) if db.include_tables is not None else None,
        exclude_tables=tuple(db.exclude_tables),
        exclude_columns=tuple(db.exclude_columns),
        comments_file=db.comments_file,
    )


def build_resources(settings: Settings) -> Resources:
    """Databases (the bundled sample unless configured otherwise); later: index, memory, model."""
    registry = DatabaseRegistry()
    for name, db in settings.databases.items():
        registry.register(database_config(name, db))
    if settings.database_url:
        registry.register(DatabaseConfig(name=DEFAULT_DB_FROM_URL, url=settings.database_url))
    if SAMPLE_DB not in settings.databases:
        registry.register(sample_config(settings.data_dir))
    return Resources(settings=settings, databases=registry)


def build_index(settings: Settings) -> KnowledgeIndex:
    """The knowledge index under the data directory (or on a Chroma server)."""
    from memory.embeddings import make_embedding_function
    from memory.index import KnowledgeIndex

    return KnowledgeIndex(
        path=Path(settings.data_dir) / "index",
        embedding=make_embedding_function(settings.embedding, settings.embedding_api_base),
        chroma_url=settings.chroma_url,
        knowledge_file=lambda name: knowledge_file(settings, name),
    )


def knowledge_file(settings: Settings, database: str, *, for_writing: bool = False) -> Path:
    """The knowledge file of a database. The bundled sample brings its own until the user
    writes one (add-example first copies it, so nothing of it is lost)."""
    import shutil

    from memory.knowledge import knowledge_path

    path = knowledge_path(settings.knowledge_folder(), database)
    if database == SAMPLE_DB and SAMPLE_DB not in settings.databases and not path.exists():
        if not for_writing:
            return SAMPLE_KNOWLEDGE
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SAMPLE_KNOWLEDGE, path)
    return path


def sample_config(data_dir: Path) -> DatabaseConfig:
    """The bundled sample database, generated into the data directory on first use."""
    from server.sample_db import ensure_sample_db

    path = ensure_sample_db(Path(data_dir))
    return DatabaseConfig(
        name=SAMPLE_DB,
        url=f"sqlite:///{path.resolve()}",
        description="Bundled sample: a small company's sales (customers, products, orders, "
        "order lines, returns, employees, regions) over 2022-2024.",
    )
