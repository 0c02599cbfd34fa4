"""Every request and every run transition logs one JSON line, tied to the request id the client saw,
and no line holds a key, a message or instructions."""

from __future__ import annotations

import json
import time

SECRET_WORDS = "the password is swordfish-7731"
KEY = "sk-logs-tenant-never-logged-5521"


def log_lines(server) -> list[dict]:
    lines = []
    for raw in server.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
        if raw.startswith("{"):
            try:
                lines.append(json.loads(raw))
            except ValueError:
                continue
    return [line for line in lines if line.get("logger") == "spindle.trace"]


def wait_for(predicate, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("the log lines never appeared")


def test_a_run_logs_its_request_and_each_transition_and_no_content(server):
    client = server.client(KEY)
    assistant = client.beta.assistants.create(model="offline", instructions=f"Never say: {SECRET_WORDS}")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": SECRET_WORDS}])
    raw = client.beta.threads.runs.with_raw_response.create(thread_id=thread.id, assistant_id=assistant.id)
    request_id = raw.headers["x-request-id"]
    run = raw.parse()
    client.beta.threads.runs.poll(run.id, thread_id=thread.id, poll_interval_ms=50)

    def request_line():
        return [line for line in log_lines(server) if line.get("request_id") == request_id]

    (request,) = [line for line in wait_for(request_line) if not line["operation"].startswith("run.")]
    assert request["operation"] == "POST /v1/threads/{thread_id}/runs"
    assert request["outcome"] == "200" and request["thread_id"] == thread.id
    assert isinstance(request["duration_ms"], float | int) and request["duration_ms"] >= 0
    created = [line for line in request_line() if line["operation"] == "run.create"]
    assert created and created[0]["run_id"] == run.id and created[0]["outcome"] == "applied"

    def transitions():
        lines = [line for line in log_lines(server) if line.get("run_id") == run.id]
        return lines if any(line["operation"] == "run.answer" for line in lines) else None

    moves = [(line["operation"], line["outcome"], line.get("to_status")) for line in wait_for(transitions)]
    assert ("run.claim", "applied", "in_progress") in moves
    assert ("run.answer", "applied", "completed") in moves
    worker_lines = [line for line in transitions() if line["operation"] in ("run.claim", "run.answer")]
    assert all(line["request_id"] and line["request_id"].startswith("req_") for line in worker_lines)

    text = server.log_path.read_text(encoding="utf-8", errors="replace")
    assert "swordfish" not in text  # neither the message nor the instructions
    assert KEY not in text
