"""The run lifecycle, in one place: every status a run can have, which moves between them are
allowed, and one named builder per move.

Nothing else assembles a transition. The API side (create, cancel, submit tool outputs, in
domain/runs.py) and the worker side (the engine, in runs/engine.py) ask a builder here for a
`RunChange` and hand it to `commit`, which has storage apply it only if the run is still in a
status the move starts from (and, for the engine, the lease is still its own), and logs it. Each
builder also carries the official events its move emits, so the event log and the stored run cannot
disagree.

Modelled on Powertools for AWS Lambda's idempotency records: the statuses are constants in one frozen
mapping, and the moves are named functions over an abstract store.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, TypeAlias

from chalicelib.domain import events
from chalicelib.domain.citations import Citable, citations_in
from chalicelib.domain.events import Event
from chalicelib.domain.ids import new_id
from chalicelib.domain.threads import render_message
from chalicelib.observability import log_line, since
from chalicelib.storage import runs as store
from chalicelib.storage.records import Applied, Message, NewRun, RunChange, RunRef, StoredRun

Run: TypeAlias = StoredRun  # a run as the lifecycle sees it: the served object and its private state

QUEUED = "queued"
IN_PROGRESS = "in_progress"
REQUIRES_ACTION = "requires_action"
CANCELLING = "cancelling"
CANCELLED = "cancelled"
FAILED = "failed"
COMPLETED = "completed"
INCOMPLETE = "incomplete"
EXPIRED = "expired"

# The whole state machine: each status and the statuses it may move to. A terminal status moves
# nowhere. Any live run may fail (every run ends); in_progress -> in_progress is a worker taking over
# a lease that ran out.
TRANSITIONS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        QUEUED: frozenset({IN_PROGRESS, CANCELLING, EXPIRED, FAILED}),
        IN_PROGRESS: frozenset({IN_PROGRESS, REQUIRES_ACTION, COMPLETED, INCOMPLETE, CANCELLING, EXPIRED, FAILED}),
        REQUIRES_ACTION: frozenset({QUEUED, CANCELLING, EXPIRED, FAILED}),
        CANCELLING: frozenset({CANCELLED, FAILED}),
        CANCELLED: frozenset(),
        FAILED: frozenset(),
        COMPLETED: frozenset(),
        INCOMPLETE: frozenset(),
        EXPIRED: frozenset(),
    }
)
TERMINAL = frozenset(status for status, onward in TRANSITIONS.items() if not onward)
ACTIVE = frozenset(TRANSITIONS) - TERMINAL  # a run in one of these holds its thread
CANCELLABLE = frozenset({QUEUED, IN_PROGRESS, REQUIRES_ACTION})
STOPS = TERMINAL | {REQUIRES_ACTION}  # where a run waits for someone else, or ends: a stream ends here

RUN_LIFETIME_SECONDS = 600
# The served timestamp each ending sets (an expired run keeps its expires_at).
_ENDED_AT = MappingProxyType(
    {COMPLETED: "completed_at", INCOMPLETE: "completed_at", FAILED: "failed_at", CANCELLED: "cancelled_at"}
)


class IllegalTransition(Exception):
    """A builder was asked for a move the state machine does not have: a bug in the caller."""


def allowed(from_status: str, to_status: str) -> bool:
    return to_status in TRANSITIONS.get(from_status, frozenset())


def _checked(from_statuses: Sequence[str], to_status: str) -> tuple[str, ...]:
    for status in from_statuses:
        if not allowed(status, to_status):
            raise IllegalTransition(f"a run cannot move from {status} to {to_status}")
    return tuple(from_statuses)


# --- the served object --------------------------------------------------------------------------


def render_run(run: Run) -> dict[str, Any]:
    """The official RunObject."""
    rendered = dict(run.run, status=run.status, metadata=dict(run.metadata))
    if run.status == CANCELLING:  # no longer waiting for outputs: nobody should submit them
        rendered["required_action"] = None
    return rendered


def is_terminal(run: Run) -> bool:
    return run.status in TERMINAL


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def with_usage(run: Run, prompt_tokens: int, completion_tokens: int) -> Run:
    """The run with one more model call's tokens in its private usage (served once the run ends)."""
    so_far = run.usage_so_far or usage(0, 0)
    total = usage(so_far["prompt_tokens"] + prompt_tokens, so_far["completion_tokens"] + completion_tokens)
    return replace(run, usage_so_far=total)


