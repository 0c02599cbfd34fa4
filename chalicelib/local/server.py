"""The local API process: `chalice local`'s server, with the gaps that matter to the SDK closed.

- Nagle's algorithm is off (it added ~40 ms to every keep-alive request).
- Unknown routes answer 404 in the official error shape (chalice local says 403, which the SDK
  reports as PermissionDenied); unknown methods such as TRACE answer 405, not an HTML 501.
- An oversized body is refused with 413 before it is read.
- The listen backlog is 128, not socketserver's 5, so a burst of new connections is queued rather
  than reset.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from http import HTTPStatus
from typing import Any

from chalice.config import Config
from chalice.local import (
    ChaliceRequestHandler,
    CustomLocalChalice,
    LocalChalice,
    LocalDevServer,
    LocalGatewayException,
    RouteMatcher,
    ThreadedHTTPServer,
)

from chalicelib.config import settings
from chalicelib.domain.errors import ApiError, InvalidRequest, MethodNotAllowed, NotFound, PayloadTooLarge

log = logging.getLogger("spindle.local")
PURGE_INTERVAL_SECONDS = 1.0
DISCARD_LIMIT_BYTES = 64 * 1024 * 1024
MULTIPART_OVERHEAD_BYTES = 64 * 1024
LISTEN_BACKLOG = 128


class SpindleHTTPServer(ThreadedHTTPServer):
    request_queue_size = LISTEN_BACKLOG
    daemon_threads = True


class SpindleRequestHandler(ChaliceRequestHandler):
    disable_nagle_algorithm = True
    routes: dict[str, dict[str, Any]] = {}  # the app's route table, set by serve()

    def _send_api_error(self, error: ApiError, allow: str | None = None) -> None:
        body = json.dumps(error.body()).encode("utf-8")
        self.send_response(error.status)
        if allow:
            self.send_header("Allow", allow)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _generic_handle(self) -> None:
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            self.close_connection = True  # chalice local cannot read a chunked body
            error = InvalidRequest("Send the request body with a Content-Length.", code="length_required")
            error.status = HTTPStatus.LENGTH_REQUIRED
            self._send_api_error(error)
            return
        try:
            length = int(self.headers.get("content-length", "0"))
        except ValueError:
            self.close_connection = True
            self._send_api_error(InvalidRequest("Invalid Content-Length header.", code="invalid_request"))
            return
        if length > max(settings.max_body_bytes, settings.max_file_bytes + MULTIPART_OVERHEAD_BYTES):
            self._discard_body(length)
            self._send_api_error(
                PayloadTooLarge(
                    f"Request body too large: {length} bytes; the maximum is {settings.max_body_bytes} bytes.",
                    code="request_too_large",
                )
            )
            return
        super()._generic_handle()

    def _send_http_response_with_body(self, code: int, headers: dict[str, Any], body: str | bytes) -> None:
        if self.command == "HEAD":  # headers only: a body here would be read as the next response
            encoded = body if isinstance(body, bytes) else body.encode("utf-8")
            self.send_response(code)
            self.send_header("Content-Length", str(len(encoded)))
            self.send_header("Content-Type", headers.pop("Content-Type", "application/json"))
            self._send_headers(headers)
            return
        super()._send_http_response_with_body(code, headers, body)

    def _discard_body(self, length: int) -> None:
        """Read an oversized body away so the client sees the 413 rather than a broken pipe."""
        if length > DISCARD_LIMIT_BYTES:
            self.close_connection = True  # the unread body must not be taken for the next request
            return
        while length > 0:
            chunk = self.rfile.read(min(length, 65536))
            if not chunk:
                break
            length -= len(chunk)

    def _send_error_response(self, error: LocalGatewayException) -> None:
        # The only gateway error without an authorizer: no route matches the path.
        path = self.path.split("?", 1)[0]
        self._send_api_error(NotFound(f"Invalid URL ({self.command} {path})", code="unknown_url"))

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (bad request line, unsupported method, ...) in the official shape."""
        self.close_connection = True
        if code == HTTPStatus.NOT_IMPLEMENTED and self.command:
            self._send_method_not_allowed()
            return
        error = InvalidRequest(message or HTTPStatus(code).phrase)
        error.status = code
        self._send_api_error(error)

    def _send_method_not_allowed(self) -> None:
        try:
            route = RouteMatcher(list(self.routes)).match_route(self.path).route
        except ValueError:
            path = self.path.split("?", 1)[0]
            self._send_api_error(NotFound(f"Invalid URL ({self.command} {path})", code="unknown_url"))
            return
        allowed = ", ".join(self.routes[route])
        self._send_api_error(MethodNotAllowed(f"Invalid method for URL ({self.command} {self.path})."), allowed)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _generic_handle


def _purge_forever(stop: threading.Event) -> None:
    from chalicelib.domain.purge import purge_deleted_threads

    while not stop.wait(PURGE_INTERVAL_SECONDS):
        try:
            purge_deleted_threads(seconds=5)
        except Exception:
            log.exception("purge pass failed; retrying")


def serve(host: str, port: int) -> None:
    from chalicelib.storage.models import create_tables

    create_tables()
    from chalicelib.storage.files import ensure_bucket

    ensure_bucket()
    sys.path.insert(0, os.getcwd())
    from app import app
    from chalicelib.local.poller import RunPoller

    stop = threading.Event()
    threading.Thread(target=_purge_forever, args=(stop,), name="purge", daemon=True).start()
    poller = RunPoller()
    threading.Thread(target=poller.run_forever, name="run-poller", daemon=True).start()
    config = Config(chalice_stage="local", config_from_disk={"app_name": "spindle"})
    SpindleRequestHandler.routes = app.routes
    # As chalice local does: make `current_request` thread-local, or concurrent requests would read
    # each other's bodies and paths (Lambda serves one request per container, so only here).
    CustomLocalChalice.__bases__ = (LocalChalice, app.__class__)
    app.__class__ = CustomLocalChalice
    server = LocalDevServer(app, config, host, port, handler_cls=SpindleRequestHandler, server_cls=SpindleHTTPServer)
    print(f"Spindle serving on http://{host}:{port}/v1", flush=True)
    try:
        server.serve_forever()
    finally:
        stop.set()
        poller.stop()


def main(argv: list[str] | None = None) -> Any:
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "8000"))
    serve(host, port)


if __name__ == "__main__":
    main()
