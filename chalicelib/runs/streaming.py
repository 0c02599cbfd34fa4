"""`stream: true`: drive the run to its next stop, then hand back the events its log holds since.

Chalice and API Gateway deliver a response body in one piece, so a stream is rendered once the run
reaches `requires_action` or a terminal state. The request drives the run itself with the same
`advance_run` the drivers call (whoever holds the lease does the step; the others wait), so a stream
never waits on a poll interval. The log is the only source: a live-tailing front end can later serve
the same events incrementally without touching the engine.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from chalicelib.config import settings
from chalicelib.runs.engine import TERMINAL, advance_run
from chalicelib.storage import runs as store
from chalicelib.storage.runs import RunRef

STOPS = (*TERMINAL, "requires_action")
IDLE_SLEEP_SECONDS = 0.05


@dataclass(frozen=True)
class StreamedEvents:
    events: list[dict[str, Any]]
    finished: bool  # False: the run did not stop within SPINDLE_STREAM_MAX_SECONDS


def events_until_stop(ref: RunRef, after_seq: int) -> StreamedEvents:
    deadline = time.monotonic() + settings.stream_max_seconds
    finished = False
    while time.monotonic() < deadline:
        stored = store.get_live_run(ref)
        if stored is None or stored.status in STOPS:
            finished = True
            break
        outcome = advance_run(ref)
        if not outcome.done:
            time.sleep(min(max(outcome.wait_seconds, 0.0), IDLE_SLEEP_SECONDS))
    return StreamedEvents(store.events_after(ref, after_seq), finished)
