"""Runs, run steps and (in local mode) the run queue.

Every change to a run is one conditional transaction (`RunChange`): the run's status must be one the
transition allows (and, for the engine, the lease must be its own), so a retried or duplicated step
never applies twice. The messages and steps a transition produces are written in the same transaction.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pynamodb.exceptions import DoesNotExist
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from chalicelib.storage.dynamo import OLD_ITEM_ON_FAILURE, batch_get, commit, key_item, transact, written
from chalicelib.storage.models import (
    MessageRecord,
    RunEventRecord,
    RunQueueRecord,
    RunRecord,
    RunStepRecord,
    ThreadRecord,
    due_key,
    due_key_bound,
    due_time,
    split_thread_key,
    thread_key,
)
from chalicelib.storage.pages import read_page
from chalicelib.storage.records import Applied, ListQuery, NewRun, Page, RunChange, RunRef, StoredRun, Thread
from chalicelib.storage.threads import message_record, save_new_thread

RUN_QUEUE = "runs"


def _stored(record: RunRecord) -> StoredRun:
    project_id, thread_id = split_thread_key(record.thread_key)
    run = record.run
    usage_so_far, tool_step_id = record.usage_so_far, record.tool_step_id
    if "_usage" in run or "_tool_step_id" in run:  # written by Spindle before private state had its own attributes
        run = dict(run)
        usage_so_far = usage_so_far or run.pop("_usage", None)
        tool_step_id = tool_step_id or run.pop("_tool_step_id", None)
    return StoredRun(
        ref=RunRef(project_id, thread_id, record.run_id),
        status=record.status,
        metadata=record.metadata,
        run=run,
        lease_token=record.lease_token,
        lease_expires=record.lease_expires,
        event_seq=int(record.event_seq or 0),
        usage_so_far=usage_so_far,
        tool_step_id=tool_step_id,
    )


def _run_record(ref: RunRef) -> RunRecord:
    return RunRecord(thread_key(ref.project_id, ref.thread_id), ref.run_id)


def _step_record(ref: RunRef, step: Mapping[str, Any]) -> RunStepRecord:
    return RunStepRecord(ref.key, step["id"], step=step)


EVENT_LOG_DAYS = 7
EVENT_SEGMENT_BYTES = 300 * 1024


def _event_records(ref: RunRef, after_seq: int, events: tuple[dict[str, Any], ...]) -> list[RunEventRecord]:
    """The events as log items after `after_seq`, split so that no item nears DynamoDB's 400 KB."""
    segments: list[list[dict[str, Any]]] = [[]]
    size = 0
    for item in events:
        item_size = len(json.dumps(item, ensure_ascii=False).encode("utf-8"))
        if segments[-1] and size + item_size > EVENT_SEGMENT_BYTES:
            segments.append([])
            size = 0
        segments[-1].append(item)
        size += item_size
    expires = datetime.now(UTC) + timedelta(days=EVENT_LOG_DAYS)
    return [
        RunEventRecord(ref.key, after_seq + number, events=segment, expires_at=expires)
        for number, segment in enumerate(segments, start=1)
    ]


def events_after(ref: RunRef, seq: int) -> list[dict[str, Any]]:
    """The run's events logged after segment `seq`, in order."""
    return read_log(ref, seq)[0]


def read_log(ref: RunRef, after_seq: int, through_seq: int | None = None) -> tuple[list[dict[str, Any]], int]:
    """The run's events in segments after `after_seq` (and at most `through_seq`), in order, and the
    last segment read (`after_seq` if none): one Query."""
    condition = (
        RunEventRecord.seq > after_seq
        if through_seq is None
        else RunEventRecord.seq.between(after_seq + 1, through_seq)
    )
    records = list(RunEventRecord.query(ref.key, condition, consistent_read=True))
    last = int(records[-1].seq) if records else after_seq
    return [item for record in records for item in record.events], last


