"""Threads and messages in DynamoDB. Each function is one round trip unless its docstring says more."""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar

from pynamodb.connection import Connection
from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from chalicelib.config import settings
from chalicelib.storage.models import MessageRecord, PurgeJobRecord, RunRecord, RunStepRecord, ThreadRecord, thread_key
from chalicelib.storage.pages import read_page
from chalicelib.storage.records import ListQuery, Message, Page, Thread

PURGE_QUEUE = "threads"
PURGE_BATCH = 500
TRANSACTION_MAX_ITEMS = 100
CONFLICT_RETRIES = 6

T = TypeVar("T")


@cache
def _connection() -> Connection:
    return Connection(region=settings.region, host=settings.dynamodb_endpoint)


def cancel_reason(error: TransactWriteError, index: int) -> str | None:
    """Why item `index` of a cancelled transaction failed. pynamodb sends a transaction's items as
    condition checks, then deletes, then puts, then updates (each in call order): index accordingly;
    negative indexes count from the end."""
    reasons = error.cancellation_reasons
    if not -len(reasons) <= index < len(reasons):
        return None
    reason = reasons[index]
    return reason.code if reason is not None else None


def transact(build: Callable[[TransactWrite], None]) -> None:
    """Commit a transaction, retrying when another transaction held one of its items at that moment.

    DynamoDB cancels concurrent transactions that touch the same item (two messages appended to one
    thread at once both check the thread); the loser is safe to run again.
    """
    for attempt in range(CONFLICT_RETRIES):
        try:
            with TransactWrite(connection=_connection()) as transaction:
                build(transaction)
            return
        except TransactWriteError as error:
            conflicted = "TransactionConflict" in {r.code for r in error.cancellation_reasons if r is not None}
            if not conflicted or attempt == CONFLICT_RETRIES - 1:
                raise
            time.sleep(random.uniform(0, 0.01 * 2**attempt))


# --- conversions --------------------------------------------------------------------------------


def user_key_for(project_id: str, user: str) -> str:
    """Key of the user-index. Hashed: bounded size whatever the user string, and no separator games."""
    return f"{project_id}#{hashlib.sha256(user.encode('utf-8')).hexdigest()}"


def thread_record(thread: Thread) -> ThreadRecord:
    user = thread.metadata.get("user")
    return ThreadRecord(
        thread.project_id,
        thread.id,
        created_at=thread.created_at,
        metadata=thread.metadata,
        tool_resources=thread.tool_resources,
        user_key=user_key_for(thread.project_id, user) if user else None,
        active_run_id=thread.active_run_id,
    )


def _thread(record: ThreadRecord) -> Thread:
    return Thread(
        project_id=record.project_id,
        id=record.thread_id,
        created_at=int(record.created_at),
        metadata=record.metadata,
        tool_resources=record.tool_resources,
        active_run_id=record.active_run_id,
    )


def message_record(message: Message) -> MessageRecord:
    key = thread_key(message.project_id, message.thread_id)
    return MessageRecord(
        key,
        message.id,
        thread_id=message.thread_id,
        created_at=message.created_at,
        role=message.role,
        content=message.content,
        attachments=message.attachments,
        metadata=message.metadata,
        status=message.status,
        assistant_id=message.assistant_id,
        run_id=message.run_id,
        run_key=run_key_for(key, message.run_id) if message.run_id else None,
        completed_at=message.completed_at,
        incomplete_at=message.incomplete_at,
        incomplete_details=message.incomplete_details,
    )


def _message(record: MessageRecord) -> Message:
    return Message(
        project_id=record.thread_key.split("#", 1)[0],
        thread_id=record.thread_id,
        id=record.message_id,
        created_at=int(record.created_at),
        role=record.role,
        content=record.content,
        attachments=record.attachments,
        metadata=record.metadata,
        status=record.status,
        assistant_id=record.assistant_id,
        run_id=record.run_id,
        completed_at=None if record.completed_at is None else int(record.completed_at),
        incomplete_at=None if record.incomplete_at is None else int(record.incomplete_at),
        incomplete_details=record.incomplete_details,
    )


def _converted(page: Page, convert: Callable[[Any], T]) -> Page:
    return Page(items=[convert(item) for item in page.items], has_more=page.has_more)


# --- threads ------------------------------------------------------------------------------------


def create_thread(thread: Thread, messages: list[Message]) -> None:
    """The thread and its first messages land together or not at all."""
    record = thread_record(thread)
    if not messages:
        record.save(condition=ThreadRecord.thread_id.does_not_exist())
        return

    def build(transaction: TransactWrite) -> None:
        transaction.save(record, condition=ThreadRecord.thread_id.does_not_exist())
        for message in messages:
            transaction.save(message_record(message), condition=MessageRecord.message_id.does_not_exist())

    transact(build)


