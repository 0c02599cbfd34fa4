"""Vector stores in DynamoDB: one item each (VectorStoreRecord), read and written field by field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import DoesNotExist
from pynamodb.expressions.update import Action

from chalicelib.storage.dynamo import written
from chalicelib.storage.models import VectorStoreRecord
from chalicelib.storage.pages import read_page
from chalicelib.storage.records import FileCounts, ListQuery, Page


@dataclass(frozen=True)
class StoredVectorStore:
    project_id: str
    id: str
    created_at: int
    name: str
    metadata: dict[str, Any]
    expires_after: dict[str, Any] | None
    last_active_at: int
    usage_bytes: int
    files: FileCounts
    embedding_model: str | None = None
    embedding_dimensions: int | None = None
    files_version: int = 0


def _stored(record: VectorStoreRecord) -> StoredVectorStore:
    return StoredVectorStore(
        project_id=record.project_id,
        id=record.vector_store_id,
        created_at=int(record.created_at),
        name=record.name,
        metadata=record.metadata,
        expires_after=record.expires_after,
        last_active_at=int(record.last_active_at),
        usage_bytes=int(record.usage_bytes or 0),
        files=FileCounts.of(record),
        embedding_model=record.embedding_model,
        embedding_dimensions=int(record.embedding_dimensions) if record.embedding_dimensions else None,
        files_version=int(record.files_version or 0),
    )


def create(store: StoredVectorStore) -> None:
    VectorStoreRecord(
        store.project_id,
        store.id,
        created_at=store.created_at,
        name=store.name,
        metadata=store.metadata,
        expires_after=store.expires_after,
        last_active_at=store.last_active_at,
        usage_bytes=0,
    ).save(condition=VectorStoreRecord.vector_store_id.does_not_exist())


def get(project_id: str, vector_store_id: str) -> StoredVectorStore | None:
    try:
        return _stored(VectorStoreRecord.get(project_id, vector_store_id, consistent_read=True))
    except DoesNotExist:
        return None


def modify(project_id: str, vector_store_id: str, changes: dict[str, Any]) -> StoredVectorStore | None:
    """Set the named fields (name, metadata, expires_after, last_active_at) in one UpdateItem, which
    answers with the whole item: concurrent modifies of different fields both land. None if there is
    no such store."""
    record = VectorStoreRecord(project_id, vector_store_id)
    attributes = {
        "name": VectorStoreRecord.name,
        "metadata": VectorStoreRecord.metadata,
        "expires_after": VectorStoreRecord.expires_after,
        "last_active_at": VectorStoreRecord.last_active_at,
    }
    actions: list[Action] = [
        attributes[name].remove() if value is None else attributes[name].set(value) for name, value in changes.items()
    ]
    if not actions:
        return get(project_id, vector_store_id)
    if not written(lambda: record.update(actions=actions, condition=VectorStoreRecord.vector_store_id.exists())):
        return None
    return _stored(record)


def delete(project_id: str, vector_store_id: str) -> bool:
    record = VectorStoreRecord(project_id, vector_store_id)
    return written(lambda: record.delete(condition=VectorStoreRecord.vector_store_id.exists()))


def list_page(project_id: str, query: ListQuery) -> Page:
    page = read_page(
        lambda **kw: VectorStoreRecord.query(project_id, consistent_read=True, **kw),
        VectorStoreRecord.vector_store_id,
        query,
    )
    return Page(items=[_stored(record) for record in page.items], has_more=page.has_more)


def claim_embedding(project_id: str, vector_store_id: str, model: str, dimensions: int) -> StoredVectorStore | None:
    """Record the embeddings a store's vectors are made with, unless it has others already: one
    conditional UpdateItem. The store as it is now (compare its embedding fields); None if it is gone."""
    record = VectorStoreRecord(project_id, vector_store_id)
    condition = VectorStoreRecord.vector_store_id.exists() & (
        VectorStoreRecord.embedding_model.does_not_exist()
        | ((VectorStoreRecord.embedding_model == model) & (VectorStoreRecord.embedding_dimensions == dimensions))
    )
    actions: list[Action] = [
        VectorStoreRecord.embedding_model.set(model),
        VectorStoreRecord.embedding_dimensions.set(dimensions),
    ]
    if written(lambda: record.update(actions=actions, condition=condition)):
        return _stored(record)
    return get(project_id, vector_store_id)
