"""Plain records that cross the storage boundary: what the domain builds and what storage returns.
No pynamodb here, so the domain never touches DynamoDB types."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ListQuery:
    limit: int = 20
    order: str = "desc"
    after: str | None = None
    before: str | None = None

    @property
    def newest_first(self) -> bool:
        return self.order == "desc"


@dataclass(frozen=True)
class Page:
    items: list[Any]
    has_more: bool


@dataclass
class Thread:
    project_id: str
    id: str
    created_at: int
    metadata: dict[str, str] = field(default_factory=dict)
    tool_resources: dict[str, Any] = field(default_factory=dict)
    active_run_id: str | None = None


@dataclass
class Message:
    project_id: str
    thread_id: str
    id: str
    created_at: int
    role: str
    content: list[dict[str, Any]]
    attachments: list[dict[str, Any]] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)
    status: str = "completed"
    assistant_id: str | None = None
    run_id: str | None = None
    completed_at: int | None = None
    incomplete_at: int | None = None
    incomplete_details: dict[str, Any] | None = None
