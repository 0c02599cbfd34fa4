"""Local mode's driver: a poller in the dev server that advances runs through the same `advance_run`
the Step Functions task calls, and ingests vector store files through the same `ingest` the Lambdas
call. A new run or file wakes it at once (no fixed sleeps), and at rest it sleeps until the soonest
entry of its queues is due, looking again at least every MAX_IDLE_SECONDS for entries that another
process (the CLI, a second server on the same store) wrote without waking it.

Files are ingested by workers of their own (INGEST_WORKERS), never the runs', taken in turns across
projects, and no project holds them all: while one project's files (a hostile PDF, read for as long
as a file may be) have the workers it may, another project's file still finds one free, and so does
the same project's next file."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from chalicelib.config import settings
from chalicelib.ingest.worker import due_in_turns, ingest
from chalicelib.observability import request_scope
from chalicelib.runs.engine import advance_run
from chalicelib.storage import runs as store
from chalicelib.storage.drivers import wake_local_poller
from chalicelib.storage.records import RunRef
from chalicelib.storage.vector_store_files import FileRef, next_due_file

log = logging.getLogger("spindle.poller")
# How long the poller waits while something due is held by busy workers (they wake it when done).
IDLE_WAIT_SECONDS = 0.5
MAX_IDLE_SECONDS = 5.0
INGEST_WORKERS = 3  # each waits on its file's reader (a child process) most of the time
PROJECT_INGEST_WORKERS = INGEST_WORKERS - 1  # the most one project's files hold at once


class RunPoller:
    def __init__(self, workers: int = 4) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="run")
        self._ingest_pool = ThreadPoolExecutor(max_workers=INGEST_WORKERS, thread_name_prefix="ingest")
        self._in_flight: set[str] = set()
        self._ingesting: dict[str, str] = {}  # file key -> its project, while a worker has it
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()
        wake_local_poller.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._ingest_pool.shutdown(wait=False, cancel_futures=True)

    def run_forever(self) -> None:
        wait = 0.0
        while not self._stop.is_set():
            wake_local_poller.wait(wait)
            wake_local_poller.clear()
            try:
                self._dispatch_due()
                wait = self._until_next_due()
            except Exception:
                log.exception("poll failed; retrying")
                wait = IDLE_WAIT_SECONDS

    def _until_next_due(self) -> float:
        """How long to sleep unless woken: until the soonest queued run or file is due, at most
        MAX_IDLE_SECONDS; IDLE_WAIT_SECONDS if one is due already (busy workers hold it, or it waits
        for a free one: they wake the poller when they finish)."""
        soonest = min((due for due in (store.next_due_run(), next_due_file()) if due is not None), default=None)
        if soonest is None:
            return MAX_IDLE_SECONDS
        until = soonest - time.time()
        return IDLE_WAIT_SECONDS if until <= 0 else min(until, MAX_IDLE_SECONDS)

    def _dispatch_due(self) -> None:
        self._dispatch_ingestion()
        for ref, due_key in store.due_runs(time.time()):
            with self._lock:
                if ref.key in self._in_flight:
                    continue  # a worker has it; this entry waits for the worker to report
                self._in_flight.add(ref.key)
            self._pool.submit(self._advance, ref, due_key)

    def _dispatch_ingestion(self) -> None:
        """Hand due files to free ingestion workers, in turns across projects, each project to at most
        PROJECT_INGEST_WORKERS of them."""
        with self._lock:
            if len(self._ingesting) >= INGEST_WORKERS:
                return
        for ref in due_in_turns(time.time()):
            with self._lock:
                if len(self._ingesting) >= INGEST_WORKERS:
                    return
                held = sum(project == ref.project_id for project in self._ingesting.values())
                if ref.key in self._ingesting or held >= PROJECT_INGEST_WORKERS:
                    continue
                self._ingesting[ref.key] = ref.project_id
            self._ingest_pool.submit(self._ingest, ref)

    def _ingest(self, ref: FileRef) -> None:
        try:
            with request_scope():
                ingest(ref)
        except Exception:
            log.exception("ingesting %s failed; it will be retried", ref.key)
        finally:
            with self._lock:
                self._ingesting.pop(ref.key, None)
            wake_local_poller.set()  # the next file, at once

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