def _ended(run: Run, status: str, now: int, **fields: Any) -> dict[str, Any]:
    """The RunObject as it ends in `status`: no action required, usage final, the ending stamped."""
    ended = dict(run.run, required_action=None, usage=dict(run.usage_so_far or usage(0, 0)), **fields)
    if status in _ENDED_AT:
        ended[_ENDED_AT[status]] = now
    if status != EXPIRED:
        ended["expires_at"] = None
    return ended


def after(current: Run, change: RunChange) -> Run:
    """The run as a committed change leaves it (its event log's length is not known here: it stays as
    read, so the result is for showing, not for building another change on)."""
    lease_token, lease_expires = current.lease_token, current.lease_expires
    if change.new_lease is not None:
        lease_token, lease_expires = change.new_lease
    elif not change.keep_lease:
        lease_token, lease_expires = None, None
    return replace(
        current,
        status=change.to_status,
        run=change.run,
        lease_token=lease_token,
        lease_expires=lease_expires,
        usage_so_far=change.usage_so_far or current.usage_so_far,
        tool_step_id=change.tool_step_id or current.tool_step_id,
    )


def started(new: NewRun) -> Run:
    """A new run as its creation stores it."""
    return StoredRun(new.ref, new.status, new.metadata, new.run, event_seq=1)


@dataclass(frozen=True)
class _Move:
    """What every builder shares: the run it starts from, where it goes, and the served run after."""

    current: Run
    to_status: str
    run: Mapping[str, Any]

    def change(self, move: str, from_statuses: Sequence[str], *leading: Event, **stored: Any) -> RunChange:
        """The guarded change, logging `leading` and then the run's own event in its new status."""
        after = replace(self.current, status=self.to_status, run=self.run)
        return RunChange(
            move=move,
            ref=self.current.ref,
            from_statuses=_checked(from_statuses, self.to_status),
            to_status=self.to_status,
            run=self.run,
            event_seq=self.current.event_seq,
            events=(*leading, events.run_event(render_run(after))),
            usage_so_far=self.current.usage_so_far,
            **stored,
        )


# --- committing ---------------------------------------------------------------------------------


def commit(change: RunChange) -> Applied:
    """Commit a move (storage checks its guard), logging it as one line whatever the outcome."""
    started = time.perf_counter()
    outcome = "error"
    try:
        applied = store.apply(change)
        outcome = "applied" if applied.applied else "refused"
        return applied
    finally:
        ref = change.ref
        log_line(
            f"run.{change.move}",
            outcome,
            since(started),
            project_id=ref.project_id,
            thread_id=ref.thread_id,
            run_id=ref.run_id,
            from_status="|".join(change.from_statuses),
            to_status=change.to_status,
        )


def log_created(new: NewRun, started: float, outcome: str) -> None:
    ref = new.ref
    log_line(
        "run.create",
        outcome,
        since(started),
        project_id=ref.project_id,
        thread_id=ref.thread_id,
        run_id=ref.run_id,
        to_status=new.status,
    )


# --- the API side -------------------------------------------------------------------------------


def created(
    ref: RunRef,
    metadata: Mapping[str, str],
    run: Mapping[str, Any],
    messages: Sequence[Message],
    *,
    enqueue_at: float | None,
    new_thread: Mapping[str, Any] | None = None,
) -> NewRun:
    """A new run, queued: `thread.created` first when the run brings its thread (create-and-run)."""
    queued = render_run(StoredRun(ref, QUEUED, metadata, run))
    opening = [events.event("thread.created", dict(new_thread))] if new_thread is not None else []
    opening += [events.event("thread.run.created", queued), events.event("thread.run.queued", queued)]
    return NewRun(ref, QUEUED, metadata, run, tuple(messages), tuple(opening), enqueue_at)


