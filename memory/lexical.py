"""Lexical retrieval over index documents: BM25 on identifier-aware tokens, with typo-tolerant
matching of question words to the vocabulary (so `cust_id`, `revnue` and exact values rank)."""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

from memory.index_documents import IndexDoc

_WORD = re.compile(r"[A-Za-z]+|\d+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "has",
        "have",
        "how",
        "i",
        "in",
        "is",
        "it",
        "its",
        "many",
        "me",
        "much",
        "of",
        "on",
        "or",
        "per",
        "show",
        "list",
        "give",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "with",
        "the",
        "their",
        "there",
        "them",
        "they",
        "this",
        "that",
        "these",
        "those",
        "to",
        "was",
        "were",
        "will",
        "would",
        "all",
        "any",
        "each",
        "every",
        "than",
        "then",
        "do",
        "does",
        "did",
        "find",
        "get",
        "tell",
        "please",
        "number",
        "count",
        "total",
    ]
)
K1, B = 1.2, 0.75


def stem(word: str) -> str:
    """A light plural/verb stemmer: 'categories' -> 'category', 'orders' -> 'order'."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("ses", "xes", "ches", "shes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def tokens(text: str) -> list[str]:
    """Lowercased, stemmed word tokens; identifiers are split at _ and camelCase."""
    spaced = _CAMEL.sub(" ", text.replace("_", " "))
    return [stem(w.lower()) for w in _WORD.findall(spaced)]


class LexicalIndex:
    """BM25 over a fixed set of documents."""

    def __init__(self, docs: Sequence[IndexDoc]) -> None:
        self.docs = list(docs)
        self.postings: dict[str, list[tuple[int, int]]] = defaultdict(list)
        self.lengths: list[int] = []
        for index, doc in enumerate(self.docs):
            counts = Counter(tokens(_lexical_text(doc)))
            self.lengths.append(sum(counts.values()))
            for token, count in counts.items():
                self.postings[token].append((index, count))
        self.average = (sum(self.lengths) / len(self.lengths)) if self.lengths else 1.0
        self.vocabulary = list(self.postings)

    def expand(self, query_tokens: Iterable[str]) -> dict[str, float]:
        """Query tokens mapped to vocabulary tokens (exact 1.0, typo-close ~0.8)."""
        from rapidfuzz import fuzz, process

        wanted: dict[str, float] = {}
        for token in query_tokens:
            if token in STOPWORDS:
                continue
            if token in self.postings:
                wanted[token] = max(wanted.get(token, 0.0), 1.0)
                continue
            if len(token) < 4:
                continue
            for match, score, _ in process.extract(
                token, self.vocabulary, scorer=fuzz.ratio, limit=2, score_cutoff=80
            ):
                wanted[match] = max(wanted.get(match, 0.0), 0.8 * score / 100)
        return wanted

    def search(
        self, question: str, n: int, kinds: Sequence[str] | None = None
    ) -> list[tuple[IndexDoc, float]]:
        """The n best documents by BM25 score."""
        weights = self.expand(tokens(question))
        total = len(self.docs)
        scores: dict[int, float] = defaultdict(float)
        for token, weight in weights.items():
            posting = self.postings.get(token, [])
            idf = math.log(1 + (total - len(posting) + 0.5) / (len(posting) + 0.5))
            for index, count in posting:
                norm = count + K1 * (1 - B + B * self.lengths[index] / self.average)
                scores[index] += weight * idf * count * (K1 + 1) / norm
        ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
        out: list[tuple[IndexDoc, float]] = []
        for index, score in ranked:
            doc = self.docs[index]
            if kinds and doc.kind not in kinds:
                continue
            out.append((doc, score))
            if len(out) >= n:
                break
        return out


def _lexical_text(doc: IndexDoc) -> str:
    # Identifiers count more than prose: repeat them so a name hit outweighs a comment word.
    # A value document is about its value: the table's name would match every value of it.
    if doc.kind == "value":
        return f"{doc.value} {doc.value} {doc.column}"
    names = " ".join(filter(None, (doc.table, doc.column)))
    return f"{names} {names} {doc.text}"
