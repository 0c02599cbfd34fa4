"""Spindle's HTTP server: `chalice local`'s server over the app, with the gaps that matter to the SDK
closed. It serves `make dev`'s API (chalicelib/local/server.py) and, on AWS, the stream function behind
the Lambda Web Adapter (chalicelib/stream_function.py): one request handling for both.

- Responses a route streams (http/streams.py) are written chunk by chunk as they are produced.

- Nagle's algorithm is off (it added ~40 ms to every keep-alive request).
- Unknown routes answer 404 in the official error shape (chalice local says 403, which the SDK
  reports as PermissionDenied); unknown methods such as TRACE answer 405, not an HTML 501.
- An oversized body is refused with 413 before it is read.
- The listen backlog is 128, not socketserver's 5, so a burst of new connections is queued rather
  than reset.
- Reads from a client have deadlines (SPINDLE_DEV_READ_TIMEOUT_SECONDS, 30 s by default): a client
  that sends its request, or its body, too slowly, or that keeps an idle connection open, has the
  connection closed instead of holding a server thread forever. Writing a response is not bound by
  it; a client that reads nothing of a response for WRITE_TIMEOUT_SECONDS is dropped.
- A Content-Length other than plain digits (-1, +5, 1e3, two different values) is refused with 400.
- Cross-origin answers go only to the origins SPINDLE_CORS_ORIGINS names (`*` on AWS; none under
  make dev), so a web page a developer happens to visit cannot drive their local server.
"""

from __future__ import annotations

import io
import json
import re
import socket
import time
from collections.abc import Callable, Iterator
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from chalice import Chalice
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
from chalicelib.http import streams

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer

DISCARD_LIMIT_BYTES = 64 * 1024 * 1024
LISTEN_BACKLOG = 128
REQUEST_HEAD = "request line and headers"
# A body is given the read timeout plus a second for each 64 KiB: a 4 MiB upload over a slow link
# (512 kbit/s) still arrives, and a client trickling it in cannot hold its thread for long.
MIN_BODY_BYTES_PER_SECOND = 64 * 1024
# Writes are bound separately, and loosely: a client may read a large response slowly, but one that
# reads nothing of it for two minutes is gone.
WRITE_TIMEOUT_SECONDS = 120.0
# Content-Length is 1*DIGIT (RFC 9110): int() would also take "-1", "+5", " 1_000" or "١".
CONTENT_LENGTH = re.compile(r"[0-9]+")
# More digits than this is more than any limit here, and int() refuses over 4300 digits.
CONTENT_LENGTH_MAX_DIGITS = 18


class ClientTooSlow(TimeoutError):
    """A read from the client missed its deadline. A TimeoutError, so that http.server's
    handle_one_request closes the connection, as it does on a socket timeout."""

    def __init__(self, what: str, seconds: float, received: int) -> None:
        super().__init__(f"the {what} did not arrive within {seconds:g} s ({received} bytes did)")
        self.what = what
        self.received = received


class ClientReader(io.RawIOBase):
    """The client's side of the connection, read against a deadline for the whole request head (or
    body) rather than a socket timeout per read: that one restarts with every byte received, so a
    client trickling a byte every few seconds would hold its thread forever."""

    def __init__(self, connection: socket.socket) -> None:
        super().__init__()
        self._connection = connection
        self._deadline = 0.0  # nothing is read before the first expect()
        self._what = "request"
        self._seconds = 0.0
        self.received = 0  # bytes received since the last expect()

    def expect(self, what: str, seconds: float) -> None:
        """What is read next (`what`: a request head, or a body) must arrive within `seconds` from now."""
        self._deadline = time.monotonic() + seconds
        self._what, self._seconds = what, seconds
        self.received = 0

    def _too_slow(self) -> ClientTooSlow:
        return ClientTooSlow(self._what, self._seconds, self.received)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise self._too_slow()
        self._connection.settimeout(remaining)  # the writer sets its own before each write
        try:
            count = self._connection.recv_into(buffer)
        except TimeoutError:
            raise self._too_slow() from None
        self.received += count
        return count


class ClientWriter(io.BufferedIOBase):
    """socketserver's unbuffered writer, with the write timeout set before each write (the reader
    leaves whatever was left of its deadline on the socket)."""

    def __init__(self, connection: socket.socket) -> None:
        super().__init__()
        self._connection = connection

    def writable(self) -> bool:
        return True

    def write(self, data: ReadableBuffer) -> int:
        self._connection.settimeout(WRITE_TIMEOUT_SECONDS)
        self._connection.sendall(data)
        with memoryview(data) as view:
            return view.nbytes

    def fileno(self) -> int:
        return self._connection.fileno()


class SpindleHTTPServer(ThreadedHTTPServer):
    request_queue_size = LISTEN_BACKLOG
    daemon_threads = True


