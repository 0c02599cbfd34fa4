"""Runs and run steps: how requests become runs, and how runs and steps are shown.

The run lifecycle itself (the engine) lives in chalicelib/runs/; this module creates runs, cancels
them, takes tool outputs and renders the official objects. Every change is a guarded transition
(storage.runs.apply), so nothing here can race the engine into an impossible state.
"""

from __future__ import annotations

import time
from typing import Any

from chalicelib.config import settings
from chalicelib.domain.errors import InvalidRequest, not_found
from chalicelib.domain.files import check_references, messages_file_references, tool_resource_references
from chalicelib.domain.ids import is_valid_id, new_id
from chalicelib.domain.pagination import ListQuery, render_list
from chalicelib.domain.threads import (
    check_stored_size,
    checked_thread_id,
    new_message,
    refuse_vector_store_helper,
    render_thread,
    tool_resources_object,
)
from chalicelib.domain.validation import validate
from chalicelib.runs import dispatch, events
from chalicelib.storage import assistants as assistant_store
from chalicelib.storage import runs as store
from chalicelib.storage import threads as thread_store
from chalicelib.storage.records import Thread
from chalicelib.storage.runs import NewRun, RunChange, RunRef, StoredRun

RUN_LIFETIME_SECONDS = 600
ACTIVE = ("queued", "in_progress", "requires_action", "cancelling")
TERMINAL = ("completed", "incomplete", "failed", "cancelled", "expired")
CANCELLABLE = ("queued", "in_progress", "requires_action")
MAX_RUN_BYTES = 380 * 1024
# A run starts in one transaction (at most 100 items): the thread, the run, its opening event log
# segments and queue entry, and the messages it adds.
MAX_RUN_MESSAGES = 90
MAX_TOOL_OUTPUT_BYTES = 256 * 1024


def _check_message_count(messages: list[Any], param: str) -> None:
    if len(messages) > MAX_RUN_MESSAGES:
        raise InvalidRequest(
            f"Invalid '{param}': array too long. Expected an array with maximum length {MAX_RUN_MESSAGES}, "
            f"but got an array with length {len(messages)} instead.",
            param=param,
            code="array_above_max_length",
        )


# --- rendering ----------------------------------------------------------------------------------


def render_run(stored: StoredRun) -> dict[str, Any]:
    run = {key: value for key, value in stored.run.items() if not key.startswith("_")}
    run["status"] = stored.status
    run["metadata"] = stored.metadata
    if stored.status == "cancelling" and run.get("required_action") is not None:
        run["required_action"] = None
    return run


def is_terminal(stored: StoredRun) -> bool:
    return stored.status in TERMINAL


# --- creating runs ------------------------------------------------------------------------------


def _check_tool_choice(tool_choice: Any, tools: list[dict[str, Any]]) -> None:
    if isinstance(tool_choice, dict) and tool_choice.get("type") == "function":
        name = (tool_choice.get("function") or {}).get("name")
        names = [tool["function"]["name"] for tool in tools if tool.get("type") == "function"]
        if name not in names:
            raise InvalidRequest(
                f"Invalid 'tool_choice': no function named '{name}' is among the run's tools.",
                param="tool_choice",
                code="invalid_value",
            )


