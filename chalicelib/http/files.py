"""/v1/files: upload (multipart), list, retrieve, delete, download."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.config import settings
from chalicelib.domain import files
from chalicelib.domain.errors import PayloadTooLarge
from chalicelib.domain.pagination import parse_list_query
from chalicelib.http.multipart import parse_form
from chalicelib.http.routing import Call, Reply, api_route

blueprint = Blueprint(__name__)

FILE = "/v1/files/{file_id}"


def _multipart(call: Call) -> tuple[dict[str, str], str | None, bytes | None]:
    """The text fields, and the `file` part's name and bytes, of a multipart/form-data body."""
    body = call.request.raw_body or b""
    raw = body if isinstance(body, bytes) else body.encode("utf-8")  # (chalice's type says it may be str)
    if len(raw) > settings.max_upload_bytes:
        raise PayloadTooLarge(
            f"Request body too large: {len(raw)} bytes; files of at most {settings.max_file_bytes} bytes are accepted.",
            code="request_too_large",
        )
    return parse_form(raw, call.request.headers.get("content-type", ""))


@api_route(blueprint, "/v1/files", "POST", content_types=["multipart/form-data"])
def create_file(call: Call) -> dict[str, Any]:
    form, filename, content = _multipart(call)
    return files.create_file(call.project_id, form, filename, content)


@api_route(blueprint, "/v1/files", "GET")
def list_files(call: Call) -> dict[str, Any]:
    params = call.query()
    return files.list_files(call.project_id, parse_list_query(params, "file"), params.get("purpose"))


@api_route(blueprint, FILE, "GET")
def retrieve_file(call: Call, file_id: str) -> dict[str, Any]:
    return files.get_file(call.project_id, file_id)


@api_route(blueprint, FILE, "DELETE")
def delete_file(call: Call, file_id: str) -> dict[str, Any]:
    return files.delete_file(call.project_id, file_id)


@api_route(blueprint, FILE + "/content", "GET")
def download_file(call: Call, file_id: str) -> Reply:
    content, media_type = files.file_content(call.project_id, file_id)
    # bytes for any Accept (http/binary.py); a browser must not read an HTML or SVG file as a page of
    # the API's origin (the Console's)
    headers = {"Content-Type": media_type, "X-Content-Type-Options": "nosniff"}
    return Reply(content, headers, raw=True)
