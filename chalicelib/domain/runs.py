"""Runs and run steps on the API side: how requests become runs, cancels and tool outputs.

Every change is a move of domain/lifecycle.py, committed as a guarded transition (storage.runs.apply),
so nothing here can race the engine (chalicelib/runs/) into an impossible state.
"""

from __future__ import annotations

import time
from typing import Any

from chalicelib.config import settings
from chalicelib.domain import lifecycle, vector_store_files, vector_stores
from chalicelib.domain.errors import InvalidRequest, not_found
from chalicelib.domain.files import check_references, messages_file_references, tool_resource_references
from chalicelib.domain.ids import is_valid_id, new_id
from chalicelib.domain.lifecycle import RUN_LIFETIME_SECONDS, Run, render_run
from chalicelib.domain.pagination import ListQuery, render_list
from chalicelib.domain.threads import (
    check_stored_size,
    checked_thread_id,
    new_message,
    render_thread,
    tool_resources_object,
)
from chalicelib.domain.validation import validate
from chalicelib.storage import assistants as assistant_store
from chalicelib.storage import drivers
from chalicelib.storage import runs as store
from chalicelib.storage import threads as thread_store
from chalicelib.storage.records import RunRef, Thread

MAX_RUN_BYTES = 380 * 1024
# A run starts in one transaction (at most 100 items): the thread and its live marker, the run, its
# opening event log segments and queue entry, and the messages it adds.
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


def create_run(project_id: str, thread_id: str, body: dict[str, Any]) -> Run:
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
    # Before the run exists, so that its first turn finds the files in the thread's store; and only
    # into a thread that can take a run (a busy one refuses it, and should keep nothing of it).
    searched = vector_store_files.searched_attachments(body.get("additional_messages") or [])
    if searched:
        thread = thread_store.get_thread(project_id, thread_id)
        if thread is None or thread.active_run_id is not None:
            raise _thread_is_busy(project_id, thread_id)
        vector_store_files.attach_to_thread(project_id, thread_id, searched)
    new = lifecycle.created(ref, body.get("metadata") or {}, run, messages, enqueue_at=_enqueue_at(body))
    started = time.perf_counter()
    stored = store.create_run(new)
    lifecycle.log_created(new, started, "applied" if stored else "refused")
    if not stored:
        raise _thread_is_busy(project_id, thread_id)
    return _dispatched(lifecycle.started(new), _hand_over_after(body))


def create_thread_and_run(project_id: str, body: dict[str, Any]) -> Run:
    thread_body = body.get("thread") or {}
    validate("CreateThreadAndRunRequest", body)
    helpers = vector_store_files.helper_stores(project_id, thread_body.get("tool_resources"), "thread.tool_resources")
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
        tool_resources=tool_resources_object(resources, "thread.tool_resources", creating=True),
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
    # Either names its stores (the run's own `tool_resources` as well as the thread's), each checked.
    vector_stores.check_store_references(project_id, thread_body.get("tool_resources"), "thread.tool_resources")
    vector_stores.check_store_references(project_id, body.get("tool_resources"), "tool_resources")
    vector_store_files.create_helper_stores(project_id, helpers, thread.tool_resources)
    searched = vector_store_files.searched_attachments(requested_messages)
    vector_store_files.attach_to_new_thread(project_id, thread.tool_resources, searched)
    new = lifecycle.created(
        ref, body.get("metadata") or {}, run, messages, enqueue_at=_enqueue_at(body), new_thread=render_thread(thread)
    )
    started = time.perf_counter()
    store.create_thread_and_run(thread, new)
    lifecycle.log_created(new, started, "applied")
    return _dispatched(lifecycle.started(new), _hand_over_after(body))


