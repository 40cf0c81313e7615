"""semantic_search: the few tables, columns, values, glossary terms and examples that matter for
a question, ranked by vector similarity fused with lexical matching, joined along foreign keys,
and rendered compactly for a model."""

from __future__ import annotations

import re
from collections import defaultdict, deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from memory.index_documents import KINDS, IndexDoc
from tools.catalog import TableInfo
from tools.errors import INVALID_ARGUMENT, SqlsageError
from tools.schema_lookup import render_table
from tools.search_models import SearchHit, SearchResult

if TYPE_CHECKING:
    from memory.index import KnowledgeIndex
    from memory.lexical import LexicalIndex
    from tools.databases import Database

Mode = Literal["hybrid", "lexical", "vector"]
MAX_QUESTION_CHARS = 10_000
RRF_K = 60
CANDIDATES = 60
WIDE_TABLE = 15  # wider tables show only their relevant columns and keys
KIND_WEIGHT = {"table": 1.0, "column": 1.0, "value": 1.0, "glossary": 0.7, "example": 0.7}


def semantic_search(
    index: KnowledgeIndex,
    database: Database,
    question: str,
    *,
    k: int = 8,
    kinds: Sequence[str] | None = None,
    mode: Mode = "hybrid",
    expand_fk: bool = True,
) -> SearchResult:
    """Find what a question needs: k tables (plus join tables), columns, values, examples."""
    question = _check(question, k, kinds, mode)
    docs = index.documents(database)
    ranked = _fuse(index, database, question, docs, kinds, mode)
    graph = _fk_graph(index, database)
    tables = _rank_tables(ranked, graph, k, _named_tables(index, database, question, docs))
    if expand_fk:
        tables = _expand_along_keys(tables, graph)
    hits = [
        SearchHit(
            kind=d.kind,
            table=d.table or (d.tables[0] if d.tables else None),
            column=d.column or None,
            text=d.text,
            score=round(s, 5),
        )
        for d, s in ranked[: max(k * 2, 10)]
    ]
    context = render_context(database, tables, ranked)
    return SearchResult(
        database=database.name, question=question, hits=hits, tables=tables, context=context
    )


def _check(question: str, k: int, kinds: Sequence[str] | None, mode: str) -> str:
    text = (question or "").strip()
    if not text:
        raise SqlsageError(
            INVALID_ARGUMENT,
            "The question is empty.",
            hint="Ask something about the data, e.g. 'orders per month in 2024'.",
        )
    if len(text) > MAX_QUESTION_CHARS:
        raise SqlsageError(
            INVALID_ARGUMENT,
            f"The question is {len(text):,} characters; the limit is {MAX_QUESTION_CHARS:,}.",
            hint="Ask a shorter question.",
        )
    if not 1 <= k <= 50:
        raise SqlsageError(
            INVALID_ARGUMENT,
            f"k must be between 1 and 50, got {k}.",
            hint="k is how many tables to return before join tables are added.",
        )
    bad = [kind for kind in kinds or [] if kind not in KINDS]
    if bad:
        raise SqlsageError(
            INVALID_ARGUMENT,
            f"Unknown kind(s) {', '.join(map(repr, bad))}.",
            hint=f"Use any of: {', '.join(KINDS)}.",
        )
    if mode not in ("hybrid", "lexical", "vector"):
        raise SqlsageError(
            INVALID_ARGUMENT,
            f"Unknown search mode '{mode}'.",
            hint="Use hybrid, lexical or vector.",
        )
    return text


def _lexical(index: KnowledgeIndex, database: Database, docs: list[IndexDoc]) -> LexicalIndex:
    from memory.lexical import LexicalIndex

    cached = index.cached(database.name)
    # The cache entry is replaced whenever the indexed documents change, so a lexical index
    # found there was built from exactly these documents.
    lexical = cached.extra.get("lexical") if cached else None
    if lexical is None:
        lexical = LexicalIndex(docs)
        if cached is not None:
            cached.extra["lexical"] = lexical
    return lexical


def _fuse(
    index: KnowledgeIndex,
    database: Database,
    question: str,
    docs: list[IndexDoc],
    kinds: Sequence[str] | None,
    mode: str,
) -> list[tuple[IndexDoc, float]]:
    """Reciprocal-rank fusion of the vector and lexical rankings."""
    rankings: list[list[tuple[IndexDoc, float]]] = []
    if mode != "lexical":
        rankings.append(index.vector_search(database, question, CANDIDATES, kinds))
    if mode != "vector":
        rankings.append(_lexical(index, database, docs).search(question, CANDIDATES, kinds))
    fused: dict[str, float] = defaultdict(float)
    by_id: dict[str, IndexDoc] = {}
    for ranking in rankings:
        for rank, (doc, _) in enumerate(ranking):
            # Values are only ranked lexically (they are not embedded): count their one
            # ranking for every method in play, or they could never reach the top.
            weight = len(rankings) if doc.kind == "value" else 1
            fused[doc.id] += weight / (RRF_K + rank + 1)
            by_id[doc.id] = doc
    return sorted(((by_id[i], s) for i, s in fused.items()), key=lambda x: (-x[1], x[0].id))


