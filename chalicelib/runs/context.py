"""What the model sees for a run: instructions, the thread's messages (truncated as the run asks),
this run's tool calls and their outputs, and the run's settings, as a provider-neutral request.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from chalicelib.domain.files import readable_file
from chalicelib.runs import code_interpreter, file_search
from chalicelib.runs.builtin_calls import PRIVATE, model_arguments
from chalicelib.runs.code_interpreter import CodeInterpreter
from chalicelib.runs.file_search import FileSearch
from chalicelib.runs.providers.base import (
    CalledFunction,
    ChatMessage,
    ForcedFunction,
    FunctionTool,
    ImagePart,
    ModelRequest,
    Part,
    TextPart,
    ToolChoice,
)
from chalicelib.runs.providers.images import sniffed_media_type
from chalicelib.storage import threads as thread_store
from chalicelib.storage.records import ListQuery, Message, StoredRun

# `auto` truncation considers at most this many recent messages (one Query page).
AUTO_MESSAGE_WINDOW = 100
CHARS_PER_TOKEN = 4  # a coarse estimate, used only to fit max_prompt_tokens before the call
# What the model is shown of each built-in tool's call when the run's history is rebuilt.
BUILTIN_OUTPUTS: Mapping[str, Callable[[Mapping[str, Any]], str]] = {
    file_search.TOOL_NAME: file_search.model_output,
    code_interpreter.TOOL_NAME: code_interpreter.model_output,
}


def _estimated_tokens(message: ChatMessage) -> int:
    return len(message.text) // CHARS_PER_TOKEN + 4


def _image_media_type(content: bytes, filename: str) -> str:
    return sniffed_media_type(content) or mimetypes.guess_type(filename)[0] or "application/octet-stream"


def _image_file_part(project_id: str, image_file: dict[str, Any]) -> ImagePart | None:
    """An uploaded image, as its bytes, keeping `detail`."""
    readable = readable_file(project_id, image_file["file_id"])
    if readable is None:
        return None  # deleted or expired since the message was written: the model cannot see it
    file, content = readable
    media_type = _image_media_type(content, file["filename"])
    return ImagePart(data=content, media_type=media_type, detail=image_file.get("detail", "auto"))


def _chat_message(message: Message) -> ChatMessage | None:
    parts: list[Part] = []
    for block in message.content:
        if block["type"] != "text" and message.role == "assistant":
            continue  # the images code_interpreter showed: chat models take images from users only
        if block["type"] == "text":
            parts.append(TextPart(block["text"]["value"]))
        elif block["type"] == "image_url":
            image_url = block["image_url"]
            parts.append(ImagePart(url=image_url["url"], detail=image_url.get("detail")))
        elif block["type"] == "image_file" and (image := _image_file_part(message.project_id, block["image_file"])):
            parts.append(image)
    if not parts:
        return None
    return ChatMessage("assistant" if message.role == "assistant" else "user", tuple(parts))


def _history(stored: StoredRun) -> list[ChatMessage]:
    strategy = stored.run["truncation_strategy"]
    window = strategy.get("last_messages") if strategy["type"] == "last_messages" else AUTO_MESSAGE_WINDOW
    page = thread_store.list_messages(
        stored.ref.project_id, stored.ref.thread_id, ListQuery(limit=min(window or 1, 100), order="desc")
    )
    return [converted for message in reversed(page.items) if (converted := _chat_message(message))]


def _tool_turns(steps: Sequence[Mapping[str, Any]]) -> list[ChatMessage]:
    """This run's completed tool calls (functions, and the searches and code the engine ran) and their
    outputs, in order."""
    turns: list[ChatMessage] = []
    for step in steps:
        if step["type"] != "tool_calls" or step["status"] != "completed":
            continue
        called: list[CalledFunction] = []
        outputs: list[ChatMessage] = []
        for call in step["step_details"]["tool_calls"]:
            if call["type"] == "function":
                called.append(CalledFunction(call["id"], call["function"]["name"], call["function"]["arguments"]))
                output = call["function"]["output"]
            elif call["type"] in BUILTIN_OUTPUTS and PRIVATE in call:
                called.append(CalledFunction(call["id"], call["type"], model_arguments(call)))
                output = BUILTIN_OUTPUTS[call["type"]](call)
            else:
                continue
            outputs.append(ChatMessage("tool", (TextPart(output),), tool_call_id=call["id"]))
        if called:
            turns.append(ChatMessage("assistant", calls=tuple(called)))
            turns.extend(outputs)
    return turns


def _tool_choice(choice: Any, may_force: frozenset[str]) -> ToolChoice:
    if isinstance(choice, dict):
        if choice.get("type") == "function":
            return ForcedFunction(choice["function"]["name"])
        if choice.get("type") in may_force:
            return ForcedFunction(str(choice["type"]))
        return "auto"
    return choice if choice in ("none", "required") else "auto"


def _used(steps: Sequence[Mapping[str, Any]], tool: str) -> bool:
    return any(
        step["type"] == "tool_calls" and any(call["type"] == tool for call in step["step_details"]["tool_calls"])
        for step in steps
    )


def model_request(
    stored: StoredRun,
    steps: Sequence[Mapping[str, Any]],
    searching: FileSearch | None,
    coding: CodeInterpreter | None = None,
) -> tuple[ModelRequest, bool]:
    """The request for the model, and whether it fits `max_prompt_tokens` (oldest messages dropped).
    `steps` are the run's steps so far; `searching`, the run's file_search if it can search; `coding`,
    its code_interpreter if it has one."""
    run = stored.run
    instructions = run["instructions"] or ""
    if searching is not None:
        instructions = "\n\n".join(part for part in (instructions, file_search.INSTRUCTIONS) if part)
    if coding is not None:
        from chalicelib.sandbox import sandbox_for  # runs without the tool never load the sandbox

        told = code_interpreter.instructions(coding, sandbox_for().working_directory)
        instructions = "\n\n".join(part for part in (instructions, told) if part)
    history = _history(stored)
    turns = _tool_turns(steps)
    budget = run.get("max_prompt_tokens")
    if budget is not None:
        fixed = (len(instructions) // CHARS_PER_TOKEN + 4 if instructions else 0) + sum(map(_estimated_tokens, turns))
        while history and fixed + sum(map(_estimated_tokens, history)) > budget:
            history.pop(0)
        if not history and fixed > budget:
            return ModelRequest(run["model"], instructions, ()), False
    # A built-in tool takes its name: a function of the same name is not offered beside it.
    reserved = {file_search.TOOL_NAME} if searching is not None else set()
    if coding is not None:
        reserved.add(code_interpreter.TOOL_NAME)
    functions = [tool["function"] for tool in run["tools"] if tool.get("type") == "function"]
    tools = (
        tuple(
            FunctionTool(f["name"], f.get("description"), f.get("parameters"), f.get("strict"))
            for f in functions
            if f["name"] not in reserved
        )
        + ((file_search.TOOL,) if searching is not None else ())
        + ((code_interpreter.TOOL,) if coding else ())
    )
    rounds = file_search.rounds_so_far(steps)
    # Forcing a built-in tool holds until it is first used (forced every turn, a run would never end),
    # and only where the run has it.
    may_force = {file_search.TOOL_NAME} if searching is not None and rounds == 0 else set()
    if coding is not None and not _used(steps, code_interpreter.TOOL_NAME):
        may_force.add(code_interpreter.TOOL_NAME)
    tool_choice = _tool_choice(run["tool_choice"], frozenset(may_force)) if tools else "auto"
    if searching is not None and rounds >= file_search.MAX_SEARCH_ROUNDS:
        tool_choice = "none"  # enough searching: the model answers from what it has
    response_format = run["response_format"] if isinstance(run["response_format"], dict) else None
    return (
        ModelRequest(
            model=run["model"],
            system=instructions,
            messages=(*history, *turns),
            tools=tools,
            tool_choice=tool_choice,
            parallel_tool_calls=run["parallel_tool_calls"],
            temperature=run.get("temperature"),
            top_p=run.get("top_p"),
            max_output_tokens=run.get("max_completion_tokens"),
            response_format=response_format,
        ),
        True,
    )
