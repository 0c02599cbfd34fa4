"""A vector store's files: their records in DynamoDB (VectorStoreFileRecord), their chunks in S3, and
the store's file counters, which every change of a file's status moves in the same transaction.

A file waits for ingestion in a sparse index (PendingIngestion), sorted by when it is due. A worker
claims it with one conditional write that moves it a lease into the future, so two workers never
ingest one file at once, and a worker that dies leaves a file that is due again when its lease ends.
"""

from __future__ import annotations

import json
import struct
import uuid
from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import DoesNotExist

from chalicelib.config import settings
from chalicelib.storage.dynamo import transact, written
from chalicelib.storage.files import count_store_add, s3_client
from chalicelib.storage.models import (
    VectorStoreFileBatchRecord,
    VectorStoreFileRecord,
    VectorStoreRecord,
    batch_key,
    due_key,
    due_key_bound,
    due_time,
    split_vector_store_key,
    vector_store_key,
)
from chalicelib.storage.pages import read_page
from chalicelib.storage.records import FileCounts, ListQuery, Page

INGEST_QUEUE = "ingest"
# The batch's counter for each status.
BATCH_COUNTERS = {
    "in_progress": VectorStoreFileBatchRecord.files_in_progress,
    "completed": VectorStoreFileBatchRecord.files_completed,
    "failed": VectorStoreFileBatchRecord.files_failed,
    "cancelled": VectorStoreFileBatchRecord.files_cancelled,
}
# The store's counter for each status a file can be in.
COUNTERS = {
    "in_progress": VectorStoreRecord.files_in_progress,
    "completed": VectorStoreRecord.files_completed,
    "failed": VectorStoreRecord.files_failed,
    "cancelled": VectorStoreRecord.files_cancelled,
}


@dataclass(frozen=True)
class FileRef:
    project_id: str
    vector_store_id: str
    file_id: str

    @property
    def store_key(self) -> str:
        return vector_store_key(self.project_id, self.vector_store_id)

    @property
    def key(self) -> str:
        """How the ingestion queue names the file."""
        return f"{self.store_key}/{self.file_id}"

    @classmethod
    def parse(cls, key: str) -> FileRef:
        store_key, file_id = key.rsplit("/", 1)
        project_id, vector_store_id = split_vector_store_key(store_key)
        return cls(project_id, vector_store_id, file_id)


@dataclass(frozen=True)
class StoredFile:
    ref: FileRef
    created_at: int
    status: str
    usage_bytes: int
    last_error: dict[str, Any] | None
    chunking_strategy: dict[str, Any]
    attributes: dict[str, Any] | None
    filename: str
    lease_token: str | None = None
    attempts: int = 0
    batch_id: str | None = None
    chunks_version: str | None = None
    chunk_count: int = 0


def _stored(record: VectorStoreFileRecord) -> StoredFile:
    project_id, vector_store_id = split_vector_store_key(record.store_key)
    return StoredFile(
        ref=FileRef(project_id, vector_store_id, record.file_id),
        created_at=int(record.created_at),
        status=record.status,
        usage_bytes=int(record.usage_bytes or 0),
        last_error=record.last_error,
        chunking_strategy=record.chunking_strategy,
        attributes=record.attributes,
        filename=record.filename,
        lease_token=record.lease_token,
        attempts=int(record.attempts or 0),
        batch_id=record.batch_key.rsplit("#", 1)[1] if record.batch_key else None,
        chunks_version=record.chunks_version,
        chunk_count=int(record.chunk_count or 0),
    )


def _store_record(ref: FileRef) -> VectorStoreRecord:
    return VectorStoreRecord(ref.project_id, ref.vector_store_id)


def _batch_record(ref: FileRef, batch_id: str) -> VectorStoreFileBatchRecord:
    return VectorStoreFileBatchRecord(ref.store_key, batch_id)


