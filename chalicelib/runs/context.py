"""What the model sees for a run: instructions, the thread's messages (truncated as the run asks),
this run's tool calls and their outputs, and the run's settings mapped onto a chat completions request.
"""

from __future__ import annotations

import base64
import mimetypes
from typing import Any

from chalicelib.domain.files import readable_file
from chalicelib.storage import runs as run_store
from chalicelib.storage import threads as thread_store
from chalicelib.storage.records import ListQuery, Message
from chalicelib.storage.runs import StoredRun

# `auto` truncation considers at most this many recent messages (one Query page).
AUTO_MESSAGE_WINDOW = 100
CHARS_PER_TOKEN = 4  # a coarse estimate, used only to fit max_prompt_tokens before the call


def _estimated_tokens(message: dict[str, Any]) -> int:
    content = message.get("content") or ""
    text = content if isinstance(content, str) else " ".join(str(part.get("text", "")) for part in content)
    return len(text) // CHARS_PER_TOKEN + 4


IMAGE_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def _image_media_type(content: bytes, filename: str) -> str:
    for signature, media_type in IMAGE_SIGNATURES:
        if content.startswith(signature):
            return media_type
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp"
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


def _image_file_part(project_id: str, image_file: dict[str, Any]) -> dict[str, Any] | None:
    """An uploaded image as a data URL every OpenAI-compatible provider can read, keeping `detail`."""
    readable = readable_file(project_id, image_file["file_id"])
    if readable is None:
        return None  # deleted or expired since the message was written: the model cannot see it
    file, content = readable
    data = base64.b64encode(content).decode("ascii")
    url = f"data:{_image_media_type(content, file['filename'])};base64,{data}"
    return {"type": "image_url", "image_url": {"url": url, "detail": image_file.get("detail", "auto")}}


def _chat_message(message: Message) -> dict[str, Any] | None:
    parts: list[dict[str, Any]] = []
    for block in message.content:
        if block["type"] == "text":
            parts.append({"type": "text", "text": block["text"]["value"]})
        elif block["type"] == "image_url":
            parts.append({"type": "image_url", "image_url": dict(block["image_url"])})
        elif block["type"] == "image_file" and (image := _image_file_part(message.project_id, block["image_file"])):
            parts.append(image)
    if not parts:
        return None
    if all(part["type"] == "text" for part in parts):
        return {"role": message.role, "content": "\n\n".join(part["text"] for part in parts)}
    return {"role": message.role, "content": parts}


def _history(stored: StoredRun) -> list[dict[str, Any]]:
    strategy = stored.run["truncation_strategy"]
    window = strategy.get("last_messages") if strategy["type"] == "last_messages" else AUTO_MESSAGE_WINDOW
    page = thread_store.list_messages(
        stored.ref.project_id, stored.ref.thread_id, ListQuery(limit=min(window or 1, 100), order="desc")
    )
    chat = [converted for message in reversed(page.items) if (converted := _chat_message(message))]
    return chat


def _tool_turns(stored: StoredRun) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = []
    for step in run_store.all_steps(stored.ref):
        if step["type"] != "tool_calls" or step["status"] != "completed":
            continue
        calls = step["step_details"]["tool_calls"]
        turns.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": c["id"],
                        "type": "function",
                        "function": {k: c["function"][k] for k in ("name", "arguments")},
                    }
                    for c in calls
                ],
            }
        )
        turns.extend({"role": "tool", "tool_call_id": c["id"], "content": c["function"]["output"]} for c in calls)
    return turns


def chat_request(stored: StoredRun) -> tuple[dict[str, Any], bool]:
    """The chat completions request, and whether it fits `max_prompt_tokens` (oldest messages dropped)."""
    run = stored.run
    system = [{"role": "system", "content": run["instructions"]}] if run["instructions"] else []
    history = _history(stored)
    turns = _tool_turns(stored)
    budget = run.get("max_prompt_tokens")
    if budget is not None:
        fixed = sum(_estimated_tokens(m) for m in system + turns)
        while history and fixed + sum(_estimated_tokens(m) for m in history) > budget:
            history.pop(0)
        if not history and fixed > budget:
            return {}, False
    request: dict[str, Any] = {"model": run["model"], "messages": system + history + turns}
    functions = [tool for tool in run["tools"] if tool.get("type") == "function"]
    if functions:
        request["tools"] = [{"type": "function", "function": tool["function"]} for tool in functions]
        choice = run["tool_choice"]
        if isinstance(choice, dict):
            choice = (
                {"type": "function", "function": {"name": choice["function"]["name"]}}
                if choice.get("type") == "function"
                else "auto"
            )
        request["tool_choice"] = choice
        request["parallel_tool_calls"] = run["parallel_tool_calls"]
    if isinstance(run["response_format"], dict):
        request["response_format"] = run["response_format"]
    for name in ("temperature", "top_p"):
        if run.get(name) is not None:
            request[name] = run[name]
    if run.get("max_completion_tokens") is not None:
        request["max_tokens"] = run["max_completion_tokens"]
    return request, True
