"""A stream whose run does not stop in time ends with an `error` event, then `done` (in-process)."""

from __future__ import annotations

import dataclasses
import json

from chalicelib.config import settings
from chalicelib.runs import streaming
from chalicelib.runs.engine import Outcome

AUTH = {"Authorization": "Bearer sk-timeout", "Content-Type": "application/json"}


def post(api, path: str, body: dict):
    return api.http.post(path, headers=AUTH, body=json.dumps(body).encode())


def test_a_run_that_does_not_stop_in_time_ends_the_stream_with_an_error_event(api, monkeypatch):
    monkeypatch.setattr(streaming, "settings", dataclasses.replace(settings, stream_max_seconds=0.3))
    # Another worker owns the run and never finishes: this request can only wait.
    monkeypatch.setattr(streaming, "advance_run", lambda ref, listener=None: Outcome(done=False, wait_seconds=1.0))
    assistant = json.loads(post(api, "/v1/assistants", {"model": "offline"}).body)
    thread = json.loads(post(api, "/v1/threads", {"messages": [{"role": "user", "content": "hi"}]}).body)

    response = post(api, f"/v1/threads/{thread['id']}/runs", {"assistant_id": assistant["id"], "stream": True})

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/event-stream"
    text = response.body.decode()
    names = [line.removeprefix("event: ") for line in text.splitlines() if line.startswith("event: ")]
    assert names == ["thread.run.created", "thread.run.queued", "error", "done"]
    error = json.loads(text.split("event: error\ndata: ")[1].split("\n")[0])
    assert set(error) == {"code", "message", "param", "type"} and error["code"] == "stream_timeout"
    assert text.endswith("event: done\ndata: [DONE]\n\n")