def _new_run(ref: RunRef, assistant: dict[str, Any], body: dict[str, Any], now: int) -> dict[str, Any]:
    """The RunObject (less status and metadata, stored beside it) for a validated request."""

    def pick(name: str, default: Any) -> Any:
        value = body.get(name)
        return default if value is None else value

    instructions = pick("instructions", assistant.get("instructions"))
    if body.get("additional_instructions"):
        instructions = "\n\n".join(part for part in (instructions, body["additional_instructions"]) if part)
    tools = pick("tools", assistant.get("tools") or [])
    tool_choice = pick("tool_choice", "auto")
    _check_tool_choice(tool_choice, tools)
    truncation = pick("truncation_strategy", {"type": "auto", "last_messages": None})
    run = {
        "id": ref.run_id,
        "object": "thread.run",
        "created_at": now,
        "thread_id": ref.thread_id,
        "assistant_id": assistant["id"],
        "required_action": None,
        "last_error": None,
        "expires_at": now + RUN_LIFETIME_SECONDS,
        "started_at": None,
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": None,
        "incomplete_details": None,
        "model": pick("model", assistant["model"]),
        "instructions": instructions or "",
        "tools": tools,
        "usage": None,
        "temperature": pick("temperature", assistant.get("temperature")),
        "top_p": pick("top_p", assistant.get("top_p")),
        "max_prompt_tokens": body.get("max_prompt_tokens"),
        "max_completion_tokens": body.get("max_completion_tokens"),
        "truncation_strategy": {"type": truncation["type"], "last_messages": truncation.get("last_messages")},
        "tool_choice": tool_choice,
        "parallel_tool_calls": pick("parallel_tool_calls", True),
        "response_format": pick("response_format", assistant.get("response_format") or "auto"),
    }
    check_stored_size(run, MAX_RUN_BYTES, "instructions", "run")
    return run


def _assistant_of(project_id: str, assistant_id: str) -> dict[str, Any]:
    assistant = assistant_store.get(project_id, assistant_id) if is_valid_id("assistant", assistant_id) else None
    if assistant is None:
        raise not_found("assistant", assistant_id)
    return assistant


def _thread_is_busy(project_id: str, thread_id: str) -> InvalidRequest:
    thread = thread_store.get_thread(project_id, thread_id)
    if thread is None:
        raise not_found("thread", thread_id)
    return InvalidRequest(f"Thread {thread_id} already has an active run {thread.active_run_id}.", code="thread_locked")


def create_run(project_id: str, thread_id: str, body: dict[str, Any]) -> StoredRun:
    validate("CreateRunRequest", body)
    checked_thread_id(thread_id)
    _check_message_count(body.get("additional_messages") or [], "additional_messages")
    assistant = _assistant_of(project_id, body["assistant_id"])
    now = int(time.time())
    ref = RunRef(project_id, thread_id, new_id("run"))
    run = _new_run(ref, assistant, body, now)
    messages = [
        new_message(project_id, thread_id, request, f"additional_messages[{index}].", now)
        for index, request in enumerate(body.get("additional_messages") or [])
    ]
    check_references(project_id, messages_file_references(body.get("additional_messages") or [], "additional_messages"))
    metadata = body.get("metadata") or {}
    created = StoredRun(ref, "queued", metadata, run, event_seq=1)
    opening = _opening_events(created)
    if not store.create_run(NewRun(ref, metadata, run, messages, opening, enqueue=_local_driver())):
        raise _thread_is_busy(project_id, thread_id)
    return _dispatched(created)


def create_thread_and_run(project_id: str, body: dict[str, Any]) -> StoredRun:
    thread_body = body.get("thread") or {}
    refuse_vector_store_helper(
        thread_body.get("tool_resources") if isinstance(thread_body, dict) else None, "thread.tool_resources"
    )
    validate("CreateThreadAndRunRequest", body)
    assistant = _assistant_of(project_id, body["assistant_id"])
    requested_messages = thread_body.get("messages") or []
    _check_message_count(requested_messages, "thread.messages")
    now = int(time.time())
    resources = thread_body.get("tool_resources") or body.get("tool_resources")
    thread = Thread(
        project_id=project_id,
        id=new_id("thread"),
        created_at=now,
        metadata=thread_body.get("metadata") or {},
        tool_resources=tool_resources_object(resources, "thread.tool_resources"),
    )
    ref = RunRef(project_id, thread.id, new_id("run"))
    run = _new_run(ref, assistant, body, now)
    thread.active_run_id = ref.run_id
    messages = [
        new_message(project_id, thread.id, request, f"thread.messages[{index}].", now)
        for index, request in enumerate(requested_messages)
    ]
    check_references(
        project_id,
        [
            *tool_resource_references(thread.tool_resources, "thread.tool_resources"),
            *messages_file_references(requested_messages, "thread.messages"),
        ],
    )
    metadata = body.get("metadata") or {}
    created = StoredRun(ref, "queued", metadata, run, event_seq=1)
    opening = [events.event("thread.created", render_thread(thread)), *_opening_events(created)]
    store.create_thread_and_run(thread, NewRun(ref, metadata, run, messages, opening, enqueue=_local_driver()))
    return _dispatched(created)