def _count(transaction: Any, file: StoredFile, moves: dict[str, int], usage_bytes: int = 0) -> None:
    """Move the counts of the file's store (and of its batch, if a batch added it) by `moves`, a change
    per status, in the transaction that changes the file."""
    ref = file.ref
    transaction.update(
        _store_record(ref),
        actions=[COUNTERS[status].add(by) for status, by in moves.items()]
        + ([VectorStoreRecord.usage_bytes.add(usage_bytes)] if usage_bytes else [])
        + [VectorStoreRecord.files_version.add(1)],
        condition=VectorStoreRecord.vector_store_id.exists(),
    )
    if file.batch_id is not None:
        transaction.update(
            _batch_record(ref, file.batch_id),
            actions=[BATCH_COUNTERS[status].add(by) for status, by in moves.items()],
            condition=VectorStoreFileBatchRecord.batch_id.exists(),
        )


class FileGone(Exception):
    """The uploaded file was deleted before it could be added to a store: nothing was stored."""


def add(file: StoredFile, due_at: float) -> StoredFile | None:
    """Put the file in its store, in progress and due for ingestion at `due_at`, count it, and record
    the store on the uploaded file (so that deleting the file finds it), in one transaction. The file
    as stored: this one, or the one already there (adding a file twice changes nothing). None if the
    store is gone; FileGone if the uploaded file is."""
    ref = file.ref
    record = VectorStoreFileRecord(
        ref.store_key,
        ref.file_id,
        created_at=file.created_at,
        status="in_progress",
        usage_bytes=0,
        last_error=None,
        chunking_strategy=file.chunking_strategy,
        attributes=file.attributes,
        filename=file.filename,
        ingest_queue=INGEST_QUEUE,
        ingest_due=due_key(due_at, ref.key),
        attempts=0,
    )

    if file.batch_id is not None:
        record.batch_key = batch_key(ref.project_id, ref.vector_store_id, file.batch_id)

    def build(transaction: Any) -> None:
        transaction.save(record, condition=VectorStoreFileRecord.file_id.does_not_exist())
        _count(transaction, file, {"in_progress": 1})
        count_store_add(transaction, ref.project_id, ref.file_id, ref.vector_store_id)  # the last update

    refusal = transact(build)
    if refusal is None:
        return file
    if refusal.failed_at(0):  # already in the store
        return get(ref)
    if refusal.failed_at(-1):
        raise FileGone(ref.file_id)
    return None


def get(ref: FileRef) -> StoredFile | None:
    try:
        return _stored(VectorStoreFileRecord.get(ref.store_key, ref.file_id, consistent_read=True))
    except DoesNotExist:
        return None


def list_page(project_id: str, vector_store_id: str, query: ListQuery, status: str | None) -> Page:
    """One Query. With `status`, a filter on it: a page may then hold fewer than `limit` files while
    `has_more` says more follow (DynamoDB filters after it reads)."""
    key = vector_store_key(project_id, vector_store_id)
    condition = None if status is None else VectorStoreFileRecord.status == status
    page = read_page(
        lambda **kw: VectorStoreFileRecord.query(key, consistent_read=True, filter_condition=condition, **kw),
        VectorStoreFileRecord.file_id,
        query,
    )
    return Page(items=[_stored(record) for record in page.items], has_more=page.has_more)


def set_attributes(ref: FileRef, attributes: dict[str, Any] | None) -> StoredFile | None:
    """Replace the file's attributes and move its store's files_version, in one transaction (a search
    must not filter by attributes it read before). None if the file is not in the store."""
    action = (
        VectorStoreFileRecord.attributes.remove()
        if attributes is None
        else (VectorStoreFileRecord.attributes.set(attributes))
    )

    def build(transaction: Any) -> None:
        transaction.update(
            VectorStoreFileRecord(ref.store_key, ref.file_id),
            actions=[action],
            condition=VectorStoreFileRecord.file_id.exists(),
        )
        transaction.update(
            _store_record(ref),
            actions=[VectorStoreRecord.files_version.add(1)],
            condition=VectorStoreRecord.vector_store_id.exists(),
        )

    if transact(build) is not None:
        return None
    return get(ref)


