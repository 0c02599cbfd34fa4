"""A vector store's files: add, retrieve, update attributes, remove, list, and their parsed content —
the VectorStoreFileObject of the official API. A file added is `in_progress` until the ingestion
worker (chalicelib/ingest/worker.py) has read, chunked and stored it: then `completed`, or `failed`
with `last_error`."""

from __future__ import annotations

import time
from typing import Any

from chalicelib.domain.errors import InvalidRequest, NotFound, not_found
from chalicelib.domain.ids import is_valid_id
from chalicelib.domain.pagination import ListQuery, render_list
from chalicelib.domain.validation import validate
from chalicelib.domain.vector_stores import get_vector_store
from chalicelib.storage import drivers
from chalicelib.storage import files as file_store
from chalicelib.storage import vector_store_files as store
from chalicelib.storage.vector_store_files import FileRef, StoredFile

# The official defaults and bounds of static chunking; `auto` is 800 tokens with 400 overlapping.
AUTO_CHUNKING = {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400}
MIN_CHUNK_TOKENS, MAX_CHUNK_TOKENS = 100, 4096
STATUSES = ("in_progress", "completed", "failed", "cancelled")


def chunking_strategy(requested: dict[str, Any] | None, param: str = "chunking_strategy") -> dict[str, Any]:
    """The strategy as the file object shows it (`auto` is shown as the static sizes it stands for).
    The schema has checked the shape; the overlap's bound is stated in prose, so it is checked here."""
    if requested is None or requested.get("type") == "auto":
        return {"type": "static", "static": dict(AUTO_CHUNKING)}
    static = requested["static"]
    size, overlap = static["max_chunk_size_tokens"], static["chunk_overlap_tokens"]
    if overlap < 0 or overlap > size // 2:
        raise InvalidRequest(
            f"Invalid '{param}.static.chunk_overlap_tokens': {overlap} must be from 0 to half of "
            f"max_chunk_size_tokens ({size // 2}).",
            param=f"{param}.static.chunk_overlap_tokens",
            code="invalid_value",
        )
    return {"type": "static", "static": {"max_chunk_size_tokens": size, "chunk_overlap_tokens": overlap}}


def render(stored: StoredFile) -> dict[str, Any]:
    rendered: dict[str, Any] = {
        "id": stored.ref.file_id,
        "object": "vector_store.file",
        "usage_bytes": stored.usage_bytes,
        "created_at": stored.created_at,
        "vector_store_id": stored.ref.vector_store_id,
        "status": stored.status,
        "last_error": stored.last_error,
        "chunking_strategy": stored.chunking_strategy,
        "attributes": stored.attributes,
    }
    return rendered


def _ref(project_id: str, vector_store_id: str, file_id: str) -> FileRef:
    """The file's key starts with the caller's project: another project's store or file is not found."""
    if not is_valid_id("vector_store", vector_store_id):
        raise not_found("vector store", vector_store_id)
    if not is_valid_id("file", file_id):
        raise not_found("vector store file", file_id)
    return FileRef(project_id, vector_store_id, file_id)


def add_file(project_id: str, vector_store_id: str, body: dict[str, Any]) -> dict[str, Any]:
    validate("CreateVectorStoreFileRequest", body)
    vector_store = get_vector_store(project_id, vector_store_id)
    file_id = body["file_id"]
    file = file_store.get(project_id, file_id) if is_valid_id("file", file_id) else None
    if file is None:
        raise NotFound(f"No file found with id '{file_id}'.", param="file_id")
    strategy = chunking_strategy(body.get("chunking_strategy"))
    if vector_store["status"] == "expired":
        raise InvalidRequest(f"Vector store {vector_store_id} has expired; files cannot be added to it.")
    now = int(time.time())
    stored = store.add(
        StoredFile(
            ref=FileRef(project_id, vector_store_id, file_id),
            created_at=now,
            status="in_progress",
            usage_bytes=0,
            last_error=None,
            chunking_strategy=strategy,
            attributes=body.get("attributes"),
            filename=file["filename"],
        ),
        due_at=now,
    )
    if stored is None:  # the store was deleted meanwhile
        raise not_found("vector store", vector_store_id)
    drivers.ingestion_changed()
    return render(stored)


def get_file(project_id: str, vector_store_id: str, file_id: str) -> dict[str, Any]:
    stored = store.get(_ref(project_id, vector_store_id, file_id))
    if stored is None:
        raise not_found("vector store file", file_id)
    return render(stored)


def update_attributes(project_id: str, vector_store_id: str, file_id: str, body: dict[str, Any]) -> dict[str, Any]:
    validate("UpdateVectorStoreFileAttributesRequest", body)
    stored = store.set_attributes(_ref(project_id, vector_store_id, file_id), body["attributes"])
    if stored is None:
        raise not_found("vector store file", file_id)
    return render(stored)


def remove_file(project_id: str, vector_store_id: str, file_id: str) -> dict[str, Any]:
    if not store.remove(_ref(project_id, vector_store_id, file_id)):
        raise not_found("vector store file", file_id)
    return {"id": file_id, "object": "vector_store.file.deleted", "deleted": True}


def list_files(project_id: str, vector_store_id: str, query: ListQuery, status: str | None) -> dict[str, Any]:
    if status is not None and status not in STATUSES:
        raise InvalidRequest(
            f"Invalid value: '{status}'. Supported values are: {', '.join(repr(s) for s in STATUSES)}.",
            param="filter",
            code="invalid_value",
        )
    get_vector_store(project_id, vector_store_id)
    return render_list(store.list_page(project_id, vector_store_id, query, status), render)


def file_content(project_id: str, vector_store_id: str, file_id: str) -> dict[str, Any]:
    """The file's text as ingestion parsed it, in one page."""
    ref = _ref(project_id, vector_store_id, file_id)
    stored = store.get(ref)
    if stored is None:
        raise not_found("vector store file", file_id)
    parsed = store.load_chunks(ref) if stored.status == "completed" else None
    if parsed is None:
        raise InvalidRequest(
            f"File {file_id} has no parsed content: its status is '{stored.status}'.", code="file_not_ready"
        )
    return {
        "object": "vector_store.file_content.page",
        "data": [{"type": "text", "text": parsed["text"]}],
        "has_more": False,
        "next_page": None,
    }