def _opening_events(created: StoredRun) -> list[events.Event]:
    rendered = render_run(created)
    return [events.event("thread.run.created", rendered), events.event("thread.run.queued", rendered)]


def _dispatched(stored: StoredRun) -> StoredRun:
    """Tell the driver; a run no driver will advance fails now instead of sitting queued forever."""
    if dispatch.run_changed(stored.ref):
        return stored
    current = store.get_run(stored.ref)
    if current is None or current.status in TERMINAL:
        return current or stored
    error = {"code": "server_error", "message": "Spindle could not start the run's state machine."}
    failed = dict(current.run, last_error=error, failed_at=int(time.time()), expires_at=None, required_action=None)
    change = RunChange(current.ref, (current.status,), "failed", failed, release_thread=True)
    change.event_seq = current.event_seq
    change.events = [events.run_event(render_run(StoredRun(current.ref, "failed", current.metadata, failed)))]
    store.apply(change)
    return store.get_run(stored.ref) or stored


def _local_driver() -> bool:
    return settings.run_driver == "local"


# --- reading and changing runs ------------------------------------------------------------------


def _ref(project_id: str, thread_id: str, run_id: str) -> RunRef:
    checked_thread_id(thread_id)
    if not is_valid_id("run", run_id):
        raise not_found("run", run_id)
    return RunRef(project_id, thread_id, run_id)


def get_run(project_id: str, thread_id: str, run_id: str) -> StoredRun:
    """The run, if it and its thread exist: a deleted thread's runs are gone with it."""
    stored = store.get_live_run(_ref(project_id, thread_id, run_id))
    if stored is None:
        raise not_found("run", run_id)
    return stored


def list_runs(project_id: str, thread_id: str, query: ListQuery) -> dict[str, Any]:
    if thread_store.get_thread(project_id, checked_thread_id(thread_id)) is None:
        raise not_found("thread", thread_id)
    return render_list(store.list_runs(project_id, thread_id, query), render_run)


def modify_run(project_id: str, thread_id: str, run_id: str, body: dict[str, Any]) -> StoredRun:
    validate("ModifyRunRequest", body)
    current = get_run(project_id, thread_id, run_id)
    if "metadata" not in body:
        return current
    stored = store.update_metadata(current.ref, body["metadata"] or {})
    if stored is None:
        raise not_found("run", run_id)
    return stored


def cancel_run(project_id: str, thread_id: str, run_id: str) -> StoredRun:
    """Cancelling is honoured at the engine's next step boundary: the answer says `cancelling`."""
    while True:
        stored = get_run(project_id, thread_id, run_id)
        if stored.status not in CANCELLABLE:
            raise InvalidRequest(f"Cannot cancel run with status '{stored.status}'.", code="run_not_cancellable")
        cancelling = StoredRun(stored.ref, "cancelling", stored.metadata, stored.run, stored.lease_token)
        change = RunChange(stored.ref, (stored.status,), "cancelling", stored.run, keep_lease=True)
        change.enqueue_at = time.time() if _local_driver() else None
        change.events, change.event_seq = [events.run_event(render_run(cancelling))], stored.event_seq
        if store.apply(change):
            return _dispatched(cancelling)


