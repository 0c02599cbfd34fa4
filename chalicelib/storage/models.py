"""The DynamoDB schema. Every partition key starts with the project, so another tenant's key cannot
address an item at all. infra/ declares the same tables; a test keeps the two in step."""

from __future__ import annotations

import json
from typing import Any

from pynamodb.attributes import Attribute, NumberAttribute, TTLAttribute, UnicodeAttribute, VersionAttribute
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
    region = settings.region
    host = settings.dynamodb_endpoint
    billing_mode = "PAY_PER_REQUEST"


def _meta(table: str) -> type:
    return type("Meta", (_Meta,), {"table_name": settings.table_prefix + table})


def thread_key(project_id: str, thread_id: str) -> str:
    return f"{project_id}#{thread_id}"


class ThreadsByUser(GlobalSecondaryIndex["ThreadRecord"]):
    """Sparse: only threads whose metadata has a `user` appear, keyed by project and that user."""

    Meta = type("Meta", (), {"index_name": "user-index", "projection": AllProjection()})
    user_key = UnicodeAttribute(hash_key=True)
    thread_id = UnicodeAttribute(range_key=True)


class ThreadRecord(Model):
    Meta = _meta("threads")

    project_id = UnicodeAttribute(hash_key=True)
    thread_id = UnicodeAttribute(range_key=True)
    created_at = NumberAttribute()
    metadata = CompactJSONAttribute()
    tool_resources = CompactJSONAttribute()
    user_key = UnicodeAttribute(null=True)
    # The run that holds the thread (queued, in progress, requires action or cancelling), if any.
    active_run_id = UnicodeAttribute(null=True)

    by_user = ThreadsByUser()


class MessagesByRun(GlobalSecondaryIndex["MessageRecord"]):
    """Sparse: only messages a run wrote, keyed by project, thread and run."""

    Meta = type("Meta", (), {"index_name": "run-index", "projection": AllProjection()})
    run_key = UnicodeAttribute(hash_key=True)
    message_id = UnicodeAttribute(range_key=True)


class MessageRecord(Model):
    Meta = _meta("messages")

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


class FilesByPurpose(GlobalSecondaryIndex["FileRecord"]):
    Meta = type("Meta", (), {"index_name": "purpose-index", "projection": AllProjection()})
    purpose_key = UnicodeAttribute(hash_key=True)  # project#purpose
    file_id = UnicodeAttribute(range_key=True)


class FileRecord(Model):
    """A file's OpenAIFile object; its bytes are in S3 under `s3_key`."""

    Meta = _meta("files")

    project_id = UnicodeAttribute(hash_key=True)
    file_id = UnicodeAttribute(range_key=True)
    purpose_key = UnicodeAttribute()
    file = CompactJSONAttribute()
    s3_key = UnicodeAttribute()

    by_purpose = FilesByPurpose()


class AssistantRecord(Model):
    Meta = _meta("assistants")

    project_id = UnicodeAttribute(hash_key=True)
    assistant_id = UnicodeAttribute(range_key=True)
    assistant = CompactJSONAttribute()  # the AssistantObject as served
    # Optimistic locking: a modify writes only over the version it read, so concurrent modifies of
    # different fields both land. Items written before versioning have none; the first save adds it.
    version = VersionAttribute()


class RunRecord(Model):
    """A run. `status` and `metadata` live beside the rest of the RunObject so that the engine, a
    cancel and a metadata update never overwrite each other's writes."""

    Meta = _meta("runs")

    thread_key = UnicodeAttribute(hash_key=True)
    run_id = UnicodeAttribute(range_key=True)
    status = UnicodeAttribute()
    metadata = CompactJSONAttribute()
    run = CompactJSONAttribute()  # the RunObject, less status and metadata
    lease_token = UnicodeAttribute(null=True)
    lease_expires = NumberAttribute(null=True)
    event_seq = NumberAttribute(default=0)  # how many segments the run's event log holds


class RunStepRecord(Model):
    Meta = _meta("run-steps")

    run_key = UnicodeAttribute(hash_key=True)  # project#thread#run
    step_id = UnicodeAttribute(range_key=True)
    step = CompactJSONAttribute()  # the RunStepObject as served


class RunEventRecord(Model):
    """A run's event log: each transition appends one segment, the official SSE events it caused, in
    order. A stream is rendered from the log; the log expires a week after it is written."""

    Meta = _meta("run-events")

    run_key = UnicodeAttribute(hash_key=True)  # project#thread#run
    seq = NumberAttribute(range_key=True)
    events = CompactJSONAttribute()  # [{"event": name, "data": object}, ...]
    expires_at = TTLAttribute()


class RunQueueRecord(Model):
    """Local mode's run driver: runs waiting to be advanced, sorted by when. (On AWS, Step Functions.)
    A run may have several entries (a cancel arriving while a worker holds it adds one)."""

    Meta = _meta("run-queue")

    queue = UnicodeAttribute(hash_key=True)
    due_key = UnicodeAttribute(range_key=True)  # f"{due_at:017.6f}#{run_ref}": sorts by due time
    run_ref = UnicodeAttribute()


class PurgeJobRecord(Model):
    """A deleted thread whose messages are still being removed. One partition: the queue is tiny."""

    Meta = _meta("purge-jobs")

    queue = UnicodeAttribute(hash_key=True)
    thread_key = UnicodeAttribute(range_key=True)
    created_at = NumberAttribute()


class ApiKeyRecord(Model):
    """An API key, stored only as its SHA-256, and the project it belongs to."""

    Meta = _meta("api-keys")

    key_hash = UnicodeAttribute(hash_key=True)
    project_id = UnicodeAttribute()
    name = UnicodeAttribute(null=True)
    created_at = NumberAttribute()


ALL_MODELS: tuple[type[Model], ...] = (
    ThreadRecord,
    MessageRecord,
    AssistantRecord,
    FileRecord,
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
