"""Threads and messages in DynamoDB. Each function is one round trip unless its docstring says more."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

from pynamodb.exceptions import DoesNotExist
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from chalicelib.storage.dynamo import batch_get, commit, key_item, transact, written
from chalicelib.storage.models import (
    LIVE_THREAD_MARKER,
    LiveThreadMarker,
    MessageRecord,
    PurgeJobRecord,
    RunRecord,
    RunStepRecord,
    ThreadRecord,
    run_key,
    split_thread_key,
    thread_key,
    user_key,
)
from chalicelib.storage.pages import read_page
from chalicelib.storage.records import ListQuery, Message, Page, Thread

PURGE_QUEUE = "threads"
PURGE_BATCH = 500
TRANSACTION_MAX_ITEMS = 100

T = TypeVar("T")


# --- conversions --------------------------------------------------------------------------------


def thread_record(thread: Thread) -> ThreadRecord:
    user = thread.metadata.get("user")
    return ThreadRecord(
        thread.project_id,
        thread.id,
        created_at=thread.created_at,
        metadata=thread.metadata,
        tool_resources=thread.tool_resources,
        user_key=user_key(thread.project_id, user) if user else None,
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
        run_key=run_key(message.project_id, message.thread_id, message.run_id) if message.run_id else None,
        completed_at=message.completed_at,
        incomplete_at=message.incomplete_at,
        incomplete_details=message.incomplete_details,
    )


def _message(record: MessageRecord) -> Message:
    return Message(
        project_id=split_thread_key(record.thread_key)[0],
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


def save_new_thread(transaction: TransactWrite, thread: Thread) -> None:
    """The thread and its live marker (models.LiveThreadMarker), in a transaction that creates it."""
    transaction.save(thread_record(thread), condition=ThreadRecord.thread_id.does_not_exist())
    transaction.save(LiveThreadMarker(thread_key(thread.project_id, thread.id)))


def create_thread(thread: Thread, messages: list[Message]) -> None:
    """The thread, its live marker and its first messages land together or not at all."""

    def build(transaction: TransactWrite) -> None:
        save_new_thread(transaction, thread)
        for message in messages:
            transaction.save(message_record(message), condition=MessageRecord.message_id.does_not_exist())

    commit(build)


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
    actions: list[Action] = []
    if metadata is not None:
        user = metadata.get("user")
        actions.append(ThreadRecord.metadata.set(metadata))
        actions.append(
            ThreadRecord.user_key.set(user_key(project_id, user)) if user else ThreadRecord.user_key.remove()
        )
    if tool_resources is not None:
        actions.append(ThreadRecord.tool_resources.set(tool_resources))
    if not actions:
        return get_thread(project_id, thread_id)
    record = ThreadRecord(project_id, thread_id)
    if not written(lambda: record.update(actions=actions, condition=ThreadRecord.thread_id.exists())):
        return None
    return _thread(record)


def replace_tool_resources(project_id: str, thread: Thread, tool_resources: dict[str, Any]) -> bool:
    """Set the thread's tool_resources only if they are still as `thread` read them (two requests that
    each give a thread its first vector store must not both succeed)."""
    record = ThreadRecord(project_id, thread.id)
    return written(
        lambda: record.update(
            actions=[ThreadRecord.tool_resources.set(tool_resources)],
            condition=ThreadRecord.tool_resources == thread.tool_resources,
        )
    )


def get_code_session(project_id: str, thread_id: str) -> dict[str, Any] | None:
    """The thread's code_interpreter session, as sandbox/agentcore.py keeps it; None if it has none
    (or there is no such thread)."""
    try:
        record = ThreadRecord.get(project_id, thread_id, consistent_read=True, attributes_to_get=["code_session"])
    except ThreadRecord.DoesNotExist:
        return None
    return dict(record.code_session) if record.code_session else None


def set_code_session(project_id: str, thread_id: str, session: dict[str, Any] | None) -> bool:
    """Keep (or, None, forget) the thread's code_interpreter session; False if the thread is gone."""
    record = ThreadRecord(project_id, thread_id)
    action = ThreadRecord.code_session.set(session) if session is not None else ThreadRecord.code_session.remove()
    return written(lambda: record.update(actions=[action], condition=ThreadRecord.thread_id.exists()))


def delete_thread(project_id: str, thread_id: str) -> bool:
    """Remove the thread and queue its messages for purging: from now on they are unreachable."""
    key = thread_key(project_id, thread_id)

    def build(transaction: TransactWrite) -> None:
        transaction.delete(ThreadRecord(project_id, thread_id), condition=ThreadRecord.thread_id.exists())
        transaction.delete(LiveThreadMarker(key))
        transaction.save(PurgeJobRecord(PURGE_QUEUE, key, created_at=int(time.time())))

    return transact(build) is None  # refused: there is no such thread


