"""The run engine: `advance_run` moves a run one step, and both drivers call it (the local poller and
the Step Functions task). It is idempotent: every write is a guarded transition, the model call is
made under a lease, and a worker that dies leaves a lease that expires, after which another resumes.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from chalicelib.config import settings
from chalicelib.domain.ids import new_id
from chalicelib.domain.runs import render_run
from chalicelib.domain.threads import render_message
from chalicelib.runs import events
from chalicelib.runs.context import chat_request
from chalicelib.runs.providers import ChatResult, ProviderError, provider
from chalicelib.storage import runs as store
from chalicelib.storage.records import Message
from chalicelib.storage.runs import RunChange, RunRef, StoredRun

TERMINAL = ("completed", "incomplete", "failed", "cancelled", "expired")
log = logging.getLogger("spindle.engine")


@dataclass(frozen=True)
class Outcome:
    """What the driver does next: stop, or call `advance_run` again after `wait_seconds`."""

    done: bool
    wait_seconds: float = 0.0


def advance_run(ref: RunRef) -> Outcome:
    for _ in range(5):  # a lost race re-reads the run; a handful of rounds always settles
        stored = store.get_live_run(ref)
        if stored is None:
            # Gone, or its thread was deleted: the run is unreachable and its storage is purged.
            return Outcome(done=True)
        if stored.status in TERMINAL:
            return Outcome(done=True)
        now = time.time()
        if stored.status == "cancelling":
            if _finish(stored, "cancelled", now):
                return Outcome(done=True)
            continue
        if now >= stored.run["expires_at"]:
            if _finish(stored, "expired", now):
                return Outcome(done=True)
            continue
        if stored.status == "requires_action":
            return Outcome(done=False, wait_seconds=stored.run["expires_at"] - now)
        return _work(stored, now)
    return Outcome(done=False, wait_seconds=0.5)


def _work(stored: StoredRun, now: float) -> Outcome:
    token = uuid.uuid4().hex
    run = dict(stored.run, started_at=stored.run["started_at"] or int(now))
    claim = RunChange(
        stored.ref,
        (stored.status,),
        "in_progress",
        run,
        claim_before=now,
        new_lease=(token, now + settings.run_lease_seconds),
    )
    claim.event_seq = stored.event_seq
    if stored.status == "queued":  # a reclaimed run (lease expired) already said it is in progress
        claim.events = [events.run_event(render_run(StoredRun(stored.ref, "in_progress", stored.metadata, run)))]
    if not store.apply(claim):
        current = store.get_run(stored.ref)
        if current is None or current.status in TERMINAL:
            return Outcome(done=True)
        if current.status == "in_progress" and current.lease_expires:
            return Outcome(done=False, wait_seconds=max(0.05, current.lease_expires - now))
        return Outcome(done=False)
    working = StoredRun(
        stored.ref,
        "in_progress",
        stored.metadata,
        run,
        token,
        now + settings.run_lease_seconds,
        stored.event_seq + (1 if claim.events else 0),
    )
    try:
        with _lease_kept(working):
            change = _next_change(working)
    except Exception as error:  # one guard around the whole step: a bug fails the run, never stalls it
        log.exception("run %s: advancing it failed", working.ref.key)
        broken = ProviderError("server_error", f"Spindle could not advance the run ({type(error).__name__}: {error}).")
        change = _failed(working, broken)
    return _settle(working, change)


@contextmanager
def _lease_kept(working: StoredRun) -> Iterator[None]:
    """Renew the worker's lease every third of its length while the step is worked out (the model call
    can take minutes), so the lease can stay short: a worker that dies is replaced within one lease."""
    assert working.lease_token is not None
    token = working.lease_token
    done = threading.Event()

    def renew() -> None:
        interval = settings.run_lease_seconds / 3
        while not done.wait(interval):
            try:
                if not store.renew_lease(working.ref, token, time.time() + settings.run_lease_seconds):
                    return  # the run moved on without this worker; its final write will be refused
            except Exception:  # a storage hiccup: the next renewal may succeed before the lease ends
                log.warning("run %s: renewing its lease failed", working.ref.key, exc_info=True)

    renewer = threading.Thread(target=renew, name=f"lease-{working.ref.run_id}", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        done.set()
        renewer.join()


def _next_change(working: StoredRun) -> RunChange:
    """The transition this claimed run makes next: the model's reply, its tool calls, or the end."""
    request, fits = chat_request(working)
    if not fits:
        return _incomplete(working, "max_prompt_tokens")
    if not request["messages"]:
        empty = ProviderError("invalid_prompt", "The thread has no messages and the run has no instructions.")
        return _failed(working, empty)
    try:
        result = provider().complete(request)
    except ProviderError as error:
        return _failed(working, error)
    return _after_model(working, result)


