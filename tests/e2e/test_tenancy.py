"""Every operation, two tenants: another project's ids answer 404 and its objects stay untouched."""

from __future__ import annotations

import time

import openai
import pytest


@pytest.fixture
def owned(client):
    thread = client.beta.threads.create(metadata={"user": "shared-name"}, messages=[{"role": "user", "content": "a"}])
    message = client.beta.threads.messages.list(thread.id).data[0]
    return thread, message


OPERATIONS = {
    "getThread": lambda c, t, m: c.beta.threads.retrieve(t.id),
    "modifyThread": lambda c, t, m: c.beta.threads.update(t.id, metadata={"x": "y"}),
    "deleteThread": lambda c, t, m: c.beta.threads.delete(t.id),
    "listMessages": lambda c, t, m: c.beta.threads.messages.list(t.id),
    "createMessage": lambda c, t, m: c.beta.threads.messages.create(t.id, role="user", content="intruder"),
    "getMessage": lambda c, t, m: c.beta.threads.messages.retrieve(m.id, thread_id=t.id),
    "modifyMessage": lambda c, t, m: c.beta.threads.messages.update(m.id, thread_id=t.id, metadata={"x": "y"}),
    "deleteMessage": lambda c, t, m: c.beta.threads.messages.delete(m.id, thread_id=t.id),
}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_another_project_gets_404(client, other_client, owned, operation):
    thread, message = owned
    with pytest.raises(openai.NotFoundError):
        OPERATIONS[operation](other_client, thread, message)
    assert client.beta.threads.retrieve(thread.id) == thread
    assert [m.id for m in client.beta.threads.messages.list(thread.id).data] == [message.id]
    assert client.beta.threads.messages.retrieve(message.id, thread_id=thread.id).metadata == {}


def test_the_thread_list_is_per_project(server):
    alice, mallory = server.client(f"sk-alice-{time.time_ns()}"), server.client(f"sk-mallory-{time.time_ns()}")
    mine = alice.beta.threads.create(metadata={"user": "u1"})
    for params in ({}, {"user": "u1"}):
        assert [t["id"] for t in alice.get("/threads", cast_to=object, options={"params": params})["data"]] == [mine.id]
        assert mallory.get("/threads", cast_to=object, options={"params": params})["data"] == []