def submit_tool_outputs(project_id: str, thread_id: str, run_id: str, body: dict[str, Any]) -> StoredRun:
    validate("SubmitToolOutputsRunRequest", body)
    stored = get_run(project_id, thread_id, run_id)
    action = stored.run.get("required_action")
    if stored.status != "requires_action" or action is None:
        raise InvalidRequest(
            f'Runs in status "{stored.status}" do not accept tool outputs.', code="run_not_requiring_action"
        )
    if time.time() >= stored.run["expires_at"]:  # the driver marks it expired when it next looks
        raise InvalidRequest('Runs in status "expired" do not accept tool outputs.', code="run_not_requiring_action")
    pending = [call["id"] for call in action["submit_tool_outputs"]["tool_calls"]]
    outputs = _outputs_by_call(body["tool_outputs"], pending)
    check_stored_size(list(outputs.values()), MAX_TOOL_OUTPUT_BYTES, "tool_outputs", "step")
    now = int(time.time())
    step = store.get_step(stored.ref, stored.run["_tool_step_id"])
    if step is None:  # written in the same transaction as required_action: cannot be missing
        raise RuntimeError(f"run {run_id} requires action but its tool step is gone")
    for call in step["step_details"]["tool_calls"]:
        call["function"]["output"] = outputs[call["id"]]
    step.update(status="completed", completed_at=now)
    run = dict(stored.run, required_action=None)
    queued = StoredRun(stored.ref, "queued", stored.metadata, run, event_seq=stored.event_seq + 1)
    change = RunChange(stored.ref, ("requires_action",), "queued", run, steps=[step])
    change.enqueue_at = time.time() if _local_driver() else None
    change.events = [events.step_event(step), events.run_event(render_run(queued))]
    change.event_seq = stored.event_seq
    if not store.apply(change):
        current = get_run(project_id, thread_id, run_id)
        raise InvalidRequest(
            f'Runs in status "{current.status}" do not accept tool outputs.', code="run_not_requiring_action"
        )
    return _dispatched(queued)


def _outputs_by_call(tool_outputs: list[dict[str, Any]], pending: list[str]) -> dict[str, str]:
    outputs: dict[str, str] = {}
    for index, output in enumerate(tool_outputs):
        for field in ("tool_call_id", "output"):
            if field not in output:
                raise InvalidRequest(
                    f"Missing required parameter: 'tool_outputs[{index}].{field}'.",
                    param=f"tool_outputs[{index}].{field}",
                    code="missing_required_parameter",
                )
        call_id = output["tool_call_id"]
        if call_id not in pending:
            raise InvalidRequest(
                f"Invalid 'tool_outputs[{index}].tool_call_id': '{call_id}' is not a pending tool call of this run.",
                param=f"tool_outputs[{index}].tool_call_id",
                code="invalid_tool_call_id",
            )
        if call_id in outputs:
            raise InvalidRequest(
                f"Invalid 'tool_outputs[{index}].tool_call_id': '{call_id}' has two outputs.",
                param=f"tool_outputs[{index}].tool_call_id",
                code="duplicate_tool_call_id",
            )
        outputs[call_id] = output["output"]
    missing = [call_id for call_id in pending if call_id not in outputs]
    if missing:
        raise InvalidRequest(
            f"Expected tool outputs for call_ids {pending}, got {list(outputs)}: missing {missing}.",
            param="tool_outputs",
            code="missing_tool_outputs",
        )
    return outputs


# --- run steps ----------------------------------------------------------------------------------


def get_step(project_id: str, thread_id: str, run_id: str, step_id: str) -> dict[str, Any]:
    ref = get_run(project_id, thread_id, run_id).ref
    step = store.get_step(ref, step_id) if is_valid_id("step", step_id) else None
    if step is None:
        raise not_found("run step", step_id)
    return step


def list_steps(project_id: str, thread_id: str, run_id: str, query: ListQuery) -> dict[str, Any]:
    ref = get_run(project_id, thread_id, run_id).ref
    return render_list(store.list_steps(ref, query), lambda step: step)
