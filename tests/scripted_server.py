"""What the stand-in model servers share (tests/standin_model.py, tests/standin_bedrock.py): a
loopback HTTP server whose replies follow scripts, one per fresh model name, recording what it was
sent. Each stand-in supplies its wire format: the request handler and the steps it plays."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Generic, Self, TypeVar

StepT = TypeVar("StepT")


@dataclass
class Script(Generic[StepT]):
    steps: list[StepT]
    served: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)

    def next_step(self) -> StepT:
        step = self.steps[min(self.served, len(self.steps) - 1)]  # the last step repeats
        self.served += 1
        return step


class ScriptedServer(Generic[StepT]):
    """`with Stand-in() as server:` starts it on 127.0.0.1 and a free port."""

    model_prefix = "standin"  # fresh model names start so (and end so: Bedrock's ids end in a version)
    model_suffix = ""

    def __init__(self, handler_for: Callable[[Any], type[BaseHTTPRequestHandler]], name: str) -> None:
        self._scripts: dict[str, Script[StepT]] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name=name, daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- what tests use -------------------------------------------------------------------------

    def script(self, steps: list[StepT], prefix: str | None = None) -> str:
        """Register a script and return the fresh model name that selects it."""
        if not steps:
            raise ValueError("a script needs at least one step")
        model = f"{prefix or self.model_prefix}-{uuid.uuid4().hex[:12]}{self.model_suffix}"
        with self._lock:
            self._scripts[model] = Script(list(steps))
        return model

    def requests(self, model: str) -> list[dict[str, Any]]:
        """The request bodies received for `model`, oldest first."""
        with self._lock:
            return [json.loads(json.dumps(body)) for body in self._scripts[model].requests]

    def request_headers(self, model: str) -> list[dict[str, str]]:
        with self._lock:
            return [dict(headers) for headers in self._scripts[model].headers]

    def wait_for_requests(self, model: str, count: int, timeout: float = 15.0) -> list[dict[str, Any]]:
        """Block until `model` has received at least `count` requests (a test's synchronisation point)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._scripts[model].requests) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"{model} received {len(self._scripts[model].requests)} of {count} requests")
                self._changed.wait(remaining)
        return self.requests(model)

    # --- what the handler uses ------------------------------------------------------------------

    def _take(self, model: Any, body: dict[str, Any], headers: dict[str, str]) -> StepT | None:
        with self._changed:
            script = self._scripts.get(model) if isinstance(model, str) else None
            if script is None:
                return None
            script.requests.append(body)
            script.headers.append(headers)
            self._changed.notify_all()
            return script.next_step()
