"""Assistants in DynamoDB: one item each, the AssistantObject as served, with a version for
optimistic locking."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from pynamodb.exceptions import DoesNotExist

from chalicelib.storage.dynamo import written
from chalicelib.storage.models import AssistantRecord
from chalicelib.storage.pages import read_page
from chalicelib.storage.records import ListQuery, Page

# Each lost race means another writer's change landed, so N concurrent writers lose at most N - 1
# times each; past this many attempts the object is being rewritten faster than anyone can keep up.
MODIFY_ATTEMPTS = 32


class ModifyConflict(Exception):
    """The object changed under every attempt to modify it."""


def create(project_id: str, assistant: dict[str, Any]) -> None:
    AssistantRecord(project_id, assistant["id"], assistant=assistant).save(
        condition=AssistantRecord.assistant_id.does_not_exist()
    )


def _read(project_id: str, assistant_id: str) -> AssistantRecord | None:
    try:
        return AssistantRecord.get(project_id, assistant_id, consistent_read=True)
    except DoesNotExist:
        return None


def get(project_id: str, assistant_id: str) -> dict[str, Any] | None:
    record = _read(project_id, assistant_id)
    return None if record is None else record.assistant


def modify(
    project_id: str, assistant_id: str, change: Callable[[dict[str, Any]], dict[str, Any]]
) -> dict[str, Any] | None:
    """Apply `change` to the stored assistant and store the result, but only over the version that
    was read: if someone else wrote in between, read again and re-apply, so no acknowledged change
    is overwritten. The assistant as stored, or None if there is none. Two round trips a modify,
    two more per lost race."""
    for attempt in range(MODIFY_ATTEMPTS):
        record = _read(project_id, assistant_id)
        if record is None:
            return None
        record.assistant = change(record.assistant)
        # pynamodb cannot ask a failed PutItem for the item it found (only transactions can), so a
        # lost race reads again.
        if written(lambda: record.save(condition=AssistantRecord.assistant_id.exists())):  # noqa: B023
            return record.assistant
        time.sleep(random.uniform(0, 0.002 * min(2**attempt, 32)))
    raise ModifyConflict(f"assistant {assistant_id} changed under {MODIFY_ATTEMPTS} attempts to modify it")


def delete(project_id: str, assistant_id: str) -> bool:
    record = AssistantRecord(project_id, assistant_id)
    return written(lambda: record.delete(condition=AssistantRecord.assistant_id.exists(), add_version_condition=False))


def list_page(project_id: str, query: ListQuery) -> Page:
    page = read_page(
        lambda **kw: AssistantRecord.query(project_id, consistent_read=True, **kw), AssistantRecord.assistant_id, query
    )
    return Page(items=[record.assistant for record in page.items], has_more=page.has_more)
