"""Assistants in DynamoDB: one item each, the AssistantObject as served."""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import DeleteError, DoesNotExist, PutError

from chalicelib.storage.models import AssistantRecord
from chalicelib.storage.pages import read_page
from chalicelib.storage.records import ListQuery, Page


def _condition_failed(error: PutError | DeleteError) -> bool:
    return error.cause_response_code == "ConditionalCheckFailedException"


def create(project_id: str, assistant: dict[str, Any]) -> None:
    AssistantRecord(project_id, assistant["id"], assistant=assistant).save(
        condition=AssistantRecord.assistant_id.does_not_exist()
    )


def get(project_id: str, assistant_id: str) -> dict[str, Any] | None:
    try:
        return AssistantRecord.get(project_id, assistant_id, consistent_read=True).assistant
    except DoesNotExist:
        return None


def replace(project_id: str, assistant: dict[str, Any]) -> bool:
    """Store the new version if the assistant still exists."""
    try:
        AssistantRecord(project_id, assistant["id"], assistant=assistant).save(
            condition=AssistantRecord.assistant_id.exists()
        )
    except PutError as error:
        if _condition_failed(error):
            return False
        raise
    return True


def delete(project_id: str, assistant_id: str) -> bool:
    try:
        AssistantRecord(project_id, assistant_id).delete(condition=AssistantRecord.assistant_id.exists())
    except DeleteError as error:
        if _condition_failed(error):
            return False
        raise
    return True


def list_page(project_id: str, query: ListQuery) -> Page:
    page = read_page(
        lambda **kw: AssistantRecord.query(project_id, consistent_read=True, **kw), AssistantRecord.assistant_id, query
    )
    return Page(items=[record.assistant for record in page.items], has_more=page.has_more)
