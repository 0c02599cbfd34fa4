"""API keys: only their SHA-256 is stored, next to the project they belong to."""

from __future__ import annotations

from pynamodb.exceptions import DoesNotExist

from chalicelib.storage.dynamo import written
from chalicelib.storage.models import ApiKeyRecord


def project_for_key_hash(key_hash: str) -> str | None:
    try:
        return ApiKeyRecord.get(key_hash).project_id
    except DoesNotExist:
        return None


def save_key(key_hash: str, project_id: str, name: str | None, created_at: int) -> None:
    ApiKeyRecord(key_hash, project_id=project_id, name=name, created_at=created_at).save(
        condition=ApiKeyRecord.key_hash.does_not_exist()
    )


def delete_key(key_hash: str) -> bool:
    return written(lambda: ApiKeyRecord(key_hash).delete(condition=ApiKeyRecord.key_hash.exists()))