def _dispatched(run: Run, after_seconds: float = 0.0) -> Run:
    """Tell the run's driver (to advance it after `after_seconds`), and answer with the run. A run no
    driver will advance fails now instead of sitting queued forever."""
    if drivers.run_changed(run.ref, after_seconds):
        return run
    current = store.get_run(run.ref)
    if current is None or lifecycle.is_terminal(current):
        return current or run
    change = lifecycle.failed(current, "server_error", "Spindle could not start the run's state machine.", _now())
    applied = lifecycle.commit(change)
    if applied.applied:
        return lifecycle.after(current, change)
    return applied.current or store.get_run(run.ref) or run


def _now() -> int:
    return int(time.time())


def _local_driver() -> bool:
    return settings.run_driver == "local"


# --- reading and changing runs ------------------------------------------------------------------


def _ref(project_id: str, thread_id: str, run_id: str) -> RunRef:
    checked_thread_id(thread_id)
    if not is_valid_id("run", run_id):
        raise not_found("run", run_id)
    return RunRef(project_id, thread_id, run_id)


def get_run(project_id: str, thread_id: str, run_id: str) -> Run:
    """The run, if it and its thread exist: a deleted thread's runs are gone with it."""
    stored = store.get_live_run(_ref(project_id, thread_id, run_id))
    if stored is None:
        raise not_found("run", run_id)
    return stored


def list_runs(project_id: str, thread_id: str, query: ListQuery) -> dict[str, Any]:
    if thread_store.get_thread(project_id, checked_thread_id(thread_id)) is None:
        raise not_found("thread", thread_id)
    return render_list(store.list_runs(project_id, thread_id, query), render_run)


def modify_run(project_id: str, thread_id: str, run_id: str, body: dict[str, Any]) -> Run:
    validate("ModifyRunRequest", body)
    current = get_run(project_id, thread_id, run_id)
    if "metadata" not in body:
        return current
    stored = store.update_metadata(current.ref, body["metadata"] or {})
    if stored is None:
        raise not_found("run", run_id)
    return stored


def cancel_run(project_id: str, thread_id: str, run_id: str) -> Run:
    """The answer says `cancelling`; the worker sees it within CANCEL_CHECK_SECONDS, stops waiting for
    the model and ends the run (runs/engine.py)."""
    current = get_run(project_id, thread_id, run_id)
    while True:
        if current.status not in lifecycle.CANCELLABLE:
            raise InvalidRequest(f"Cannot cancel run with status '{current.status}'.", code="run_not_cancellable")
        change = lifecycle.cancel_requested(current, enqueue_at=_enqueue_now())
        applied = lifecycle.commit(change)
        if applied.applied:
            return _dispatched(lifecycle.after(current, change))
        # The run moved meanwhile (the engine claimed or finished it): decide again on what it is now,
        # read with its thread (a run whose thread was deleted meanwhile is gone: 404).
        current = get_run(project_id, thread_id, run_id)


def submit_tool_outputs(project_id: str, thread_id: str, run_id: str, body: dict[str, Any]) -> tuple[Run, int]:
    """The run, queued again with the outputs, and where its stream starts: the submission's own events
    (the tool step completed, the run queued)."""
    validate("SubmitToolOutputsRunRequest", body)
    current = get_run(project_id, thread_id, run_id)
    action = current.run.get("required_action")
    if current.status != lifecycle.REQUIRES_ACTION or action is None or current.tool_step_id is None:
        raise _not_requiring_action(current.status)
    if time.time() >= current.run["expires_at"]:  # the driver marks it expired when it next looks
        raise _not_requiring_action(lifecycle.EXPIRED)
    pending = [call["id"] for call in action["submit_tool_outputs"]["tool_calls"]]
    outputs = _outputs_by_call(body["tool_outputs"], pending)
    check_stored_size(list(outputs.values()), MAX_TOOL_OUTPUT_BYTES, "tool_outputs", "step")
    step = store.get_step(current.ref, current.tool_step_id)
    if step is None:  # written in the same transaction as required_action: cannot be missing
        raise RuntimeError(f"run {run_id} requires action but its tool step is gone")
    calls = [  # the turn's built-in calls (file_search) are done already
        {**call, "function": {**call["function"], "output": outputs[call["id"]]}}
        if call["type"] == "function"
        else call
        for call in step["step_details"]["tool_calls"]
    ]
    answered = dict(
        step, status="completed", completed_at=_now(), step_details={"type": "tool_calls", "tool_calls": calls}
    )
    change = lifecycle.outputs_submitted(current, answered, enqueue_at=_enqueue_at(body))
    applied = lifecycle.commit(change)
    if not applied.applied:
        raise _not_requiring_action(get_run(project_id, thread_id, run_id).status)  # 404 if the thread went
    return _dispatched(lifecycle.after(current, change), _hand_over_after(body)), change.event_seq


