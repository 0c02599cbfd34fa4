"""The embedded AWS of local mode: moto's DynamoDB and S3 (made atomic by atomic_moto), served over
HTTP on loopback by waitress, with its data kept in a journal on disk.

waitress rather than moto's own server: werkzeug's development server answers every request with
`Connection: close`, so each DynamoDB call paid a new TCP connection. waitress keeps connections
alive, so the API's botocore connection pool is reused.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelib.local import atomic_moto
from chalicelib.local.journal import Journal, attach

SERVER_THREADS = 8
LOOP_SLICE_SECONDS = 0.2  # an idle loop checks this often whether it should stop


def _keep_alive_channel() -> type:
    """waitress's channel, minus one bug: a request with `Expect: 100-continue` and an empty body
    (botocore's PutObject of an empty file) is answered `100 Continue` and then marked incomplete,
    so it waits for a body that never comes. An empty body has nothing to continue to."""
    from waitress.channel import HTTPChannel
    from waitress.parser import HTTPRequestParser

    class EmptyBodyParser(HTTPRequestParser):
        def parse_header(self, header_plus: bytes) -> None:
            super().parse_header(header_plus)
            if not self.chunked and self.content_length == 0:
                self.expect_continue = False

    return type("EmbeddedAwsChannel", (HTTPChannel,), {"parser_class": EmptyBodyParser})


@dataclass
class EmbeddedAws:
    endpoint: str
    journal: Journal | None
    _stopping: threading.Event
    _thread: threading.Thread

    def stop(self) -> None:
        """Stop serving, then write what is pending and checkpoint the journal."""
        self._stopping.set()
        self._thread.join(timeout=10)
        if self.journal is not None:
            self.journal.close()


def _serve(server: Any, stopping: threading.Event) -> None:
    """waitress's loop, in slices, so that the sockets are closed by the thread that polls them."""
    from waitress import wasyncore

    while not stopping.is_set():
        wasyncore.loop(timeout=LOOP_SLICE_SECONDS, map=server._map, use_poll=True, count=1)
    for dispatcher in list(server._map.values()):
        if dispatcher is not server.trigger:  # the server's close() closes its trigger
            dispatcher.close()
    server.task_dispatcher.shutdown()


def start(port: int = 0, data_dir: Path | None = None) -> EmbeddedAws:
    """Serve DynamoDB and S3 on 127.0.0.1:port (0: any free port), with data kept in data_dir
    (None: in memory only, gone when the process ends)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from waitress.server import create_server

    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "task queue depth" under bursts
    atomic_moto.install()
    journal = None
    if data_dir is not None:
        journal = Journal(data_dir)
        attach(journal)
        started = time.monotonic()
        items, objects = journal.load()
        if items or objects:
            print(
                f"Loaded {items} items and {objects} files from {journal.path} in {time.monotonic() - started:.1f} s",
                flush=True,
            )
    server = create_server(
        DomainDispatcherApplication(create_backend_app),
        host="127.0.0.1",
        port=port,
        threads=SERVER_THREADS,
        ident="spindle-embedded-aws",
        connection_limit=1000,
    )
    server.channel_class = _keep_alive_channel()  # type: ignore[union-attr]
    stopping = threading.Event()
    thread = threading.Thread(target=_serve, args=(server, stopping), name="embedded-aws", daemon=True)
    thread.start()
    endpoint = f"http://127.0.0.1:{server.effective_port}"  # type: ignore[union-attr]
    return EmbeddedAws(endpoint=endpoint, journal=journal, _stopping=stopping, _thread=thread)