def remove(ref: FileRef) -> StoredFile | None:
    """Take the file out of its store and its counts (one transaction, over the status it was read in),
    then delete its chunks. The file as it was removed; None if it is not in the store."""
    for _ in range(5):  # a status that moved meanwhile (ingestion finished) is read again
        current = get(ref)
        if current is None:
            return None

        def build(transaction: Any, current: StoredFile = current) -> None:
            transaction.delete(
                VectorStoreFileRecord(ref.store_key, ref.file_id),
                condition=VectorStoreFileRecord.status == current.status,
            )
            _count(transaction, current, {current.status: -1}, -current.usage_bytes)

        refusal = transact(build)
        if refusal is None or not refusal.failed_at(0):
            # Removed; or its store is gone (deleted meanwhile), in which case the record goes alone.
            if refusal is not None:
                written(lambda: VectorStoreFileRecord(ref.store_key, ref.file_id).delete())
            delete_chunks(ref)
            return current
    return None


def remove_all(project_id: str, vector_store_id: str) -> None:
    """A deleted store's files and chunks (the store item is gone already): one Query per page."""
    key = vector_store_key(project_id, vector_store_id)
    for record in VectorStoreFileRecord.query(key, consistent_read=True, attributes_to_get=["store_key", "file_id"]):
        # One by one (the API role has no BatchWriteItem), within the request that deleted the store:
        # README states the bound this puts on the stores that can be deleted at once.
        record.delete()
        delete_chunks(FileRef(project_id, vector_store_id, record.file_id))


# --- ingestion --------------------------------------------------------------------------------------


def due_files(now: float, limit: int = 20) -> list[FileRef]:
    """Files due for ingestion by `now`, soonest first: one Query on the sparse index."""
    entries = VectorStoreFileRecord.pending.query(
        INGEST_QUEUE, VectorStoreFileRecord.ingest_due <= due_key_bound(now), limit=limit, page_size=limit
    )
    return [FileRef.parse(entry.ingest_due.split("#", 1)[1]) for entry in entries]


def next_due_file() -> float | None:
    """When the soonest file waiting for ingestion is due (None: none waits): one Query of one item."""
    for entry in VectorStoreFileRecord.pending.query(INGEST_QUEUE, limit=1, page_size=1):
        return due_time(entry.ingest_due)
    return None


def claim(ref: FileRef, now: float, lease_seconds: float) -> StoredFile | None:
    """Take the file for ingestion if it is in progress and due: its due time moves a lease ahead (it
    is due again should this worker die). The file as claimed, with its lease token; None if another
    worker has it or it is done."""
    token = uuid.uuid4().hex
    record = VectorStoreFileRecord(ref.store_key, ref.file_id)
    claimed = written(
        lambda: record.update(
            actions=[
                VectorStoreFileRecord.lease_token.set(token),
                VectorStoreFileRecord.ingest_due.set(due_key(now + lease_seconds, ref.key)),
                VectorStoreFileRecord.attempts.add(1),
            ],
            condition=(VectorStoreFileRecord.status == "in_progress")
            & (VectorStoreFileRecord.ingest_due <= due_key_bound(now)),
        )
    )
    return _stored(record) if claimed else None