def get_thread(project_id: str, thread_id: str) -> Thread | None:
    try:
        return _thread(ThreadRecord.get(project_id, thread_id, consistent_read=True))
    except DoesNotExist:
        return None


def update_thread(
    project_id: str,
    thread_id: str,
    *,
    metadata: dict[str, str] | None = None,
    tool_resources: dict[str, Any] | None = None,
) -> Thread | None:
    """Set the given fields (None: leave as is); the new thread, or None if there is no such thread."""
    actions = []
    if metadata is not None:
        user = metadata.get("user")
        actions.append(ThreadRecord.metadata.set(metadata))
        actions.append(
            ThreadRecord.user_key.set(user_key_for(project_id, user)) if user else ThreadRecord.user_key.remove()
        )
    if tool_resources is not None:
        actions.append(ThreadRecord.tool_resources.set(tool_resources))
    if not actions:
        return get_thread(project_id, thread_id)
    record = ThreadRecord(project_id, thread_id)
    try:
        record.update(actions=actions, condition=ThreadRecord.thread_id.exists())
    except UpdateError as error:
        if error.cause_response_code == "ConditionalCheckFailedException":
            return None
        raise
    return _thread(record)


def delete_thread(project_id: str, thread_id: str) -> bool:
    """Remove the thread and queue its messages for purging: from now on they are unreachable."""
    key = thread_key(project_id, thread_id)

    def build(transaction: TransactWrite) -> None:
        transaction.delete(ThreadRecord(project_id, thread_id), condition=ThreadRecord.thread_id.exists())
        transaction.save(PurgeJobRecord(PURGE_QUEUE, key, created_at=int(time.time())))

    try:
        transact(build)
    except TransactWriteError as error:
        if cancel_reason(error, 0) == "ConditionalCheckFailed":
            return False
        raise
    return True


def list_threads(project_id: str, query: ListQuery, user: str | None = None) -> Page:
    if user is None:
        page = read_page(
            lambda **kw: ThreadRecord.query(project_id, consistent_read=True, **kw), ThreadRecord.thread_id, query
        )
    else:
        user_key = user_key_for(project_id, user)
        page = read_page(lambda **kw: ThreadRecord.by_user.query(user_key, **kw), ThreadRecord.thread_id, query)
    return _converted(page, _thread)


# --- messages -----------------------------------------------------------------------------------


def add_message(message: Message) -> bool:
    """Store the message if its thread exists and no run holds it (checked in the same transaction)."""

    def build(transaction: TransactWrite) -> None:
        transaction.condition_check(
            ThreadRecord,
            message.project_id,
            message.thread_id,
            condition=ThreadRecord.thread_id.exists() & ThreadRecord.active_run_id.does_not_exist(),
        )
        transaction.save(message_record(message), condition=MessageRecord.message_id.does_not_exist())

    try:
        transact(build)
    except TransactWriteError as error:
        if cancel_reason(error, 0) == "ConditionalCheckFailed":
            return False
        raise
    return True


def _batch_get_items(request: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """One consistent BatchGetItem (at most 100 keys), retrying what DynamoDB leaves unprocessed:
    {table: raw items found}."""
    found: dict[str, list[dict[str, Any]]] = {table: [] for table in request}
    for attempt in range(CONFLICT_RETRIES):
        response = _connection().client.batch_get_item(RequestItems=request)
        for table, items in response.get("Responses", {}).items():
            found[table].extend(items)
        request = response.get("UnprocessedKeys") or {}
        if not request:
            return found
        time.sleep(random.uniform(0, 0.01 * 2**attempt))
    raise RuntimeError("DynamoDB left keys unprocessed after retries (throttled)")


def batch_get(keys: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any] | None]:
    """One consistent BatchGetItem of one item per table: {table: raw item or None}.

    (TransactGetItems would do too, but it costs twice the reads and is cancelled while a write
    transaction holds one of the items.)"""
    found = _batch_get_items({table: {"Keys": [key], "ConsistentRead": True} for table, key in keys.items()})
    return {table: (items[0] if items else None) for table, items in found.items()}


