"""Local mode's driver: a poller in the dev server that advances runs through the same `advance_run`
the Step Functions task calls, and ingests vector store files through the same `ingest_due` the
scheduled Lambda calls. A new run or file wakes it at once (no fixed sleeps)."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from chalicelib.config import settings
from chalicelib.ingest.worker import ingest_due
from chalicelib.observability import request_scope
from chalicelib.runs.engine import advance_run
from chalicelib.storage import runs as store
from chalicelib.storage.drivers import wake_local_poller
from chalicelib.storage.records import RunRef

log = logging.getLogger("spindle.poller")
IDLE_WAIT_SECONDS = 0.5


class RunPoller:
    def __init__(self, workers: int = 4) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="run")
        self._in_flight: set[str] = set()
        self._ingesting = False
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
        with self._lock:
            ingesting = self._ingesting
            self._ingesting = True
        if not ingesting:  # one ingestion pass at a time; each claims its files, so more would only race
            self._pool.submit(self._ingest)
        for ref, due_key in store.due_runs(time.time()):
            with self._lock:
                if ref.key in self._in_flight:
                    continue  # a worker has it; this entry waits for the worker to report
                self._in_flight.add(ref.key)
            self._pool.submit(self._advance, ref, due_key)

    def _ingest(self) -> None:
        try:
            with request_scope():
                ingest_due()
        except Exception:
            log.exception("ingestion pass failed; it will be retried")
        finally:
            with self._lock:
                self._ingesting = False

    def _advance(self, ref: RunRef, due_key: str) -> None:
        try:
            # While this worker runs, a fallback entry stands in for it (its lease covers the model
            # call); cancels and tool outputs arriving meanwhile add entries of their own, due now.
            fallback = store.enqueue(ref, time.time() + settings.run_lease_seconds)
            store.remove_queue_entry(due_key)
            with request_scope():  # the step's log lines share an id, as a Lambda invocation's do
                outcome = advance_run(ref)
            if not outcome.done:
                store.enqueue(ref, time.time() + outcome.wait_seconds)
            store.remove_queue_entry(fallback)
        except Exception:
            log.exception("advancing %s failed; it will be retried", ref.key)
        finally:
            with self._lock:
                self._in_flight.discard(ref.key)
            wake_local_poller.set()
