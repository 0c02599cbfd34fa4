"""Responses written as they are produced (`text/event-stream`).

A route that streams hands its body over as an iterator of chunks. A server that can write a response
while it is produced (the dev server) switches streaming on for the requests it serves, takes the chunks
after the route returns, and writes and flushes each one as it comes. Where nothing can (Chalice's
handler on Lambda answers in one piece), the chunks are joined into the body. Either way the request is
handled by the same route: authentication, validation, the domain call and the events are the same.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

_request = threading.local()  # per request: a server serves each request on one thread


def start_request(streaming: bool) -> None:
    """Called by a server before it hands a request to the app: whether it can stream the answer."""
    _request.streaming = streaming
    _request.chunks = None


def body(chunks: Iterator[str]) -> str:
    """The body to answer with: "" (the chunks kept for the server to write) where the server streams,
    else the chunks joined."""
    if getattr(_request, "streaming", False):
        _request.chunks = chunks
        return ""
    return "".join(chunks)


def take() -> Iterator[str] | None:
    """The chunks the route left for the server to write, if it streams."""
    chunks: Iterator[str] | None = getattr(_request, "chunks", None)
    _request.chunks = None
    return chunks
