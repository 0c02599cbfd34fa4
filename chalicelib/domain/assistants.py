"""Assistants: create, retrieve, modify, delete, list — the AssistantObject of the official API."""

from __future__ import annotations

import time
from typing import Any

from chalicelib.domain import vector_store_files, vector_stores
from chalicelib.domain.errors import Conflict, not_found
from chalicelib.domain.files import check_references, tool_resource_references
from chalicelib.domain.ids import is_valid_id, new_id
from chalicelib.domain.pagination import ListQuery, render_list
from chalicelib.domain.threads import check_stored_size, tool_resources_object
from chalicelib.domain.validation import validate
from chalicelib.storage import assistants as store

# One DynamoDB item holds an assistant; 256,000 characters of instructions fit when they are ASCII.
MAX_ASSISTANT_BYTES = 380 * 1024

_DEFAULTS: dict[str, Any] = {
    "name": None,
    "description": None,
    "instructions": None,
    "tools": [],
    "metadata": {},
    "temperature": 1.0,
    "top_p": 1.0,
    "response_format": "auto",
}


def _changes(body: dict[str, Any], creating: bool = False) -> dict[str, Any]:
    """The fields a request sets, as stored: null resets a field to its default, tool resources take
    their object shape. Worked out once, however often a modify re-applies them after a lost race."""
    changes: dict[str, Any] = {}
    for name, value in body.items():
        if name == "tool_resources":
            changes[name] = tool_resources_object(value, kind="assistant", creating=creating)
        elif name != "reasoning_effort":  # accepted for compatibility; chat providers get `model` only
            changes[name] = _DEFAULTS.get(name) if value is None else value
    return changes


def _apply(assistant: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    assistant.update(changes)
    check_stored_size(assistant, MAX_ASSISTANT_BYTES, "instructions", "assistant")
    return assistant


def _check_references(project_id: str, changes: dict[str, Any]) -> None:
    if "tool_resources" in changes:
        check_references(project_id, tool_resource_references(changes["tool_resources"], "tool_resources"))
        vector_stores.check_store_references(project_id, changes["tool_resources"], "tool_resources")


def _checked_id(assistant_id: str) -> str:
    if not is_valid_id("assistant", assistant_id):
        raise not_found("assistant", assistant_id)
    return assistant_id


def create_assistant(project_id: str, body: dict[str, Any]) -> dict[str, Any]:
    validate("CreateAssistantRequest", body)
    helpers = vector_store_files.helper_stores(project_id, body.get("tool_resources"), "tool_resources")
    assistant = {
        "id": new_id("assistant"),
        "object": "assistant",
        "created_at": int(time.time()),
        **_DEFAULTS,
        "model": body["model"],
        "tool_resources": {},
    }
    changes = _changes(body, creating=True)
    assistant = _apply(assistant, changes)
    _check_references(project_id, changes)
    vector_store_files.create_helper_stores(project_id, helpers, assistant["tool_resources"])
    store.create(project_id, assistant)
    return assistant


def get_assistant(project_id: str, assistant_id: str) -> dict[str, Any]:
    assistant = store.get(project_id, _checked_id(assistant_id))
    if assistant is None:
        raise not_found("assistant", assistant_id)
    return assistant


def modify_assistant(project_id: str, assistant_id: str, body: dict[str, Any]) -> dict[str, Any]:
    validate("ModifyAssistantRequest", body)
    changes = _changes({k: v for k, v in body.items() if k != "model" or v})
    _check_references(project_id, changes)
    try:
        assistant = store.modify(project_id, _checked_id(assistant_id), lambda stored: _apply(stored, changes))
    except store.ModifyConflict:
        raise Conflict("The assistant is being modified by other requests; try again.", code="conflict") from None
    if assistant is None:
        raise not_found("assistant", assistant_id)
    return assistant


def delete_assistant(project_id: str, assistant_id: str) -> dict[str, Any]:
    if not store.delete(project_id, _checked_id(assistant_id)):
        raise not_found("assistant", assistant_id)
    return {"id": assistant_id, "object": "assistant.deleted", "deleted": True}


def list_assistants(project_id: str, query: ListQuery) -> dict[str, Any]:
    return render_list(store.list_page(project_id, query), lambda assistant: assistant)