def _rank_tables(
    ranked: list[tuple[IndexDoc, float]],
    graph: dict[str, set[str]],
    k: int,
    named: set[str] | frozenset[str] = frozenset(),
) -> list[str]:
    contributions: dict[str, list[float]] = defaultdict(list)
    for doc, score in ranked:
        for table in doc.all_tables():
            contributions[table].append(score * KIND_WEIGHT.get(doc.kind, 1.0))
    # A table's score is its best few matches, so a wide table with many weak hits does not
    # crowd out a narrow one with a strong hit.
    scores = {t: round(sum(sorted(c, reverse=True)[:3]), 9) for t, c in contributions.items()}
    if scores:
        # A table the question names (or one of its distinctive snake_case columns) is
        # almost always needed: lift it to the level of the best match.
        top = max(scores.values())
        for table in named:
            scores[table] = round(scores.get(table, 0.0) + top, 9)
    chosen: list[str] = []
    remaining = sorted(scores, key=lambda t: (-scores[t], t))
    while remaining and len(chosen) < k:
        best = scores[remaining[0]]
        tied = [t for t in remaining if scores[t] == best]
        # Among equal scores, a table joined by a foreign key to one already chosen wins.
        pick = next((t for t in tied if graph.get(t, set()) & set(chosen)), tied[0])
        chosen.append(pick)
        remaining.remove(pick)
    return chosen


_WORDS = re.compile(r"[A-Za-z0-9_]+")


def _named_tables(
    index: KnowledgeIndex, database: Database, question: str, docs: list[IndexDoc]
) -> set[str]:
    """Tables whose name, or one of whose snake_case column names, the question writes out."""
    cached = index.cached(database.name)
    names = cached.extra.get("names") if cached else None
    if names is None:
        names = defaultdict(set)
        for doc in docs:
            if doc.kind == "table":
                names[doc.table.split(".")[-1].lower()].add(doc.table)
            elif doc.kind == "column" and "_" in doc.column:
                names[doc.column.lower()].add(doc.table)
        if cached is not None:
            cached.extra["names"] = names
    words = {w.lower() for w in _WORDS.findall(question)}
    return {table for word in words for table in names.get(word, ())}


def _fk_graph(index: KnowledgeIndex, database: Database) -> dict[str, set[str]]:
    cached = index.cached(database.name)
    graph = cached.extra.get("fk_graph") if cached else None
    if graph is None:
        graph = defaultdict(set)
        for name in database.catalog.table_names():
            info = database.catalog.table(name)
            for fk in info.foreign_keys if info else []:
                if fk.ref_table != name:
                    graph[name].add(fk.ref_table)
                    graph[fk.ref_table].add(name)
        if cached is not None:
            cached.extra["fk_graph"] = graph
    return graph


def _expand_along_keys(
    tables: list[str], graph: dict[str, set[str]], max_hops: int = 3
) -> list[str]:
    """Add the tables on the shortest foreign-key path between each pair of chosen tables."""
    result = list(tables)
    for i, start in enumerate(tables):
        for goal in tables[i + 1 :]:
            path = _shortest_path(graph, start, goal, max_hops)
            for table in path[1:-1] if path else []:
                if table not in result:
                    result.append(table)
    return result


def _shortest_path(
    graph: dict[str, set[str]], start: str, goal: str, max_hops: int
) -> list[str] | None:
    if goal in graph.get(start, set()):
        return [start, goal]
    queue: deque[list[str]] = deque([[start]])
    seen = {start}
    while queue:
        path = queue.popleft()
        if len(path) > max_hops:
            continue
        for nxt in sorted(graph.get(path[-1], set())):
            if nxt == goal:
                return [*path, goal]
            if nxt not in seen:
                seen.add(nxt)
                queue.append([*path, nxt])
    return None


def render_context(
    database: Database, tables: list[str], ranked: list[tuple[IndexDoc, float]]
) -> str:
    """Chosen tables (relevant columns + keys), matching values, glossary and examples."""
    hit_columns: dict[str, set[str]] = defaultdict(set)
    values: list[str] = []
    glossary: list[str] = []
    examples: list[str] = []
    for doc, _ in ranked[:40]:
        if doc.column:
            hit_columns[doc.table].add(doc.column.lower())
        if doc.kind == "value" and doc.table in tables and len(values) < 8:
            values.append(f"{doc.table}.{doc.column} = {_quote(doc.value)}")
        elif doc.kind == "glossary" and len(glossary) < 3:
            sql = f" [SQL: {doc.payload['sql']}]" if doc.payload.get("sql") else ""
            glossary.append(
                f"-- {doc.payload.get('term', '')}: {doc.payload.get('definition', '')}{sql}"
            )
        elif doc.kind == "example" and len(examples) < 3:
            examples.append(
                f"-- Q: {doc.text}\n{str(doc.payload.get('sql', '')).rstrip().rstrip(';')};"
            )
    parts = []
    for name in tables:
        info = database.catalog.table(name)
        if info is not None:
            parts.append(
                render_table(_relevant(info, hit_columns.get(name, set())), with_samples=False)
            )
    if values:
        parts.append(
            "-- Values that match the question:\n" + "\n".join(f"--   {v}" for v in values)
        )
    if glossary:
        parts.append("-- Business terms:\n" + "\n".join(glossary))
    if examples:
        parts.append("-- Similar verified questions:\n" + "\n\n".join(examples))
    return "\n\n".join(parts)


def _relevant(info: TableInfo, hit_columns: set[str]) -> TableInfo:
    if len(info.columns) <= WIDE_TABLE:
        return info
    keys = {c.lower() for c in info.primary_key}
    keys |= {c.lower() for fk in info.foreign_keys for c in fk.columns}
    keep = [c for c in info.columns if c.name.lower() in hit_columns | keys]
    return info.model_copy(update={"columns": keep})


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
