"""Vector stores: create, retrieve, modify, delete, list — the VectorStoreObject of the official API.

A store's status is worked out when it is read: `expired` once `expires_at` has passed (an
`expires_after` policy counts `days` from `last_active_at`), else `in_progress` while any of its files
is, else `completed`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

from chalicelib.domain.errors import InvalidRequest, NotFound, not_found
from chalicelib.domain.ids import is_valid_id, new_id
from chalicelib.domain.pagination import ListQuery, render_list
from chalicelib.domain.validation import validate
from chalicelib.search import vectors
from chalicelib.storage import vector_store_files as file_store
from chalicelib.storage import vector_stores as store
from chalicelib.storage.records import FileCounts
from chalicelib.storage.vector_stores import StoredVectorStore

DAY_SECONDS = 86400


def expires_at(stored: StoredVectorStore) -> int | None:
    policy = stored.expires_after
    return None if policy is None else stored.last_active_at + int(policy["days"]) * DAY_SECONDS


def is_expired(stored: StoredVectorStore, now: float | None = None) -> bool:
    ends = expires_at(stored)
    return ends is not None and (now if now is not None else time.time()) >= ends


def render(stored: StoredVectorStore, now: float | None = None) -> dict[str, Any]:
    ends = expires_at(stored)
    if is_expired(stored, now):
        status = "expired"
    else:
        status = "in_progress" if stored.files.in_progress else "completed"
    rendered: dict[str, Any] = {
        "id": stored.id,
        "object": "vector_store",
        "created_at": stored.created_at,
        "name": stored.name,
        "usage_bytes": stored.usage_bytes,
        "file_counts": stored.files.as_object(),
        "status": status,
        "expires_at": ends,
        "last_active_at": stored.last_active_at,
        "metadata": stored.metadata,
    }
    if stored.expires_after is not None:  # the schema has no null for it: absent when there is none
        rendered["expires_after"] = stored.expires_after
    return rendered


def _checked_id(vector_store_id: str) -> str:
    if not is_valid_id("vector_store", vector_store_id):
        raise not_found("vector store", vector_store_id)
    return vector_store_id


def create_vector_store(project_id: str, body: dict[str, Any], vector_store_id: str | None = None) -> dict[str, Any]:
    """The store alone: its files (`file_ids`) are added by domain/vector_store_files.py. With
    `vector_store_id`, under that id (one named somewhere before the store exists)."""
    validate("CreateVectorStoreRequest", body)
    now = int(time.time())
    stored = StoredVectorStore(
        project_id=project_id,
        id=vector_store_id or new_id("vector_store"),
        created_at=now,
        name=body.get("name") or "",
        metadata=body.get("metadata") or {},
        expires_after=body.get("expires_after"),
        last_active_at=now,
        usage_bytes=0,
        files=FileCounts(),
    )
    store.create(stored)
    return render(stored)


def get_vector_store(project_id: str, vector_store_id: str) -> dict[str, Any]:
    stored = store.get(project_id, _checked_id(vector_store_id))
    if stored is None:
        raise not_found("vector store", vector_store_id)
    return render(stored)


def modify_vector_store(project_id: str, vector_store_id: str, body: dict[str, Any]) -> dict[str, Any]:
    validate("UpdateVectorStoreRequest", body)
    changes: dict[str, Any] = {}
    if "name" in body:
        changes["name"] = body["name"] or ""
    if "metadata" in body:
        changes["metadata"] = body["metadata"] or {}
    if "expires_after" in body:
        changes["expires_after"] = body["expires_after"]  # null removes the policy
    stored = store.modify(project_id, _checked_id(vector_store_id), changes)
    if stored is None:
        raise not_found("vector store", vector_store_id)
    return render(stored)


def delete_vector_store(project_id: str, vector_store_id: str) -> dict[str, Any]:
    if vectors.in_s3_vectors():
        # Its index first: should deleting it fail, the store is still there to delete again. (A file
        # being ingested meanwhile finds the store gone and makes no index for it again.)
        if store.get(project_id, _checked_id(vector_store_id)) is None:
            raise not_found("vector store", vector_store_id)
        vectors.forget_store(project_id, vector_store_id)
    if not store.delete(project_id, _checked_id(vector_store_id)):
        raise not_found("vector store", vector_store_id)
    file_store.remove_all(project_id, vector_store_id)  # its files and their chunks
    return {"id": vector_store_id, "object": "vector_store.deleted", "deleted": True}


def list_vector_stores(project_id: str, query: ListQuery) -> dict[str, Any]:
    now = time.time()
    return render_list(store.list_page(project_id, query), lambda stored: render(stored, now))


# --- search -------------------------------------------------------------------------------------

SEARCH_DEFAULT_RESULTS = 10  # the search endpoint's default (the file_search tool's is 20)
ACTIVITY_RESOLUTION_SECONDS = 60  # last_active_at moves at most once a minute: a search is a read


def usable_store(project_id: str, vector_store_id: str) -> StoredVectorStore:
    """A store a search may read: the project's, and not expired."""
    stored = store.get(project_id, _checked_id(vector_store_id))
    if stored is None:
        raise not_found("vector store", vector_store_id)
    if is_expired(stored):
        raise InvalidRequest(f"Vector store {vector_store_id} has expired.", code="vector_store_expired")
    return stored


