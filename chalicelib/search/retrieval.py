"""Searching vector stores: the one search that both `POST /v1/vector_stores/{id}/search` and the
`file_search` tool run.

A search takes the stores its caller has read (and checked) and lists their completed files (one Query,
skipped while the store's files_version has not moved since this process last listed them), keeps those
whose attributes pass the filter, and ranks their chunks with BM25 (search/keywords.py) over all of them
at once. Each file's index and text come from S3 the first time a process searches it and are then kept
in memory (search/cache.py): a warm Lambda or `make dev` reads S3 only for files it has not seen.
"""

from __future__ import annotations

import gc
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from chalicelib.search import cache, embeddings, vectors
from chalicelib.search.filters import matches
from chalicelib.search.keywords import STOP_WORDS, Corpus, Segment, index_chunks
from chalicelib.storage import vector_store_files as store
from chalicelib.storage.vector_store_files import ParsedFile, StoredFile
from chalicelib.storage.vector_stores import StoredVectorStore

log = logging.getLogger("spindle.search")
LOADERS = 8  # S3 reads in flight while a search loads files it has not seen


@dataclass(frozen=True)
class Hit:
    vector_store_id: str
    file_id: str
    filename: str
    attributes: Mapping[str, Any] | None
    score: float  # 0 to 1
    text: str


@dataclass(frozen=True)
class _Indexed:
    parsed: ParsedFile
    segment: Segment

    @property
    def size(self) -> int:
        """About the bytes it holds (tracemalloc, on pydoc's topics cut in 100-token chunks): its text,
        about 120 per term (the term, its array, its dict entry), 4 per posting, 150 per chunk's span."""
        postings = sum(len(pairs) for pairs in self.segment.postings.values())
        terms = len(self.segment.postings)
        return len(self.parsed.text) + 120 * terms + 4 * postings + 150 * len(self.parsed.spans)


class _Listings:
    """Each store's completed files as a search last read them, with the store's files_version at the
    time: a store whose version has not moved (no file added, ingested, removed or given other
    attributes) is not listed again. The version is read before the list, so a list is never older
    than the version it is kept under."""

    def __init__(self, stores: int) -> None:
        self._stores = stores
        self._lists: OrderedDict[tuple[str, str], tuple[int, list[StoredFile]]] = OrderedDict()
        self._lock = threading.Lock()

    def completed(self, vector_store: StoredVectorStore) -> list[StoredFile]:
        key = (vector_store.project_id, vector_store.id)
        with self._lock:
            found = self._lists.get(key)
            if found is not None and found[0] == vector_store.files_version:
                self._lists.move_to_end(key)
                return found[1]
        files = store.completed_files(vector_store.project_id, vector_store.id)
        with self._lock:
            self._lists[key] = (vector_store.files_version, files)
            self._lists.move_to_end(key)
            while len(self._lists) > self._stores:
                self._lists.popitem(last=False)
        return files


_listings = _Listings(1000)


def _key(file: StoredFile) -> cache.Key:
    return cache.key("keywords", file)


def _read(file: StoredFile, needed: set[cache.Key]) -> tuple[_Indexed | None, bool]:
    """A file's index read from S3, and whether the cache kept it."""
    parsed = store.load_chunks(file.ref)
    if parsed is None:  # removed since the Query read it
        return None, False
    keywords = parsed.keywords
    if not keywords and parsed.spans:  # ingested before files had an index
        keywords = index_chunks(parsed.chunk(number) for number in range(len(parsed.spans)))
    indexed = _Indexed(parsed, Segment.of(keywords))
    return indexed, cache.files.put(_key(file), indexed, indexed.size, needed)


def _indexed(files: Sequence[StoredFile]) -> list[tuple[StoredFile, _Indexed]]:
    """The files' indexes, from the cache or read now (several at once). What the cache keeps of them
    is then frozen out of Python's cyclic garbage collector: it holds no cycles, so reference counting
    frees it when the cache drops it, and a full collection would otherwise walk every term of every
    cached file (seconds at 100,000 chunks) inside some search."""
    needed = {_key(file) for file in files}
    found = {index: hit for index, file in enumerate(files) if (hit := cache.files.get(_key(file))) is not None}
    missing = [index for index in range(len(files)) if index not in found]
    kept = False
    with ThreadPoolExecutor(max_workers=max(1, min(LOADERS, len(missing)))) as pool:
        for index, (loaded, cached) in zip(missing, pool.map(lambda i: _read(files[i], needed), missing), strict=True):
            if loaded is not None:
                found[index] = loaded
                kept = kept or cached
    if kept:  # collect first, so that no garbage of the moment is frozen with them
        gc.collect()
        gc.freeze()
    return [(files[index], found[index]) for index in sorted(found)]