def _settle(working: StoredRun, change: RunChange) -> Outcome:
    try:
        applied = store.apply(change)
    except Exception as error:  # e.g. a reply too large to store: retrying would call the model again
        log.exception("run %s: storing its step failed", working.ref.key)
        if change.to_status == "failed":
            raise
        unstorable = ProviderError("server_error", f"Spindle could not store the model's reply: {error}")
        return _settle(working, _failed(working, unstorable))
    if applied:
        if change.to_status == "requires_action":
            return Outcome(done=False, wait_seconds=max(0.0, working.run["expires_at"] - time.time()))
        return Outcome(done=change.to_status in TERMINAL)
    # Someone moved the run meanwhile (a cancel): the next round finishes what they asked for.
    return advance_run(working.ref)


# --- building the transitions -------------------------------------------------------------------


def _with_events(change: RunChange, before: StoredRun, *leading: events.Event) -> RunChange:
    """Log what the change does: the events given, then the run's own event in its new state."""
    after = StoredRun(change.ref, change.to_status, before.metadata, change.run)
    change.events = [*leading, events.run_event(render_run(after))]
    change.event_seq = before.event_seq
    return change


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _add_usage(run: dict[str, Any], result: ChatResult) -> dict[str, int]:
    total = run.get("_usage") or _usage(0, 0)
    return _usage(total["prompt_tokens"] + result.prompt_tokens, total["completion_tokens"] + result.completion_tokens)


def _terminal_run(run: dict[str, Any], status: str, now: int, **fields: Any) -> dict[str, Any]:
    stamp = {
        "completed": "completed_at",
        "incomplete": "completed_at",
        "failed": "failed_at",
        "cancelled": "cancelled_at",
    }.get(status)
    finished = dict(run, required_action=None, usage=run.get("_usage") or _usage(0, 0), **fields)
    if stamp:
        finished[stamp] = now
    if status != "expired":
        finished["expires_at"] = None
    return finished


def _step(
    working: StoredRun, step_type: str, details: dict[str, Any], status: str, now: int, usage: dict[str, int] | None
) -> dict[str, Any]:
    return {
        "id": new_id("step"),
        "object": "thread.run.step",
        "created_at": now,
        "assistant_id": working.run["assistant_id"],
        "thread_id": working.ref.thread_id,
        "run_id": working.ref.run_id,
        "type": step_type,
        "status": status,
        "step_details": details,
        "last_error": None,
        "expired_at": None,
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": now if status == "completed" else None,
        "metadata": {},
        "usage": usage,
    }


