"""Keyword search: Okapi BM25 over a vector store's chunks, the search that needs no model.

Each file gets its own index when it is ingested (`index_chunks`): how many terms each chunk holds and,
per term, the chunks it occurs in with how often. The index is stored with the file's chunks, and a
search adds up the files' statistics at query time (chunk count, average length, document frequency),
so adding or removing a file never rewrites another file's index.

Terms are words folded to lower case, with English stop words dropped and plural endings stripped (the
"S-stemmer" of Harman, 1991, which also takes -es off after s, x, z, ch and sh: "services" meets
"service", "policies" "policy", "boxes" "box"; it touches nothing but plural endings, so "running" and
"run" stay apart).
Scripts written without spaces (Chinese, Japanese, Korean) are cut into overlapping character pairs.

Scores are BM25 divided by the highest score the query could reach (every query term present so often
that it saturates), so they run from 0 to 1 whatever the query and the store: 1 means every query
term saturated, a chunk of average length holding each query term once scores 0.45.
"""

from __future__ import annotations

import heapq
import math
import re
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

K1 = 1.2
B = 0.75

_WORD = re.compile(r"\w+")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]+")
# A short list: BM25's idf already discounts common words; these only cost postings and time.
STOP_WORDS = frozenset(
    """a about an and are as at be been but by can could did do does for from had has have how i if in
    into is it its me my not of on or our she should so than that the their them then there these they
    this those to was we were what when where which who whom why will with would you your""".split()
)


def _stem(word: str) -> str:
    if len(word) > 4 and word.endswith("ies") and not word.endswith(("eies", "aies")):
        return word[:-3] + "y"  # policies -> policy
    if len(word) > 4 and word.endswith(("sses", "xes", "zes", "ches", "shes")):
        return word[:-2]  # glasses -> glass, boxes -> box
    if len(word) > 3 and word.endswith("es") and not word.endswith(("aes", "ees", "oes")):
        return word[:-1]  # files -> file
    if len(word) > 3 and word.endswith("s") and not word.endswith(("us", "ss", "is")):
        return word[:-1]
    return word


def terms(text: str) -> list[str]:
    """The text's search terms, in order."""
    found: list[str] = []
    for word in _WORD.findall(text.lower()):
        if _CJK.search(word):
            for run in _CJK.split(word):  # the word's other letters and digits, if any
                if run and run not in STOP_WORDS:
                    found.append(_stem(run))
            for run in _CJK.findall(word):
                found.extend(run[i : i + 2] for i in range(max(1, len(run) - 1)))
        elif word not in STOP_WORDS and (len(word) > 1 or word.isdigit()):  # "what's" leaves no "s"
            found.append(_stem(word))
    return found


def index_chunks(chunk_texts: Iterable[str]) -> dict[str, Any]:
    """A file's keyword index, as stored with its chunks: each chunk's length in terms, and for each
    term a flat list of (chunk number, occurrences) pairs."""
    lengths: list[int] = []
    postings: dict[str, list[int]] = {}
    for number, text in enumerate(chunk_texts):
        counted = Counter(terms(text))
        lengths.append(sum(counted.values()))
        for term, count in counted.items():
            postings.setdefault(term, []).extend((number, count))
    return {"lengths": lengths, "postings": postings}


@dataclass(frozen=True)
class Segment:
    """One file's keyword index, loaded: arrays, not lists of ints (a tenth of the memory)."""

    lengths: array[int]
    postings: dict[str, array[int]]

    @classmethod
    def of(cls, stored: dict[str, Any]) -> Segment:
        return cls(
            array("i", stored["lengths"]), {term: array("i", pairs) for term, pairs in stored["postings"].items()}
        )

    @property
    def chunk_count(self) -> int:
        return len(self.lengths)


@dataclass(frozen=True)
class KeywordHit:
    segment: int  # the position of the chunk's file among the corpus's segments
    chunk: int
    score: float  # 0 to 1


class Corpus:
    """The files searched together, and their summed statistics."""

    def __init__(self, segments: Sequence[Segment]) -> None:
        self.segments = segments
        self.chunk_count = sum(segment.chunk_count for segment in segments)
        total_length = sum(sum(segment.lengths) for segment in segments)
        self.average_length = total_length / self.chunk_count if total_length else 1.0

    def _weights(self, query: str) -> dict[str, float]:
        """The query's distinct terms and their idf (Lucene's, which is never negative)."""
        weights: dict[str, float] = {}
        for term in dict.fromkeys(terms(query)):
            frequency = sum(len(segment.postings.get(term, ())) // 2 for segment in self.segments)
            weights[term] = math.log(1.0 + (self.chunk_count - frequency + 0.5) / (frequency + 0.5))
        return weights

    def _saturation(self, count: int, length: int) -> float:
        return count * (K1 + 1.0) / (count + K1 * (1.0 - B + B * length / self.average_length))

    def search(self, query: str, limit: int) -> list[KeywordHit]:
        """The `limit` best chunks for `query`, best first; chunks holding no query term are no hits."""
        weights = self._weights(query)
        best_possible = sum(weights.values()) * (K1 + 1.0)
        if self.chunk_count == 0 or best_possible <= 0.0:
            return []
        scores: dict[tuple[int, int], float] = {}
        for term, idf in weights.items():
            for number, segment in enumerate(self.segments):
                pairs = segment.postings.get(term)
                if pairs is None:
                    continue
                lengths = segment.lengths
                for position in range(0, len(pairs), 2):
                    key = (number, pairs[position])
                    gain = idf * self._saturation(pairs[position + 1], lengths[pairs[position]])
                    scores[key] = scores.get(key, 0.0) + gain
        ranked = heapq.nlargest(limit, scores.items(), key=lambda item: item[1])
        return [KeywordHit(number, chunk, min(1.0, score / best_possible)) for (number, chunk), score in ranked]

    def score(self, query: str, text: str) -> float:
        """One text's score for `query` on this corpus's statistics (for a chunk the vector search
        found that the keyword search did not rank)."""
        weights = self._weights(query)
        best_possible = sum(weights.values()) * (K1 + 1.0)
        if best_possible <= 0.0:
            return 0.0
        counted = Counter(terms(text))
        length = sum(counted.values())
        total = sum(idf * self._saturation(counted[term], length) for term, idf in weights.items() if counted[term])
        return min(1.0, total / best_possible)
