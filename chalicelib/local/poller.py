"""Local mode's run driver: a poller in the dev server that advances runs through the same
`advance_run` the Step Functions task calls. A new run wakes it at once (no fixed sleeps)."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from chalicelib.config import settings
from chalicelib.runs.dispatch import wake_local_poller
from chalicelib.runs.engine import advance_run
from chalicelib.storage import runs as store
from chalicelib.storage.runs import RunRef

log = logging.getLogger("spindle.poller")
IDLE_WAIT_SECONDS = 0.5


class RunPoller:
    def __init__(self, workers: int = 4) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="run")
        self._in_flight: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()
        wake_local_poller.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def run_forever(self) -> None:
        while not self._stop.is_set():
            wake_local_poller.wait(IDLE_WAIT_SECONDS)
            wake_local_poller.clear()
            try:
                self._dispatch_due()
            except Exception:
                log.exception("poll failed; retrying")

    def _dispatch_due(self) -> None:
        for ref in store.due_runs(time.time()):
            with self._lock:
                if ref.key in self._in_flight:
                    continue
                self._in_flight.add(ref.key)
            self._pool.submit(self._advance, ref)

    def _advance(self, ref: RunRef) -> None:
        try:
            # Until this worker reports, the run is not due again (its lease covers the model call). A
            # cancel or tool outputs arriving meanwhile make it due now; the worker then leaves it so.
            marker = time.time() + settings.run_lease_seconds
            store.enqueue(ref, marker)
            outcome = advance_run(ref)
            next_due = None if outcome.done else time.time() + outcome.wait_seconds
            store.settle_queue_entry(ref, expected_due=marker, next_due=next_due)
        except Exception:
            log.exception("advancing %s failed; it will be retried", ref.key)
        finally:
            with self._lock:
                self._in_flight.discard(ref.key)
            wake_local_poller.set()
