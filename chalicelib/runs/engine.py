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
from chalicelib.runs.providers.base import Collector, ProviderError, Reply
from chalicelib.storage import runs as store
from chalicelib.storage.records import RunChange, RunRef

log = logging.getLogger("spindle.engine")
# While a model answers, how often the worker looks whether the run is still its own (a cancel stops the
# model call at its next delta after that): one consistent read each time.
CANCEL_CHECK_SECONDS = 0.25


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
            if stored.lease_expires is not None and stored.lease_expires > now:
                # A worker is writing the reply: it ends the cancel itself at the model's next delta,
                # keeping the text so far. Should it have died, its lease runs out and this round does.
                return Outcome(done=False, wait_seconds=min(stored.lease_expires - now, CANCEL_CHECK_SECONDS * 4))
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
        with _watched(working) as moved_on:
            change = _next_change(working, moved_on)
    except Exception as error:  # one guard around the whole step: a bug fails the run, never stalls it
        log.exception("run %s: advancing it failed", working.ref.key)
        reason = f"Spindle could not advance the run ({type(error).__name__}: {error})."
        change = lifecycle.failed(working, "server_error", reason, int(time.time()))
    if change is None:  # the run moved on without this worker (a cancel): decide again on what it is now
        return advance_run(working.ref)
    return _settle(working, change)


@contextmanager
def _watched(working: Run) -> Iterator[threading.Event]:
    """While the step is worked out (a model call can take minutes), watch the run from a second
    thread: renew the worker's lease every third of its length, so the lease can stay short (a worker
    that dies is replaced within one lease), and look every CANCEL_CHECK_SECONDS whether the run is still
    this worker's. The event it yields is set once it is not (cancelled, expired, taken over, its thread
    deleted): the model call is then stopped at its next delta."""
    assert working.lease_token is not None
    token = working.lease_token
    done, moved_on = threading.Event(), threading.Event()

    def watch() -> None:
        lease = settings.run_lease_seconds
        renewed = time.monotonic()
        while not done.wait(min(CANCEL_CHECK_SECONDS, lease / 3)):
            try:
                current = store.get_live_run(working.ref)
                if current is None or current.status != lifecycle.IN_PROGRESS or current.lease_token != token:
                    moved_on.set()
                    return
                if time.monotonic() - renewed >= lease / 3:
                    if not store.renew_lease(working.ref, token, time.time() + lease):
                        moved_on.set()
                        return
                    renewed = time.monotonic()
            except Exception:  # a storage hiccup: the next look may succeed before the lease ends
                log.warning("run %s: watching it failed", working.ref.key, exc_info=True)

    watcher = threading.Thread(target=watch, name=f"watch-{working.ref.run_id}", daemon=True)
    watcher.start()
    try:
        yield moved_on
    finally:
        done.set()
        watcher.join()


def _next_change(working: Run, moved_on: threading.Event) -> RunChange | None:
    """The transition this claimed run makes next: the model's reply, its tool calls, or the end; None
    if the run moved on without this worker while the model answered."""
    now = int(time.time())
    request, fits = model_request(working)
    if not fits:
        return lifecycle.incomplete(working, "max_prompt_tokens", now)
    if not request.messages and not request.system:
        empty = "The thread has no messages and the run has no instructions."
        return lifecycle.failed(working, "invalid_prompt", empty, now)
    collector = Collector()
    stream = provider_for(request.model).stream(request)
    try:
        for event in stream:
            if moved_on.is_set():  # what arrives after the cancel was seen is not the run's
                return _interrupted(working, collector.partial)
            collector.add(event)
        result = collector.reply()
    except ProviderError as error:
        if moved_on.is_set():
            return _interrupted(working, collector.partial)
        return lifecycle.failed(working, error.code, error.message, int(time.time()))
    finally:
        stream.close()  # stops the model call if it is still going
    return _after_model(working, result)


def _interrupted(working: Run, partial: Reply) -> RunChange | None:
    """The run moved on while the model answered. A cancel keeps the text written so far (a tool call
    cut short is dropped); anything else is decided again from the run as it is now."""
    current = store.get_live_run(working.ref)
    if current is None or current.status != lifecycle.CANCELLING:
        return None
    kept = partial.text_deltas if not partial.calls else []
    return lifecycle.cancelled(current, store.all_steps(current.ref), int(time.time()), kept)


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
