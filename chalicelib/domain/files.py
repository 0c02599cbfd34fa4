"""Files: upload, list, retrieve, delete, download — the OpenAIFile object — and the rule that a
message, thread or assistant may only name files of its own project."""

from __future__ import annotations

import functools
import json
import mimetypes
import threading
import time
from collections.abc import Iterable
from typing import Any

from chalicelib.config import settings
from chalicelib.domain import vector_store_files
from chalicelib.domain.errors import Conflict, InvalidRequest, NotFound, PayloadTooLarge, not_found
from chalicelib.domain.ids import is_valid_id, new_id
from chalicelib.domain.pagination import ListQuery, render_list
from chalicelib.storage import files as store
from chalicelib.storage.records import Page

PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
FORM_FIELDS = ("file", "purpose", "expires_after", "expires_after[anchor]", "expires_after[seconds]")
EXPIRY_SECONDS = (3600, 2592000)
MAX_FILENAME_LENGTH = 255


def _expires_at(form: dict[str, str], created_at: int) -> int | None:
    anchor, seconds = form.get("expires_after[anchor]"), form.get("expires_after[seconds]")
    if "expires_after" in form:  # the object as one JSON field, as some clients send it
        try:
            given = json.loads(form["expires_after"])
        except ValueError:
            given = None
        if not isinstance(given, dict):
            raise InvalidRequest(
                "Invalid 'expires_after': expected an object.", param="expires_after", code="invalid_type"
            )
        anchor, seconds = given.get("anchor"), str(given.get("seconds"))
    if anchor is None and seconds is None:
        return None
    if anchor != "created_at":
        raise InvalidRequest(
            "Invalid value for 'expires_after.anchor': expected 'created_at'.",
            param="expires_after.anchor",
            code="invalid_value",
        )
    low, high = EXPIRY_SECONDS
    if seconds is None or not seconds.isascii() or not seconds.isdigit() or not low <= int(seconds) <= high:
        raise InvalidRequest(
            f"Invalid 'expires_after.seconds': expected an integer between {low} and {high}.",
            param="expires_after.seconds",
            code="invalid_value",
        )
    return created_at + int(seconds)


def create_file(project_id: str, form: dict[str, str], filename: str | None, content: bytes | None) -> dict[str, Any]:
    """`form` holds the text fields of the multipart body; `content` the `file` part, if any."""
    for name in form:
        if name not in FORM_FIELDS:
            raise InvalidRequest(
                f"Unrecognized request argument supplied: {name}", param=name, code="unknown_parameter"
            )
    if content is None:
        raise InvalidRequest("Missing required parameter: 'file'.", param="file", code="missing_required_parameter")
    purpose = form.get("purpose")
    if purpose is None:
        raise InvalidRequest(
            "Missing required parameter: 'purpose'.", param="purpose", code="missing_required_parameter"
        )
    if purpose not in PURPOSES:
        supported = ", ".join(f"'{p}'" for p in PURPOSES)
        raise InvalidRequest(
            f"Invalid value: '{purpose}'. Supported values are: {supported}.", param="purpose", code="invalid_value"
        )
    if len(content) > settings.max_file_bytes:
        raise PayloadTooLarge(
            f"File too large: {len(content)} bytes; Spindle accepts files of at most {settings.max_file_bytes} bytes.",
            param="file",
            code="file_too_large",
        )
    if filename is not None and len(filename) > MAX_FILENAME_LENGTH:
        raise InvalidRequest(
            f"Invalid 'file': the filename is {len(filename)} characters; at most {MAX_FILENAME_LENGTH}.",
            param="file",
            code="filename_too_long",
        )
    created_at = int(time.time())
    file: dict[str, Any] = {
        "id": new_id("file"),
        "object": "file",
        "bytes": len(content),
        "created_at": created_at,
        "filename": filename or "upload",
        "purpose": purpose,
        "status": "processed",
    }
    expires_at = _expires_at(form, created_at)
    if expires_at is not None:
        file["expires_at"] = expires_at
    store.save(project_id, file, content)
    return file


def create_output_file(project_id: str, filename: str, content: bytes) -> dict[str, Any]:
    """A file a tool made for the user (code_interpreter's plots and files): purpose assistants_output."""
    file = {
        "id": new_id("file"),
        "object": "file",
        "bytes": len(content),
        "created_at": int(time.time()),
        "filename": filename[:MAX_FILENAME_LENGTH],
        "purpose": "assistants_output",
        "status": "processed",
    }
    store.save(project_id, file, content)
    return file


def is_live(file: dict[str, Any]) -> bool:
    return _live(file) is not None


