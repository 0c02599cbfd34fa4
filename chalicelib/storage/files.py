"""Files: the OpenAIFile object in DynamoDB, the bytes in a private S3 bucket."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from pynamodb.exceptions import DoesNotExist

from chalicelib.config import settings
from chalicelib.storage.dynamo import batch_get_many, key_item, written
from chalicelib.storage.models import FileRecord, purpose_key
from chalicelib.storage.pages import read_page
from chalicelib.storage.records import ListQuery, Page


@cache
def s3_client() -> Any:
    # botocore is loaded already (pynamodb); boto3 is not needed for three calls.
    import botocore.session

    return botocore.session.get_session().create_client(
        "s3", region_name=settings.region, endpoint_url=settings.s3_endpoint
    )


def _s3_key(project_id: str, file_id: str) -> str:
    return f"{project_id}/{file_id}"


def save(project_id: str, file: dict[str, Any], content: bytes) -> None:
    """The bytes first, then the object that makes them reachable; a failed write leaves nothing."""
    key = _s3_key(project_id, file["id"])
    s3_client().put_object(Bucket=settings.files_bucket, Key=key, Body=content)
    try:
        FileRecord(
            project_id,
            file["id"],
            purpose_key=purpose_key(project_id, file["purpose"]),
            file=file,
            s3_key=key,
        ).save(condition=FileRecord.file_id.does_not_exist())
    except Exception:
        s3_client().delete_object(Bucket=settings.files_bucket, Key=key)
        raise


def get(project_id: str, file_id: str) -> dict[str, Any] | None:
    try:
        return FileRecord.get(project_id, file_id, consistent_read=True).file
    except DoesNotExist:
        return None


def content(project_id: str, file_id: str) -> bytes | None:
    """The bytes of a file whose record the caller has just read (one S3 request, no second read of
    the record); None if they are gone, the file deleted meanwhile."""
    try:
        response = s3_client().get_object(Bucket=settings.files_bucket, Key=_s3_key(project_id, file_id))
    except s3_client().exceptions.NoSuchKey:
        return None
    return response["Body"].read()


@dataclass(frozen=True)
class StoreAdds:
    """The vector stores a file has been added to (it may have left some since), and how many adds
    that took: what a delete holds to (FileRecord.vector_stores, store_adds)."""

    vector_store_ids: frozenset[str]
    count: int


def store_adds(project_id: str, file_id: str) -> StoreAdds | None:
    """The file's adds to vector stores; None if there is no such file. One consistent GetItem."""
    try:
        record = FileRecord.get(
            project_id, file_id, consistent_read=True, attributes_to_get=["file_id", "vector_stores", "store_adds"]
        )
    except DoesNotExist:
        return None
    return StoreAdds(frozenset(record.vector_stores or ()), int(record.store_adds or 0))


def delete(project_id: str, file_id: str, adds: StoreAdds) -> bool:
    """Delete the file if it has had no add to a vector store since `adds` were read (the caller has
    taken it out of those stores). False if it is gone, or was added to a store meanwhile."""
    since = FileRecord.store_adds.does_not_exist() if adds.count == 0 else FileRecord.store_adds == adds.count
    if not written(lambda: FileRecord(project_id, file_id).delete(condition=FileRecord.file_id.exists() & since)):
        return False
    s3_client().delete_object(Bucket=settings.files_bucket, Key=_s3_key(project_id, file_id))
    return True


def count_store_add(transaction: Any, project_id: str, file_id: str, vector_store_id: str) -> None:
    """In the transaction that adds the file to a vector store: record the store and count the add.
    Refused if the file is gone (deleted meanwhile), so that no store keeps a deleted file."""
    transaction.update(
        FileRecord(project_id, file_id),
        actions=[FileRecord.vector_stores.add({vector_store_id}), FileRecord.store_adds.add(1)],
        condition=FileRecord.file_id.exists(),
    )


def list_page(project_id: str, query: ListQuery, purpose: str | None) -> Page:
    if purpose is None:
        page = read_page(
            lambda **kw: FileRecord.query(project_id, consistent_read=True, **kw), FileRecord.file_id, query
        )
    else:
        key = purpose_key(project_id, purpose)
        page = read_page(lambda **kw: FileRecord.by_purpose.query(key, **kw), FileRecord.file_id, query)
    return Page(items=[record.file for record in page.items], has_more=page.has_more)


def get_many(project_id: str, file_ids: set[str]) -> dict[str, dict[str, Any]]:
    """Those of these files the project has, by id: one BatchGetItem per 100 ids."""
    keys = [key_item(FileRecord, project_id, file_id) for file_id in sorted(file_ids)]
    found = batch_get_many(FileRecord.Meta.table_name, keys)
    return {item["file_id"]["S"]: FileRecord.from_raw_data(item).file for item in found}


def ensure_bucket() -> None:
    """Local mode and tests only: the deployed bucket comes from infra/."""
    s3 = s3_client()
    buckets = {bucket["Name"] for bucket in s3.list_buckets().get("Buckets", [])}
    if settings.files_bucket not in buckets:
        s3.create_bucket(Bucket=settings.files_bucket)
