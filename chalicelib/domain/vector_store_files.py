"""A vector store's files: add, retrieve, update attributes, remove, list, and their parsed content —
the VectorStoreFileObject of the official API. A file added is `in_progress` until the ingestion
worker (chalicelib/ingest/worker.py) has read, chunked and stored it: then `completed`, or `failed`
with `last_error`."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from chalicelib.domain import vector_stores
from chalicelib.domain.errors import InvalidRequest, NotFound, not_found
from chalicelib.domain.ids import is_valid_id, new_id
from chalicelib.domain.pagination import ListQuery, render_list
from chalicelib.domain.validation import validate
from chalicelib.domain.vector_stores import get_vector_store
from chalicelib.search import vectors
from chalicelib.storage import drivers
from chalicelib.storage import files as file_store
from chalicelib.storage import threads as thread_store
from chalicelib.storage import vector_store_files as store
from chalicelib.storage.vector_store_files import FileRef, StoredBatch, StoredFile

# The official defaults and bounds of static chunking; `auto` is 800 tokens with 400 overlapping.
# (The 100-4096 bounds of a static size are in the request schema.)
AUTO_CHUNKING = {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400}
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


@dataclass(frozen=True)
class _Adding:
    """A file to add, as the request named it."""

    file_id: str
    chunking_strategy: dict[str, Any]
    attributes: dict[str, Any] | None


def _open_store(project_id: str, vector_store_id: str) -> None:
    """404 for no such store (or another project's), 400 for an expired one."""
    if get_vector_store(project_id, vector_store_id)["status"] == "expired":
        raise InvalidRequest(f"Vector store {vector_store_id} has expired; files cannot be added to it.")


def _filenames(project_id: str, file_ids: list[str]) -> dict[str, str]:
    """The uploaded files' names, by id; 404 naming the first id that is no file of the project's."""
    wellformed = {file_id for file_id in file_ids if is_valid_id("file", file_id)}
    found = {file_id: file["filename"] for file_id, file in file_store.get_many(project_id, wellformed).items()}
    for file_id in file_ids:
        if file_id not in found:
            raise NotFound(f"No file found with id '{file_id}'.", param="file_id")
    return found


def add_files(
    project_id: str, vector_store_id: str, adding: list[_Adding], filenames: dict[str, str], batch_id: str | None = None
) -> list[StoredFile]:
    """Add the files (checked, their names read by `_filenames`) to the store, each in progress and due
    for ingestion now; a file already in the store stays as it is."""
    now = int(time.time())
    added = []
    for entry in adding:
        try:
            stored = store.add(
                StoredFile(
                    ref=FileRef(project_id, vector_store_id, entry.file_id),
                    created_at=now,
                    status="in_progress",
                    usage_bytes=0,
                    last_error=None,
                    chunking_strategy=entry.chunking_strategy,
                    attributes=entry.attributes,
                    filename=filenames[entry.file_id],
                    batch_id=batch_id,
                ),
                due_at=now,
            )
        except store.FileGone:  # deleted since it was checked
            raise NotFound(f"No file found with id '{entry.file_id}'.", param="file_id") from None
        if stored is None:  # the store was deleted meanwhile
            raise not_found("vector store", vector_store_id)
        added.append(stored)
    drivers.ingestion_changed()
    return added


@dataclass(frozen=True)
class _NewStore:
    """A store to create with its files (`file_ids` and one `chunking_strategy`), all checked."""

    body: dict[str, Any]  # the store's own fields
    entries: list[_Adding]
    filenames: dict[str, str]

    def create(self, project_id: str) -> dict[str, Any]:
        created = vector_stores.create_vector_store(project_id, self.body)
        if not self.entries:
            return created
        add_files(project_id, created["id"], self.entries, self.filenames)
        return get_vector_store(project_id, created["id"])


def _new_store(project_id: str, body: dict[str, Any], file_ids: list[str], chunking: Any, param: str) -> _NewStore:
    """Check the files (404 for one that is no file of the project's), then their chunking: it applies
    only to files there are."""
    named = list(dict.fromkeys(file_ids))
    filenames = _filenames(project_id, named)
    entries = batch_entries({"file_ids": named, "chunking_strategy": chunking}, param) if named else []
    return _NewStore(body, entries, filenames)


def create_vector_store(project_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """A store, and the files its `file_ids` name (with its `chunking_strategy`), added as if one by
    one. Everything is checked before anything is stored."""
    validate("CreateVectorStoreRequest", body)
    own = {name: value for name, value in body.items() if name not in ("file_ids", "chunking_strategy")}
    return _new_store(project_id, own, body.get("file_ids") or [], body.get("chunking_strategy"), "").create(project_id)


def helper_stores(project_id: str, tool_resources: Any, param: str) -> list[_NewStore]:
    """The stores the `vector_stores` helper of `tool_resources.file_search` asks for (the request has
    passed its schema), checked; nothing is created yet."""
    file_search = tool_resources.get("file_search") if isinstance(tool_resources, dict) else None
    helpers = file_search.get("vector_stores") if isinstance(file_search, dict) else None
    return [
        _new_store(
            project_id,
            {"metadata": helper.get("metadata") or {}},
            helper.get("file_ids") or [],
            helper.get("chunking_strategy"),
            f"{param}.file_search.vector_stores[{index}].",
        )
        for index, helper in enumerate(helpers or [])
    ]


def create_helper_stores(project_id: str, helpers: list[_NewStore], resources: dict[str, Any]) -> None:
    """Create the helper's stores, once everything else in the request has been checked, and name
    them in `resources` (the ThreadObject shape of the object being created)."""
    if helpers:
        resources["file_search"] = {"vector_store_ids": [helper.create(project_id)["id"] for helper in helpers]}


# --- message attachments: the thread's store -------------------------------------------------------

# A store made for a thread's attachments expires a week after it was last used, as OpenAI's.
ATTACHMENT_STORE_EXPIRY = {"anchor": "last_active_at", "days": 7}


def searched_attachments(message_requests: list[dict[str, Any]]) -> list[str]:
    """The files that messages attach for file_search (the requests have passed their schema)."""
    file_ids = [
        attachment["file_id"]
        for request in message_requests
        for attachment in request.get("attachments") or []
        if any(tool.get("type") == "file_search" for tool in attachment.get("tools") or [])
    ]
    return list(dict.fromkeys(file_ids))


def _attached(project_id: str, vector_store_id: str, file_ids: list[str]) -> None:
    entries = [_Adding(file_id, chunking_strategy(None), None) for file_id in file_ids]
    add_files(project_id, vector_store_id, entries, _filenames(project_id, file_ids))


def _usable_store_of(project_id: str, resources: dict[str, Any]) -> str | None:
    """The store a thread names for file_search, if it exists and has not expired."""
    vector_store_id = next(iter((resources.get("file_search") or {}).get("vector_store_ids") or []), None)
    if vector_store_id is None or not vector_stores.searchable_stores(project_id, [vector_store_id]):
        return None
    return vector_store_id


def _new_attachment_store(project_id: str) -> str:
    return vector_stores.create_vector_store(project_id, {"expires_after": ATTACHMENT_STORE_EXPIRY})["id"]


def attach_to_new_thread(project_id: str, resources: dict[str, Any], file_ids: list[str]) -> None:
    """A thread being created: its messages' file_search attachments go to its store, made now (and
    named in `resources`) if it names none that can be searched. The files have been checked."""
    if not file_ids:
        return
    vector_store_id = _usable_store_of(project_id, resources)
    if vector_store_id is None:
        vector_store_id = _new_attachment_store(project_id)
        resources["file_search"] = {"vector_store_ids": [vector_store_id]}
    _attached(project_id, vector_store_id, file_ids)


def attach_to_thread(project_id: str, thread_id: str, file_ids: list[str]) -> None:
    """A thread that exists: the files go to its store. A thread with none that can be searched (none,
    one deleted, one expired) is given a new one, made before the thread names it; of two requests
    racing to do so, the one whose thread update lands keeps its store, and the other deletes its own
    and adds its files to the winner's. The files have been checked."""
    if not file_ids:
        return
    for _ in range(5):  # a lost race reads the thread again
        thread = thread_store.get_thread(project_id, thread_id)
        if thread is None:
            return
        vector_store_id = _usable_store_of(project_id, thread.tool_resources)
        if vector_store_id is not None:
            _attached(project_id, vector_store_id, file_ids)
            return
        created = _new_attachment_store(project_id)
        resources = {**thread.tool_resources, "file_search": {"vector_store_ids": [created]}}
        if thread_store.replace_tool_resources(project_id, thread, resources):
            _attached(project_id, created, file_ids)
            return
        vector_stores.delete_vector_store(project_id, created)


def add_file(project_id: str, vector_store_id: str, body: dict[str, Any]) -> dict[str, Any]:
    validate("CreateVectorStoreFileRequest", body)
    _open_store(project_id, vector_store_id)
    filenames = _filenames(project_id, [body["file_id"]])
    adding = _Adding(body["file_id"], chunking_strategy(body.get("chunking_strategy")), body.get("attributes"))
    (stored,) = add_files(project_id, vector_store_id, [adding], filenames)
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


def remove_from_stores(project_id: str, file_id: str, vector_store_ids: Iterable[str]) -> None:
    """An uploaded file being deleted leaves each of these stores (those it has been added to): its
    record, counts, chunks and vectors, as a remove does. A store it has left already is skipped."""
    for vector_store_id in vector_store_ids:
        removed = store.remove(FileRef(project_id, vector_store_id, file_id))
        if removed is not None:
            vectors.forget_file(removed.ref, removed.chunk_count)


def remove_file(project_id: str, vector_store_id: str, file_id: str) -> dict[str, Any]:
    removed = store.remove(_ref(project_id, vector_store_id, file_id))
    if removed is None:
        raise not_found("vector store file", file_id)
    vectors.forget_file(removed.ref, removed.chunk_count)
    return {"id": file_id, "object": "vector_store.file.deleted", "deleted": True}


def _check_status_filter(status: str | None) -> None:
    if status is not None and status not in STATUSES:
        raise InvalidRequest(
            f"Invalid value: '{status}'. Supported values are: {', '.join(repr(s) for s in STATUSES)}.",
            param="filter",
            code="invalid_value",
        )


def list_files(project_id: str, vector_store_id: str, query: ListQuery, status: str | None) -> dict[str, Any]:
    _check_status_filter(status)
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
        "data": [{"type": "text", "text": parsed.text}],
        "has_more": False,
        "next_page": None,
    }


# --- file batches -------------------------------------------------------------------------------

# At most this many files in one batch (the official API's limit for new stores; its schema says 2000).
MAX_BATCH_FILES = 500


def _batch_status(batch: StoredBatch) -> str:
    if batch.cancelled:
        return "cancelled"
    return "in_progress" if batch.files.in_progress else "completed"


def render_batch(batch: StoredBatch) -> dict[str, Any]:
    return {
        "id": batch.id,
        "object": "vector_store.files_batch",
        "created_at": batch.created_at,
        "vector_store_id": batch.vector_store_id,
        "status": _batch_status(batch),
        "file_counts": batch.files.as_object(),
    }


def batch_entries(body: dict[str, Any], param: str = "") -> list[_Adding]:
    """The files a batch request (or a store's `file_ids`) names, each with its chunking and attributes,
    checked; a file named twice is added once."""
    if body.get("files") is not None and body.get("file_ids") is not None:
        raise InvalidRequest(f"Give either '{param}file_ids' or '{param}files', not both.", param=f"{param}files")
    if body.get("files") is not None:
        entries = [
            _Adding(
                item["file_id"],
                chunking_strategy(item.get("chunking_strategy"), f"{param}files[{index}].chunking_strategy"),
                item.get("attributes"),
            )
            for index, item in enumerate(body["files"])
        ]
    else:
        strategy = chunking_strategy(body.get("chunking_strategy"), f"{param}chunking_strategy")
        entries = [_Adding(file_id, strategy, body.get("attributes")) for file_id in body.get("file_ids") or []]
    unique = list({entry.file_id: entry for entry in entries}.values())
    if len(unique) > MAX_BATCH_FILES:
        raise InvalidRequest(
            f"A batch may add at most {MAX_BATCH_FILES} files; this one names {len(unique)}.",
            param=f"{param}file_ids",
            code="array_above_max_length",
        )
    return unique


def create_batch(project_id: str, vector_store_id: str, body: dict[str, Any]) -> dict[str, Any]:
    validate("CreateVectorStoreFileBatchRequest", body)
    _open_store(project_id, vector_store_id)
    named = [item["file_id"] for item in body.get("files") or []] or list(body.get("file_ids") or [])
    filenames = _filenames(project_id, named)  # 404 before anything else is looked at
    entries = batch_entries(body)
    batch_id = new_id("vector_store_file_batch")
    store.create_batch(project_id, vector_store_id, batch_id, int(time.time()))
    add_files(project_id, vector_store_id, entries, filenames, batch_id)
    return get_batch(project_id, vector_store_id, batch_id)


def _batch(project_id: str, vector_store_id: str, batch_id: str) -> StoredBatch:
    if not (is_valid_id("vector_store", vector_store_id) and is_valid_id("vector_store_file_batch", batch_id)):
        raise not_found("vector store file batch", batch_id)
    batch = store.get_batch(project_id, vector_store_id, batch_id)
    if batch is None:
        raise not_found("vector store file batch", batch_id)
    return batch


def get_batch(project_id: str, vector_store_id: str, batch_id: str) -> dict[str, Any]:
    return render_batch(_batch(project_id, vector_store_id, batch_id))


def cancel_batch(project_id: str, vector_store_id: str, batch_id: str) -> dict[str, Any]:
    """Cancel a batch in progress: its files not yet ingested end `cancelled` (a worker ingesting one
    loses it), those done stay."""
    status = _batch_status(_batch(project_id, vector_store_id, batch_id))
    if status != "in_progress":
        raise InvalidRequest(f"Cannot cancel a batch with status '{status}'.", code="batch_not_cancellable")
    store.mark_cancelled(project_id, vector_store_id, batch_id)
    for file in store.in_progress_of_batch(project_id, vector_store_id, batch_id):
        store.cancel(file)
    return get_batch(project_id, vector_store_id, batch_id)


def list_batch_files(
    project_id: str, vector_store_id: str, batch_id: str, query: ListQuery, status: str | None
) -> dict[str, Any]:
    _check_status_filter(status)
    _batch(project_id, vector_store_id, batch_id)
    return render_list(store.batch_files_page(project_id, vector_store_id, batch_id, query, status), render)