def _live(file: dict[str, Any] | None) -> dict[str, Any] | None:
    """The file unless it has expired: from `expires_at` on, a file is gone as if deleted (retrieve,
    list, download, references and runs alike), as the official API deletes it then."""
    if file is not None and file.get("expires_at") is not None and file["expires_at"] <= time.time():
        return None
    return file


def readable_file(project_id: str, file_id: str) -> tuple[dict[str, Any], bytes] | None:
    """A live file and its bytes, for a run that shows it to the model; None if deleted or expired."""
    file = _live(store.get(project_id, file_id))
    content = store.content(project_id, file_id) if file else None
    return None if file is None or content is None else (file, content)


def get_file(project_id: str, file_id: str) -> dict[str, Any]:
    file = _live(store.get(project_id, file_id)) if is_valid_id("file", file_id) else None
    if file is None:
        raise not_found("file", file_id)
    return file


def file_content(project_id: str, file_id: str) -> tuple[bytes, str]:
    """The file's bytes and their media type, guessed from its filename (`application/octet-stream`
    when the name says nothing)."""
    file = get_file(project_id, file_id)
    content = store.content(project_id, file_id)
    if content is None:
        raise not_found("file", file_id)
    media_type, _ = _media_types().guess_type(file.get("filename") or "", strict=False)
    return content, media_type or "application/octet-stream"


@functools.cache
def _media_types() -> mimetypes.MimeTypes:
    """Python's own table of media types, not the host's /etc/mime.types: a file is served with the
    same type by `make dev` and by Lambda. Made on the first download (it is not needed before)."""
    with _MEDIA_TYPES_MADE:
        return mimetypes.MimeTypes(filenames=())


_MEDIA_TYPES_MADE = threading.Lock()  # the module's first use reads the host's table: once at a time


DELETE_ATTEMPTS = 5


def delete_file(project_id: str, file_id: str) -> dict[str, Any]:
    """Delete the file and take it out of every vector store it is in, as OpenAI's deleteFile does:
    out of the stores first, then the file, which holds only if no add to a store came meanwhile (else
    that store is left too, and the delete tried again). No Scan: the file records its stores."""
    if not is_valid_id("file", file_id):
        raise not_found("file", file_id)
    for _ in range(DELETE_ATTEMPTS):
        adds = store.store_adds(project_id, file_id)
        if adds is None:
            raise not_found("file", file_id)
        vector_store_files.remove_from_stores(project_id, file_id, sorted(adds.vector_store_ids))
        if store.delete(project_id, file_id, adds):
            return {"id": file_id, "object": "file", "deleted": True}
    raise Conflict("The file is being added to vector stores by other requests; try again.", code="conflict")


def list_files(project_id: str, query: ListQuery, purpose: str | None) -> dict[str, Any]:
    page = store.list_page(project_id, query, purpose)
    # Expired files are filtered from the one Query's page (until deleted, they are skipped by
    # cursors too), so a page can hold fewer than `limit` files while `has_more` is true.
    live = Page(items=[file for file in page.items if _live(file)], has_more=page.has_more)
    return render_list(live, lambda file: file)


def check_references(project_id: str, references: Iterable[tuple[str, str]]) -> None:
    """Every `(file_id, param)` must name a live file of the project: else 404, and nothing is stored."""
    wanted = list(references)
    if not wanted:
        return
    stored = store.get_many(project_id, {file_id for file_id, _ in wanted if is_valid_id("file", file_id)})
    found = {file_id for file_id, file in stored.items() if _live(file)}
    for file_id, param in wanted:
        if file_id not in found:
            raise NotFound(f"No file found with id '{file_id}'.", param=param)


def message_file_references(request: dict[str, Any], param: str) -> list[tuple[str, str]]:
    """The files a CreateMessageRequest names: attachments and image_file parts."""
    references = [
        (attachment["file_id"], f"{param}attachments[{index}].file_id")
        for index, attachment in enumerate(request.get("attachments") or [])
        if "file_id" in attachment
    ]
    content = request.get("content")
    if isinstance(content, list):
        references += [
            (part["image_file"]["file_id"], f"{param}content[{index}].image_file.file_id")
            for index, part in enumerate(content)
            if part.get("type") == "image_file"
        ]
    return references


def messages_file_references(requests: list[dict[str, Any]], param: str) -> list[tuple[str, str]]:
    """The files a list of CreateMessageRequests names, each param under `param[index].`."""
    return [
        reference
        for index, request in enumerate(requests)
        for reference in message_file_references(request, f"{param}[{index}].")
    ]


def tool_resource_references(resources: dict[str, Any] | None, param: str) -> list[tuple[str, str]]:
    file_ids = ((resources or {}).get("code_interpreter") or {}).get("file_ids") or []
    return [(file_id, f"{param}.code_interpreter.file_ids[{index}]") for index, file_id in enumerate(file_ids)]
