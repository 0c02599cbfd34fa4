"""The tool_resources a run's built-in tools draw on: its assistant's and its thread's, read once a turn
(one GetItem each) for every tool that needs them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.storage import assistants as assistant_store
from chalicelib.storage import threads as thread_store
from chalicelib.storage.records import StoredRun

BUILTIN_TOOLS = frozenset({"file_search", "code_interpreter"})


@dataclass(frozen=True)
class ToolResources:
    assistant: Mapping[str, Any]
    thread: Mapping[str, Any]

    def ids(self, tool: str, key: str) -> list[str]:
        """The ids under `tool_resources.<tool>.<key>`: the assistant's, then the thread's."""
        return [
            str(found)
            for resources in (self.assistant, self.thread)
            for found in ((resources.get(tool) or {}).get(key) or [])
        ]


NONE = ToolResources({}, {})


def of_run(stored: StoredRun) -> ToolResources:
    """The run's tool_resources, read only if it has a built-in tool that needs them."""
    if not any(tool.get("type") in BUILTIN_TOOLS for tool in stored.run["tools"]):
        return NONE
    ref = stored.ref
    assistant = assistant_store.get(ref.project_id, stored.run["assistant_id"]) or {}
    thread = thread_store.get_thread(ref.project_id, ref.thread_id)
    return ToolResources(assistant.get("tool_resources") or {}, (thread.tool_resources if thread else None) or {})
