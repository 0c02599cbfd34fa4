"""Spindle: the OpenAI Assistants API v2 on Chalice. This file is the table of contents."""

from __future__ import annotations

from chalice import Chalice, Rate
from chalice.app import CloudWatchEvent

from chalicelib.http import messages, threads
from chalicelib.http.middleware import openai_error_shape

PURGE_MARGIN_SECONDS = 10

app = Chalice(app_name="spindle")
app.register_middleware(openai_error_shape, "http")
app.register_blueprint(threads.blueprint)
app.register_blueprint(messages.blueprint)


@app.schedule(Rate(1, unit=Rate.MINUTES))
def purge_deleted_threads(event: CloudWatchEvent) -> None:
    """Remove the messages of deleted threads (they are already unreachable)."""
    from chalicelib.domain.purge import purge_deleted_threads as purge

    purge(seconds=event.context.get_remaining_time_in_millis() / 1000 - PURGE_MARGIN_SECONDS)
