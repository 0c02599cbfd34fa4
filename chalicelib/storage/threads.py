"""Threads and messages in DynamoDB. Every function is one round trip unless it says otherwise."""

from __future__ import annotations

import time
from functools import cache

from pynamodb.connection import Connection
from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError
from pynamodb.transactions import TransactGet, TransactWrite

from chalicelib.config import settings
from chalicelib.domain.pagination import ListQuery, Page
from chalicelib.storage.models import MessageRecord, PurgeJobRecord, ThreadRecord, thread_key
from chalicelib.storage.pages import read_page

PURGE_QUEUE = "threads"
PURGE_BATCH = 500
TRANSACTION_MAX_ITEMS = 100


@cache
def _connection() -> Connection:
    return Connection(region=settings.region, host=settings.dynamodb_endpoint)


def _condition_failed(error: TransactWriteError, index: int) -> bool:
    reasons = error.cancellation_reasons
    return index < len(reasons) and reasons[index] is not None and reasons[index].code == "ConditionalCheckFailed"


# --- threads ------------------------------------------------------------------------------------


def create_thread(thread: ThreadRecord, messages: list[MessageRecord]) -> None:
    """The thread and its first messages land together or not at all."""
    if not messages:
        thread.save(condition=ThreadRecord.thread_id.does_not_exist())
        return
    with TransactWrite(connection=_connection()) as transaction:
        transaction.save(thread, condition=ThreadRecord.thread_id.does_not_exist())
        for message in messages:
            transaction.save(message, condition=MessageRecord.message_id.does_not_exist())


def get_thread(project_id: str, thread_id: str) -> ThreadRecord | None:
    try:
        return ThreadRecord.get(project_id, thread_id, consistent_read=True)
    except DoesNotExist:
        return None


def update_thread(
    project_id: str,
    thread_id: str,
    *,
    metadata: dict[str, str] | None = None,
    user_key: str | None = None,
    tool_resources: dict[str, object] | None = None,
) -> ThreadRecord | None:
    """Apply the given fields (None = leave as is) and return the new thread, or None if it is gone."""
    actions = []
    if metadata is not None:
        actions.append(ThreadRecord.metadata.set(metadata))
        actions.append(ThreadRecord.user_key.set(user_key) if user_key else ThreadRecord.user_key.remove())
    if tool_resources is not None:
        actions.append(ThreadRecord.tool_resources.set(tool_resources))
    if not actions:
        return get_thread(project_id, thread_id)
    thread = ThreadRecord(project_id, thread_id)
    try:
        thread.update(actions=actions, condition=ThreadRecord.thread_id.exists())
    except UpdateError as error:
        if error.cause_response_code == "ConditionalCheckFailedException":
            return None
        raise
    return thread


def delete_thread(project_id: str, thread_id: str) -> bool:
    """Remove the thread at once and queue its messages for purging (they are unreachable from now on)."""
    key = thread_key(project_id, thread_id)
    job = PurgeJobRecord(PURGE_QUEUE, key, created_at=int(time.time()))
    try:
        with TransactWrite(connection=_connection()) as transaction:
            transaction.delete(ThreadRecord(project_id, thread_id), condition=ThreadRecord.thread_id.exists())
            transaction.save(job)
    except TransactWriteError as error:
        if _condition_failed(error, 0):
            return False
        raise
    return True


def list_threads(project_id: str, query: ListQuery, user: str | None = None) -> Page:
    if user is None:
        return read_page(
            lambda **kw: ThreadRecord.query(project_id, consistent_read=True, **kw), ThreadRecord.thread_id, query
        )
    return read_page(
        lambda **kw: ThreadRecord.by_user.query(user_key_for(project_id, user), **kw), ThreadRecord.thread_id, query
    )


def user_key_for(project_id: str, user: str) -> str:
    return f"{project_id}#{user}"


# --- messages -----------------------------------------------------------------------------------