def cancel_requested(current: Run, *, enqueue_at: float | None) -> RunChange:
    """Any cancellable status -> cancelling. The worker's lease stays: it finishes the cancel."""
    return _Move(current, CANCELLING, current.run).change(
        "cancel", (current.status,), keep_lease=True, enqueue_at=enqueue_at
    )


def outputs_submitted(current: Run, step: Mapping[str, Any], *, enqueue_at: float | None) -> RunChange:
    """requires_action -> queued, with the tool-calls step completed by the submitted outputs."""
    run = dict(current.run, required_action=None)
    return _Move(current, QUEUED, run).change(
        "submit_tool_outputs", (REQUIRES_ACTION,), events.step_event(dict(step)), steps=(step,), enqueue_at=enqueue_at
    )


# --- the worker side ----------------------------------------------------------------------------


def claimed(current: Run, token: str, now: float, lease_seconds: float) -> RunChange:
    """queued or in_progress (a lease that ran out) -> in_progress, under a new lease."""
    run = dict(current.run, started_at=current.run["started_at"] or int(now))
    change = _Move(current, IN_PROGRESS, run).change(
        "claim", (current.status,), claim_before=now, new_lease=(token, now + lease_seconds)
    )
    if current.status == IN_PROGRESS:  # a taken-over run already said it is in progress
        return replace(change, events=())
    return change


@dataclass(frozen=True)
class Draft:
    """What a model call writes, named before its first delta, so that the events streamed while it
    writes carry the ids its message and steps will be stored under; what its text may cite (the
    file_search results the run has shown the model, the files its code wrote: domain/citations.py);
    and the images its code made since the run's last message, which its message shows first."""

    message_step_id: str
    message_id: str
    tool_step_id: str
    created_at: int
    citable: Citable = field(default_factory=Citable)
    images: tuple[str, ...] = ()


def new_draft(now: int, citable: Citable | None = None, images: tuple[str, ...] = ()) -> Draft:
    return Draft(new_id("step"), new_id("message"), new_id("step"), now, citable or Citable(), images)


def _step(
    current: Run,
    step_id: str,
    created_at: int,
    details: Mapping[str, Any],
    status: str,
    now: int,
    step_usage: Mapping[str, int] | None,
) -> dict[str, Any]:
    return {
        "id": step_id,
        "object": "thread.run.step",
        "created_at": created_at,
        "assistant_id": current.run["assistant_id"],
        "thread_id": current.ref.thread_id,
        "run_id": current.ref.run_id,
        "type": details["type"],
        "status": status,
        "step_details": dict(details),
        "last_error": None,
        "expired_at": None,
        "cancelled_at": now if status == CANCELLED else None,
        "failed_at": now if status == FAILED else None,
        "completed_at": now if status == COMPLETED else None,
        "metadata": {},
        "usage": None if step_usage is None else dict(step_usage),
    }


def _message_step(current: Run, draft: Draft, status: str, now: int, usage: Mapping[str, int] | None) -> dict[str, Any]:
    details = {"type": "message_creation", "message_creation": {"message_id": draft.message_id}}
    return _step(current, draft.message_step_id, draft.created_at, details, status, now, usage)


def _assistant_message(
    current: Run, draft: Draft, text: str, now: int, incomplete_reason: str | None = None
) -> Message:
    """The run's reply in the thread: completed, or incomplete with the official reason."""
    return Message(
        project_id=current.ref.project_id,
        thread_id=current.ref.thread_id,
        id=draft.message_id,
        created_at=draft.created_at,
        role="assistant",
        content=[
            *({"type": "image_file", "image_file": {"file_id": file_id}} for file_id in draft.images),
            {"type": "text", "text": {"value": text, "annotations": citations_in(text, draft.citable)}},
        ],
        status=INCOMPLETE if incomplete_reason else COMPLETED,
        assistant_id=current.run["assistant_id"],
        run_id=current.ref.run_id,
        completed_at=None if incomplete_reason else now,
        incomplete_at=now if incomplete_reason else None,
        incomplete_details={"reason": incomplete_reason} if incomplete_reason else None,
    )


