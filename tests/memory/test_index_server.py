"""The index on a real Chroma server (`chroma run`, shipped in the chromadb wheel): what
replicas share when SQLSAGE_CHROMA_URL is set."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from memory.embeddings import MiniLMEmbedding
from memory.index import KnowledgeIndex
from tools.databases import Database
from tools.errors import SqlsageError
from tools.semantic_search import semantic_search

CHROMA = Path(sys.executable).with_name("chroma")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    folder = tmp_path_factory.mktemp("chroma-server")
    proc = subprocess.Popen(
        [str(CHROMA), "run", "--path", str(folder), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("chroma run did not start")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_two_replicas_share_one_index(chroma_url: str, sample_db: Database, tmp_path: Path) -> None:
    first = KnowledgeIndex(path=tmp_path / "a", embedding=MiniLMEmbedding(), chroma_url=chroma_url)
    second = KnowledgeIndex(path=tmp_path / "b", embedding=MiniLMEmbedding(), chroma_url=chroma_url)
    report = first.build(sample_db)
    assert report.documents > 300
    # The second replica never built anything, yet finds it all and sees no work to do.
    assert semantic_search(second, sample_db, "customers in Germany", k=1).tables == ["customers"]
    assert second.build(sample_db).groups_changed == 0
    assert not (tmp_path / "b" / "chroma.sqlite3").exists()


def test_unreachable_chroma_server_is_a_clear_error(sample_db: Database, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    index = KnowledgeIndex(path=tmp_path / "c", embedding=MiniLMEmbedding(), chroma_url=url)
    with pytest.raises(SqlsageError) as info:
        semantic_search(index, sample_db, "customers", k=1)
    assert info.value.code == "database_unreachable" and url in info.value.message
    assert "SQLSAGE_CHROMA_URL" in (info.value.hint or "")
