"""Expiry as the official API does it: a run past `expires_at` takes no tool outputs, and a file past
its `expires_at` is gone (it cannot be referenced, and a run no longer shows it to the model)."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from chalicelib.domain import assistants, files, runs, threads
from chalicelib.domain.errors import InvalidRequest, NotFound
from chalicelib.runs.context import model_request
from chalicelib.runs.engine import advance_run
from chalicelib.runs.providers.base import TextPart
from chalicelib.storage import runs as store
from tests.storage.conftest import time_passes

PROJECT = "proj_expiry"
ECHO = {"type": "function", "function": {"name": "echo", "parameters": {"type": "object", "properties": {}}}}
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32
HOUR = 3600


def an_image_expiring_in_an_hour() -> dict:
    form = {"purpose": "vision", "expires_after[anchor]": "created_at", "expires_after[seconds]": str(HOUR)}
    return files.create_file(PROJECT, form, "cat.png", PNG)


@pytest.fixture
def an_hour_later(monkeypatch):
    """Move the files domain's clock past the expiry (and only its clock: moto keeps real time)."""

    def later() -> None:
        monkeypatch.setattr(files, "time", SimpleNamespace(time=lambda: time.time() + HOUR + 1))

    return later


def test_tool_outputs_after_expires_at_are_refused_and_the_run_expires(aws):
    assistant = assistants.create_assistant(PROJECT, {"model": "offline", "tools": [ECHO]})
    thread = threads.create_thread(PROJECT, {"messages": [{"role": "user", "content": "call echo"}]})
    created = runs.create_run(
        PROJECT,
        thread["id"],
        {"assistant_id": assistant["id"], "tool_choice": {"type": "function", "function": {"name": "echo"}}},
    )
    advance_run(created.ref)
    waiting = store.get_run(created.ref)
    assert waiting.status == "requires_action"
    (call,) = waiting.run["required_action"]["submit_tool_outputs"]["tool_calls"]
    time_passes(waiting.ref, expires_at=int(time.time()) - 1)

    with pytest.raises(InvalidRequest) as refused:
        runs.submit_tool_outputs(
            PROJECT, thread["id"], created.ref.run_id, {"tool_outputs": [{"tool_call_id": call["id"], "output": "x"}]}
        )
    assert refused.value.message == 'Runs in status "expired" do not accept tool outputs.'
    assert store.get_run(created.ref).status == "requires_action"  # nothing was stored
    assert advance_run(created.ref).done is True
    assert store.get_run(created.ref).status == "expired"


def test_an_expired_file_can_no_longer_be_referenced(aws, an_hour_later):
    image = an_image_expiring_in_an_hour()
    attachment = {"role": "user", "content": "see", "attachments": [{"file_id": image["id"], "tools": []}]}
    thread = threads.create_thread(PROJECT, {})
    threads.create_message(PROJECT, thread["id"], attachment)  # still live: accepted

    an_hour_later()
    with pytest.raises(NotFound) as refused:
        threads.create_message(PROJECT, thread["id"], attachment)
    assert refused.value.param == "attachments[0].file_id"
    with pytest.raises(NotFound) as refused:
        assistants.create_assistant(
            PROJECT, {"model": "offline", "tool_resources": {"code_interpreter": {"file_ids": [image["id"]]}}}
        )
    assert refused.value.param == "tool_resources.code_interpreter.file_ids[0]"
    with pytest.raises(NotFound):
        files.get_file(PROJECT, image["id"])
    assert image["id"] not in [file["id"] for file in files.list_files(PROJECT, files.ListQuery(), None)["data"]]


def test_an_image_that_expired_after_its_message_was_written_is_not_sent_to_the_model(aws, an_hour_later):
    image = an_image_expiring_in_an_hour()
    content = [
        {"type": "text", "text": "what is this?"},
        {"type": "image_file", "image_file": {"file_id": image["id"]}},
    ]
    thread = threads.create_thread(PROJECT, {"messages": [{"role": "user", "content": content}]})
    assistant = assistants.create_assistant(PROJECT, {"model": "offline"})
    run = runs.create_run(PROJECT, thread["id"], {"assistant_id": assistant["id"]})

    def parts_sent() -> list[str]:
        request, _ = model_request(store.get_run(run.ref), [], None)
        (user,) = [message for message in request.messages if message.role == "user"]
        return ["text" if isinstance(part, TextPart) else "image" for part in user.parts]

    assert parts_sent() == ["text", "image"]
    an_hour_later()
    assert parts_sent() == ["text"]
