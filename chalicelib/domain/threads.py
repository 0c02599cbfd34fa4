"""Threads and messages: the rules of the official API, free of HTTP, Chalice and DynamoDB types."""

from __future__ import annotations

import json
import time
from typing import Any

from chalicelib.domain import vector_store_files, vector_stores
from chalicelib.domain.errors import InvalidRequest, not_found
from chalicelib.domain.files import (
    check_references,
    message_file_references,
    messages_file_references,
    tool_resource_references,
)
from chalicelib.domain.ids import is_valid_id, new_id
from chalicelib.domain.pagination import ListQuery, render_list
from chalicelib.domain.validation import validate
from chalicelib.storage import drivers
from chalicelib.storage import threads as store
from chalicelib.storage.records import Message, Thread

# DynamoDB items stop at 400 KB; keep what one item stores well under that.
MAX_MESSAGE_BYTES = 256 * 1024
MAX_THREAD_BYTES = 256 * 1024
# A thread and its first messages are written in one transaction (at most 100 items).
# The thread, its live marker and its first messages are one transaction (at most 100 items).
MAX_INITIAL_MESSAGES = store.TRANSACTION_MAX_ITEMS - 2


# --- rendering: the official object shapes ------------------------------------------------------


def render_thread(thread: Thread) -> dict[str, Any]:
    return {
        "id": thread.id,
        "object": "thread",
        "created_at": thread.created_at,
        "metadata": thread.metadata,
        "tool_resources": thread.tool_resources,
    }


def render_message(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "object": "thread.message",
        "created_at": message.created_at,
        "thread_id": message.thread_id,
        "status": message.status,
        "incomplete_details": message.incomplete_details,
        "completed_at": message.completed_at,
        "incomplete_at": message.incomplete_at,
        "role": message.role,
        "content": message.content,
        "assistant_id": message.assistant_id,
        "run_id": message.run_id,
        "attachments": message.attachments,
        "metadata": message.metadata,
    }


def _deleted(object_id: str, kind: str) -> dict[str, Any]:
    return {"id": object_id, "object": f"{kind}.deleted", "deleted": True}


# --- building records from requests -------------------------------------------------------------


