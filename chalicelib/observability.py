"""Structured logs: one JSON line per API request and one per run transition, on stdout (CloudWatch
Logs on AWS, the server's log locally).

Every line names the request it belongs to (`request_id`: the API's `x-request-id`; for a driver's
step, the Lambda invocation or the local poller's own id), the `operation`, its `outcome` and its
`duration_ms`; run lines add the run's ids and statuses. Only ids, names, statuses and numbers are
logged: never a key, a message, instructions or tool arguments.

The standard library only: `logging` and `json` are loaded anyway, so the Lambda cold start pays
nothing for it.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

current_request_id: ContextVar[str | None] = ContextVar("spindle_request_id", default=None)


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
        }
        line.update(getattr(record, "fields", {}))
        return json.dumps(line, ensure_ascii=False, separators=(",", ":"))


def _configured() -> logging.Logger:
    """Set up once, at import (two threads logging first at once would otherwise add two handlers)."""
    logger = logging.getLogger("spindle.trace")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(JsonLines())
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False  # one line each, not a second copy through the root logger
    return logger


_log = _configured()


def new_request_id() -> str:
    return "req_" + uuid.uuid4().hex


@contextmanager
def request_scope(request_id: str | None = None) -> Iterator[str]:
    """Lines logged inside carry this request id (a new one if none is given)."""
    request_id = request_id or new_request_id()
    token = current_request_id.set(request_id)
    try:
        yield request_id
    finally:
        current_request_id.reset(token)


def log_line(operation: str, outcome: str, duration_ms: float, **fields: str | int | float | None) -> None:
    """One line: what was done, how it ended, how long it took, and the ids that say to what."""
    line: dict[str, Any] = {"request_id": current_request_id.get(), "operation": operation, "outcome": outcome}
    line.update((name, value) for name, value in fields.items() if value is not None)
    line["duration_ms"] = round(duration_ms, 1)
    _log.info(operation, extra={"fields": line})


def since(started: float) -> float:
    """Milliseconds since `started` (a time.perf_counter() reading)."""
    return (time.perf_counter() - started) * 1000