def _not_requiring_action(status: str) -> InvalidRequest:
    return InvalidRequest(f'Runs in status "{status}" do not accept tool outputs.', code="run_not_requiring_action")


def _enqueue_now() -> float | None:
    """Local driver: the change queues the run to be advanced at once."""
    return time.time() if _local_driver() else None


def _hand_over_after(body: dict[str, Any]) -> float:
    """Seconds before the run's driver may advance it. A streaming request drives its run itself (one
    worker per step, so its client hears every delta), and the driver takes over only if the request
    dies: after one lease."""
    return settings.run_lease_seconds if body.get("stream") else 0.0


def _enqueue_at(body: dict[str, Any]) -> float | None:
    """Local driver: when the poller should advance the run."""
    if not _local_driver():
        return None
    return time.time() + _hand_over_after(body)


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


INCLUDE_RESULT_CONTENT = "step_details.tool_calls[*].file_search.results[*].content"


def wants_result_content(include: list[str]) -> bool:
    """`include[]`, whose one official value adds file_search results' content to the steps."""
    for value in include:
        if value != INCLUDE_RESULT_CONTENT:
            raise InvalidRequest(
                f"Invalid value: {value!r}. Supported values are: {INCLUDE_RESULT_CONTENT!r}.",
                param="include[]",
                code="invalid_value",
            )
    return bool(include)


def _served_call(call: dict[str, Any], with_content: bool) -> dict[str, Any]:
    if call["type"] == "code_interpreter":
        return {"id": call["id"], "type": "code_interpreter", "code_interpreter": call["code_interpreter"]}
    if call["type"] != "file_search":
        return call
    search = call["file_search"]
    results = [
        result if with_content else {key: value for key, value in result.items() if key != "content"}
        for result in search.get("results", [])
    ]
    return {"id": call["id"], "type": "file_search", "file_search": {**search, "results": results}}


def render_step(step: dict[str, Any], with_content: bool = False) -> dict[str, Any]:
    """The RunStepObject as served: file_search results carry their content only when asked for, and
    what the engine keeps for the model (runs/file_search.py, runs/code_interpreter.py) is never shown."""
    if step["type"] != "tool_calls":
        return step
    calls = [_served_call(call, with_content) for call in step["step_details"]["tool_calls"]]
    return {**step, "step_details": {**step["step_details"], "tool_calls": calls}}


def render_event(event: dict[str, Any], with_content: bool) -> dict[str, Any]:
    """A logged event as a stream serves it: a step in it rendered as get_step renders it."""
    data = event["data"]
    if data.get("object") == "thread.run.step":
        return {"event": event["event"], "data": render_step(data, with_content)}
    return event


def get_step(project_id: str, thread_id: str, run_id: str, step_id: str, with_content: bool = False) -> dict[str, Any]:
    ref = get_run(project_id, thread_id, run_id).ref
    step = store.get_step(ref, step_id) if is_valid_id("step", step_id) else None
    if step is None:
        raise not_found("run step", step_id)
    return render_step(step, with_content)


def list_steps(
    project_id: str, thread_id: str, run_id: str, query: ListQuery, with_content: bool = False
) -> dict[str, Any]:
    ref = get_run(project_id, thread_id, run_id).ref
    return render_list(store.list_steps(ref, query), lambda step: render_step(step, with_content))