# --- what a model call streams before its move is committed -------------------------------------


def message_opening(current: Run, draft: Draft) -> list[Event]:
    """The reply's message_creation step and its message, as they start (before the first delta)."""
    step = _message_step(current, draft, IN_PROGRESS, draft.created_at, None)
    message = _assistant_message(current, draft, "", draft.created_at)
    opening = events.message_opening(render_message(message))
    return [*events.opening_step_events(step), *opening, *events.image_deltas(render_message(message))]


def message_delta(draft: Draft, text: str, citations: Sequence[dict[str, Any]] = ()) -> Event:
    return events.message_delta(draft.message_id, text, citations, len(draft.images))


def message_written(current: Run, draft: Draft, text_deltas: Sequence[str], now: int) -> list[Event]:
    """The message is complete (the model went on to call functions): its own and its step's ends."""
    message = _assistant_message(current, draft, "".join(text_deltas), now)
    step = _message_step(current, draft, COMPLETED, now, None)
    return [events.event("thread.message.completed", render_message(message)), events.step_event(step)]


def tool_calls_opening(current: Run, draft: Draft) -> list[Event]:
    details = {"type": "tool_calls", "tool_calls": []}
    step = _step(current, draft.tool_step_id, draft.created_at, details, IN_PROGRESS, draft.created_at, None)
    return events.opening_step_events(step)


def tool_call_announced(draft: Draft, index: int, call_id: str, name: str) -> Event:
    return events.tool_call_announced(draft.tool_step_id, index, call_id, name)


def builtin_call_announced(draft: Draft, index: int, call_id: str, kind: str) -> Event:
    return events.builtin_call_announced(draft.tool_step_id, index, call_id, kind)


def code_input(draft: Draft, index: int, fragment: str) -> Event:
    return events.code_input(draft.tool_step_id, index, fragment)


def code_outputs(draft: Draft, index: int, outputs: Sequence[Mapping[str, Any]]) -> Event:
    return events.code_outputs(draft.tool_step_id, index, outputs)


def tool_call_arguments(draft: Draft, index: int, fragment: str) -> Event:
    return events.tool_call_arguments(draft.tool_step_id, index, fragment)


# --- the worker's moves after the model ---------------------------------------------------------


def answered(
    current: Run,
    draft: Draft,
    text_deltas: Sequence[str],
    *,
    truncated: bool,
    step_usage: Mapping[str, int],
    now: int,
) -> RunChange:
    """in_progress -> completed (or incomplete, when the reply was cut at max_completion_tokens), with
    the assistant's message and its message_creation step."""
    message = _assistant_message(current, draft, "".join(text_deltas), now, "max_tokens" if truncated else None)
    step = _message_step(current, draft, COMPLETED, now, step_usage)
    status = INCOMPLETE if truncated else COMPLETED
    ending = {"reason": "max_completion_tokens"} if truncated else None
    run = _ended(current, status, now, incomplete_details=ending)
    return _Move(current, status, run).change(
        "answer",
        (IN_PROGRESS,),
        *events.opening_step_events(step),
        *events.message_events(render_message(message), list(text_deltas), draft.citable),
        events.step_event(step),
        lease_token=current.lease_token,
        messages=(message,),
        steps=(step,),
        release_thread=True,
    )


@dataclass(frozen=True)
class FunctionCall:
    """A function call the model made, as the client will see it."""

    id: str
    name: str
    arguments: str
    argument_deltas: tuple[str, ...]  # as streamed; they join to `arguments`


@dataclass(frozen=True)
class BuiltinCall:
    """A call of a tool the engine ran itself (file_search, code_interpreter), complete: its tool_calls
    entry."""

    call: Mapping[str, Any]

    @property
    def id(self) -> str:
        return str(self.call["id"])


ToolCall: TypeAlias = FunctionCall | BuiltinCall


def _step_call(call: ToolCall) -> dict[str, Any]:
    if isinstance(call, BuiltinCall):
        return dict(call.call)
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments, "output": None},
    }