def _save_new_run(transaction: TransactWrite, new: NewRun) -> None:
    ref = new.ref
    records = _event_records(ref, 0, new.events)
    transaction.save(
        RunRecord(
            thread_key(ref.project_id, ref.thread_id),
            ref.run_id,
            status=new.status,
            metadata=new.metadata,
            run=new.run,
            event_seq=len(records),
        ),
        condition=RunRecord.run_id.does_not_exist(),
    )
    for message in new.messages:
        transaction.save(message_record(message), condition=MessageRecord.message_id.does_not_exist())
    for record in records:
        transaction.save(record)
    if new.enqueue_at is not None:
        transaction.save(queue_entry(ref, new.enqueue_at))


def create_run(new: NewRun) -> bool:
    """Store a new run as the thread's active run. False if the thread is missing or already holds one."""
    ref = new.ref

    def build(transaction: TransactWrite) -> None:
        transaction.update(
            ThreadRecord(ref.project_id, ref.thread_id),
            actions=[ThreadRecord.active_run_id.set(ref.run_id)],
            condition=ThreadRecord.thread_id.exists() & ThreadRecord.active_run_id.does_not_exist(),
        )
        _save_new_run(transaction, new)

    refusal = transact(build)
    if refusal is not None and not refusal.failed_at(-1):  # the thread update, sent last
        raise RuntimeError("a new run's id was already taken")
    return refusal is None


def create_thread_and_run(thread: Thread, new: NewRun) -> None:
    """A new thread, its messages and its first run, together or not at all."""

    def build(transaction: TransactWrite) -> None:
        save_new_thread(transaction, thread)
        _save_new_run(transaction, new)

    commit(build)


def get_run(ref: RunRef) -> StoredRun | None:
    try:
        return _stored(RunRecord.get(thread_key(ref.project_id, ref.thread_id), ref.run_id, consistent_read=True))
    except DoesNotExist:
        return None


def get_live_run(ref: RunRef) -> StoredRun | None:
    """The run if its thread still exists (a deleted thread's runs are gone with it): one round trip."""
    threads_table, runs_table = ThreadRecord.Meta.table_name, RunRecord.Meta.table_name
    found = batch_get(
        {
            threads_table: key_item(ThreadRecord, ref.project_id, ref.thread_id),
            runs_table: key_item(RunRecord, thread_key(ref.project_id, ref.thread_id), ref.run_id),
        }
    )
    thread_item, run_item = found[threads_table], found[runs_table]
    if thread_item is None or run_item is None:
        return None
    return _stored(RunRecord.from_raw_data(run_item))


def list_runs(project_id: str, thread_id: str, query: ListQuery) -> Page:
    key = thread_key(project_id, thread_id)
    page = read_page(lambda **kw: RunRecord.query(key, consistent_read=True, **kw), RunRecord.run_id, query)
    return Page(items=[_stored(record) for record in page.items], has_more=page.has_more)


def update_metadata(ref: RunRef, metadata: dict[str, str]) -> StoredRun | None:
    record = _run_record(ref)
    update: list[Action] = [RunRecord.metadata.set(metadata)]
    if not written(lambda: record.update(actions=update, condition=RunRecord.run_id.exists())):
        return None
    return _stored(record)


def renew_lease(ref: RunRef, token: str, expires: float) -> bool:
    """Push the lease's end out while its holder still works (one conditional update). False once the
    lease is no longer the holder's: the run ended, or another worker took it over."""
    renewal: list[Action] = [RunRecord.lease_expires.set(expires)]
    return written(lambda: _run_record(ref).update(actions=renewal, condition=RunRecord.lease_token == token))


