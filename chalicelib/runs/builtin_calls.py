"""What the engine keeps beside the official fields of a built-in tool's call (file_search,
code_interpreter): under PRIVATE, what the model sent and what each tool needs to show the model its
result again when a later turn rebuilds the run's history. Served steps never show it (domain/runs.py)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

PRIVATE = "_model"


def calls(steps: Iterable[Mapping[str, Any]], tool: str) -> list[Mapping[str, Any]]:
    """The run's calls of the built-in `tool` that the engine ran, in order."""
    return [
        call
        for step in steps
        if step["type"] == "tool_calls"
        for call in step["step_details"]["tool_calls"]
        if call["type"] == tool and PRIVATE in call
    ]


def model_arguments(call: Mapping[str, Any]) -> str:
    """The arguments the model sent, as it sent them."""
    return str(call[PRIVATE]["arguments"])
