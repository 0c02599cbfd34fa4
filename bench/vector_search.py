"""Vector store search: ingestion throughput, search latency against the number of chunks, and retrieval
quality on a labelled question set. Used by `python bench/run.py vector_search`; the section's
docstring (`section_vector_search`) says how each figure is measured.

Everything runs in this process on moto (S3 and DynamoDB, with chalicelib/local/atomic_moto.py as
bench/run.py installs it), through the code the API and the ingestion worker run: files.create_file,
vector_store_files.add_file, worker.ingest and search.retrieval.search. Nothing is downloaded: the
prose is generated from text on disk (the standard library's docstrings and pydoc topics of this
interpreter), and the labelled set is bench/retrieval_set/.

This module does not import bench/run.py: run.py imports it (see bench/stream_latency.py).
"""

from __future__ import annotations

import gc
import json
import os
import random
import re
import statistics
import time
from pathlib import Path
from typing import Any

RETRIEVAL_SET = Path(__file__).resolve().parent / "retrieval_set"
PROJECT = "proj_bench_vector_search"

INGEST_FILES = 100
FILE_BYTES = (20_000, 60_000)  # each generated file's size, drawn uniformly
LATENCY_CHUNKING = {"type": "static", "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 0}}
RECALL_CHUNKING = {"type": "static", "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 100}}
STORE_SIZES = (10_000, 100_000)  # chunks in the latency store when it is measured
QUERIES = 100
PASSES = 2  # warm samples per size: PASSES x QUERIES
MAX_RESULTS = 20
RANKS = (1, 5, 20)


def _summary(samples: list[float], scale: float = 1000.0) -> dict[str, float]:
    """Median and p99 (milliseconds by default), as bench/run.py's summary()."""
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]
    return {"median": round(statistics.median(ordered) * scale, 3), "p99": round(p99 * scale, 3), "n": len(ordered)}


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


# --- generated prose ---------------------------------------------------------------------------------


class Prose:
    """Varied English prose, deterministic for a seed: an order-2 word Markov chain trained on the
    prose paragraphs (no code, no lists) of this interpreter's standard library docstrings and pydoc
    topics. Sentences recombine real technical English, so term frequencies follow a natural,
    Zipf-like curve; the vocabulary is that of the training text (about 11,000 words), smaller than
    a real corpus of the same size, so common terms' postings are, if anything, longer than real."""

    _SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")

    def __init__(self) -> None:
        sentences = [words for text in self._training_texts() for words in self._sentences(text)]
        self._starts: list[tuple[str, str]] = []
        self._chain: dict[tuple[str, str], list[str | None]] = {}
        for words in sentences:
            self._starts.append((words[0], words[1]))
            for first, second, third in zip(words[:-1], words[1:], [*words[2:], None], strict=True):
                self._chain.setdefault((first, second), []).append(third)
        self.training_words = sum(len(words) for words in sentences)

    @staticmethod
    def _training_texts() -> list[str]:
        import ast
        import pydoc_data.topics

        root = Path(os.__file__).parent
        skipped = {"test", "tests", "idlelib", "site-packages", "lib2to3", "__pycache__"}
        texts: list[str] = []
        for directory, subdirectories, filenames in os.walk(root):
            subdirectories[:] = sorted(name for name in subdirectories if name not in skipped)
            for filename in sorted(name for name in filenames if name.endswith(".py")):
                try:
                    tree = ast.parse(Path(directory, filename).read_text(encoding="utf-8"))
                except (SyntaxError, UnicodeDecodeError, ValueError):
                    continue
                for node in ast.walk(tree):
                    if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                        docstring = ast.get_docstring(node)
                        if docstring:
                            texts.append(docstring)
        topics = pydoc_data.topics.topics
        return texts + [topics[name] for name in sorted(topics)]

    @classmethod
    def _sentences(cls, text: str) -> list[list[str]]:
        found = []
        for paragraph in re.split(r"\n\s*\n", text):
            lines = paragraph.strip().splitlines()
            if not lines or any(line.startswith("   ") for line in lines):
                continue  # indented: code, tables, examples
            if any(line.lstrip().startswith((">>>", "...", "*", "-", "|", "=", "+", "#")) for line in lines):
                continue
            flat = " ".join(line.strip() for line in lines)
            if len(flat) < 40 or sum(c.isalpha() or c == " " for c in flat) / len(flat) < 0.9:
                continue
            for sentence in cls._SENTENCE_BREAK.split(flat):
                words = sentence.split()
                if 5 <= len(words) <= 60 and sentence[0].isupper() and sentence[-1] in ".!?":
                    found.append(words)
        return found

    def sentence(self, rng: random.Random) -> str:
        first, second = rng.choice(self._starts)
        words = [first, second]
        while len(words) < 70:
            following = rng.choice(self._chain[(first, second)])
            if following is None:
                break
            words.append(following)
            first, second = second, following
        return " ".join(words)

    def document(self, rng: random.Random, size: int) -> str:
        """Paragraphs of 3 to 8 sentences, about `size` characters in all."""
        paragraphs: list[str] = []
        length = 0
        while length < size:
            paragraph = " ".join(self.sentence(rng) for _ in range(rng.randint(3, 8)))
            paragraphs.append(paragraph)
            length += len(paragraph) + 2
        return "\n\n".join(paragraphs)

    def queries(self, rng: random.Random, count: int) -> list[str]:
        """Keyword-style and question-style queries of 2 to 7 consecutive words of a generated
        sentence, each with at least one search term."""
        from chalicelib.search.keywords import terms

        forms = ("{}", "{}", "{}?", "how do I {}", "what happens when {}", "why does {}")
        found: list[str] = []
        while len(found) < count:
            words = re.findall(r"[A-Za-z][A-Za-z'-]*", self.sentence(rng))
            size = rng.randint(2, 7)
            if len(words) < size:
                continue
            start = rng.randrange(len(words) - size + 1)
            query = rng.choice(forms).format(" ".join(words[start : start + size]).lower())
            if terms(query):
                found.append(query)
        return found


# --- the measurements ------------------------------------------------------------------------------


def _add(vector_store_id: str, filename: str, content: bytes, chunking: dict[str, Any] | None) -> Any:
    """Upload a file and add it to the store, as the API does; its FileRef (in progress, due)."""
    from chalicelib.domain import files, vector_store_files
    from chalicelib.storage.vector_store_files import FileRef

    file = files.create_file(PROJECT, {"purpose": "assistants"}, filename, content)
    body: dict[str, Any] = {"file_id": file["id"]}
    if chunking is not None:
        body["chunking_strategy"] = chunking
    vector_store_files.add_file(PROJECT, vector_store_id, body)
    return FileRef(PROJECT, vector_store_id, file["id"])


def _chunk_count(ref: Any) -> int:
    """How many chunks ingestion stored for the file (read back from S3)."""
    from chalicelib.storage import vector_store_files as store

    parsed = store.load_chunks(ref)
    assert parsed is not None, ref
    return len(parsed.spans)


def _new_store(name: str) -> str:
    from chalicelib.domain.vector_store_files import create_vector_store

    return str(create_vector_store(PROJECT, {"name": name})["id"])


def _ingestion(prose: Prose) -> tuple[dict[str, Any], str]:
    from chalicelib.ingest import worker
    from chalicelib.ingest.chunks import chunk_text
    from chalicelib.search.keywords import index_chunks
    from chalicelib.storage import vector_store_files as store

    rng = random.Random(1)
    vector_store_id = _new_store("ingestion")
    contents = [prose.document(rng, rng.randint(*FILE_BYTES)).encode() for _ in range(INGEST_FILES)]
    refs = [_add(vector_store_id, f"prose-{n:03d}.txt", content, None) for n, content in enumerate(contents)]
    samples = []
    for ref in refs:
        started = time.perf_counter()
        assert worker.ingest(ref), ref
        samples.append(time.perf_counter() - started)
    assert all(getattr(store.get(ref), "status", None) == "completed" for ref in refs)
    chunks = sum(_chunk_count(ref) for ref in refs)
    # The same texts through chunk_text + index_chunks alone: the CPU part of ingestion.
    started = time.perf_counter()
    for content in contents:
        index_chunks(chunk.text for chunk in chunk_text(content.decode(), 800, 400))
    cpu_seconds = time.perf_counter() - started
    seconds = sum(samples)
    megabytes = sum(len(content) for content in contents) / 1e6
    return {
        "files": INGEST_FILES,
        "megabytes": round(megabytes, 2),
        "chunking": "auto (800 tokens, 400 overlapping)",
        "chunks": chunks,
        "seconds": round(seconds, 2),
        "mb_per_s": round(megabytes / seconds, 3),
        "chunks_per_s": round(chunks / seconds, 1),
        "per_file_ms": _summary(samples),
        "chunk_and_index_alone_mb_per_s": round(megabytes / cpu_seconds, 3),
        "chunk_and_index_share_of_ingest": round(cpu_seconds / seconds, 2),
    }, vector_store_id


def _reset_search_cache() -> None:
    """Forget every file the search module loaded, as a new process (or a new Lambda) would."""
    from chalicelib.search import cache

    cache.files.clear()


def _search(store_ids: list[str], query: str) -> list[Any]:
    """One search as a run makes it: its stores read (and checked), then searched."""
    from chalicelib.domain import vector_stores
    from chalicelib.search import retrieval

    stores = vector_stores.searchable_stores(PROJECT, store_ids)
    return retrieval.search(stores, [query], max_results=MAX_RESULTS)


def _breakdown(vector_store_id: str, queries: list[str]) -> dict[str, Any]:
    """One warm search cut into its steps, per query: the DynamoDB Query of completed files, the
    cache look-ups, the Corpus (statistics summed over segments) and Corpus.search (BM25)."""
    from chalicelib.search import retrieval
    from chalicelib.search.keywords import Corpus
    from chalicelib.storage import vector_store_files as store

    steps: dict[str, list[float]] = {"query_files": [], "cache_lookups": [], "corpus": [], "bm25": []}
    for query in queries:
        marks = [time.perf_counter()]
        files = store.completed_files(PROJECT, vector_store_id)
        marks.append(time.perf_counter())
        indexed = retrieval._indexed(files)
        marks.append(time.perf_counter())
        corpus = Corpus([entry.segment for _, entry in indexed])
        marks.append(time.perf_counter())
        corpus.search(query, MAX_RESULTS)
        marks.append(time.perf_counter())
        for step, start, end in zip(steps, marks[:-1], marks[1:], strict=True):
            steps[step].append(end - start)
    return {f"{step}_ms": _summary(samples) for step, samples in steps.items()}


def _latency(prose: Prose) -> tuple[dict[str, Any], str]:
    from chalicelib.ingest import worker

    rng = random.Random(2)
    queries = prose.queries(random.Random(3), QUERIES)
    vector_store_id = _new_store("latency")
    built = {"files": 0, "chunks": 0, "bytes": 0, "ingest_seconds": 0.0}
    figures: dict[str, Any] = {
        "chunking": "static, 100 tokens, no overlap",
        "queries": len(queries),
        "query_examples": queries[:5],
    }
    for size in STORE_SIZES:
        while built["chunks"] < size:
            content = prose.document(rng, rng.randint(*FILE_BYTES)).encode()
            ref = _add(vector_store_id, f"latency-{built['files']:05d}.txt", content, LATENCY_CHUNKING)
            started = time.perf_counter()
            assert worker.ingest(ref), ref
            built["ingest_seconds"] += time.perf_counter() - started
            built["files"] += 1
            built["bytes"] += len(content)
            built["chunks"] += _chunk_count(ref)
        at: dict[str, Any] = {
            "chunks": built["chunks"],
            "files": built["files"],
            "megabytes": round(built["bytes"] / 1e6, 1),
        }
        _reset_search_cache()
        rss_before = _rss_mib()
        started = time.perf_counter()
        _search([vector_store_id], queries[0])
        at["cold_first_search_ms"] = round((time.perf_counter() - started) * 1000, 1)
        samples: list[float] = []
        hits: list[int] = []
        full_collections = gc.get_stats()[2]["collections"]
        for _ in range(PASSES):
            for query in queries:
                started = time.perf_counter()
                found = _search([vector_store_id], query)
                samples.append(time.perf_counter() - started)
                hits.append(len(found))
        at["warm_search_ms"] = _summary(samples)
        at["full_gc_collections_during_warm_searches"] = gc.get_stats()[2]["collections"] - full_collections
        at["results_per_search_median"] = statistics.median(hits)
        at["warm_search_steps"] = _breakdown(vector_store_id, queries)
        from chalicelib.search.cache import files as cached

        at["search_cache"] = {
            "files_held": len(cached),
            "estimated_mib": round(cached.held / 2**20, 1),
            "budget_mib": round(cached.budget / 2**20),
        }
        at["rss_mib_growth_cold_then_warm_searches"] = round(_rss_mib() - rss_before, 1)
        at["rss_mib_after"] = _rss_mib()
        started = time.perf_counter()
        gc.collect()
        at["one_full_gc_ms"] = round((time.perf_counter() - started) * 1000, 1)
        figures[f"{size} chunks"] = at
    small, large = (figures[f"{size} chunks"]["warm_search_ms"]["median"] for size in STORE_SIZES)
    figures["ratio_median_100k_to_10k"] = round(large / small, 2)
    figures["ingestion_at_100_token_chunks"] = {
        "files": built["files"],
        "chunks": built["chunks"],
        "seconds": round(built["ingest_seconds"], 1),
        "mb_per_s": round(built["bytes"] / 1e6 / built["ingest_seconds"], 3),
        "chunks_per_s": round(built["chunks"] / built["ingest_seconds"], 1),
    }
    return figures, vector_store_id


def _recall(distractors: dict[str, list[str]]) -> dict[str, Any]:
    from chalicelib.ingest import worker
    from chalicelib.storage import vector_store_files as store

    questions = json.loads((RETRIEVAL_SET / "questions.json").read_text(encoding="utf-8"))["questions"]
    documents = sorted((RETRIEVAL_SET / "corpus").iterdir())
    vector_store_id = _new_store("retrieval set")
    chunks: dict[str, list[str]] = {}
    for path in documents:
        ref = _add(vector_store_id, path.name, path.read_bytes(), RECALL_CHUNKING)
        assert worker.ingest(ref), path
        parsed = store.load_chunks(ref)
        assert parsed is not None
        chunks[path.name] = [parsed.chunk(number) for number in range(len(parsed.spans))]
    for question in questions:
        # The label holds: its passage is in its document, once, and wholly inside at least one chunk.
        text = (RETRIEVAL_SET / "corpus" / question["file"]).read_text(encoding="utf-8")
        assert text.count(question["answer"]) == 1, question["id"]
        assert any(question["answer"] in chunk for chunk in chunks[question["file"]]), question["id"]

    def evaluate(store_ids: list[str]) -> dict[str, Any]:
        ranks: list[int | None] = []
        file_ranks: list[int | None] = []
        samples: list[float] = []
        for question in questions:
            started = time.perf_counter()
            hits = _search(store_ids, question["question"])
            samples.append(time.perf_counter() - started)
            ranks.append(
                next(
                    (
                        n
                        for n, hit in enumerate(hits, 1)
                        if hit.filename == question["file"] and question["answer"] in hit.text
                    ),
                    None,
                )
            )
            file_ranks.append(next((n for n, hit in enumerate(hits, 1) if hit.filename == question["file"]), None))
        result: dict[str, Any] = {
            f"recall@{k}": round(sum(1 for rank in ranks if rank is not None and rank <= k) / len(ranks), 3)
            for k in RANKS
        }
        result[f"mrr@{MAX_RESULTS}"] = round(sum(1 / rank for rank in ranks if rank is not None) / len(ranks), 3)
        result["right_document_in_top5"] = round(
            sum(1 for rank in file_ranks if rank is not None and rank <= 5) / len(file_ranks), 3
        )
        result["missed_at_5"] = [q["id"] for q, rank in zip(questions, ranks, strict=True) if rank is None or rank > 5]
        result["search_ms"] = _summary(samples)
        return result

    figures: dict[str, Any] = {
        "documents": len(documents),
        "questions": len(questions),
        "chunking": "static, 200 tokens, 100 overlapping",
        "chunks": sum(len(texts) for texts in chunks.values()),
        "keyword": evaluate([vector_store_id]),
    }
    for label, store_ids in distractors.items():
        figures[f"keyword, {label}"] = evaluate([vector_store_id, *store_ids])
    figures["hybrid"] = "not measured: hybrid (embeddings) figures come once an embeddings provider exists"
    return figures


def section_vector_search() -> dict[str, Any]:
    """Vector store search, in-process on moto (S3 and DynamoDB, atomic_moto installed), through the
    code the API and the ingestion worker run; all text generated from this interpreter's stdlib
    docstrings and pydoc topics (an order-2 word Markov chain, seeded) or read from
    bench/retrieval_set/. Sizes are MB = 10^6 bytes of UTF-8 file content.

    - ingestion: 100 generated prose files of 20-60 KB uploaded (files.create_file) and added to one
      store with the default chunking (auto: 800 tokens, 400 overlapping); then worker.ingest(ref)
      timed for each file, one after another (claim, read from S3, extract, chunk_text,
      index_chunks, save_chunks to S3, finish). mb_per_s and chunks_per_s divide the content and the
      chunks made by the summed ingest() time; per_file_ms is its median and p99. chunk_and_index_alone
      runs chunk_text + index_chunks over the same texts with no storage: the CPU part's own rate and
      its share of ingestion.
    - search_latency: one store grown with generated 20-60 KB files, static chunking of 100 tokens
      and no overlap, each file ingested by worker.ingest, until it holds 10,000 chunks, measured,
      then grown to 100,000 chunks, measured again. Each measurement empties the search module's
      per-process cache first (as a new process), times the first retrieval.search (cold: Query of
      the completed files, every file's chunks and keyword index read from S3 with 8 loaders and
      parsed), then times 2 passes over 100 seeded queries (warm: 2 to 7 consecutive words of a
      generated sentence, some as questions), one query and max_results 20 per search: median and
      p99 ms. ratio_median_100k_to_10k divides the warm medians. warm_search_steps times the steps of
      one more warm pass separately (the DynamoDB Query of completed files, the cache look-ups, building
      the Corpus, Corpus.search). search_cache is the cache's own estimate of what it holds against its
      budget (SPINDLE_SEARCH_CACHE_MB); RSS (VmRSS of this process, which also holds moto's S3 and
      DynamoDB) is read before the cold search and after the warm ones. Python's cyclic garbage
      collector: the full (generation 2) collections that ran during the warm searches, and how long
      one gc.collect() takes afterwards (it grows with the objects the cache holds; a collection
      landing in a search shows up in its p99). ingestion_at_100_token_chunks is the summed ingest()
      time of building that store.
    - recall: the 15 documents of bench/retrieval_set/corpus/ in one store, static chunking of 200
      tokens with 100 overlapping (so every answer passage, at most 39 tokens, lies wholly in
      some chunk; checked), and the 84 labelled questions of bench/retrieval_set/questions.json,
      phrased as a user would ask, each searched alone with max_results 20 (the question as written;
      no rewrite_query). A question is recalled at k when one of the first k hits is from its document
      and its text contains the whole answer passage; mrr@20 is the mean of 1/rank of the first such
      hit (0 when none in 20). right_document_in_top5 only asks for a hit from the right document.
      "with ... distractors" searches the same questions over this store together with the ingestion
      store or the 100,000-chunk store (generated prose; a hit counts only from the labelled document,
      and the distractors' chunks are 800 and 100 tokens long). Keyword search (BM25)
      is the only mode there is: hybrid (embeddings) figures come once an embeddings provider exists.
    """
    from moto import mock_aws

    from chalicelib.storage.files import ensure_bucket
    from chalicelib.storage.models import create_tables

    section_started = time.perf_counter()
    rss_start = _rss_mib()
    started = time.perf_counter()
    prose = Prose()
    figures: dict[str, Any] = {
        "prose_model": {"training_words": prose.training_words, "seconds": round(time.perf_counter() - started, 1)}
    }
    with mock_aws():
        create_tables()
        ensure_bucket()
        figures["ingestion"], ingestion_store = _ingestion(prose)
        figures["search_latency"], latency_store = _latency(prose)
        figures["recall"] = _recall(
            {
                "with the 100 ingestion files as distractors": [ingestion_store],
                "with the 100,000-chunk store as distractors": [latency_store],
            }
        )
    figures["rss_mib"] = {"section_start": rss_start, "section_end": _rss_mib()}
    figures["section_seconds"] = round(time.perf_counter() - section_started, 1)
    return figures
