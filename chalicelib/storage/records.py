"""Plain records that cross the storage boundary: what the domain builds and what storage returns.
No pynamodb types here, so the domain never touches them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chalicelib.storage.models import run_key, split_run_key


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
class FileCounts:
    """How many of a vector store's (or a file batch's) files are in each status."""

    in_progress: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0

    @classmethod
    def of(cls, record: Any) -> FileCounts:
        """From a record's `files_<status>` counters (VectorStoreRecord, VectorStoreFileBatchRecord)."""
        return cls(
            in_progress=int(record.files_in_progress or 0),
            completed=int(record.files_completed or 0),
            failed=int(record.files_failed or 0),
            cancelled=int(record.files_cancelled or 0),
        )

    def as_object(self) -> dict[str, int]:
        """The official `file_counts` object."""
        return {
            "in_progress": self.in_progress,
            "completed": self.completed,
            "failed": self.failed,
            "cancelled": self.cancelled,
            "total": self.in_progress + self.completed + self.failed + self.cancelled,
        }


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


# --- runs ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunRef:
    project_id: str
    thread_id: str
    run_id: str

    @property
    def key(self) -> str:
        return run_key(self.project_id, self.thread_id, self.run_id)

    @classmethod
    def parse(cls, key: str) -> RunRef:
        return cls(*split_run_key(key))


@dataclass(frozen=True)
class StoredRun:
    """A run as stored: the served RunObject (less status and metadata) and the private state beside it."""

    ref: RunRef
    status: str
    metadata: Mapping[str, str]
    run: Mapping[str, Any]
    lease_token: str | None = None
    lease_expires: float | None = None
    event_seq: int = 0
    usage_so_far: Mapping[str, int] | None = None  # the model calls' usage until the run ends
    tool_step_id: str | None = None  # the tool-calls step waiting for outputs


@dataclass(frozen=True)
class RunChange:
    """One guarded transition of a run, and what it writes alongside. Built only by
    chalicelib/domain/lifecycle.py."""

    move: str  # the lifecycle's name for it (logged, not stored)
    ref: RunRef
    from_statuses: tuple[str, ...]
    to_status: str
    run: Mapping[str, Any]
    event_seq: int  # the log's length the change was built on (guards against a concurrent append)
    events: tuple[dict[str, Any], ...] = ()  # appended to the run's event log
    lease_token: str | None = None  # required current lease holder
    claim_before: float | None = None  # or: a lease that is absent or expired before this time
    new_lease: tuple[str, float] | None = None
    keep_lease: bool = False  # leave the engine's lease as it is (cancel)
    messages: tuple[Message, ...] = ()
    steps: tuple[Mapping[str, Any], ...] = ()
    release_thread: bool = False  # the run stops being the thread's active run
    enqueue_at: float | None = None  # local driver: when the run queue should advance the run next
    usage_so_far: Mapping[str, int] | None = None  # None: leave as it is
    tool_step_id: str | None = None  # None: leave as it is


@dataclass(frozen=True)
class Applied:
    """Whether a change was committed; if not, the run as the refusal found it (None: not known, or
    there is no such run)."""

    applied: bool
    current: StoredRun | None = None
    event_seq: int | None = None  # when applied: how many segments the run's event log holds now


@dataclass(frozen=True)
class NewRun:
    """A run to store as its thread's active run, with what it brings: the messages it adds, its
    opening events, and (local driver) a queue entry. Built only by chalicelib/domain/lifecycle.py."""

    ref: RunRef
    status: str
    metadata: Mapping[str, str]
    run: Mapping[str, Any]
    messages: tuple[Message, ...]
    events: tuple[dict[str, Any], ...]
    enqueue_at: float | None  # local driver: when the run queue should first advance the run
