"""The run engine: `advance_run` moves a run one step, and every driver calls it (the local poller,
the Step Functions task, and a streaming request, which drives its own run while its client listens).
It is idempotent: every write is a guarded transition, the model call is made under a lease, and a
worker that dies leaves a lease that expires, after which another resumes.

While the model writes, the engine turns its deltas into the official events at once and hands them to
a `Listener` if one is attached (a streaming request); they are logged with the step's transition when
it commits, and the listener is then told which of the committed events it has not seen yet.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from chalicelib.config import settings
from chalicelib.domain import lifecycle
from chalicelib.domain.citations import Citable, Scanner
from chalicelib.domain.events import Event
from chalicelib.domain.ids import new_id
from chalicelib.domain.lifecycle import BuiltinCall, Draft, FunctionCall, Run, ToolCall
from chalicelib.runs import code_interpreter, file_search
from chalicelib.runs import resources as tool_resources
from chalicelib.runs.code_interpreter import CodeInterpreter, CodeStream
from chalicelib.runs.context import model_request
from chalicelib.runs.file_search import FileSearch
from chalicelib.runs.model_feed import ModelFeed
from chalicelib.runs.providers import provider_for
from chalicelib.runs.providers.base import Collector, ProviderError, ProviderEvent, Reply, TextDelta, ToolCallDelta
from chalicelib.storage import runs as store
from chalicelib.storage.records import Applied, RunChange, RunRef

log = logging.getLogger("spindle.engine")
# While a model answers, how often the worker looks whether the run is still its own (a cancel then ends
# the run at once, and the model call at its next delta): one consistent read each time.
CANCEL_CHECK_SECONDS = 0.25


@dataclass(frozen=True)
class Outcome:
    """What the driver does next: stop, or call `advance_run` again after `wait_seconds`."""

    done: bool
    wait_seconds: float = 0.0


class Listener(Protocol):
    """Who hears a run's events as they happen (a streaming request), from the worker's thread."""

    def live(self, event: Event) -> None:
        """An event of the reply being written, before its transition is committed."""

    def committed(self, after_seq: int, through_seq: int, unseen: Sequence[Event]) -> None:
        """A transition this worker committed: its events are the log's segments after `after_seq`
        through `through_seq`; `unseen` are those not already given to `live`."""


@dataclass
class _Live:
    """The official events of a reply as the model writes it: given to the listener at once, and
    remembered, so that the committed transition is not told twice."""

    working: Run
    draft: Draft
    listener: Listener | None
    builtins: frozenset[str] = frozenset()  # the tools the engine runs itself this turn
    delivered: set[tuple[str, Any]] = field(default_factory=set)
    call_ids: dict[int, str] = field(default_factory=dict)  # by the model's call index
    announced: set[int] = field(default_factory=set)
    held_arguments: dict[int, list[str]] = field(default_factory=dict)  # until the call has its name
    code: dict[int, CodeStream] = field(default_factory=dict)  # code_interpreter calls' code, as it streams
    text_open: bool = False
    tools_open: bool = False
    citations: Scanner = field(init=False)  # the markers the reply cites, found as its text streams

    def __post_init__(self) -> None:
        self.citations = Scanner(self.draft.citable)

    def emit(self, *events: Event) -> None:
        for event in events:
            self.delivered.add((event["event"], event["data"].get("id")))
            if self.listener is not None:
                self.listener.live(event)

    def on(self, event: ProviderEvent, partial: Reply) -> None:
        if isinstance(event, TextDelta) and event.text:
            if not self.text_open:
                self.text_open = True
                self.emit(*lifecycle.message_opening(self.working, self.draft))
            self.emit(lifecycle.message_delta(self.draft, event.text, self.citations.feed(event.text)))
        elif isinstance(event, ToolCallDelta):
            if not self.tools_open:
                self.tools_open = True
                if self.text_open:  # the text before the calls is a message of its own, complete now
                    now = int(time.time())
                    self.emit(*lifecycle.message_written(self.working, self.draft, partial.text_deltas, now))
                self.emit(*lifecycle.tool_calls_opening(self.working, self.draft))
            self._call_delta(event, partial)

    def _call_delta(self, event: ToolCallDelta, partial: Reply) -> None:
        index = event.index
        if index not in self.call_ids and event.id and event.id not in self.call_ids.values():
            self.call_ids[index] = event.id
        held = self.held_arguments.setdefault(index, [])
        if event.arguments:
            held.append(event.arguments)
        name = next((call.name for call in partial.calls if call.index == index and call.name), None)
        if index not in self.announced and name:
            self.announced.add(index)
            position = len(self.announced) - 1
            if name in self.builtins:  # its delta is its type alone, as the official tool's
                self.emit(lifecycle.builtin_call_announced(self.draft, position, self.call_id(index), name))
            else:
                self.emit(lifecycle.tool_call_announced(self.draft, position, self.call_id(index), name))
        if name == code_interpreter.TOOL_NAME and name in self.builtins:
            stream = self.code.setdefault(index, CodeStream())
            code = "".join(stream.feed(fragment) for fragment in held)
            held.clear()
            if code:
                self.emit(lifecycle.code_input(self.draft, self.position(index), code))
        elif name in self.builtins:
            held.clear()
        elif index in self.announced:
            position = sorted(self.announced).index(index)
            for fragment in held:
                self.emit(lifecycle.tool_call_arguments(self.draft, position, fragment))
            held.clear()

    def position(self, index: int) -> int:
        """Where the model's call `index` is in the step's tool_calls."""
        return sorted(self.announced).index(index) if index in self.announced else len(self.announced)

    def call_id(self, index: int) -> str:
        """The call's id: the model's, unless it sent none or repeated one."""
        if index not in self.call_ids:
            self.call_ids[index] = new_id("call")
        return self.call_ids[index]

    def unseen(self, events: Sequence[Event]) -> list[Event]:
        return [event for event in events if (event["event"], event["data"].get("id")) not in self.delivered]


def _commit(change: RunChange, live: _Live | None, listener: Listener | None) -> Applied:
    """Commit a move and tell the listener what of it it has not seen."""
    applied = lifecycle.commit(change)
    if applied.applied and listener is not None and applied.event_seq is not None:
        unseen = live.unseen(change.events) if live is not None else list(change.events)
        listener.committed(change.event_seq, applied.event_seq, unseen)
    return applied


def advance_run(ref: RunRef, listener: Listener | None = None) -> Outcome:
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
                # A worker is writing the reply: it ends the cancel itself within moments, keeping the
                # text so far. Should it have died, its lease runs out and this round does.
                return Outcome(done=False, wait_seconds=min(stored.lease_expires - now, CANCEL_CHECK_SECONDS * 4))
            ending = lifecycle.cancelled(stored, store.all_steps(stored.ref), int(now))
        elif now >= stored.run["expires_at"]:
            ending = lifecycle.expired(stored, store.all_steps(stored.ref), int(now))
        elif stored.status == lifecycle.REQUIRES_ACTION:
            return Outcome(done=False, wait_seconds=stored.run["expires_at"] - now)
        else:
            return _work(stored, now, listener)
        applied = _commit(ending, None, listener)
        if applied.applied:
            return Outcome(done=True)
        known = applied.current
    return Outcome(done=False, wait_seconds=0.5)


def _work(stored: Run, now: float, listener: Listener | None) -> Outcome:
    token = uuid.uuid4().hex
    claim = lifecycle.claimed(stored, token, now, settings.run_lease_seconds)
    applied = _commit(claim, None, listener)
    if not applied.applied:
        current = applied.current or store.get_run(stored.ref)
        if current is None or lifecycle.is_terminal(current):
            return Outcome(done=True)
        if current.status == lifecycle.IN_PROGRESS and current.lease_expires:
            return Outcome(done=False, wait_seconds=max(0.05, current.lease_expires - now))
        return Outcome(done=False)
    assert applied.event_seq is not None  # storage reports the log's length for every applied change
    working = replace(lifecycle.after(stored, claim), event_seq=applied.event_seq)
    while True:  # each round is one model call; a round whose tools the engine ran goes on to the next
        live = _Live(working, lifecycle.new_draft(int(time.time())), listener)
        try:
            with _watched(working) as moved_on:
                turn = _turn(working)
                draft = lifecycle.new_draft(int(time.time()), turn.citable, turn.images)
                live = _Live(working, draft, listener, turn.builtins)
                change = _next_change(working, turn, live, moved_on)
        except Exception as error:  # one guard around the whole step: a bug fails the run, never stalls it
            log.exception("run %s: advancing it failed", working.ref.key)
            reason = f"Spindle could not advance the run ({type(error).__name__}: {error})."
            change = lifecycle.failed(working, "server_error", reason, int(time.time()))
        if change is None:  # the run moved on without this worker (a cancel): decide again on what it is now
            return advance_run(working.ref, listener)
        if change.to_status != lifecycle.IN_PROGRESS:
            return _settle(working, change, live)
        try:
            applied = _commit(change, live, listener)
        except Exception as error:  # e.g. results too large to store: the run fails rather than stalls
            log.exception("run %s: storing its tool step failed", working.ref.key)
            unstorable = f"Spindle could not store the tool results: {error}"
            return _settle(working, lifecycle.failed(working, "server_error", unstorable, int(time.time())), live)
        if not applied.applied:  # someone moved the run meanwhile: finish what they asked for
            current = applied.current or store.get_live_run(working.ref)
            if current is not None and current.status == lifecycle.CANCELLING and current.lease_token == token:
                # a cancel while the tools ran: this worker holds the lease, so it ends the run now
                ending = lifecycle.cancelled(current, store.all_steps(current.ref), int(time.time()))
                return _settle(working, ending, live)
            return advance_run(working.ref, listener)
        if listener is None:
            # A driver's worker (a Lambda with 15 minutes, the local poller) makes one model call per
            # invocation; the driver calls advance_run again at once for the next round.
            return Outcome(done=False)
        assert applied.event_seq is not None
        working = replace(lifecycle.after(working, change), event_seq=applied.event_seq)
        if time.time() >= working.run["expires_at"]:
            return advance_run(working.ref, listener)


@dataclass(frozen=True)
class _Turn:
    """What a model call starts from: the run's steps so far, its file_search if it can search, and its
    code_interpreter if it has one."""

    steps: list[dict[str, Any]]
    searching: FileSearch | None
    coding: CodeInterpreter | None = None

    @property
    def sources(self) -> dict[tuple[int, int], str]:
        return dict(file_search.sources(self.steps))

    @property
    def citable(self) -> Citable:
        return Citable(self.sources, code_interpreter.written_files(self.steps))

    @property
    def images(self) -> tuple[str, ...]:
        return code_interpreter.images_to_show(self.steps)

    @property
    def builtins(self) -> frozenset[str]:
        ran = {file_search.TOOL_NAME} if self.searching is not None else set()
        if self.coding is not None:
            ran.add(code_interpreter.TOOL_NAME)
        return frozenset(ran)


def _turn(working: Run) -> _Turn:
    steps = store.all_steps(working.ref)
    resources = tool_resources.of_run(working)
    return _Turn(steps, file_search.configured(working, resources), code_interpreter.configured(working, resources))


@contextmanager
def _watched(working: Run) -> Iterator[threading.Event]:
    """While the step is worked out (a model call can take minutes), watch the run from a second
    thread: renew the worker's lease every third of its length, so the lease can stay short (a worker
    that dies is replaced within one lease), and look every CANCEL_CHECK_SECONDS whether the run is still
    this worker's. The event it yields is set once it is not (cancelled, expired, taken over, its thread
    deleted): the worker then stops waiting for the model (runs/model_feed.py)."""
    assert working.lease_token is not None
    token = working.lease_token
    done, moved_on = threading.Event(), threading.Event()

    def watch() -> None:
        lease = settings.run_lease_seconds
        renewed = time.monotonic()
        while not done.wait(min(CANCEL_CHECK_SECONDS, lease / 3)):
            try:
                # The renewal first: it keeps the lease, and on a busy machine every moment counts.
                if time.monotonic() - renewed >= lease / 3:
                    if not store.renew_lease(working.ref, token, time.time() + lease):
                        moved_on.set()
                        return
                    renewed = time.monotonic()
                current = store.get_live_run(working.ref)
                if current is None or current.status != lifecycle.IN_PROGRESS or current.lease_token != token:
                    moved_on.set()
                    return
            except Exception:  # a storage hiccup: the next look may succeed before the lease ends
                log.warning("run %s: watching it failed", working.ref.key, exc_info=True)

    watcher = threading.Thread(target=watch, name=f"watch-{working.ref.run_id}", daemon=True)
    watcher.start()
    try:
        yield moved_on
    finally:
        done.set()
        watcher.join()


def _next_change(working: Run, turn: _Turn, live: _Live, moved_on: threading.Event) -> RunChange | None:
    """The transition this claimed run makes next: the model's reply, its tool calls, or the end; None
    if the run moved on without this worker while the model answered."""
    if turn.searching is not None and not turn.sources:
        started = working.run["started_at"] or time.time()
        file_search.wait_for_stores(working.ref.project_id, turn.searching, started, moved_on)
        if moved_on.is_set():
            return _interrupted(working, live, Reply())
    now = int(time.time())
    request, fits = model_request(working, turn.steps, turn.searching, turn.coding)
    if not fits:
        return lifecycle.incomplete(working, "max_prompt_tokens", now)
    if not request.messages and not request.system:
        empty = "The thread has no messages and the run has no instructions."
        return lifecycle.failed(working, "invalid_prompt", empty, now)
    collector = Collector()
    feed = ModelFeed(provider_for(request.model).stream(request))
    try:
        for event in feed.until(moved_on):  # a silent model is not waited for once the run moves on
            collector.add(event)
            live.on(event, collector.partial)
        if moved_on.is_set():  # what arrives after the cancel was seen is not the run's
            return _interrupted(working, live, collector.partial)
        result = collector.reply()
    except ProviderError as error:
        if moved_on.is_set():
            return _interrupted(working, live, collector.partial)
        streamed = collector.partial.text_deltas if live.text_open and not live.tools_open else []
        return lifecycle.failed(working, error.code, error.message, int(time.time()), streamed, live.draft)
    finally:
        feed.close()  # stops the model call if it is still going
    change = _after_model(working, turn, live, result, moved_on)
    if moved_on.is_set():  # cancelled while the engine searched or ran code
        return _interrupted(working, live, result, change)
    return change


def _interrupted(working: Run, live: _Live, partial: Reply, ran: RunChange | None = None) -> RunChange | None:
    """The run moved on while the model answered or the engine ran its tools. A cancel keeps the text
    written so far (a function call cut short is dropped) and, if the engine was running tools, their
    step, cancelled, with what they did (the code a cancel interrupted, its logs saying so); anything
    else is decided again from the run as it is now."""
    current = store.get_live_run(working.ref)
    if current is None or current.status != lifecycle.CANCELLING:
        return None
    now = int(time.time())
    if ran is not None and ran.move == "run_tools":
        return lifecycle.cancelled(current, store.all_steps(current.ref), now, cut=ran)
    kept = partial.text_deltas if not partial.calls else []
    return lifecycle.cancelled(current, store.all_steps(current.ref), now, kept, live.draft)


def _settle(working: Run, change: RunChange, live: _Live) -> Outcome:
    try:
        applied = _commit(change, live, live.listener)
    except Exception as error:  # e.g. a reply too large to store: retrying would call the model again
        log.exception("run %s: storing its step failed", working.ref.key)
        if change.to_status == lifecycle.FAILED:
            raise
        unstorable = f"Spindle could not store the model's reply: {error}"
        return _settle(working, lifecycle.failed(working, "server_error", unstorable, int(time.time())), live)
    if applied.applied:
        if change.to_status == lifecycle.REQUIRES_ACTION:
            return Outcome(done=False, wait_seconds=max(0.0, working.run["expires_at"] - time.time()))
        return Outcome(done=change.to_status in lifecycle.TERMINAL)
    # Someone moved the run meanwhile (a cancel): the next round finishes what they asked for.
    return advance_run(working.ref, live.listener)


def _after_model(working: Run, turn: _Turn, live: _Live, result: Reply, moved_on: threading.Event) -> RunChange:
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
        calls = _tool_calls(working, turn, live, result, moved_on)
        if calls is None:
            limit = (
                f"The model kept calling {file_search.TOOL_NAME} after {file_search.MAX_SEARCH_ROUNDS} "
                "searching turns and being told the limit was reached."
            )
            return lifecycle.failed(spent, "server_error", limit, now)
        if all(isinstance(call, BuiltinCall) for call in calls):
            ran = [call for call in calls if isinstance(call, BuiltinCall)]
            return lifecycle.tools_ran(
                spent,
                live.draft,
                ran,
                step_usage=step_usage,
                now=now,
                text_deltas=result.text_deltas,
                hand_over=live.listener is None,
            )
        return lifecycle.required_action(
            spent, live.draft, calls, step_usage=step_usage, now=now, text_deltas=result.text_deltas
        )
    truncated = result.finish_reason == "length"
    return lifecycle.answered(
        spent, live.draft, result.text_deltas, truncated=truncated, step_usage=step_usage, now=now
    )


def _tool_calls(
    working: Run, turn: _Turn, live: _Live, result: Reply, moved_on: threading.Event
) -> list[ToolCall] | None:
    """The model's calls in its order: functions for the client; code the engine runs now in the
    thread's sandbox (a cancel, `moved_on`, stops it); and searches the engine runs now, sharing one
    budget of result tokens. Past the run's search limit a search is answered that the limit is reached
    (a model may ignore `tool_choice: none`: Bedrock has none); None if the model searches once more
    after that."""
    calls: list[ToolCall] = []
    number = file_search.searches_so_far(turn.steps)
    rounds = file_search.rounds_so_far(turn.steps)
    budget = file_search.RESULT_TOKEN_BUDGET
    coding_since = time.monotonic()  # a turn's code must leave the worker time to store it (Lambda: 15 min)
    for call in result.calls:
        call_id = live.call_id(call.index)
        if call.name == code_interpreter.TOOL_NAME and turn.coding is not None:
            ref = working.ref
            if moved_on.is_set():
                ran = code_interpreter.not_run(call_id, call.arguments, "the run was cancelled")
            elif time.monotonic() - coding_since > code_interpreter.TURN_CODE_SECONDS:
                ran = code_interpreter.not_run(call_id, call.arguments, "this turn's time for code has run out")
            else:
                ran = code_interpreter.run_call(
                    ref.project_id, ref.thread_id, turn.coding, call_id, call.arguments, moved_on
                )
            outputs = ran[code_interpreter.TOOL_NAME]["outputs"]
            if outputs:
                live.emit(lifecycle.code_outputs(live.draft, live.position(call.index), outputs))
            calls.append(BuiltinCall(ran))
        elif call.name == file_search.TOOL_NAME and turn.searching is not None:
            if rounds > file_search.MAX_SEARCH_ROUNDS:
                return None
            if rounds == file_search.MAX_SEARCH_ROUNDS:
                ran = file_search.refused_call(turn.searching, call_id, call.arguments, number)
            else:
                ran, spent = file_search.run_call(
                    working.ref.project_id, turn.searching, call_id, call.arguments, number, budget
                )
                budget -= spent
            calls.append(BuiltinCall(ran))
            number += 1
        else:
            calls.append(FunctionCall(call_id, call.name, call.arguments, tuple(call.argument_deltas)))
    return calls
