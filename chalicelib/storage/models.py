"""The DynamoDB schema. Every partition key starts with the project, so another tenant's key cannot
address an item at all. infra/ declares the same tables; a test keeps the two in step."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pynamodb.attributes import (
    Attribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    VersionAttribute,
)
from pynamodb.constants import STRING
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.config import settings


class CompactJSONAttribute(Attribute[Any]):
    """JSON stored as a UTF-8 string: no Decimal round trips, no DynamoDB map-key restrictions, and
    non-ASCII text kept at its real size (pynamodb's JSONAttribute escapes it to \\uXXXX)."""

    attr_type = STRING

    def serialize(self, value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    def deserialize(self, value: str) -> Any:
        return json.loads(value)


class _Meta:
    """What every table shares; each model's own Meta adds its table_name."""

    region = settings.region
    host = settings.dynamodb_endpoint
    billing_mode = "PAY_PER_REQUEST"


TABLE_PREFIX = settings.table_prefix


# --- keys: each spelled once, here beside the models that use it --------------------------------
# Every composite key starts with the project. Ids never contain "#" (domain/ids.py), so splitting a
# key on "#" gives back its parts.


def thread_key(project_id: str, thread_id: str) -> str:
    """A thread's messages and runs: MessageRecord.thread_key, RunRecord.thread_key."""
    return f"{project_id}#{thread_id}"


def split_thread_key(key: str) -> tuple[str, str]:
    project_id, thread_id = key.split("#", 1)
    return project_id, thread_id


def run_key(project_id: str, thread_id: str, run_id: str) -> str:
    """A run's steps, events and messages: RunStepRecord.run_key, RunEventRecord.run_key,
    MessageRecord.run_key, and the run's reference in the local run queue."""
    return f"{thread_key(project_id, thread_id)}#{run_id}"


def split_run_key(key: str) -> tuple[str, str, str]:
    project_id, thread_id, run_id = key.split("#")
    return project_id, thread_id, run_id


def user_key(project_id: str, user: str) -> str:
    """ThreadRecord.user_key. Hashed: bounded size whatever the user string, and no separator games."""
    return f"{project_id}#{hashlib.sha256(user.encode('utf-8')).hexdigest()}"


def purpose_key(project_id: str, purpose: str) -> str:
    """FileRecord.purpose_key."""
    return f"{project_id}#{purpose}"


def vector_store_key(project_id: str, vector_store_id: str) -> str:
    """A vector store's files: VectorStoreFileRecord.store_key."""
    return f"{project_id}#{vector_store_id}"


def batch_key(project_id: str, vector_store_id: str, batch_id: str) -> str:
    """A file batch's files: VectorStoreFileRecord.batch_key."""
    return f"{vector_store_key(project_id, vector_store_id)}#{batch_id}"


def split_vector_store_key(key: str) -> tuple[str, str]:
    project_id, vector_store_id = key.split("#", 1)
    return project_id, vector_store_id


def due_key(due_at: float, key_of_run: str) -> str:
    """RunQueueRecord.due_key: sorts by due time, then run."""
    return f"{due_at:017.6f}#{key_of_run}"


def due_time(key: str) -> float:
    """When a due_key (a run's, or a file's ingest_due) is due."""
    return float(key.split("#", 1)[0])


def due_key_bound(now: float) -> str:
    """Sorts after every due_key due by `now`."""
    return f"{now:017.6f}~"


class ThreadsByUser(GlobalSecondaryIndex["ThreadRecord"]):
    """Sparse: only threads whose metadata has a `user` appear, keyed by project and that user."""

    class Meta:
        index_name = "user-index"
        projection = AllProjection()

    user_key = UnicodeAttribute(hash_key=True)
    thread_id = UnicodeAttribute(range_key=True)


class ThreadRecord(Model):
    class Meta(_Meta):
        table_name = TABLE_PREFIX + "threads"

    project_id = UnicodeAttribute(hash_key=True)
    thread_id = UnicodeAttribute(range_key=True)
    created_at = NumberAttribute()
    metadata = CompactJSONAttribute()
    tool_resources = CompactJSONAttribute()
    user_key = UnicodeAttribute(null=True)
    # The run that holds the thread (queued, in progress, requires action or cancelling), if any.
    active_run_id = UnicodeAttribute(null=True)
    # On AWS, the thread's code_interpreter session in AgentCore (sandbox/agentcore.py), if it has one.
    code_session = CompactJSONAttribute(null=True)

    by_user = ThreadsByUser()


class MessagesByRun(GlobalSecondaryIndex["MessageRecord"]):
    """Sparse: only messages a run wrote, keyed by project, thread and run."""

    class Meta:
        index_name = "run-index"
        projection = AllProjection()

    run_key = UnicodeAttribute(hash_key=True)
    message_id = UnicodeAttribute(range_key=True)


class MessageRecord(Model):
    class Meta(_Meta):
        table_name = TABLE_PREFIX + "messages"

    thread_key = UnicodeAttribute(hash_key=True)
    message_id = UnicodeAttribute(range_key=True)
    thread_id = UnicodeAttribute()
    created_at = NumberAttribute()
    role = UnicodeAttribute()
    content = CompactJSONAttribute()
    attachments = CompactJSONAttribute()
    metadata = CompactJSONAttribute()
    status = UnicodeAttribute()
    assistant_id = UnicodeAttribute(null=True)
    run_id = UnicodeAttribute(null=True)
    run_key = UnicodeAttribute(null=True)
    completed_at = NumberAttribute(null=True)
    incomplete_at = NumberAttribute(null=True)
    incomplete_details = CompactJSONAttribute(null=True)

    by_run = MessagesByRun()


# The sort key of a live thread's marker in its messages partition: above every message id ("msg_…"),
# so a newest-first Query of the thread's messages meets it first.
LIVE_THREAD_MARKER = "msg~"


class LiveThreadMarker(Model):
    """In the messages table, at the top of a live thread's partition: written with the thread, deleted
    with it. A Query of the messages that meets it has the proof that the thread is there and needs no
    read of the thread (storage/threads.py, list_messages); one that does not falls back to that read."""

    class Meta(_Meta):
        table_name = TABLE_PREFIX + "messages"

    thread_key = UnicodeAttribute(hash_key=True)
    message_id = UnicodeAttribute(range_key=True, default=LIVE_THREAD_MARKER)


class FilesByPurpose(GlobalSecondaryIndex["FileRecord"]):
    class Meta:
        index_name = "purpose-index"
        projection = AllProjection()

    purpose_key = UnicodeAttribute(hash_key=True)  # purpose_key()
    file_id = UnicodeAttribute(range_key=True)


class FileRecord(Model):
    """A file's OpenAIFile object; its bytes are in S3 under `s3_key`."""

    class Meta(_Meta):
        table_name = TABLE_PREFIX + "files"

    project_id = UnicodeAttribute(hash_key=True)
    file_id = UnicodeAttribute(range_key=True)
    purpose_key = UnicodeAttribute()
    file = CompactJSONAttribute()
    s3_key = UnicodeAttribute()
    # Every vector store the file has been added to, and how many adds that took, both moved in the
    # transaction that adds it to one (storage/vector_store_files.py): deleting the file takes it out
    # of each of them, then deletes it only if no add came meanwhile. (Never read by a Scan.)
    vector_stores = UnicodeSetAttribute(null=True)
    store_adds = NumberAttribute(null=True)

    by_purpose = FilesByPurpose()


class AssistantRecord(Model):
    class Meta(_Meta):
        table_name = TABLE_PREFIX + "assistants"

    project_id = UnicodeAttribute(hash_key=True)
    assistant_id = UnicodeAttribute(range_key=True)
    assistant = CompactJSONAttribute()  # the AssistantObject as served
    # Optimistic locking: a modify writes only over the version it read, so concurrent modifies of
    # different fields both land. Items written before versioning have none; the first save adds it.
    version = VersionAttribute()


class VectorStoreRecord(Model):
    """A vector store: its own fields as attributes, so that a modify is one UpdateItem of the fields it
    names and the file counters (ADD) change atomically beside it, never by read-modify-write."""

    class Meta(_Meta):
        table_name = TABLE_PREFIX + "vector-stores"

    project_id = UnicodeAttribute(hash_key=True)
    vector_store_id = UnicodeAttribute(range_key=True)
    created_at = NumberAttribute()
    name = UnicodeAttribute()
    metadata = CompactJSONAttribute()
    expires_after = CompactJSONAttribute(null=True)
    last_active_at = NumberAttribute()
    usage_bytes = NumberAttribute(default=0)
    files_in_progress = NumberAttribute(default=0)
    files_completed = NumberAttribute(default=0)
    files_failed = NumberAttribute(default=0)
    files_cancelled = NumberAttribute(default=0)
    # The embeddings its vectors were made with, set by its first file's: one store never mixes two.
    embedding_model = UnicodeAttribute(null=True)
    embedding_dimensions = NumberAttribute(null=True)
    # Moves with every change of its files (added, ingested, removed, attributes updated), in the same
    # transaction: a search reuses the list of files it read while this has not moved.
    files_version = NumberAttribute(default=0)


class PendingIngestion(GlobalSecondaryIndex["VectorStoreFileRecord"]):
    """Sparse: only files waiting for ingestion (or being ingested) appear, sorted by when they are due.
    The local poller and, on AWS, a scheduled Lambda read it with one Query."""

    class Meta:
        index_name = "pending-index"
        projection = AllProjection()

    ingest_queue = UnicodeAttribute(hash_key=True)  # INGEST_QUEUE while pending
    ingest_due = UnicodeAttribute(range_key=True)  # due_key(due_at, "store_key/file_id")


class FilesOfBatch(GlobalSecondaryIndex["VectorStoreFileRecord"]):
    """Sparse: only files added by a batch appear, keyed by their batch."""

    class Meta:
        index_name = "batch-index"
        projection = AllProjection()

    batch_key = UnicodeAttribute(hash_key=True)  # batch_key()
    file_id = UnicodeAttribute(range_key=True)


class VectorStoreFileBatchRecord(Model):
    """A file batch: its own counters (moved with its files' counters in the same transactions)."""

    class Meta(_Meta):
        table_name = TABLE_PREFIX + "vector-store-file-batches"

    store_key = UnicodeAttribute(hash_key=True)  # vector_store_key()
    batch_id = UnicodeAttribute(range_key=True)
    created_at = NumberAttribute()
    cancelled = NumberAttribute(default=0)  # 1 once cancelled
    files_in_progress = NumberAttribute(default=0)
    files_completed = NumberAttribute(default=0)
    files_failed = NumberAttribute(default=0)
    files_cancelled = NumberAttribute(default=0)


class VectorStoreFileRecord(Model):
    """A file in a vector store: the VectorStoreFileObject's fields, and its place in the ingestion queue
    while it is in progress. Its chunks are in S3 (storage/vector_store_files.py)."""

    class Meta(_Meta):
        table_name = TABLE_PREFIX + "vector-store-files"

    store_key = UnicodeAttribute(hash_key=True)  # vector_store_key()
    file_id = UnicodeAttribute(range_key=True)
    created_at = NumberAttribute()
    status = UnicodeAttribute()
    usage_bytes = NumberAttribute(default=0)
    last_error = CompactJSONAttribute(null=True)
    chunking_strategy = CompactJSONAttribute()
    attributes = CompactJSONAttribute(null=True)
    filename = UnicodeAttribute()
    ingest_queue = UnicodeAttribute(null=True)
    ingest_due = UnicodeAttribute(null=True)
    lease_token = UnicodeAttribute(null=True)
    attempts = NumberAttribute(default=0)
    batch_key = UnicodeAttribute(null=True)  # batch_key() for a file a batch added
    # The lease token of the ingestion that made its chunks: searches cache a file's index by it, so a
    # file removed and added again is never searched with the chunks it had before.
    chunks_version = UnicodeAttribute(null=True)
    chunk_count = NumberAttribute(null=True)  # of a completed file: its vectors' keys are <file_id>#0…n-1

    pending = PendingIngestion()
    of_batch = FilesOfBatch()


class RunRecord(Model):
    """A run. `status` and `metadata` live beside the rest of the RunObject so that the engine, a
    cancel and a metadata update never overwrite each other's writes."""

    class Meta(_Meta):
        table_name = TABLE_PREFIX + "runs"

    thread_key = UnicodeAttribute(hash_key=True)
    run_id = UnicodeAttribute(range_key=True)
    status = UnicodeAttribute()
    metadata = CompactJSONAttribute()
    run = CompactJSONAttribute()  # the RunObject, less status and metadata
    lease_token = UnicodeAttribute(null=True)
    lease_expires = NumberAttribute(null=True)
    event_seq = NumberAttribute(default=0)  # how many segments the run's event log holds
    # Private run state, never served: the usage of the model calls so far (the RunObject shows usage
    # only once the run ends), and the tool-calls step that required action.
    usage_so_far = CompactJSONAttribute(null=True)
    tool_step_id = UnicodeAttribute(null=True)


class RunStepRecord(Model):
    class Meta(_Meta):
        table_name = TABLE_PREFIX + "run-steps"

    run_key = UnicodeAttribute(hash_key=True)  # run_key()
    step_id = UnicodeAttribute(range_key=True)
    step = CompactJSONAttribute()  # the RunStepObject as served


class RunEventRecord(Model):
    """A run's event log: each transition appends one segment, the official SSE events it caused, in
    order. A stream is rendered from the log; the log expires a week after it is written."""

    class Meta(_Meta):
        table_name = TABLE_PREFIX + "run-events"

    run_key = UnicodeAttribute(hash_key=True)  # run_key()
    seq = NumberAttribute(range_key=True)
    events = CompactJSONAttribute()  # [{"event": name, "data": object}, ...]
    expires_at = TTLAttribute()


class RunQueueRecord(Model):
    """Local mode's run driver: runs waiting to be advanced, sorted by when. (On AWS, Step Functions.)
    A run may have several entries (a cancel arriving while a worker holds it adds one)."""

    class Meta(_Meta):
        table_name = TABLE_PREFIX + "run-queue"

    queue = UnicodeAttribute(hash_key=True)
    due_key = UnicodeAttribute(range_key=True)  # due_key(): sorts by due time
    run_ref = UnicodeAttribute()


class PurgeJobRecord(Model):
    """A deleted thread whose messages are still being removed. One partition: the queue is tiny."""

    class Meta(_Meta):
        table_name = TABLE_PREFIX + "purge-jobs"

    queue = UnicodeAttribute(hash_key=True)
    thread_key = UnicodeAttribute(range_key=True)
    created_at = NumberAttribute()


class ApiKeyRecord(Model):
    """An API key, stored only as its SHA-256, and the project it belongs to."""

    class Meta(_Meta):
        table_name = TABLE_PREFIX + "api-keys"

    key_hash = UnicodeAttribute(hash_key=True)
    project_id = UnicodeAttribute()
    name = UnicodeAttribute(null=True)
    created_at = NumberAttribute()


ALL_MODELS: tuple[type[Model], ...] = (
    ThreadRecord,
    MessageRecord,
    AssistantRecord,
    FileRecord,
    VectorStoreRecord,
    VectorStoreFileRecord,
    VectorStoreFileBatchRecord,
    RunRecord,
    RunStepRecord,
    RunEventRecord,
    RunQueueRecord,
    PurgeJobRecord,
    ApiKeyRecord,
)


# Tables only local mode uses; infra/ does not deploy them.
LOCAL_ONLY_MODELS: tuple[type[Model], ...] = (RunQueueRecord,)


def create_tables() -> None:
    """Local mode and tests only: the deployed tables come from infra/."""
    for model in ALL_MODELS:
        if not model.exists():
            model.create_table(wait=True)
