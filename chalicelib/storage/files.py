"""Files: the OpenAIFile object in DynamoDB, the bytes in a private S3 bucket."""

from __future__ import annotations

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


def delete(project_id: str, file_id: str) -> bool:
    if not written(lambda: FileRecord(project_id, file_id).delete(condition=FileRecord.file_id.exists())):
        return False
    s3_client().delete_object(Bucket=settings.files_bucket, Key=_s3_key(project_id, file_id))
    return True


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
