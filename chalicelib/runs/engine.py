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

from chalicelib.config import settings
from chalicelib.domain import lifecycle
from chalicelib.domain.ids import new_id
from chalicelib.domain.lifecycle import FunctionCall, Run
from chalicelib.runs.context import model_request
from chalicelib.runs.providers import provider_for
from chalicelib.runs.providers.base import ProviderError, Reply, collect
from chalicelib.storage import runs as store
from chalicelib.storage.records import RunChange, RunRef

log = logging.getLogger("spindle.engine")


@dataclass(frozen=True)
class Outcome:
    """What the driver does next: stop, or call `advance_run` again after `wait_seconds`."""

    done: bool
    wait_seconds: float = 0.0


def advance_run(ref: RunRef) -> Outcome:
    known: Run | None = None  # the run as a refused change found it: no need to read it again
    for _ in range(5):  # a lost race re-reads the run; a handful of rounds always settles
        stored = known or store.get_live_run(ref)
        known = None
        if stored is None:
            # Gone, or its thread was deleted: the run is unreachable and its storage is purged.
            return Outcome(done=True)
        if lifecycle.is_terminal(stored):
            return Outcome(done=True)
        now = time.time()
        if stored.status == lifecycle.CANCELLING:
            ending = lifecycle.cancelled(stored, store.all_steps(stored.ref), int(now))
        elif now >= stored.run["expires_at"]:
            ending = lifecycle.expired(stored, store.all_steps(stored.ref), int(now))
        elif stored.status == lifecycle.REQUIRES_ACTION:
            return Outcome(done=False, wait_seconds=stored.run["expires_at"] - now)
        else:
            return _work(stored, now)
        applied = lifecycle.commit(ending)
        if applied.applied:
            return Outcome(done=True)
        known = applied.current
    return Outcome(done=False, wait_seconds=0.5)


def _work(stored: Run, now: float) -> Outcome:
    token = uuid.uuid4().hex
    claim = lifecycle.claimed(stored, token, now, settings.run_lease_seconds)
    applied = lifecycle.commit(claim)
    if not applied.applied:
        current = applied.current or store.get_run(stored.ref)
        if current is None or lifecycle.is_terminal(current):
            return Outcome(done=True)
        if current.status == lifecycle.IN_PROGRESS and current.lease_expires:
            return Outcome(done=False, wait_seconds=max(0.05, current.lease_expires - now))
        return Outcome(done=False)
    working = replace(lifecycle.after(stored, claim), event_seq=stored.event_seq + (1 if claim.events else 0))
    try:
        with _lease_kept(working):
            change = _next_change(working)
    except Exception as error:  # one guard around the whole step: a bug fails the run, never stalls it
        log.exception("run %s: advancing it failed", working.ref.key)
        reason = f"Spindle could not advance the run ({type(error).__name__}: {error})."
        change = lifecycle.failed(working, "server_error", reason, int(time.time()))
    return _settle(working, change)


@contextmanager
def _lease_kept(working: Run) -> Iterator[None]:
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


def _next_change(working: Run) -> RunChange:
    """The transition this claimed run makes next: the model's reply, its tool calls, or the end."""
    now = int(time.time())
    request, fits = model_request(working)
    if not fits:
        return lifecycle.incomplete(working, "max_prompt_tokens", now)
    if not request.messages and not request.system:
        empty = "The thread has no messages and the run has no instructions."
        return lifecycle.failed(working, "invalid_prompt", empty, now)
    try:
        result = collect(provider_for(request.model).stream(request))
    except ProviderError as error:
        return lifecycle.failed(working, error.code, error.message, int(time.time()))
    return _after_model(working, result)


def _settle(working: Run, change: RunChange) -> Outcome:
    try:
        applied = lifecycle.commit(change)
    except Exception as error:  # e.g. a reply too large to store: retrying would call the model again
        log.exception("run %s: storing its step failed", working.ref.key)
        if change.to_status == lifecycle.FAILED:
            raise
        unstorable = f"Spindle could not store the model's reply: {error}"
        return _settle(working, lifecycle.failed(working, "server_error", unstorable, int(time.time())))
    if applied.applied:
        if change.to_status == lifecycle.REQUIRES_ACTION:
            return Outcome(done=False, wait_seconds=max(0.0, working.run["expires_at"] - time.time()))
        return Outcome(done=change.to_status in lifecycle.TERMINAL)
    # Someone moved the run meanwhile (a cancel): the next round finishes what they asked for.
    return advance_run(working.ref)


def _after_model(working: Run, result: Reply) -> RunChange:
    """Which move the model's reply makes: tool calls, an answer, or an ending."""
    now = int(time.time())
    spent = lifecycle.with_usage(working, result.prompt_tokens, result.completion_tokens)
    step_usage = lifecycle.usage(result.prompt_tokens, result.completion_tokens)
    max_prompt = working.run.get("max_prompt_tokens")
    if max_prompt is not None and result.prompt_tokens > max_prompt:
        return lifecycle.incomplete(spent, "max_prompt_tokens", now)
    if result.calls and result.finish_reason == "length":
        return lifecycle.incomplete(spent, "max_completion_tokens", now)  # the arguments are cut off
    if result.calls:
        return lifecycle.required_action(spent, _function_calls(result), step_usage=step_usage, now=now)
    truncated = result.finish_reason == "length"
    return lifecycle.answered(spent, result.text_deltas, truncated=truncated, step_usage=step_usage, now=now)


def _function_calls(result: Reply) -> list[FunctionCall]:
    """The model's calls, each with an id of its own (a model may send none, or repeat one)."""
    seen: set[str] = set()
    calls = []
    for call in result.calls:
        call_id = call.id if call.id and call.id not in seen else new_id("call")
        seen.add(call_id)
        calls.append(FunctionCall(call_id, call.name, call.arguments, tuple(call.argument_deltas)))
    return calls
