"""Local mode (`make dev`): data lives outside the process that reloads; deleted threads are purged."""

from __future__ import annotations

import os
import time
from pathlib import Path

import boto3
import openai
import pytest

from chalicelib.domain.auth import project_for
from chalicelib.local.server import SpindleRequestHandler
from chalicelib.storage.models import thread_key
from tests.servers import ROOT, start_local_server, wait_until_ready


def wait_for(condition, timeout: float = 30, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def test_data_survives_a_code_reload():
    with start_local_server(auth="open", reload=True) as server:
        client = server.client("sk-reload")
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "still here?"}])
        watched = ROOT / "chalicelib" / "__init__.py"
        stat = watched.stat()
        os.utime(watched, (stat.st_atime, stat.st_mtime + 5))
        try:
            wait_for(lambda: "restarting the API" in Path(server.log_path).read_text())
            wait_until_ready(server.base_url, server.process)
            assert client.beta.threads.retrieve(thread.id) == thread
            assert client.beta.threads.messages.list(thread.id).data[0].content[0].text.value == "still here?"
        finally:
            os.utime(watched, (stat.st_atime, stat.st_mtime))


def test_a_deleted_threads_messages_are_purged_from_storage(server):
    token = "sk-purge"
    client = server.client(token)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": str(n)} for n in range(30)])
    table = boto3.resource("dynamodb", endpoint_url=server.dynamodb_endpoint).Table("spindle-messages")
    key = thread_key(project_for(f"Bearer {token}"), thread.id)

    def stored() -> int:
        return table.query(KeyConditionExpression="thread_key = :k", ExpressionAttributeValues={":k": key})["Count"]

    assert stored() == 30
    client.beta.threads.delete(thread.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.list(thread.id)
    wait_for(lambda: stored() == 0)


def test_the_local_server_turns_nagle_off():
    # chalice local leaves it on: ~40 ms on every keep-alive request.
    assert SpindleRequestHandler.disable_nagle_algorithm is True