def _tool_step_move(
    current: Run,
    draft: Draft,
    calls: Sequence[ToolCall],
    status: str,
    step_usage: Mapping[str, int],
    now: int,
    text_deltas: Sequence[str],
) -> tuple[dict[str, Any], list[Event], tuple[Message, ...], tuple[Mapping[str, Any], ...]]:
    """The tool_calls step of a model turn that called tools, in `status`, its events, and the message
    (in a message_creation step of its own, before it) holding text the model wrote before its calls."""
    details = {"type": "tool_calls", "tool_calls": [_step_call(call) for call in calls]}
    step = _step(current, draft.tool_step_id, draft.created_at, details, status, now, step_usage)
    argument_deltas = {call.id: list(call.argument_deltas) for call in calls if isinstance(call, FunctionCall)}
    leading: list[Event] = []
    messages: tuple[Message, ...] = ()
    steps: tuple[Mapping[str, Any], ...] = (step,)
    if text_deltas:
        message = _assistant_message(current, draft, "".join(text_deltas), now)
        message_step = _message_step(current, draft, COMPLETED, now, None)
        leading = [
            *events.opening_step_events(message_step),
            *events.message_events(render_message(message), list(text_deltas), draft.citable),
            events.step_event(message_step),
        ]
        messages, steps = (message,), (message_step, step)
    step_events = [*leading, *events.opening_step_events(step), *events.tool_call_delta_events(step, argument_deltas)]
    if status == COMPLETED:
        step_events.append(events.step_event(step))
    return step, step_events, messages, steps


