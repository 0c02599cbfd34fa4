"""A model's stream, read in a thread of its own, so that the worker waiting for it can stop waiting.

A model may be silent for a long time before its first token (a reasoning model thinking, a slow
provider), and a read from it cannot be interrupted. The worker reads the model's events from a
`ModelFeed` instead, which hands them over as they arrive and lets the worker look between them,
several times a second, whether it should go on: a cancel then ends the run at once, not at the
model's next delta. The abandoned stream is closed by its reader thread as soon as the model sends
anything more, or when the provider's own read timeout ends it.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Iterator
from typing import Any

from chalicelib.runs.providers.base import Events, ProviderEvent

# How often a worker waiting for the model looks whether it should stop waiting.
LOOK_SECONDS = 0.05


class ModelFeed:
    def __init__(self, events: Events) -> None:
        self._events = events
        self._items: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._abandoned = threading.Event()
        reading = contextvars.copy_context()  # the reader's log lines carry the step's request id
        threading.Thread(target=reading.run, args=(self._read,), name="model-feed", daemon=True).start()

    def _read(self) -> None:
        try:
            for event in self._events:
                if self._abandoned.is_set():
                    return
                self._items.put(("event", event))
            self._items.put(("end", None))
        except BaseException as error:  # handed to the worker, which decides what it means
            self._items.put(("error", error))
        finally:
            self._events.close()  # the provider closes the model's connection

    def until(self, stop: threading.Event) -> Iterator[ProviderEvent]:
        """The model's events as they arrive, until the stream ends or `stop` is set (the caller tells
        the two apart by `stop`). An error the stream raised is raised here."""
        while not stop.is_set():
            try:
                kind, value = self._items.get(timeout=LOOK_SECONDS)
            except queue.Empty:
                continue
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value

    def close(self) -> None:
        """Nothing more is wanted: the reader closes the stream at the model's next event."""
        self._abandoned.set()