def touch(stored: StoredVectorStore) -> None:
    """Searching a store is activity: it keeps an expiry policy's clock from running out."""
    now = int(time.time())
    if now - stored.last_active_at >= ACTIVITY_RESOLUTION_SECONDS:
        store.modify(stored.project_id, stored.id, {"last_active_at": now})


def search_vector_store(project_id: str, vector_store_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """The official VectorStoreSearchResultsPage: every result in one page, as OpenAI's."""
    from chalicelib.search import retrieval  # only searches load the index code

    validate("VectorStoreSearchRequest", body)
    searched = usable_store(project_id, vector_store_id)
    touch(searched)
    queries = [body["query"]] if isinstance(body["query"], str) else list(body["query"])
    if body.get("rewrite_query"):
        queries = [retrieval.rewritten(query) for query in queries]
    ranking = body.get("ranking_options") or {}
    hits = retrieval.search(
        [searched],
        queries,
        max_results=body.get("max_num_results") or SEARCH_DEFAULT_RESULTS,
        score_threshold=ranking.get("score_threshold") or 0.0,
        filters=body.get("filters"),
    )
    return {
        "object": "vector_store.search_results.page",
        "search_query": queries,
        "data": [
            {
                "file_id": hit.file_id,
                "filename": hit.filename,
                "score": round(hit.score, 6),
                "attributes": dict(hit.attributes) if hit.attributes is not None else None,
                "content": [{"type": "text", "text": hit.text}],
            }
            for hit in hits
        ],
        "has_more": False,
        "next_page": None,
    }


def _existing(project_id: str, vector_store_ids: Sequence[str]) -> Iterator[StoredVectorStore]:
    """The named stores that exist in the project (one GetItem each)."""
    for vector_store_id in dict.fromkeys(vector_store_ids):
        stored = store.get(project_id, vector_store_id) if is_valid_id("vector_store", vector_store_id) else None
        if stored is not None:
            yield stored


def check_store_references(project_id: str, resources: dict[str, Any] | None, param: str) -> None:
    """Every store that `resources.file_search.vector_store_ids` names (the ThreadObject shape) must be
    the project's: else 404 naming it and the field, as for a file of another project, and nothing is
    stored. One GetItem a store (a resource names at most one)."""
    file_search = (resources or {}).get("file_search") or {}
    for index, vector_store_id in enumerate(file_search.get("vector_store_ids") or []):
        if not any(_existing(project_id, [vector_store_id])):
            raise NotFound(
                f"No vector store found with id '{vector_store_id}'.",
                param=f"{param}.file_search.vector_store_ids[{index}]",
            )


def searchable_stores(project_id: str, vector_store_ids: Sequence[str]) -> list[StoredVectorStore]:
    """Of the stores a run (or a thread) names, those it can search (the project's, not expired), each
    touched as a search of it is."""
    usable = [stored for stored in _existing(project_id, vector_store_ids) if not is_expired(stored)]
    for stored in usable:
        touch(stored)
    return usable


def any_in_progress(project_id: str, vector_store_ids: Sequence[str]) -> bool:
    """Whether any of the stores still ingests files."""
    return any(stored.files.in_progress for stored in _existing(project_id, vector_store_ids))