class SpindleRequestHandler(ChaliceRequestHandler):
    disable_nagle_algorithm = True
    routes: dict[str, dict[str, Any]] = {}  # the app's route table, set by serve()
    read_timeout_seconds = settings.dev_read_timeout_seconds

    def setup(self) -> None:
        # StreamRequestHandler.setup, with reads and writes that keep their own time limits (its
        # `timeout` is one socket timeout for both, restarted by every byte).
        self.connection = self.request
        if self.disable_nagle_algorithm:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
        self.reader = ClientReader(self.connection)
        self.rfile = io.BufferedReader(self.reader)
        self.wfile = ClientWriter(self.connection)

    def handle_one_request(self) -> None:
        # The next request line and headers, after however long the connection has been idle.
        self.reader.expect(REQUEST_HEAD, self.read_timeout_seconds)
        self.raw_requestline = b""  # not the previous request's line, should this one never come
        super().handle_one_request()

    def send_header(self, keyword: str, value: str) -> None:
        # Browsers may read answers only from the origins SPINDLE_CORS_ORIGINS names (make dev: none but
        # the page's own, which needs no header): the Access-Control headers Chalice writes for `*` are
        # kept for those alone, naming the origin, and dropped for any other page.
        if keyword.lower().startswith("access-control-") and "*" not in settings.cors_origins:
            origin = self.headers.get("Origin") if self.headers else None
            if origin is None or origin not in settings.cors_origins:
                return
            if keyword.lower() == "access-control-allow-origin":
                value = origin
                super().send_header("Vary", "Origin")
        super().send_header(keyword, value)

    def log_error(self, format: str, *args: Any) -> None:
        if args and isinstance(args[0], ClientTooSlow):
            if args[0].what == REQUEST_HEAD and args[0].received == 0:
                return  # an idle keep-alive connection closed: routine, not worth a line
            self.log_message("closed a connection that was too slow: %s", args[0])
            return
        super().log_error(format, *args)

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
        length = self._content_length()
        if length is None:
            self.close_connection = True  # where this body ends is unknown: nothing after it can be read
            self._send_api_error(InvalidRequest("Invalid Content-Length header.", code="invalid_request"))
            return
        # min(): a body over DISCARD_LIMIT_BYTES is not read at all (and a socket timeout must fit a timeval).
        self.reader.expect(
            "request body", self.read_timeout_seconds + min(length, DISCARD_LIMIT_BYTES) / MIN_BODY_BYTES_PER_SECOND
        )
        if length > max(settings.max_body_bytes, settings.max_upload_bytes):
            self._discard_body(length)
            self._send_api_error(
                PayloadTooLarge(
                    f"Request body too large: {length} bytes; the maximum is {settings.max_body_bytes} bytes.",
                    code="request_too_large",
                )
            )
            return
        # A route may answer with a stream (http/streams.py): written chunk by chunk as it is produced,
        # which needs HTTP/1.1's chunked transfer.
        streams.start_request(streaming=self.request_version == "HTTP/1.1")
        try:
            super()._generic_handle()
        finally:
            leftover = streams.take()  # a stream the response never got to (an error in between)
            if leftover is not None and hasattr(leftover, "close"):
                leftover.close()

    def _content_length(self) -> int | None:
        """The Content-Length, 0 when there is none; None when it is not one plain number."""
        values = {value.strip(" \t") for value in self.headers.get_all("content-length", [])}
        if not values:
            return 0
        if len(values) > 1:
            return None  # two lengths: which one the client meant cannot be known
        (value,) = values
        if not CONTENT_LENGTH.fullmatch(value):
            return None
        if len(value.lstrip("0")) > CONTENT_LENGTH_MAX_DIGITS:
            return 10**CONTENT_LENGTH_MAX_DIGITS  # over every limit: refused as too large
        return int(value.lstrip("0") or "0")  # int() counts leading zeros against its digit limit

    def _send_http_response_with_body(self, code: int, headers: dict[str, Any], body: str | bytes) -> None:
        chunks = streams.take()
        if chunks is not None and self.command != "HEAD":
            self._send_streamed(code, headers, chunks)
            return
        if self.command == "HEAD":  # headers only: a body here would be read as the next response
            encoded = body if isinstance(body, bytes) else body.encode("utf-8")
            self.send_response(code)
            self.send_header("Content-Length", str(len(encoded)))
            self.send_header("Content-Type", headers.pop("Content-Type", "application/json"))
            self._send_headers(headers)
            return
        super()._send_http_response_with_body(code, headers, body)

    def _send_streamed(self, code: int, headers: dict[str, Any], chunks: Iterator[str]) -> None:
        """Each chunk written and sent as the route produces it (chunked transfer encoding)."""
        self.send_response(code)
        self.send_header("Content-Type", headers.pop("Content-Type", "text/event-stream"))
        headers.pop("Content-Length", None)
        self.send_header("Transfer-Encoding", "chunked")
        self._send_headers(headers)
        try:
            for chunk in chunks:
                data = chunk.encode("utf-8")
                if data:  # an empty chunk would end the response
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.write(b"0\r\n\r\n")
        except OSError:  # the client went away; the run goes on without it
            self.close_connection = True
        finally:
            if hasattr(chunks, "close"):
                chunks.close()

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


def serve_app(app: Chalice, host: str, port: int, listening: Callable[[], None] | None = None) -> None:
    """Serve the app's routes on host:port until the process ends; `listening` is called once the port
    is bound (an OSError, EADDRINUSE, before that if it is taken)."""
    config = Config(chalice_stage="local", config_from_disk={"app_name": app.app_name})
    SpindleRequestHandler.routes = app.routes
    # As chalice local does: make `current_request` thread-local, or concurrent requests would read
    # each other's bodies and paths (Lambda serves one request per container, so only here).
    CustomLocalChalice.__bases__ = (LocalChalice, app.__class__)
    app.__class__ = CustomLocalChalice
    server = LocalDevServer(app, config, host, port, handler_cls=SpindleRequestHandler, server_cls=SpindleHTTPServer)
    if listening is not None:
        listening()
    print(f"Spindle serving on http://{host}:{port}/v1 (the Console: http://{host}:{port}/console)", flush=True)
    server.serve_forever()