def finish(
    claimed: StoredFile, status: str, usage_bytes: int, last_error: dict[str, Any] | None, chunk_count: int = 0
) -> bool:
    """End the claimed file's ingestion as `status` and move the store's counts, in one transaction
    that holds only while the claim does (the file still in progress under this worker's lease). A
    file whose store is gone is removed instead (`drop_orphan`): it must not stay due forever."""
    ref = claimed.ref
    version = claimed.lease_token or ""  # claim() always sets it

    def build(transaction: Any) -> None:
        transaction.update(
            VectorStoreFileRecord(ref.store_key, ref.file_id),
            actions=[
                VectorStoreFileRecord.status.set(status),
                VectorStoreFileRecord.usage_bytes.set(usage_bytes),
                VectorStoreFileRecord.last_error.set(last_error)
                if last_error is not None
                else VectorStoreFileRecord.last_error.remove(),
                VectorStoreFileRecord.ingest_queue.remove(),
                VectorStoreFileRecord.ingest_due.remove(),
                VectorStoreFileRecord.lease_token.remove(),
                VectorStoreFileRecord.chunks_version.set(version),
                VectorStoreFileRecord.chunk_count.set(chunk_count),
            ],
            condition=(VectorStoreFileRecord.status == "in_progress")
            & (VectorStoreFileRecord.lease_token == claimed.lease_token),
        )
        _count(transaction, claimed, {"in_progress": -1, status: 1}, usage_bytes)

    refusal = transact(build)
    if refusal is None:
        return True
    if refusal.failed_at(1) and not refusal.failed_at(0):  # still ours, but its store is gone
        drop_orphan(ref)
    return False


def drop_orphan(ref: FileRef) -> None:
    """A file whose store is gone (a store DELETE that died before it removed its files): its record
    and chunks go, so that it is never claimed again. Nothing counts it any more."""
    written(lambda: VectorStoreFileRecord(ref.store_key, ref.file_id).delete())
    delete_chunks(ref)


def cancel(file: StoredFile) -> bool:
    """End an in-progress file `cancelled` (its batch was cancelled); a worker that has it loses it."""
    ref = file.ref

    def build(transaction: Any) -> None:
        transaction.update(
            VectorStoreFileRecord(ref.store_key, ref.file_id),
            actions=[
                VectorStoreFileRecord.status.set("cancelled"),
                VectorStoreFileRecord.ingest_queue.remove(),
                VectorStoreFileRecord.ingest_due.remove(),
                VectorStoreFileRecord.lease_token.remove(),
            ],
            condition=VectorStoreFileRecord.status == "in_progress",
        )
        _count(transaction, file, {"in_progress": -1, "cancelled": 1})

    return transact(build) is None


# --- batches ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredBatch:
    project_id: str
    vector_store_id: str
    id: str
    created_at: int
    cancelled: bool
    files: FileCounts


def _stored_batch(record: VectorStoreFileBatchRecord) -> StoredBatch:
    project_id, vector_store_id = split_vector_store_key(record.store_key)
    return StoredBatch(
        project_id=project_id,
        vector_store_id=vector_store_id,
        id=record.batch_id,
        created_at=int(record.created_at),
        cancelled=bool(record.cancelled),
        files=FileCounts.of(record),
    )


def create_batch(project_id: str, vector_store_id: str, batch_id: str, created_at: int) -> None:
    VectorStoreFileBatchRecord(
        vector_store_key(project_id, vector_store_id),
        batch_id,
        created_at=created_at,
        cancelled=0,
    ).save(condition=VectorStoreFileBatchRecord.batch_id.does_not_exist())


def get_batch(project_id: str, vector_store_id: str, batch_id: str) -> StoredBatch | None:
    try:
        record = VectorStoreFileBatchRecord.get(
            vector_store_key(project_id, vector_store_id), batch_id, consistent_read=True
        )
    except DoesNotExist:
        return None
    return _stored_batch(record)


def mark_cancelled(project_id: str, vector_store_id: str, batch_id: str) -> bool:
    record = VectorStoreFileBatchRecord(vector_store_key(project_id, vector_store_id), batch_id)
    return written(
        lambda: record.update(
            actions=[VectorStoreFileBatchRecord.cancelled.set(1)],
            condition=VectorStoreFileBatchRecord.batch_id.exists(),
        )
    )


def batch_files_page(
    project_id: str, vector_store_id: str, batch_id: str, query: ListQuery, status: str | None
) -> Page:
    """One Query on the batch index (eventually consistent on AWS, as every GSI read)."""
    key = batch_key(project_id, vector_store_id, batch_id)
    condition = None if status is None else VectorStoreFileRecord.status == status
    page = read_page(
        lambda **kw: VectorStoreFileRecord.of_batch.query(key, filter_condition=condition, **kw),
        VectorStoreFileRecord.file_id,
        query,
    )
    return Page(items=[_stored(record) for record in page.items], has_more=page.has_more)