def add_message(project_id: str, thread_id: str, message: MessageRecord) -> bool:
    """Store the message if its thread exists (checked in the same transaction). False if it does not."""
    try:
        with TransactWrite(connection=_connection()) as transaction:
            transaction.condition_check(ThreadRecord, project_id, thread_id, condition=ThreadRecord.thread_id.exists())
            transaction.save(message, condition=MessageRecord.message_id.does_not_exist())
    except TransactWriteError as error:
        if _condition_failed(error, 0):
            return False
        raise
    return True


def get_thread_and_message(
    project_id: str, thread_id: str, message_id: str
) -> tuple[ThreadRecord | None, MessageRecord | None]:
    """Both items in one round trip: a message of a deleted thread is not reachable."""
    with TransactGet(connection=_connection()) as transaction:
        thread_future = transaction.get(ThreadRecord, project_id, thread_id)
        message_future = transaction.get(MessageRecord, thread_key(project_id, thread_id), message_id)
    try:
        thread = thread_future.get()
    except DoesNotExist:
        return None, None
    try:
        return thread, message_future.get()
    except DoesNotExist:
        return thread, None


def update_message_metadata(
    project_id: str, thread_id: str, message_id: str, metadata: dict[str, str]
) -> tuple[bool, MessageRecord | None]:
    """(thread found, updated message). Two round trips: a checked transaction, then the read back."""
    key = thread_key(project_id, thread_id)
    message = MessageRecord(key, message_id)
    try:
        with TransactWrite(connection=_connection()) as transaction:
            transaction.condition_check(ThreadRecord, project_id, thread_id, condition=ThreadRecord.thread_id.exists())
            transaction.update(
                message,
                actions=[MessageRecord.metadata.set(metadata)],
                condition=MessageRecord.message_id.exists(),
            )
    except TransactWriteError as error:
        if _condition_failed(error, 0):
            return False, None
        if _condition_failed(error, 1):
            return True, None
        raise
    try:
        return True, MessageRecord.get(key, message_id, consistent_read=True)
    except DoesNotExist:
        return True, None


def delete_message(project_id: str, thread_id: str, message_id: str) -> tuple[bool, bool]:
    """(thread found, message deleted)."""
    try:
        with TransactWrite(connection=_connection()) as transaction:
            transaction.condition_check(ThreadRecord, project_id, thread_id, condition=ThreadRecord.thread_id.exists())
            transaction.delete(
                MessageRecord(thread_key(project_id, thread_id), message_id),
                condition=MessageRecord.message_id.exists(),
            )
    except TransactWriteError as error:
        if _condition_failed(error, 0):
            return False, False
        if _condition_failed(error, 1):
            return True, False
        raise
    return True, True


def list_messages(project_id: str, thread_id: str, query: ListQuery, run_id: str | None = None) -> Page:
    key = thread_key(project_id, thread_id)
    if run_id is None:
        return read_page(
            lambda **kw: MessageRecord.query(key, consistent_read=True, **kw), MessageRecord.message_id, query
        )
    return read_page(
        lambda **kw: MessageRecord.by_run.query(run_key_for(key, run_id), **kw), MessageRecord.message_id, query
    )


def run_key_for(key_of_thread: str, run_id: str) -> str:
    return f"{key_of_thread}#{run_id}"


# --- purging deleted threads --------------------------------------------------------------------


def pending_purges(limit: int = 25) -> list[str]:
    return [job.thread_key for job in PurgeJobRecord.query(PURGE_QUEUE, limit=limit, page_size=limit)]


def purge_thread_messages(key_of_thread: str, deadline: float) -> bool:
    """Delete a deleted thread's messages in batches until done (True) or the deadline passes (False).

    Resumable: each pass starts from whatever is left, so a crash or a timeout loses nothing.
    """
    while time.monotonic() < deadline:
        keys = list(
            MessageRecord.query(
                key_of_thread,
                limit=PURGE_BATCH,
                page_size=PURGE_BATCH,
                attributes_to_get=["thread_key", "message_id"],
            )
        )
        if not keys:
            PurgeJobRecord(PURGE_QUEUE, key_of_thread).delete()
            return True
        with MessageRecord.batch_write() as batch:
            for message in keys:
                batch.delete(message)
    return False
