"""Ingestion: a file added to a vector store is read, its text extracted, chunked and stored, and the
file ends `completed`, or `failed` with `last_error`. Every driver calls `ingest` (the local poller, file
by file, and on AWS the `ingest_files` and scheduled `ingest_pending` Lambdas through
`ingest_in_invocation`): whoever claims a file ingests it; a worker that dies leaves it due again when
its lease ends, and after MAX_ATTEMPTS claims it fails instead.

Reading one file is bounded (`SPINDLE_INGEST_FILE_SECONDS`, `SPINDLE_INGEST_MAX_PAGES`, ingest/pdf.py),
and the lease outlasts the bound and the storing that follows, so a file is never taken by a second
worker while the first may still legitimately have it."""

from __future__ import annotations

import logging
import time

from chalicelib.config import settings
from chalicelib.ingest.chunks import chunk_text
from chalicelib.ingest.fairness import in_turns
from chalicelib.ingest.text import FileNotReadable, extract_text
from chalicelib.search import embeddings, vectors
from chalicelib.search.keywords import index_chunks
from chalicelib.storage import files as file_store
from chalicelib.storage import vector_store_files as store
from chalicelib.storage import vector_stores as vector_store_store
from chalicelib.storage.vector_store_files import FileRef, ParsedFile, StoredFile

log = logging.getLogger("spindle.ingest")
# What follows reading a file (its chunks to S3, their embeddings): an invocation keeps this much time
# for it, and the lease twice as much. A dead worker's file waits out the lease: 180 s by default.
STORING_SECONDS = 60.0
LEASE_SECONDS = settings.ingest_limits.file_seconds + 2 * STORING_SECONDS
MAX_ATTEMPTS = 3
WINDOW = 100  # due files read at once, so that other projects' files are seen beside one's backlog


def due_in_turns(now: float) -> list[FileRef]:
    """The files due by `now` (the soonest WINDOW of them), in turns across projects: one Query."""
    return in_turns(store.due_files(now, limit=WINDOW))


def ingest_due(seconds: float = 5.0) -> int:
    """Ingest files that are due, starting none after `seconds`, until none is. How many were ingested."""
    deadline = time.monotonic() + seconds
    done = 0
    while time.monotonic() < deadline:
        due = due_in_turns(time.time())
        if not due:
            break
        for ref in due:
            done += ingest(ref)
            if time.monotonic() >= deadline:
                break
    return done


def ingest_in_invocation(remaining_seconds: float) -> int:
    """A Lambda invocation's pass: a file is started only while reading it for as long as it may
    (SPINDLE_INGEST_FILE_SECONDS) and storing it still ends before the invocation must, so no file is
    cut off by the function's timeout. The rest is left to the next invocation."""
    return ingest_due(remaining_seconds - settings.ingest_limits.file_seconds - STORING_SECONDS)


class MixedEmbeddings(Exception):
    """The store's vectors were made with other embeddings than Spindle is configured for now."""


def ingest(ref: FileRef) -> bool:
    """Ingest one file if it can be claimed. True if this call ended its ingestion."""
    claimed = store.claim(ref, time.time(), LEASE_SECONDS)
    if claimed is None:
        return False
    if claimed.attempts > MAX_ATTEMPTS:
        return _failed(claimed, "server_error", f"Spindle could not process the file in {MAX_ATTEMPTS} attempts.")
    try:
        data = file_store.content(ref.project_id, ref.file_id)
        if data is None:
            return _failed(claimed, "invalid_file", "The file was deleted before it could be processed.")
        text = extract_text(claimed.filename, data)
        static = claimed.chunking_strategy["static"]
        chunks = chunk_text(text, static["max_chunk_size_tokens"], static["chunk_overlap_tokens"])
        spans = [(chunk.start, chunk.end, chunk.tokens) for chunk in chunks]
        keywords = index_chunks(chunk.text for chunk in chunks)
        store.save_chunks(ref, ParsedFile(text, spans, keywords))
        _embed(claimed, [chunk.text for chunk in chunks])
    except FileNotReadable as error:
        return _failed(claimed, error.code, error.message)
    except MixedEmbeddings as error:
        return _failed(claimed, "server_error", str(error))
    except Exception:  # a storage or provider hiccup, or a bug: the file is due again when the lease ends
        log.exception("ingesting %s failed (attempt %d)", ref.key, claimed.attempts)
        return False
    if store.finish(claimed, "completed", len(text.encode("utf-8")), None, len(chunks)):
        return True
    now = store.get(ref)
    if now is None or now.status != "completed":  # removed or cancelled meanwhile: no chunks outlive it
        store.delete_chunks(ref)
        vectors.forget_file(ref, len(chunks))
    return False


def _embed(claimed: StoredFile, texts: list[str]) -> None:
    """The chunks' vectors, when an embeddings provider is configured, into the store's index. A store
    keeps the embeddings its first vectors were made with: a file to embed otherwise fails."""
    embedder = embeddings.configured()
    if embedder is None or not texts:
        return
    made = embedder.embed(texts)
    ref = claimed.ref
    recorded = vector_store_store.claim_embedding(ref.project_id, ref.vector_store_id, embedder.model, len(made[0]))
    if recorded is None:
        return  # the store is gone: no index is made for it again
    if (recorded.embedding_model, recorded.embedding_dimensions) != (
        embedder.model,
        len(made[0]),
    ):
        raise MixedEmbeddings(
            f"The vector store's embeddings are {recorded.embedding_model} ({recorded.embedding_dimensions} "
            f"dimensions) and Spindle now makes {embedder.model} ({len(made[0])}): one store never mixes two. "
            "Put the file in a new vector store.",
        )
    try:
        vectors.configured().put(ref, made, claimed.attributes)
    except vectors.VectorsUnavailable:
        log.error("vector store %s has no vector index (S3 Vectors' quota): keyword search alone", ref.store_key)


def _failed(claimed: StoredFile, code: str, message: str) -> bool:
    return store.finish(claimed, "failed", 0, {"code": code, "message": message})