def completed_files(project_id: str, vector_store_id: str) -> list[StoredFile]:
    """The store's searchable files: one Query, paged by DynamoDB (a store holds at most 10,000)."""
    key = vector_store_key(project_id, vector_store_id)
    records = VectorStoreFileRecord.query(
        key, consistent_read=True, filter_condition=VectorStoreFileRecord.status == "completed"
    )
    return [_stored(record) for record in records]


def in_progress_of_batch(project_id: str, vector_store_id: str, batch_id: str) -> list[StoredFile]:
    key = batch_key(project_id, vector_store_id, batch_id)
    records = VectorStoreFileRecord.of_batch.query(key, filter_condition=VectorStoreFileRecord.status == "in_progress")
    return [_stored(record) for record in records]


# --- chunks in S3 -----------------------------------------------------------------------------------


def _chunks_key(ref: FileRef) -> str:
    return f"vector-stores/{ref.project_id}/{ref.vector_store_id}/{ref.file_id}.json"


@dataclass(frozen=True)
class ParsedFile:
    """What ingestion made of a file: its text, its chunks as `text[start:end]` spans with their token
    counts, and its keyword index (search/keywords.py)."""

    text: str
    spans: list[tuple[int, int, int]]  # (start, end, tokens)
    keywords: dict[str, Any]

    def chunk(self, number: int) -> str:
        start, end, _ = self.spans[number]
        return self.text[start:end]


def save_chunks(ref: FileRef, parsed: ParsedFile) -> None:
    body = {"text": parsed.text, "chunks": [list(span) for span in parsed.spans], "keywords": parsed.keywords}
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    s3_client().put_object(Bucket=settings.files_bucket, Key=_chunks_key(ref), Body=data)


def load_chunks(ref: FileRef) -> ParsedFile | None:
    client = s3_client()
    try:
        response = client.get_object(Bucket=settings.files_bucket, Key=_chunks_key(ref))
    except client.exceptions.NoSuchKey:
        return None
    loaded = json.loads(response["Body"].read())
    # Files ingested before search existed stored each chunk as an object with its text, and no index.
    spans = [
        (chunk["start"], chunk["end"], chunk["tokens"]) if isinstance(chunk, dict) else tuple(chunk)
        for chunk in loaded["chunks"]
    ]
    return ParsedFile(loaded["text"], spans, loaded.get("keywords") or {})


def delete_chunks(ref: FileRef) -> None:
    """The file's chunks, and its vectors where they are kept beside them (search/vectors.py)."""
    client = s3_client()
    client.delete_object(Bucket=settings.files_bucket, Key=_chunks_key(ref))
    client.delete_object(Bucket=settings.files_bucket, Key=_vectors_key(ref))


def _vectors_key(ref: FileRef) -> str:
    return f"vector-stores/{ref.project_id}/{ref.vector_store_id}/{ref.file_id}.vectors"


def save_vectors(ref: FileRef, data: bytes, dimension: int) -> None:
    """A file's chunk vectors as one array of float32, `dimension` to a row (the object starts with the
    dimension as 4 bytes, little-endian: not every S3 keeps an object's own metadata)."""
    body = struct.pack("<I", dimension) + data
    s3_client().put_object(Bucket=settings.files_bucket, Key=_vectors_key(ref), Body=body)


def load_vectors(ref: FileRef) -> tuple[bytes, int] | None:
    client = s3_client()
    try:
        response = client.get_object(Bucket=settings.files_bucket, Key=_vectors_key(ref))
    except client.exceptions.NoSuchKey:
        return None
    body = response["Body"].read()
    (dimension,) = struct.unpack("<I", body[:4])
    return body[4:], dimension