def apply(change: RunChange) -> Applied:
    """Commit the transition if the run is still in an allowed state (and the lease matches). The
    change is not modified."""
    ref = change.ref
    condition = RunRecord.status.is_in(*change.from_statuses)
    if change.lease_token is not None:
        condition &= RunRecord.lease_token == change.lease_token
    if change.claim_before is not None:
        condition &= RunRecord.lease_expires.does_not_exist() | (RunRecord.lease_expires < change.claim_before)
    records = _event_records(ref, change.event_seq, change.events) if change.events else []
    # Built on a read of the run: its event log must still be as long as then (nothing moved it on).
    condition &= RunRecord.event_seq == change.event_seq
    actions: list[Action] = [RunRecord.status.set(change.to_status), RunRecord.run.set(change.run)]
    if records:
        actions.append(RunRecord.event_seq.set(change.event_seq + len(records)))
    if change.new_lease is not None:
        actions += [RunRecord.lease_token.set(change.new_lease[0]), RunRecord.lease_expires.set(change.new_lease[1])]
    elif not change.keep_lease:
        actions += [RunRecord.lease_token.remove(), RunRecord.lease_expires.remove()]
    if change.usage_so_far is not None:
        actions.append(RunRecord.usage_so_far.set(change.usage_so_far))
    if change.tool_step_id is not None:
        actions.append(RunRecord.tool_step_id.set(change.tool_step_id))

    def build(transaction: TransactWrite, into_thread: bool) -> None:
        transaction.update(_run_record(ref), actions=actions, condition=condition, return_values=OLD_ITEM_ON_FAILURE)
        if into_thread and change.release_thread:
            transaction.update(
                ThreadRecord(ref.project_id, ref.thread_id),
                actions=[ThreadRecord.active_run_id.remove()],
                condition=ThreadRecord.active_run_id == ref.run_id,
            )
        for step in change.steps:
            transaction.save(_step_record(ref, step))
        if into_thread:
            for message in change.messages:
                transaction.save(message_record(message))
        if change.enqueue_at is not None:
            transaction.save(queue_entry(ref, change.enqueue_at))
        for record in records:
            transaction.save(record, condition=RunEventRecord.seq.does_not_exist())

    # Updates are sent last, the run's before the thread's. Any other failed condition (an event-log
    # segment another worker wrote first) means the run moved on too.
    logged = change.event_seq + len(records)
    refusal = transact(lambda transaction: build(transaction, into_thread=True))
    if refusal is None:
        return Applied(True, event_seq=logged)
    run_index = -2 if change.release_thread else -1
    if change.release_thread and set(refusal.failed) == {refusal.size - 1}:
        # Only the thread refused: it was deleted (or no longer names this run). Finish the run and
        # write nothing into a thread that is gone.
        refusal = transact(lambda transaction: build(transaction, into_thread=False))
        if refusal is None:
            return Applied(True, event_seq=logged)
        run_index = -1
    old = refusal.old_item(run_index)
    return Applied(False, None if old is None else _stored(RunRecord.from_raw_data(old)))


# --- run steps ----------------------------------------------------------------------------------


def get_step(ref: RunRef, step_id: str) -> dict[str, Any] | None:
    try:
        return RunStepRecord.get(ref.key, step_id, consistent_read=True).step
    except DoesNotExist:
        return None


def list_steps(ref: RunRef, query: ListQuery) -> Page:
    page = read_page(
        lambda **kw: RunStepRecord.query(ref.key, consistent_read=True, **kw), RunStepRecord.step_id, query
    )
    return Page(items=[record.step for record in page.items], has_more=page.has_more)


def all_steps(ref: RunRef) -> list[dict[str, Any]]:
    """A run's steps, oldest first (a run has a handful)."""
    return [record.step for record in RunStepRecord.query(ref.key, consistent_read=True)]


# --- the local run queue ------------------------------------------------------------------------


def queue_entry(ref: RunRef, due_at: float) -> RunQueueRecord:
    return RunQueueRecord(RUN_QUEUE, due_key(due_at, ref.key), run_ref=ref.key)


def enqueue(ref: RunRef, due_at: float) -> str:
    """Add an entry; returns its key (to settle it later)."""
    entry = queue_entry(ref, due_at)
    entry.save()
    return entry.due_key


def due_runs(now: float, limit: int = 100) -> list[tuple[RunRef, str]]:
    """The entries due by `now`, soonest first: one Query on the sort key, however long the queue."""
    entries = RunQueueRecord.query(
        RUN_QUEUE, RunQueueRecord.due_key <= due_key_bound(now), limit=limit, page_size=limit, consistent_read=True
    )
    return [(RunRef.parse(entry.run_ref), entry.due_key) for entry in entries]


def next_due_run() -> float | None:
    """When the queue's soonest entry is due (None: the queue is empty): one Query of one item."""
    for entry in RunQueueRecord.query(RUN_QUEUE, limit=1, page_size=1, consistent_read=True):
        return due_time(entry.due_key)
    return None


def remove_queue_entry(due_key: str) -> None:
    RunQueueRecord(RUN_QUEUE, due_key).delete()
