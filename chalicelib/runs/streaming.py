"""`stream: true`: drive the run to its next stop and hand over its events as they happen.

The request drives the run itself with the same `advance_run` the drivers call (whoever holds the lease
does the step; the others wait), in a worker thread, listening: the reply's events come as the model
writes them, each committed transition's remaining events as it commits, and what others logged
meanwhile (a cancel, a driver's step) from the run's event log, in the log's order. The log stays the
record: a stream that starts later, or a second one, is rendered from it.
"""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from chalicelib.config import settings
from chalicelib.domain.events import Event
from chalicelib.domain.lifecycle import STOPS
from chalicelib.runs.engine import Outcome, advance_run
from chalicelib.storage import runs as store
from chalicelib.storage.records import RunRef

IDLE_SLEEP_SECONDS = 0.05
log = logging.getLogger("spindle.streaming")
# Yielded when the run did not stop within SPINDLE_STREAM_MAX_SECONDS: the stream ends, the run goes on.
DEADLINE: Event = {"event": "spindle.deadline", "data": {}}
# Yielded when nothing else was for SPINDLE_STREAM_KEEPALIVE_SECONDS (rendered as an SSE comment, which
# the SDKs skip): a silent model must not look like a dead connection to API Gateway or a proxy.
KEEP_ALIVE: Event = {"event": "spindle.keep_alive", "data": {}}
# The events of the moves into a stop: a stream ends with the first of them.
STOP_EVENTS = frozenset(f"thread.run.{status}" for status in STOPS)


class _Heard:
    """The engine's listener: what the worker thread hears, queued for the request's thread."""

    def __init__(self) -> None:
        self.items: queue.Queue[tuple[Any, ...]] = queue.Queue()

    def live(self, event: Event) -> None:
        self.items.put(("live", event))

    def committed(self, after_seq: int, through_seq: int, unseen: Sequence[Event]) -> None:
        self.items.put(("committed", after_seq, through_seq, list(unseen)))


class _Pace:
    """The stream's two clocks: its deadline, and the time since it last sent anything."""

    def __init__(self) -> None:
        now = time.monotonic()
        self.deadline = now + settings.stream_max_seconds
        self.last_sent = now

    def sending(self, events: Iterable[Event]) -> Iterator[Event]:
        for event in events:
            yield event
            self.last_sent = time.monotonic()

    def past_deadline(self) -> bool:
        return time.monotonic() >= self.deadline

    def quiet_too_long(self) -> bool:
        return time.monotonic() - self.last_sent >= settings.stream_keepalive_seconds

    def wait_limit(self) -> float:
        """How long to wait for the next event before a keep-alive or the deadline is due."""
        return max(0.0, min(self.deadline, self.last_sent + settings.stream_keepalive_seconds) - time.monotonic())


def _advance(ref: RunRef, heard: _Heard) -> None:
    outcome = Outcome(done=False, wait_seconds=IDLE_SLEEP_SECONDS)
    try:
        outcome = advance_run(ref, heard)
    except Exception:  # a storage hiccup outside the engine's own guard: the stream looks again
        log.exception("run %s: advancing it for a stream failed", ref.key)
    finally:
        heard.items.put(("done", outcome))


def _stopped(ref: RunRef) -> bool:
    stored = store.get_live_run(ref)
    return stored is None or stored.status in STOPS


def stream_events(ref: RunRef, after_seq: int) -> Iterator[Event]:
    """The run's events after log segment `after_seq`, as they happen, until it stops (or DEADLINE),
    with KEEP_ALIVE whenever the run has been silent for SPINDLE_STREAM_KEEPALIVE_SECONDS.
    A step still running at the deadline finishes in the background (or its lease passes to a driver).

    The stream ends with the first event that stops the run (`thread.run.requires_action` or an ending),
    as OpenAI's does, even when the run has already gone on: tool outputs submitted while this stream
    was still open belong to the submission's own stream, and a client that saw them here would see
    its tool calls twice."""
    for event in _events_after(ref, after_seq):
        yield event
        if event["event"] in STOP_EVENTS:
            return


def _events_after(ref: RunRef, after_seq: int) -> Iterator[Event]:
    pace = _Pace()
    logged, seen = store.read_log(ref, after_seq)
    yield from pace.sending(logged)
    while not _stopped(ref):
        if pace.past_deadline():
            yield from store.read_log(ref, seen)[0]
            yield DEADLINE
            return
        heard = _Heard()
        step = contextvars.copy_context()  # the step's log lines carry this request's id
        worker = threading.Thread(target=step.run, args=(_advance, ref, heard), daemon=True)
        worker.start()
        outcome: Outcome | None = None
        while outcome is None:
            try:
                item = heard.items.get(timeout=pace.wait_limit())
            except queue.Empty:
                if pace.past_deadline():
                    yield from store.read_log(ref, seen)[0]
                    yield DEADLINE
                    return
                yield from pace.sending([KEEP_ALIVE])
                continue
            if item[0] == "live":
                yield from pace.sending([item[1]])
            elif item[0] == "committed":
                _, after, through, unseen = item
                if after > seen:  # segments others wrote before this one: in the log's order
                    yield from pace.sending(store.read_log(ref, seen, after)[0])
                yield from pace.sending(unseen)
                seen = through
            else:
                outcome = item[1]
        logged, seen = store.read_log(ref, seen)  # whatever others logged meanwhile
        yield from pace.sending(logged)
        if not outcome.done:
            time.sleep(min(max(outcome.wait_seconds, 0.0), IDLE_SLEEP_SECONDS))
            if pace.quiet_too_long():  # another worker holds the step, and it is a long one
                yield from pace.sending([KEEP_ALIVE])
    yield from store.read_log(ref, seen)[0]