def required_action(
    current: Run,
    draft: Draft,
    calls: Sequence[ToolCall],
    *,
    step_usage: Mapping[str, int],
    now: int,
    text_deltas: Sequence[str] = (),
) -> RunChange:
    """in_progress -> requires_action: the client must submit outputs for the model's function calls,
    which wait in an in_progress tool_calls step (beside any built-in calls of the same turn, done
    already). Text the model wrote before its calls is kept as a completed message of its own, in a
    message_creation step before the tool_calls step."""
    step, step_events, messages, steps = _tool_step_move(
        current, draft, calls, IN_PROGRESS, step_usage, now, text_deltas
    )
    served = [
        {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
        for call in calls
        if isinstance(call, FunctionCall)
    ]
    action = {"type": "submit_tool_outputs", "submit_tool_outputs": {"tool_calls": served}}
    run = dict(current.run, required_action=action)
    return _Move(current, REQUIRES_ACTION, run).change(
        "require_action",
        (IN_PROGRESS,),
        *step_events,
        lease_token=current.lease_token,
        messages=messages,
        steps=steps,
        tool_step_id=step["id"],
    )


def tools_ran(
    current: Run,
    draft: Draft,
    calls: Sequence[BuiltinCall],
    *,
    step_usage: Mapping[str, int],
    now: int,
    text_deltas: Sequence[str] = (),
    hand_over: bool = False,
) -> RunChange:
    """in_progress -> in_progress: the engine ran the model's built-in tool calls itself (no
    requires_action): a completed tool_calls step; the worker keeps its lease to call the model again
    with the results, or (`hand_over`) lets it go, so that the run's driver calls advance_run for the
    next round. The run's own status does not change, so no run event is logged."""
    _, step_events, messages, steps = _tool_step_move(current, draft, calls, COMPLETED, step_usage, now, text_deltas)
    change = _Move(current, IN_PROGRESS, current.run).change(
        "run_tools",
        (IN_PROGRESS,),
        lease_token=current.lease_token,
        keep_lease=not hand_over,
        messages=messages,
        steps=steps,
    )
    return replace(change, events=tuple(step_events))


def incomplete(current: Run, reason: str, now: int) -> RunChange:
    """in_progress -> incomplete, with no reply (e.g. the prompt exceeds max_prompt_tokens)."""
    run = _ended(current, INCOMPLETE, now, incomplete_details={"reason": reason})
    return _Move(current, INCOMPLETE, run).change(
        "incomplete", (IN_PROGRESS,), lease_token=current.lease_token, release_thread=True
    )


def failed(
    current: Run, code: str, message: str, now: int, partial: Sequence[str] = (), draft: Draft | None = None
) -> RunChange:
    """Any live status -> failed, with last_error; the thread is free again. Text the model had written
    when it failed (`partial`, its deltas, already streamed) is kept as the official API keeps it:
    incomplete, reason run_failed, in a failed message_creation step."""
    error = {"code": code, "message": message}
    run = _ended(current, FAILED, now, last_error=error)
    leading, messages, steps = _partial_reply(current, partial, draft, FAILED, "run_failed", now, error)
    return _Move(current, FAILED, run).change(
        "fail",
        (current.status,),
        *leading,
        lease_token=current.lease_token,
        messages=messages,
        steps=steps,
        release_thread=True,
    )


def _partial_reply(
    current: Run,
    partial: Sequence[str],
    draft: Draft | None,
    step_status: str,
    reason: str,
    now: int,
    error: Mapping[str, str] | None = None,
) -> tuple[list[Event], tuple[Message, ...], tuple[Mapping[str, Any], ...]]:
    """A reply cut off (by a cancel, a failure): its events, its incomplete message and its step."""
    if not partial:
        return [], (), ()
    draft = draft or new_draft(now)
    message = _assistant_message(current, draft, "".join(partial), now, reason)
    step = _message_step(current, draft, step_status, now, None)
    if error is not None:
        step["last_error"] = dict(error)
    leading = [
        *events.opening_step_events(step),
        *events.message_events(render_message(message), list(partial), draft.citable),
        events.step_event(step),
    ]
    return leading, (message,), (step,)


def _ended_steps(
    open_steps: Sequence[Mapping[str, Any]], status: str, field: str, now: int
) -> tuple[dict[str, Any], ...]:
    return tuple({**step, "status": status, field: now} for step in open_steps if step["status"] == IN_PROGRESS)


def cancelled(
    current: Run,
    steps: Sequence[Mapping[str, Any]],
    now: int,
    partial: Sequence[str] = (),
    draft: Draft | None = None,
    cut: RunChange | None = None,
) -> RunChange:
    """cancelling -> cancelled; its open steps are cancelled too. Text the model had written when the
    cancel stopped it (`partial`, its deltas, in `draft`) is kept, as the official API keeps a message
    cut off by a cancel: incomplete, reason run_cancelled, in a cancelled message_creation step. Tools
    the engine was running when the cancel came (`cut`, their `tools_ran` move, not committed) are kept
    as their step, cancelled, with the message written before them."""
    ended = _ended_steps(steps, CANCELLED, "cancelled_at", now)
    kept, messages, reply_steps = _partial_reply(current, partial, draft, CANCELLED, "run_cancelled", now)
    if cut is not None:
        stopped = {
            step["id"]: {**step, "status": CANCELLED, "cancelled_at": now, "completed_at": None}
            for step in cut.steps
            if step["type"] == "tool_calls"
        }
        kept = [
            events.step_event(stopped[event["data"]["id"]])
            if event["event"] == "thread.run.step.completed" and event["data"]["id"] in stopped
            else event
            for event in cut.events
        ]
        messages = tuple(cut.messages)
        reply_steps = tuple(stopped.get(step["id"], step) for step in cut.steps)
    run = _ended(current, CANCELLED, now)
    return _Move(current, CANCELLED, run).change(
        "finish_cancel",
        (CANCELLING,),
        *(events.step_event(step) for step in ended),
        *kept,
        steps=(*ended, *reply_steps),
        messages=messages,
        release_thread=True,
    )


def expired(current: Run, steps: Sequence[Mapping[str, Any]], now: int) -> RunChange:
    """A live run past its expires_at -> expired; its open steps expire too."""
    ended = _ended_steps(steps, EXPIRED, "expired_at", now)
    run = _ended(current, EXPIRED, now)
    return _Move(current, EXPIRED, run).change(
        "expire", (current.status,), *(events.step_event(step) for step in ended), steps=ended, release_thread=True
    )
