"""The HTTP edge: authenticate, parse, call the domain, render JSON or the official error shape."""

from __future__ import annotations

import functools
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chalice import Blueprint, CORSConfig, Response
from chalice.app import Request

from chalicelib.config import settings
from chalicelib.domain.auth import project_for
from chalicelib.domain.errors import ApiError, InvalidRequest, PayloadTooLarge, error_body
from chalicelib.domain.validation import parse_json_object
from chalicelib.http.binary import BytesResponse

log = logging.getLogger("spindle")

JSON_HEADERS = {"Content-Type": "application/json"}

# Browser clients send the SDK's own headers; a preflight must admit each by name (no wildcards).
SDK_HEADERS = [
    "Authorization",
    "Content-Type",
    "Accept",
    "OpenAI-Beta",
    "OpenAI-Organization",
    "OpenAI-Project",
    "X-Stainless-Lang",
    "X-Stainless-Package-Version",
    "X-Stainless-OS",
    "X-Stainless-Arch",
    "X-Stainless-Runtime",
    "X-Stainless-Runtime-Version",
    "X-Stainless-Async",
    "X-Stainless-Retry-Count",
    "X-Stainless-Read-Timeout",
    "X-Stainless-Timeout",
    "X-Stainless-Helper-Method",
    "X-Stainless-Poll-Helper",
    "X-Stainless-Custom-Poll-Interval",
    "X-Stainless-Raw-Response",
    "X-Stainless-Stream-Helper",
    "X-Stainless-Custom-Event-Handler",
]
CORS = CORSConfig(
    allow_origin="*",
    allow_headers=SDK_HEADERS,
    expose_headers=["x-request-id", "openai-poll-after-ms", "retry-after", "retry-after-ms"],
    max_age=600,
)


@dataclass(frozen=True)
class Reply:
    """A view's answer when it carries headers besides the JSON body."""

    body: Any
    headers: dict[str, str]
    raw: bool = False  # the body is already text (a stream) or bytes (a download), not an object to encode


@dataclass(frozen=True)
class Call:
    """What a view gets: the caller's project and the parsed request."""

    project_id: str
    request: Request

    def json(self, required: bool = False) -> dict[str, Any]:
        """The JSON object sent. An empty body is `{}`, except where the official contract requires a
        body (`required`): there it is refused."""
        raw = self.request.raw_body or b""
        if isinstance(raw, str):  # chalice types it so; API Gateway and the dev server give bytes
            raw = raw.encode("utf-8")
        if required and not raw.strip():
            raise InvalidRequest("This request needs a JSON body (`{}` at least).", code="missing_body")
        if len(raw) > settings.max_body_bytes:
            raise PayloadTooLarge(
                f"Request body too large: {len(raw)} bytes; the maximum is {settings.max_body_bytes} bytes.",
                code="request_too_large",
            )
        return parse_json_object(raw)

    def query(self) -> dict[str, str]:
        return dict(self.request.query_params or {})

    def query_list(self, name: str) -> list[str]:
        """Every value of a repeated query parameter (`include[]=a&include[]=b`)."""
        params = self.request.query_params
        return list(params.getlist(name)) if params and name in params else []


def request_id_of(request: Request | None) -> str:
    """API Gateway's request id; where there is none (the dev server), one made up once per request."""
    context = getattr(request, "context", None)
    if not isinstance(context, dict):
        return "req_" + uuid.uuid4().hex
    return "req_" + str(context.setdefault("requestId", uuid.uuid4().hex)).replace("-", "")


def json_response(body: Any, status: int = 200, request_id: str | None = None) -> Response:
    headers: dict[str, str | list[str]] = dict(JSON_HEADERS)
    if request_id:
        headers["x-request-id"] = request_id
    return Response(body=json.dumps(body, ensure_ascii=False), status_code=status, headers=headers)


def error_response(error: ApiError, request_id: str | None = None) -> Response:
    return json_response(error.body(), error.status, request_id)


def server_error_response(request_id: str) -> Response:
    body = error_body(
        f"The server had an error while processing your request. Sorry about that! (request id {request_id})",
        "server_error",
    )
    return json_response(body, 500, request_id)


def api_route(
    blueprint: Blueprint, path: str, method: str, content_types: list[str] | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register `view(call, **path_params) -> dict | Reply` so that it only ever answers JSON."""

    def register(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def handler(**path_params: str) -> Response:
            request = blueprint.current_request
            request_id = request_id_of(request)
            try:
                call = Call(project_for(request.headers.get("authorization")), request)
                result = view(call, **path_params)
                if isinstance(result, Reply):
                    if result.raw:
                        kind = BytesResponse if isinstance(result.body, bytes) else Response
                        return kind(
                            body=result.body, status_code=200, headers={**result.headers, "x-request-id": request_id}
                        )
                    response = json_response(result.body, 200, request_id)
                    response.headers.update(result.headers)
                    return response
                return json_response(result, 200, request_id)
            except ApiError as error:
                return error_response(error, request_id)
            except Exception:
                log.exception("unhandled error", extra={"request_id": request_id, "path": path})
                return server_error_response(request_id)

        blueprint.route(path, methods=[method], content_types=content_types or ["application/json"], cors=CORS)(handler)
        return view

    return register