def batch_get_many(table: str, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Consistent BatchGetItem of many keys of one table (100 a request): the raw items found."""
    found: list[dict[str, Any]] = []
    for start in range(0, len(keys), 100):
        found += _batch_get_items({table: {"Keys": keys[start : start + 100], "ConsistentRead": True}})[table]
    return found


def thread_key_item(project_id: str, thread_id: str) -> dict[str, Any]:
    return {"project_id": {"S": project_id}, "thread_id": {"S": thread_id}}


def get_thread_and_message(project_id: str, thread_id: str, message_id: str) -> tuple[Thread | None, Message | None]:
    """Both items in one round trip: a message of a deleted thread is not reachable."""
    threads_table, messages_table = ThreadRecord.Meta.table_name, MessageRecord.Meta.table_name
    found = batch_get(
        {
            threads_table: thread_key_item(project_id, thread_id),
            messages_table: {"thread_key": {"S": thread_key(project_id, thread_id)}, "message_id": {"S": message_id}},
        }
    )
    if found[threads_table] is None:
        return None, None
    thread = _thread(ThreadRecord.from_raw_data(found[threads_table]))
    if found[messages_table] is None:
        return thread, None
    return thread, _message(MessageRecord.from_raw_data(found[messages_table]))


def update_message_metadata(
    project_id: str, thread_id: str, message_id: str, metadata: dict[str, str]
) -> tuple[bool, Message | None]:
    """(thread found, updated message). Two round trips: the thread check, then one conditional update
    that returns the message as written."""
    if get_thread(project_id, thread_id) is None:
        return False, None
    record = MessageRecord(thread_key(project_id, thread_id), message_id)
    try:
        record.update(actions=[MessageRecord.metadata.set(metadata)], condition=MessageRecord.message_id.exists())
    except UpdateError as error:
        if error.cause_response_code == "ConditionalCheckFailedException":
            return True, None
        raise
    return True, _message(record)


def delete_message(project_id: str, thread_id: str, message_id: str) -> tuple[bool, bool]:
    """(thread found, message deleted)."""

    def build(transaction: TransactWrite) -> None:
        transaction.condition_check(ThreadRecord, project_id, thread_id, condition=ThreadRecord.thread_id.exists())
        transaction.delete(
            MessageRecord(thread_key(project_id, thread_id), message_id), condition=MessageRecord.message_id.exists()
        )

    try:
        transact(build)
    except TransactWriteError as error:
        if cancel_reason(error, 0) == "ConditionalCheckFailed":
            return False, False
        if cancel_reason(error, 1) == "ConditionalCheckFailed":
            return True, False
        raise
    return True, True


def list_messages(project_id: str, thread_id: str, query: ListQuery, run_id: str | None = None) -> Page:
    key = thread_key(project_id, thread_id)
    if run_id is None:
        page = read_page(
            lambda **kw: MessageRecord.query(key, consistent_read=True, **kw), MessageRecord.message_id, query
        )
    else:
        run_key = run_key_for(key, run_id)
        page = read_page(lambda **kw: MessageRecord.by_run.query(run_key, **kw), MessageRecord.message_id, query)
    return _converted(page, _message)


def run_key_for(key_of_thread: str, run_id: str) -> str:
    return f"{key_of_thread}#{run_id}"


# --- purging deleted threads --------------------------------------------------------------------


def pending_purges(limit: int = 25) -> list[str]:
    return [job.thread_key for job in PurgeJobRecord.query(PURGE_QUEUE, limit=limit, page_size=limit)]


def purge_thread(key_of_thread: str, deadline: float) -> bool:
    """Delete a deleted thread's messages, runs and run steps in batches until done (True) or the
    deadline passes (False). Resumable: each pass starts from whatever is left, so a crash or a
    timeout loses nothing."""
    while time.monotonic() < deadline:
        batch_of_keys = list(
            MessageRecord.query(
                key_of_thread, limit=PURGE_BATCH, page_size=PURGE_BATCH, attributes_to_get=["thread_key", "message_id"]
            )
        )
        if not batch_of_keys:
            batch_of_keys = _runs_and_steps(key_of_thread)
        if not batch_of_keys:
            PurgeJobRecord(PURGE_QUEUE, key_of_thread).delete()
            return True
        for model in (MessageRecord, RunStepRecord, RunRecord):  # steps before their runs
            with model.batch_write() as batch:
                for item in batch_of_keys:
                    if type(item) is model:
                        batch.delete(item)
    return False


def _runs_and_steps(key_of_thread: str) -> list[Any]:
    """A batch of a thread's runs, each preceded by its steps (a run goes only once its steps are gone)."""
    items: list[Any] = []
    for run in RunRecord.query(key_of_thread, limit=PURGE_BATCH // 10, attributes_to_get=["thread_key", "run_id"]):
        run_key = f"{key_of_thread}#{run.run_id}"
        items.extend(RunStepRecord.query(run_key, limit=PURGE_BATCH, attributes_to_get=["run_key", "step_id"]))
        items.append(run)
        if len(items) >= PURGE_BATCH:
            break
    return items
