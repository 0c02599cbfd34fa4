"""The local API process (`make dev`'s child): the tables and bucket made, deleted threads purged and
runs driven in the background, and the app served by Spindle's HTTP server (http/server.py)."""

from __future__ import annotations

import logging
import os
import sys
import threading
from typing import Any

log = logging.getLogger("spindle.local")
PURGE_INTERVAL_SECONDS = 1.0


def _purge_forever(stop: threading.Event) -> None:
    from chalicelib.domain.purge import purge_deleted_threads

    while not stop.wait(PURGE_INTERVAL_SECONDS):
        try:
            purge_deleted_threads(seconds=5)
        except Exception:
            log.exception("purge pass failed; retrying")


def serve(host: str, port: int) -> None:
    from chalicelib.storage.files import ensure_bucket
    from chalicelib.storage.models import create_tables

    create_tables()
    ensure_bucket()
    sys.path.insert(0, os.getcwd())
    from app import app
    from chalicelib.http.server import serve_app
    from chalicelib.local.poller import RunPoller

    stop = threading.Event()
    threading.Thread(target=_purge_forever, args=(stop,), name="purge", daemon=True).start()
    poller = RunPoller()
    threading.Thread(target=poller.run_forever, name="run-poller", daemon=True).start()
    try:
        serve_app(app, host, port)
    finally:
        stop.set()
        poller.stop()


def main(argv: list[str] | None = None) -> Any:
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "8000"))
    serve(host, port)


if __name__ == "__main__":
    main()
