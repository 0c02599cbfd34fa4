"""Spindle: the OpenAI Assistants API v2 on Chalice. This file is the table of contents."""

from __future__ import annotations

from typing import Any

from chalice import Rate
from chalice.app import CloudWatchEvent

from chalicelib.http import assistants, console, files, messages, runs, threads, vector_stores
from chalicelib.http.binary import SpindleApp
from chalicelib.http.middleware import logged, openai_error_shape

PURGE_MARGIN_SECONDS = 10

app = SpindleApp(app_name="spindle")  # Chalice, answering bytes for any Accept (http/binary.py)
app.register_middleware(logged, "http")
app.register_middleware(openai_error_shape, "http")
app.register_blueprint(threads.blueprint)
app.register_blueprint(messages.blueprint)
app.register_blueprint(assistants.blueprint)
app.register_blueprint(runs.blueprint)
app.register_blueprint(files.blueprint)
app.register_blueprint(vector_stores.blueprint)
app.register_blueprint(console.blueprint)  # the Console's page and script (/console)
# Uploads arrive as multipart bodies: API Gateway must pass them through as bytes. (Downloads leave as
# bytes whatever their type: http/binary.py.)
app.api.binary_types.extend(["multipart/form-data", "application/binary"])


@app.schedule(Rate(1, unit=Rate.MINUTES))
def purge_deleted_threads(event: CloudWatchEvent) -> None:
    """Remove the messages of deleted threads (they are already unreachable)."""
    from chalicelib.domain.purge import purge_deleted_threads as purge

    context: Any = event.context  # the Lambda context object (chalice types it as a dict)
    purge(seconds=context.get_remaining_time_in_millis() / 1000 - PURGE_MARGIN_SECONDS)


@app.schedule(Rate(1, unit=Rate.MINUTES))
def ingest_pending(event: CloudWatchEvent) -> None:
    """Ingest the vector store files that are due (added, or left by a worker that died)."""
    from chalicelib.ingest.worker import ingest_in_invocation

    context: Any = event.context
    ingest_in_invocation(context.get_remaining_time_in_millis() / 1000 - PURGE_MARGIN_SECONDS)


@app.lambda_function(name="ingest_files")
def ingest_files(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Invoked (asynchronously) when files are added to a vector store: ingest what is due."""
    from chalicelib.ingest.worker import ingest_in_invocation

    remaining = context.get_remaining_time_in_millis() / 1000 if context is not None else 300.0
    return {"ingested": ingest_in_invocation(remaining - PURGE_MARGIN_SECONDS)}


@app.lambda_function(name="advance_run")
def advance_run_task(event: dict[str, Any], context: object) -> dict[str, Any]:
    """The Step Functions task: advance one run by one step; the state machine waits and repeats."""
    from chalicelib.observability import request_scope
    from chalicelib.runs.engine import advance_run
    from chalicelib.storage.records import RunRef

    invocation = str(getattr(context, "aws_request_id", "") or "").replace("-", "")
    with request_scope("req_" + invocation if invocation else None):
        outcome = advance_run(RunRef.parse(event["run"]))
    return {"run": event["run"], "done": outcome.done, "wait_seconds": max(1, int(outcome.wait_seconds + 0.999))}
