"""The official server-sent events a run's transitions produce (see the contract notes, section e).

Pure builders: each returns the list of `{"event": name, "data": object}` one transition appends to
the run's event log. The SDK's AssistantEventHandler accumulates them: a message is created empty and
grows by `thread.message.delta` (content index 0), a tool-calls step is created with no calls and
grows by `thread.run.step.delta` (calls by index, arguments concatenated).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from chalicelib.domain.citations import Citable, Scanner

Event = dict[str, Any]

# A reply of many thousand tokens would log as many delta events; a transaction holds 4 MB. Adjacent
# deltas are merged (in order, so they still join to the same text) down to at most this many.
MAX_DELTA_EVENTS = 200


def coalesced(deltas: list[str], limit: int = MAX_DELTA_EVENTS) -> list[str]:
    if len(deltas) <= limit:
        return deltas
    size = -(-len(deltas) // limit)
    return ["".join(deltas[start : start + size]) for start in range(0, len(deltas), size)]


def event(name: str, data: dict[str, Any]) -> Event:
    return {"event": name, "data": data}


def run_event(run: dict[str, Any]) -> Event:
    return event(f"thread.run.{run['status']}", run)


def _content_delta(message_id: str, content: list[dict[str, Any]]) -> Event:
    return event(
        "thread.message.delta", {"id": message_id, "object": "thread.message.delta", "delta": {"content": content}}
    )


def message_delta(message_id: str, text: str, annotations: Sequence[dict[str, Any]] = (), index: int = 0) -> Event:
    """One fragment of an assistant message's text (its content part `index`: after any images), with
    the citations it completed."""
    return _content_delta(
        message_id, [{"index": index, "type": "text", "text": {"value": text, "annotations": list(annotations)}}]
    )


def _images(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [part for part in message["content"] if part["type"] == "image_file"]


def image_deltas(message: dict[str, Any]) -> list[Event]:
    """The images an assistant message shows before its text (code_interpreter's), as one delta."""
    images = _images(message)
    if not images:
        return []
    return [_content_delta(message["id"], [{"index": index, **part} for index, part in enumerate(images)])]


def message_opening(message: dict[str, Any]) -> list[Event]:
    """created and in_progress, with the message as it starts (empty)."""
    growing = dict(
        message, status="in_progress", content=[], completed_at=None, incomplete_at=None, incomplete_details=None
    )
    return [event("thread.message.created", growing), event("thread.message.in_progress", growing)]


def message_events(message: dict[str, Any], text_deltas: list[str], citable: Citable) -> list[Event]:
    """created → in_progress → delta… → completed|incomplete, for a finished assistant message: its
    images, then its text, each text delta with the citations it completed."""
    events = message_opening(message) + image_deltas(message)
    scanner = Scanner(citable)
    at = len(_images(message))
    events += [message_delta(message["id"], delta, scanner.feed(delta), at) for delta in coalesced(text_deltas)]
    events.append(event(f"thread.message.{message['status']}", message))
    return events


def tool_call_delta(step_id: str, call: dict[str, Any]) -> Event:
    details = {"type": "tool_calls", "tool_calls": [call]}
    return event(
        "thread.run.step.delta", {"id": step_id, "object": "thread.run.step.delta", "delta": {"step_details": details}}
    )


def tool_call_announced(step_id: str, index: int, call_id: str, name: str) -> Event:
    """A function call appears with its id and name; its arguments follow."""
    function = {"name": name, "arguments": "", "output": None}
    return tool_call_delta(step_id, {"index": index, "id": call_id, "type": "function", "function": function})


CODE = "code_interpreter"


def builtin_call_announced(step_id: str, index: int, call_id: str, kind: str) -> Event:
    """A call of a tool the engine runs itself: file_search's delta is the call's type and id only;
    code_interpreter's starts with no input and no outputs, which follow."""
    body: dict[str, Any] = {"input": "", "outputs": []} if kind == CODE else {}
    return tool_call_delta(step_id, {"index": index, "id": call_id, "type": kind, kind: body})


def code_input(step_id: str, index: int, fragment: str) -> Event:
    """More of the code a code_interpreter call runs, as the model writes it."""
    return tool_call_delta(step_id, {"index": index, "type": CODE, CODE: {"input": fragment}})


def code_outputs(step_id: str, index: int, outputs: Sequence[Mapping[str, Any]]) -> Event:
    """What a code_interpreter call's execution output (its logs, its images), once it ran."""
    numbered = [{"index": number, **output} for number, output in enumerate(outputs)]
    return tool_call_delta(step_id, {"index": index, "type": CODE, CODE: {"outputs": numbered}})


def tool_call_arguments(step_id: str, index: int, fragment: str) -> Event:
    return tool_call_delta(step_id, {"index": index, "type": "function", "function": {"arguments": fragment}})


def opening_step_events(step: dict[str, Any]) -> list[Event]:
    """created and in_progress, with the step as it starts (no usage yet, no tool calls yet)."""
    opening = dict(step, status="in_progress", completed_at=None, cancelled_at=None, usage=None)
    if step["type"] == "tool_calls":
        opening["step_details"] = {"type": "tool_calls", "tool_calls": []}
    return [event("thread.run.step.created", opening), event("thread.run.step.in_progress", opening)]


def tool_call_delta_events(step: dict[str, Any], argument_deltas: Mapping[str, list[str]]) -> list[Event]:
    """Each call appears with its id and name, then a function call's arguments arrive as they were
    streamed (`argument_deltas`, by call id); a code_interpreter call's code, then its outputs; a
    file_search call appears with its type alone."""
    events = []
    for index, call in enumerate(step["step_details"]["tool_calls"]):
        if call["type"] == CODE:
            events.append(builtin_call_announced(step["id"], index, call["id"], CODE))
            lines = call[CODE]["input"].splitlines(keepends=True)
            events += [code_input(step["id"], index, chunk) for chunk in coalesced(lines)]
            if call[CODE]["outputs"]:
                events.append(code_outputs(step["id"], index, call[CODE]["outputs"]))
            continue
        if call["type"] != "function":
            events.append(builtin_call_announced(step["id"], index, call["id"], call["type"]))
            continue
        events.append(tool_call_announced(step["id"], index, call["id"], call["function"]["name"]))
        fragments = coalesced(argument_deltas.get(call["id"], []))
        events += [tool_call_arguments(step["id"], index, chunk) for chunk in fragments]
    return events


def step_event(step: dict[str, Any]) -> Event:
    return event(f"thread.run.step.{step['status']}", step)