def list_threads(project_id: str, query: ListQuery, user: str | None = None) -> Page:
    if user is None:
        page = read_page(
            lambda **kw: ThreadRecord.query(project_id, consistent_read=True, **kw), ThreadRecord.thread_id, query
        )
    else:
        key_of_user = user_key(project_id, user)
        page = read_page(lambda **kw: ThreadRecord.by_user.query(key_of_user, **kw), ThreadRecord.thread_id, query)
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

    refusal = transact(build)
    if refusal is not None and not refusal.failed_at(0):
        raise RuntimeError("a new message id was already taken")
    return refusal is None  # refused: the thread is missing or a run holds it


def get_thread_and_message(project_id: str, thread_id: str, message_id: str) -> tuple[Thread | None, Message | None]:
    """Both items in one round trip: a message of a deleted thread is not reachable."""
    threads_table, messages_table = ThreadRecord.Meta.table_name, MessageRecord.Meta.table_name
    found = batch_get(
        {
            threads_table: key_item(ThreadRecord, project_id, thread_id),
            messages_table: key_item(MessageRecord, thread_key(project_id, thread_id), message_id),
        }
    )
    thread_item, message_item = found[threads_table], found[messages_table]
    if thread_item is None:
        return None, None
    thread = _thread(ThreadRecord.from_raw_data(thread_item))
    if message_item is None:
        return thread, None
    return thread, _message(MessageRecord.from_raw_data(message_item))


def update_message_metadata(
    project_id: str, thread_id: str, message_id: str, metadata: dict[str, str]
) -> tuple[bool, Message | None]:
    """(thread found, updated message). Two round trips: the thread check, then one conditional update
    that returns the message as written."""
    if get_thread(project_id, thread_id) is None:
        return False, None
    record = MessageRecord(thread_key(project_id, thread_id), message_id)
    update: list[Action] = [MessageRecord.metadata.set(metadata)]
    if not written(lambda: record.update(actions=update, condition=MessageRecord.message_id.exists())):
        return True, None
    return True, _message(record)


def delete_message(project_id: str, thread_id: str, message_id: str) -> tuple[bool, bool]:
    """(thread found, message deleted)."""

    def build(transaction: TransactWrite) -> None:
        transaction.condition_check(ThreadRecord, project_id, thread_id, condition=ThreadRecord.thread_id.exists())
        transaction.delete(
            MessageRecord(thread_key(project_id, thread_id), message_id), condition=MessageRecord.message_id.exists()
        )

    refusal = transact(build)
    if refusal is None:
        return True, True
    return not refusal.failed_at(0), False  # item 0 checks the thread, item 1 the message


def list_messages(project_id: str, thread_id: str, query: ListQuery, run_id: str | None = None) -> Page:
    """A page of the thread's messages (whether the thread is there is the caller's to know)."""
    if run_id is not None:
        key_of_run = run_key(project_id, thread_id, run_id)
        page = read_page(lambda **kw: MessageRecord.by_run.query(key_of_run, **kw), MessageRecord.message_id, query)
        return _converted(page, _message)
    return _converted(_messages_and_marker(project_id, thread_id, query)[0], _message)


def list_messages_of_live_thread(project_id: str, thread_id: str, query: ListQuery) -> Page | None:
    """A page of the thread's messages, or None if there is no such thread. One Query when the page
    reaches the thread's live marker (a first page newest first always does, and any page that ends
    the thread); otherwise, or for a thread older than its marker, one GetItem of the thread more."""
    page, live = _messages_and_marker(project_id, thread_id, query)
    if not live and get_thread(project_id, thread_id) is None:
        return None
    return _converted(page, _message)


def _messages_and_marker(project_id: str, thread_id: str, query: ListQuery) -> tuple[Page, bool]:
    """The page, and whether the Query met the thread's live marker (which it leaves out)."""
    key = thread_key(project_id, thread_id)
    # One item more, in case the marker takes a place in the page.
    wider = replace(query, limit=query.limit + 1)
    page = read_page(lambda **kw: MessageRecord.query(key, consistent_read=True, **kw), MessageRecord.message_id, wider)
    messages = [item for item in page.items if item.message_id != LIVE_THREAD_MARKER]
    live = len(messages) < len(page.items)
    # Oldest first, the marker ends the thread: a page that holds it has no more (page.has_more is False).
    has_more = len(messages) > query.limit or page.has_more
    return Page(items=messages[: query.limit], has_more=has_more), live


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
        key_of_run = run_key(*split_thread_key(key_of_thread), run.run_id)
        items.extend(RunStepRecord.query(key_of_run, limit=PURGE_BATCH, attributes_to_get=["run_key", "step_id"]))
        items.append(run)
        if len(items) >= PURGE_BATCH:
            break
    return items