def _after_model(working: StoredRun, result: ChatResult) -> RunChange:
    now = int(time.time())
    run = dict(working.run, _usage=_add_usage(working.run, result))
    call_usage = _usage(result.prompt_tokens, result.completion_tokens)
    max_prompt = run.get("max_prompt_tokens")
    if max_prompt is not None and result.prompt_tokens > max_prompt:
        return _incomplete(replace(working, run=run), "max_prompt_tokens")
    if result.tool_calls and result.finish_reason == "length":
        return _incomplete(replace(working, run=run), "max_completion_tokens")  # the arguments are cut off
    if result.tool_calls:
        return _requires_action(working, run, result, call_usage, now)
    truncated = result.finish_reason == "length"
    message = Message(
        project_id=working.ref.project_id,
        thread_id=working.ref.thread_id,
        id=new_id("message"),
        created_at=now,
        role="assistant",
        content=[{"type": "text", "text": {"value": result.text or "", "annotations": []}}],
        status="incomplete" if truncated else "completed",
        assistant_id=run["assistant_id"],
        run_id=working.ref.run_id,
        completed_at=None if truncated else now,
        incomplete_at=now if truncated else None,
        incomplete_details={"reason": "max_tokens"} if truncated else None,
    )
    step = _step(
        working,
        "message_creation",
        {"type": "message_creation", "message_creation": {"message_id": message.id}},
        "completed",
        now,
        call_usage,
    )
    status = "incomplete" if truncated else "completed"
    details = {"reason": "max_completion_tokens"} if truncated else None
    change = RunChange(
        working.ref,
        ("in_progress",),
        status,
        _terminal_run(run, status, now, incomplete_details=details),
        lease_token=working.lease_token,
        messages=[message],
        steps=[step],
        release_thread=True,
    )
    return _with_events(
        change,
        working,
        *events.opening_step_events(step),
        *events.message_events(render_message(message), result.text_deltas),
        events.step_event(step),
    )


def _requires_action(
    working: StoredRun, run: dict[str, Any], result: ChatResult, usage: dict[str, int], now: int
) -> RunChange:
    seen: set[str] = set()
    calls = []
    for call in result.tool_calls:
        call_id = call.id if call.id and call.id not in seen else new_id("call")
        seen.add(call_id)
        calls.append({"id": call_id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}})
    step_calls = [{**call, "function": {**call["function"], "output": None}} for call in calls]
    step = _step(working, "tool_calls", {"type": "tool_calls", "tool_calls": step_calls}, "in_progress", now, usage)
    run = dict(
        run,
        _tool_step_id=step["id"],
        required_action={"type": "submit_tool_outputs", "submit_tool_outputs": {"tool_calls": calls}},
    )
    change = RunChange(
        working.ref, ("in_progress",), "requires_action", run, lease_token=working.lease_token, steps=[step]
    )
    argument_deltas = [
        call.argument_deltas or ([call.arguments] if call.arguments else []) for call in result.tool_calls
    ]
    return _with_events(
        change, working, *events.opening_step_events(step), *events.tool_call_delta_events(step, argument_deltas)
    )


def _failed(working: StoredRun, error: ProviderError) -> RunChange:
    now = int(time.time())
    run = _terminal_run(working.run, "failed", now, last_error={"code": error.code, "message": error.message})
    change = RunChange(
        working.ref, ("in_progress",), "failed", run, lease_token=working.lease_token, release_thread=True
    )
    return _with_events(change, working)


def _incomplete(working: StoredRun, reason: str) -> RunChange:
    now = int(time.time())
    run = _terminal_run(working.run, "incomplete", now, incomplete_details={"reason": reason})
    change = RunChange(
        working.ref, ("in_progress",), "incomplete", run, lease_token=working.lease_token, release_thread=True
    )
    return _with_events(change, working)


def _finish(stored: StoredRun, status: str, now: float) -> bool:
    """cancelling -> cancelled, or any live state -> expired; open steps end the same way."""
    stamp = int(now)
    steps = []
    step_status, step_field = ("cancelled", "cancelled_at") if status == "cancelled" else ("expired", "expired_at")
    for step in store.all_steps(stored.ref):
        if step["status"] == "in_progress":
            steps.append(dict(step, status=step_status, **{step_field: stamp}))
    allowed = ("cancelling",) if status == "cancelled" else (stored.status,)
    change = RunChange(
        stored.ref, allowed, status, _terminal_run(stored.run, status, stamp), steps=steps, release_thread=True
    )
    return store.apply(_with_events(change, stored, *(events.step_event(step) for step in steps)))
