"""`stream: true`: drive the run to its next stop, then hand back the events its log holds since.

Chalice and API Gateway deliver a response body in one piece, so a stream is rendered once the run
reaches `requires_action` or a terminal state. The request drives the run itself with the same
`advance_run` the drivers call (whoever holds the lease does the step; the others wait), so a stream
never waits on a poll interval. The log is the only source: a live-tailing front end can later serve
the same events incrementally without touching the engine.
"""

from __future__ import annotations

import contextvars
import threading
import time
from dataclasses import dataclass
from typing import Any

from chalicelib.config import settings
from chalicelib.domain.lifecycle import STOPS
from chalicelib.runs.engine import Outcome, advance_run
from chalicelib.storage import runs as store
from chalicelib.storage.records import RunRef

IDLE_SLEEP_SECONDS = 0.05


@dataclass(frozen=True)
class StreamedEvents:
    events: list[dict[str, Any]]
    finished: bool  # False: the run did not stop within SPINDLE_STREAM_MAX_SECONDS


def _stopped(ref: RunRef) -> bool:
    stored = store.get_live_run(ref)
    return stored is None or stored.status in STOPS


def events_until_stop(ref: RunRef, after_seq: int) -> StreamedEvents:
    """Advance the run in a worker thread so that the deadline holds even during a slow model call;
    a step still running at the deadline finishes in the background (or its lease passes to a driver)."""
    deadline = time.monotonic() + settings.stream_max_seconds
    while not _stopped(ref):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return StreamedEvents(store.events_after(ref, after_seq), finished=_stopped(ref))
        outcome: list[Outcome] = []
        # The step runs in this request's context, so its log lines carry the request's id.
        step = contextvars.copy_context()
        worker = threading.Thread(
            target=step.run, args=(lambda box=outcome: box.append(advance_run(ref)),), daemon=True
        )
        worker.start()
        worker.join(remaining)
        if outcome and not outcome[0].done:
            time.sleep(min(max(outcome[0].wait_seconds, 0.0), IDLE_SLEEP_SECONDS))
    return StreamedEvents(store.events_after(ref, after_seq), finished=True)