def _content_blocks(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [{"type": "text", "text": content}] if isinstance(content, str) else content
    blocks = []
    for part in parts:
        if part["type"] == "text":
            blocks.append({"type": "text", "text": {"value": part["text"], "annotations": []}})
        elif part["type"] == "image_url":
            url = part["image_url"]
            blocks.append({"type": "image_url", "image_url": {"url": url["url"], "detail": url.get("detail", "auto")}})
        else:
            file = part["image_file"]
            detail = file.get("detail", "auto")
            blocks.append({"type": "image_file", "image_file": {"file_id": file["file_id"], "detail": detail}})
    return blocks


def check_stored_size(value: object, limit: int, param: str, kind: str) -> None:
    size = len(json.dumps(value, ensure_ascii=False).encode("utf-8"))
    if size > limit:
        raise InvalidRequest(
            f"Invalid '{param}': the {kind} would store {size} bytes; Spindle stores at most {limit} bytes per {kind}.",
            param=param,
            code=f"{kind}_too_large",
        )


def tool_resources_object(
    requested: dict[str, Any] | None, param: str = "tool_resources", kind: str = "thread", creating: bool = False
) -> dict[str, Any]:
    """The ThreadObject shape of requested tool resources: only the official fields, defaults filled.
    Where an object is created (`creating`), the `vector_stores` helper may stand for the stores it
    will create: their ids are filled in once they are (domain/vector_store_files.py)."""
    resources: dict[str, Any] = {}
    requested = requested or {}
    if not creating:
        refuse_vector_store_helper(requested, param)
    if "code_interpreter" in requested:
        resources["code_interpreter"] = {"file_ids": requested["code_interpreter"].get("file_ids") or []}
    if "file_search" in requested:
        resources["file_search"] = {"vector_store_ids": requested["file_search"].get("vector_store_ids") or []}
    check_stored_size(resources, MAX_THREAD_BYTES, param, kind)
    return resources


def refuse_vector_store_helper(requested: Any, param: str = "tool_resources") -> None:
    """The `vector_stores` helper creates stores, so it belongs to creating an assistant or a thread; a
    modify names its stores by id (the official modify schemas have no helper)."""
    file_search = requested.get("file_search") if isinstance(requested, dict) else None
    if isinstance(file_search, dict) and "vector_stores" in file_search:
        raise InvalidRequest(
            f"Invalid '{param}.file_search.vector_stores': the vector_stores helper creates stores, so it is "
            "taken only when an assistant or a thread is created; pass `vector_store_ids` here.",
            param=f"{param}.file_search.vector_stores",
            code="unknown_parameter",
        )


def new_message(project_id: str, thread_id: str, request: dict[str, Any], param: str, now: int) -> Message:
    """`request` has passed the CreateMessageRequest schema."""
    message = Message(
        project_id=project_id,
        thread_id=thread_id,
        id=new_id("message"),
        created_at=now,
        role=request["role"],
        content=_content_blocks(request["content"]),
        attachments=request.get("attachments") or [],
        metadata=request.get("metadata") or {},
        completed_at=now,
    )
    stored = [message.content, message.attachments, message.metadata]
    check_stored_size(stored, MAX_MESSAGE_BYTES, f"{param}content", "message")
    return message


def checked_thread_id(thread_id: str) -> str:
    """A malformed id can name nothing: answer 404 without a read."""
    if not is_valid_id("thread", thread_id):
        raise not_found("thread", thread_id)
    return thread_id


def _message_ids(thread_id: str, message_id: str) -> tuple[str, str]:
    checked_thread_id(thread_id)
    if not is_valid_id("message", message_id):
        raise not_found("message", message_id)
    return thread_id, message_id


# --- threads ------------------------------------------------------------------------------------


def create_thread(project_id: str, body: dict[str, Any]) -> dict[str, Any]:
    validate("CreateThreadRequest", body)
    helpers = vector_store_files.helper_stores(project_id, body.get("tool_resources"), "tool_resources")
    requested_messages = body.get("messages") or []
    if len(requested_messages) > MAX_INITIAL_MESSAGES:
        raise InvalidRequest(
            f"Invalid 'messages': array too long. Expected an array with maximum length {MAX_INITIAL_MESSAGES}, "
            f"but got an array with length {len(requested_messages)} instead.",
            param="messages",
            code="array_above_max_length",
        )
    now = int(time.time())
    thread = Thread(
        project_id=project_id,
        id=new_id("thread"),
        created_at=now,
        metadata=body.get("metadata") or {},
        tool_resources=tool_resources_object(body.get("tool_resources"), creating=True),
    )
    messages = [
        new_message(project_id, thread.id, request, f"messages[{index}].", now)
        for index, request in enumerate(requested_messages)
    ]
    check_references(
        project_id,
        [
            *tool_resource_references(thread.tool_resources, "tool_resources"),
            *messages_file_references(requested_messages, "messages"),
        ],
    )
    vector_stores.check_store_references(project_id, thread.tool_resources, "tool_resources")
    vector_store_files.create_helper_stores(project_id, helpers, thread.tool_resources)
    searched = vector_store_files.searched_attachments(requested_messages)
    vector_store_files.attach_to_new_thread(project_id, thread.tool_resources, searched)
    store.create_thread(thread, messages)
    return render_thread(thread)


def get_thread(project_id: str, thread_id: str) -> dict[str, Any]:
    thread = store.get_thread(project_id, checked_thread_id(thread_id))
    if thread is None:
        raise not_found("thread", thread_id)
    return render_thread(thread)


def modify_thread(project_id: str, thread_id: str, body: dict[str, Any]) -> dict[str, Any]:
    validate("ModifyThreadRequest", body)
    resources = tool_resources_object(body["tool_resources"]) if "tool_resources" in body else None
    check_references(project_id, tool_resource_references(resources, "tool_resources"))
    vector_stores.check_store_references(project_id, resources, "tool_resources")
    thread = store.update_thread(
        project_id,
        checked_thread_id(thread_id),
        metadata=(body["metadata"] or {}) if "metadata" in body else None,
        tool_resources=resources,
    )
    if thread is None:
        raise not_found("thread", thread_id)
    return render_thread(thread)


def delete_thread(project_id: str, thread_id: str) -> dict[str, Any]:
    if not store.delete_thread(project_id, checked_thread_id(thread_id)):
        raise not_found("thread", thread_id)
    drivers.thread_deleted()
    return _deleted(thread_id, "thread")


def list_threads(project_id: str, query: ListQuery, user: str | None) -> dict[str, Any]:
    return render_list(store.list_threads(project_id, query, user), render_thread)


# --- messages -----------------------------------------------------------------------------------


def create_message(project_id: str, thread_id: str, body: dict[str, Any]) -> dict[str, Any]:
    validate("CreateMessageRequest", body)
    message = new_message(project_id, checked_thread_id(thread_id), body, "", int(time.time()))
    check_references(project_id, message_file_references(body, ""))
    if not store.add_message(message):
        thread = store.get_thread(project_id, thread_id)
        if thread is None:
            raise not_found("thread", thread_id)
        raise InvalidRequest(
            f"Can't add messages to {thread_id} while a run {thread.active_run_id} is active.",
            code="thread_locked",
        )
    vector_store_files.attach_to_thread(project_id, thread_id, vector_store_files.searched_attachments([body]))
    return render_message(message)


def get_message(project_id: str, thread_id: str, message_id: str) -> dict[str, Any]:
    thread, message = store.get_thread_and_message(project_id, *_message_ids(thread_id, message_id))
    if thread is None:
        raise not_found("thread", thread_id)
    if message is None:
        raise not_found("message", message_id)
    return render_message(message)


def modify_message(project_id: str, thread_id: str, message_id: str, body: dict[str, Any]) -> dict[str, Any]:
    validate("ModifyMessageRequest", body)
    if "metadata" not in body:
        return get_message(project_id, thread_id, message_id)
    metadata = body["metadata"] or {}
    thread_found, message = store.update_message_metadata(project_id, *_message_ids(thread_id, message_id), metadata)
    if not thread_found:
        raise not_found("thread", thread_id)
    if message is None:
        raise not_found("message", message_id)
    return render_message(message)


def delete_message(project_id: str, thread_id: str, message_id: str) -> dict[str, Any]:
    thread_found, deleted = store.delete_message(project_id, *_message_ids(thread_id, message_id))
    if not thread_found:
        raise not_found("thread", thread_id)
    if not deleted:
        raise not_found("message", message_id)
    return _deleted(message_id, "thread.message")


def list_messages(project_id: str, thread_id: str, query: ListQuery, run_id: str | None) -> dict[str, Any]:
    checked_thread_id(thread_id)
    if run_id is not None and not is_valid_id("run", run_id):
        raise InvalidRequest(
            f"Invalid 'run_id': '{run_id}' is not a valid run id.", param="run_id", code="invalid_value"
        )
    if run_id is None:  # one Query, the thread's check riding on it (storage/threads.py)
        page = store.list_messages_of_live_thread(project_id, thread_id, query)
    elif store.get_thread(project_id, thread_id) is not None:
        page = store.list_messages(project_id, thread_id, query, run_id)
    else:
        page = None
    if page is None:
        raise not_found("thread", thread_id)
    return render_list(page, render_message)