def rewritten(query: str) -> str:
    """`rewrite_query`: the query as a keyword search sees it, without the words that carry no meaning
    ("What is the return policy?" becomes "return policy"). OpenAI rewrites with a model; Spindle has
    none to spare for it, and this is the part of a rewrite that matters to keyword ranking."""
    words = [word for word in re.findall(r"\w+", query) if word.lower() not in STOP_WORDS]
    return " ".join(words) or query


KEYWORD_WEIGHT = 0.5  # of a fused score; the rest is the vector similarity
DEPTH = 20  # at least this many candidates from each list before fusion


def _semantic(
    project_id: str,
    stores: Sequence[StoredVectorStore],
    files_by_store: Mapping[str, list[StoredFile]],
    queries: Sequence[str],
    depth: int,
    filters: Mapping[str, Any] | None,
) -> list[list[tuple[str, str, int, float]]] | None:
    """Per query, the nearest chunks of the stores whose vectors were made by the configured embeddings
    (vector_store_id, file_id, chunk, similarity); None when no store can be searched so."""
    embedder = embeddings.configured()
    if embedder is None:
        return None
    usable = [vector_store for vector_store in stores if vector_store.embedding_model == embedder.model]
    if not usable:
        return None
    try:
        query_vectors = embedder.embed(list(queries))
    except embeddings.EmbeddingError:
        log.warning("embedding a search query failed: keyword search alone answers it", exc_info=True)
        return None
    index = vectors.configured()
    found_per_query = []
    for query_vector in query_vectors:
        hits = []
        for vector_store in usable:
            if vector_store.embedding_dimensions != len(query_vector):
                continue
            try:
                nearest = index.query(
                    project_id, vector_store.id, query_vector, depth, files_by_store[vector_store.id], filters
                )
            except Exception:  # the index refused or failed: this store is searched by keyword alone
                log.warning("querying the vectors of %s failed", vector_store.id, exc_info=True)
                continue
            hits += [(vector_store.id, hit.file_id, hit.chunk, hit.similarity) for hit in nearest]
        found_per_query.append(hits)
    return found_per_query


def search(
    stores: Sequence[StoredVectorStore],
    queries: Sequence[str],
    *,
    max_results: int,
    score_threshold: float = 0.0,
    filters: Mapping[str, Any] | None = None,
) -> list[Hit]:
    """The best `max_results` chunks of the stores' completed files for any of `queries`, best first,
    each scoring at least `score_threshold`; only files whose attributes pass `filters`. The stores are
    as their caller read them (one project's, checked usable).

    With embeddings configured, each query's keyword and vector candidates are fused: a chunk scores
    KEYWORD_WEIGHT times its keyword score plus the rest times its cosine similarity (below 0 counted
    as 0), its keyword score computed exactly where only the vectors found it, and its similarity taken
    as the lowest the vector search returned where only the keywords found it."""
    if not stores:
        return []
    project_id = stores[0].project_id
    files_by_store = {
        vector_store.id: [file for file in _listings.completed(vector_store) if matches(filters, file.attributes)]
        for vector_store in stores
    }
    indexed = _indexed([file for files in files_by_store.values() for file in files])
    corpus = Corpus([entry.segment for _, entry in indexed])
    position = {(file.ref.vector_store_id, file.ref.file_id): number for number, (file, _) in enumerate(indexed)}
    depth = max(DEPTH, 2 * max_results)
    semantic = _semantic(project_id, stores, files_by_store, queries, depth, filters) if indexed else None
    best: dict[tuple[int, int], float] = {}
    for query_number, query in enumerate(queries):
        keyword = {(hit.segment, hit.chunk): hit.score for hit in corpus.search(query, depth)}
        if semantic is None:
            fused = keyword
        else:
            similar = {
                (position[(vector_store_id, file_id)], chunk): similarity
                for vector_store_id, file_id, chunk, similarity in semantic[query_number]
                if (vector_store_id, file_id) in position
                and chunk < len(indexed[position[(vector_store_id, file_id)]][1].parsed.spans)
            }
            floor = min(similar.values(), default=0.0)
            fused = {}
            for key in keyword.keys() | similar.keys():
                text_score = keyword.get(key)
                if text_score is None:
                    text_score = corpus.score(query, indexed[key[0]][1].parsed.chunk(key[1]))
                similarity = max(0.0, min(1.0, similar.get(key, floor)))
                fused[key] = KEYWORD_WEIGHT * text_score + (1.0 - KEYWORD_WEIGHT) * similarity
        for key, score in fused.items():
            best[key] = max(best.get(key, 0.0), score)
    ranked = sorted(best.items(), key=lambda item: item[1], reverse=True)
    hits: list[Hit] = []
    for (number, chunk), score in ranked:
        if score < score_threshold or len(hits) == max_results:
            break
        file, entry = indexed[number]
        hits.append(
            Hit(
                file.ref.vector_store_id,
                file.ref.file_id,
                file.filename,
                file.attributes,
                score,
                entry.parsed.chunk(chunk),
            )
        )
    return hits
