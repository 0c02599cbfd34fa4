"""Middleware for every request: one structured log line each (chalicelib/observability.py), and errors
that Chalice answers by itself (wrong method, wrong media type, its own 500s) re-rendered in the
official error shape, with `x-request-id` on every response."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from chalice import Response
from chalice.app import Request

from chalicelib.domain.errors import InvalidRequest, MethodNotAllowed, UnsupportedMediaType
from chalicelib.http.routing import error_response, request_id_of, server_error_response
from chalicelib.observability import log_line, request_scope, since


def logged(event: Request, get_response: Callable[[Request], Response]) -> Response:
    """Log the request as one line: its route (ids stay out of it), the status and the duration.
    Run transitions made while it is served carry the same request id."""
    started = time.perf_counter()
    params = getattr(event, "uri_params", None) or {}
    operation = f"{getattr(event, 'method', '?')} {getattr(event, 'path', '?')}"
    status = 500
    with request_scope(request_id_of(event)):
        try:
            response = get_response(event)
            status = response.status_code
            return response
        finally:
            log_line(
                operation,
                str(status),
                since(started),
                thread_id=params.get("thread_id"),
                run_id=params.get("run_id"),
            )


def openai_error_shape(event: Request, get_response: Callable[[Request], Response]) -> Response:
    request_id = request_id_of(event)
    response = get_response(event)
    if response.status_code >= 400 and _is_chalice_error(response.body):
        response = _translate(event, response, request_id)
    response.headers.setdefault("x-request-id", request_id)
    return response


def _is_chalice_error(body: object) -> bool:
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return False
    return isinstance(body, dict) and "Code" in body and "error" not in body


def _translate(event: Request, response: Response, request_id: str) -> Response:
    method = getattr(event, "method", "?")
    path = (getattr(event, "context", None) or {}).get("path") or getattr(event, "path", "?")
    if response.status_code == 405:
        translated = error_response(MethodNotAllowed(f"Invalid method for URL ({method} {path})."), request_id)
        if "Allow" in response.headers:
            translated.headers["Allow"] = response.headers["Allow"]
        return translated
    if response.status_code == 415:
        content_type = event.headers.get("content-type", "")
        return error_response(
            UnsupportedMediaType(
                f"Unsupported Content-Type '{content_type}': send the request body as application/json.",
                code="unsupported_media_type",
            ),
            request_id,
        )
    if 400 <= response.status_code < 500:
        # e.g. a binary download asked for without an Accept header that admits bytes
        message = _chalice_message(response.body) or "The request was not accepted."
        error = InvalidRequest(message)
        error.status = response.status_code
        return error_response(error, request_id)
    return server_error_response(request_id)


def _chalice_message(body: object) -> str | None:
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return None
    return body.get("Message") if isinstance(body, dict) else None
