"""The local API process (`make dev`'s child): the tables and bucket made, deleted threads purged and
runs driven in the background, and the app served by Spindle's HTTP server (http/server.py)."""

from __future__ import annotations

import errno
import logging
import os
import signal
import sys
import threading
import time
from typing import Any

log = logging.getLogger("spindle.local")
# A deletion wakes the purger at once (storage/drivers.py); at rest it looks this often for deletions
# made by another process sharing the store.
PURGE_IDLE_SECONDS = 30.0
PURGE_PASS_SECONDS = 5.0  # a pass returns sooner only once the purge queue is empty
# Exit statuses and the environment the supervisor (chalicelib/local/__main__.py) gives this process.
PORT_IN_USE = 3
PARENT_PIPE = "SPINDLE_SUPERVISOR_PIPE_FD"


def _end_with_the_supervisor() -> None:
    """Stop this process when its supervisor is gone, however it went (kill -9, the OOM killer): the
    embedded store lives there, so every write would fail from then on, and the port would stay held.
    The supervisor holds the write end of a pipe whose read end is watched here, in a thread that
    sleeps in read() until end-of-file (no polling)."""
    descriptor = os.environ.get(PARENT_PIPE)
    if not descriptor:
        return

    def watch() -> None:
        try:
            while os.read(int(descriptor), 1):
                pass
        except OSError:
            pass
        print("The supervisor is gone: stopping the API.", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGTERM)  # what the supervisor itself sends to stop this process

    threading.Thread(target=watch, name="supervisor-watch", daemon=True).start()


def _purge_forever(stop: threading.Event) -> None:
    from chalicelib.domain.purge import purge_deleted_threads
    from chalicelib.storage.drivers import wake_local_purger

    wake_local_purger.set()  # one pass at start, for what a previous server left
    while not stop.is_set():
        wake_local_purger.wait(PURGE_IDLE_SECONDS)
        wake_local_purger.clear()
        if stop.is_set():
            return
        try:
            started = time.monotonic()
            purge_deleted_threads(seconds=PURGE_PASS_SECONDS)
            if time.monotonic() - started >= PURGE_PASS_SECONDS:  # stopped by its deadline: go on at once
                wake_local_purger.set()
        except Exception:
            log.exception("purge pass failed; retrying")
            stop.wait(1.0)
            wake_local_purger.set()


def serve(host: str, port: int) -> None:
    from chalicelib.storage.files import ensure_bucket
    from chalicelib.storage.models import create_tables

    create_tables()
    ensure_bucket()
    sys.path.insert(0, os.getcwd())
    from app import app
    from chalicelib.http.server import serve_app
    from chalicelib.local.poller import RunPoller
    from chalicelib.storage.drivers import wake_local_purger

    stop = threading.Event()
    poller = RunPoller()

    def background_work() -> None:  # once the port is this process's: a refused start does nothing
        threading.Thread(target=_purge_forever, args=(stop,), name="purge", daemon=True).start()
        threading.Thread(target=poller.run_forever, name="run-poller", daemon=True).start()

    try:
        serve_app(app, host, port, listening=background_work)
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            raise
        from chalicelib.local.ports import holder_of

        holder = holder_of(port)
        print(
            f"Port {port} is in use{f' by {holder}' if holder else ''}. Stop it, or serve on another port "
            "(PORT=9000 make dev).",
            file=sys.stderr,
            flush=True,
        )
        sys.exit(PORT_IN_USE)
    finally:
        stop.set()
        wake_local_purger.set()
        poller.stop()


def main(argv: list[str] | None = None) -> Any:
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "8000"))
    _end_with_the_supervisor()
    serve(host, port)


if __name__ == "__main__":
    main()
