"""Runs and run steps: /v1/threads/runs and /v1/threads/{thread_id}/runs/…"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from chalice import Blueprint

from chalicelib.config import settings
from chalicelib.domain import lifecycle, runs
from chalicelib.domain.lifecycle import Run
from chalicelib.domain.pagination import parse_list_query
from chalicelib.http import streams
from chalicelib.http.routing import Call, Reply, api_route

blueprint = Blueprint(__name__)

RUNS = "/v1/threads/{thread_id}/runs"
RUN = RUNS + "/{run_id}"
STEPS = RUN + "/steps"


def _stream_reply(stored: Run, after_seq: int, with_content: bool = False) -> Reply:
    """The run's events since `after_seq` as text/event-stream, as they happen where the server can
    write them so (http/streams.py), ending `event: done` / `data: [DONE]`."""
    from chalicelib.runs.streaming import stream_events  # the engine loads only for streams

    sse = _server_sent_events(stream_events(stored.ref, after_seq), with_content)
    return Reply(streams.body(sse), {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}, raw=True)


def _server_sent_events(events: Iterator[dict[str, Any]], with_content: bool) -> Iterator[str]:
    from chalicelib.runs.streaming import DEADLINE, KEEP_ALIVE

    for item in events:
        if item is KEEP_ALIVE:
            yield ": keep-alive\n\n"  # an SSE comment: the SDKs skip it
            continue
        if item is DEADLINE:
            error = {
                "code": "stream_timeout",
                "message": f"The run did not stop within {settings.stream_max_seconds:g} s; poll it for the rest.",
                "param": None,
                "type": "server_error",
            }
            yield f"event: error\ndata: {json.dumps(error)}\n\n"
            break
        item = runs.render_event(item, with_content)
        yield f"event: {item['event']}\ndata: {json.dumps(item['data'], ensure_ascii=False)}\n\n"
    yield "event: done\ndata: [DONE]\n\n"


def _run_reply(stored: Run) -> Reply:
    """The run, and while it is live a hint for the SDK's poll helpers (which otherwise sleep 1 s)."""
    headers = {} if lifecycle.is_terminal(stored) else {"openai-poll-after-ms": str(settings.poll_after_ms)}
    return Reply(lifecycle.render_run(stored), headers)


@api_route(blueprint, "/v1/threads/runs", "POST")
def create_thread_and_run(call: Call) -> Reply:
    body = call.json(required=True)
    stored = runs.create_thread_and_run(call.project_id, body)
    return _stream_reply(stored, 0) if body.get("stream") else _run_reply(stored)


@api_route(blueprint, RUNS, "POST")
def create_run(call: Call, thread_id: str) -> Reply:
    body = call.json(required=True)
    with_content = runs.wants_result_content(call.query_list("include[]"))
    stored = runs.create_run(call.project_id, thread_id, body)
    return _stream_reply(stored, 0, with_content) if body.get("stream") else _run_reply(stored)


@api_route(blueprint, RUNS, "GET")
def list_runs(call: Call, thread_id: str) -> dict[str, Any]:
    return runs.list_runs(call.project_id, thread_id, parse_list_query(call.query(), "run"))


@api_route(blueprint, RUN, "GET")
def get_run(call: Call, thread_id: str, run_id: str) -> Reply:
    return _run_reply(runs.get_run(call.project_id, thread_id, run_id))


@api_route(blueprint, RUN, "POST")
def modify_run(call: Call, thread_id: str, run_id: str) -> Reply:
    return _run_reply(runs.modify_run(call.project_id, thread_id, run_id, call.json(required=True)))


@api_route(blueprint, RUN + "/cancel", "POST")
def cancel_run(call: Call, thread_id: str, run_id: str) -> Reply:
    return _run_reply(runs.cancel_run(call.project_id, thread_id, run_id))


@api_route(blueprint, RUN + "/submit_tool_outputs", "POST")
def submit_tool_outputs(call: Call, thread_id: str, run_id: str) -> Reply:
    body = call.json(required=True)
    stored, stream_from = runs.submit_tool_outputs(call.project_id, thread_id, run_id, body)
    # The stream starts with what the submission itself logged (the tool step completed, run queued).
    return _stream_reply(stored, stream_from) if body.get("stream") else _run_reply(stored)


@api_route(blueprint, STEPS, "GET")
def list_run_steps(call: Call, thread_id: str, run_id: str) -> dict[str, Any]:
    with_content = runs.wants_result_content(call.query_list("include[]"))
    return runs.list_steps(call.project_id, thread_id, run_id, parse_list_query(call.query(), "step"), with_content)


@api_route(blueprint, STEPS + "/{step_id}", "GET")
def get_run_step(call: Call, thread_id: str, run_id: str, step_id: str) -> dict[str, Any]:
    with_content = runs.wants_result_content(call.query_list("include[]"))
    return runs.get_step(call.project_id, thread_id, run_id, step_id, with_content)
