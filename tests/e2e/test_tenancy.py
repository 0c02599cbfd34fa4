"""Every operation, two tenants: another project's ids answer 404 and its objects stay untouched."""

from __future__ import annotations

import time
from dataclasses import dataclass

import openai
import pytest


@dataclass
class Owned:
    thread: object
    message: object
    assistant: object
    run: object
    step: object
    file: object
    vector_store: object
    batch: object


@pytest.fixture
def owned(client):
    """Objects of tenant A: a thread with a message, an assistant, and a run with a step."""
    assistant = client.beta.assistants.create(model="offline", name="mine")
    thread = client.beta.threads.create(metadata={"user": "shared-name"}, messages=[{"role": "user", "content": "a"}])
    message = client.beta.threads.messages.list(thread.id).data[0]
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    step = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data[0]
    file = client.files.create(file=("secret.txt", b"tenant A only"), purpose="assistants")
    vector_store = client.vector_stores.create(name="mine", metadata={"k": "v"})
    client.vector_stores.files.create_and_poll(file_id=file.id, vector_store_id=vector_store.id, poll_interval_ms=50)
    vector_store = client.vector_stores.retrieve(vector_store.id)
    batch = client.vector_stores.file_batches.create(vector_store_id=vector_store.id, file_ids=[file.id])
    return Owned(thread, message, assistant, run, step, file, vector_store, batch)


def own_assistant(c):
    return c.beta.assistants.create(model="offline").id


def own_thread(c):
    return c.beta.threads.create().id


OPERATIONS = {
    "getThread": lambda c, o: c.beta.threads.retrieve(o.thread.id),
    "modifyThread": lambda c, o: c.beta.threads.update(o.thread.id, metadata={"x": "y"}),
    "deleteThread": lambda c, o: c.beta.threads.delete(o.thread.id),
    "listMessages": lambda c, o: c.beta.threads.messages.list(o.thread.id),
    "createMessage": lambda c, o: c.beta.threads.messages.create(o.thread.id, role="user", content="intruder"),
    "getMessage": lambda c, o: c.beta.threads.messages.retrieve(o.message.id, thread_id=o.thread.id),
    "modifyMessage": lambda c, o: c.beta.threads.messages.update(o.message.id, thread_id=o.thread.id, metadata={}),
    "deleteMessage": lambda c, o: c.beta.threads.messages.delete(o.message.id, thread_id=o.thread.id),
    "getAssistant": lambda c, o: c.beta.assistants.retrieve(o.assistant.id),
    "modifyAssistant": lambda c, o: c.beta.assistants.update(o.assistant.id, name="stolen"),
    "deleteAssistant": lambda c, o: c.beta.assistants.delete(o.assistant.id),
    "createRun (their thread)": lambda c, o: c.beta.threads.runs.create(
        thread_id=o.thread.id, assistant_id=own_assistant(c)
    ),
    "createRun (their assistant)": lambda c, o: c.beta.threads.runs.create(
        thread_id=own_thread(c), assistant_id=o.assistant.id
    ),
    "createThreadAndRun": lambda c, o: c.beta.threads.create_and_run(assistant_id=o.assistant.id),
    "listRuns": lambda c, o: c.beta.threads.runs.list(o.thread.id),
    "getRun": lambda c, o: c.beta.threads.runs.retrieve(o.run.id, thread_id=o.thread.id),
    "modifyRun": lambda c, o: c.beta.threads.runs.update(o.run.id, thread_id=o.thread.id, metadata={"x": "y"}),
    "cancelRun": lambda c, o: c.beta.threads.runs.cancel(o.run.id, thread_id=o.thread.id),
    "submitToolOuputsToRun": lambda c, o: c.beta.threads.runs.submit_tool_outputs(
        o.run.id, thread_id=o.thread.id, tool_outputs=[{"tool_call_id": "call_x", "output": "x"}]
    ),
    "listRunSteps": lambda c, o: c.beta.threads.runs.steps.list(o.run.id, thread_id=o.thread.id),
    "retrieveFile": lambda c, o: c.files.retrieve(o.file.id),
    "downloadFile": lambda c, o: c.files.content(o.file.id),
    "deleteFile": lambda c, o: c.files.delete(o.file.id),
    "createMessage (their file)": lambda c, o: c.beta.threads.messages.create(
        own_thread(c), role="user", content="x", attachments=[{"file_id": o.file.id, "tools": []}]
    ),
    "getVectorStore": lambda c, o: c.vector_stores.retrieve(o.vector_store.id),
    "modifyVectorStore": lambda c, o: c.vector_stores.update(o.vector_store.id, name="stolen"),
    "deleteVectorStore": lambda c, o: c.vector_stores.delete(o.vector_store.id),
    "listVectorStoreFiles": lambda c, o: c.vector_stores.files.list(o.vector_store.id),
    "createVectorStoreFile (their store)": lambda c, o: c.vector_stores.files.create(
        vector_store_id=o.vector_store.id, file_id=c.files.create(file=("x.txt", b"x"), purpose="assistants").id
    ),
    "getVectorStoreFile": lambda c, o: c.vector_stores.files.retrieve(o.file.id, vector_store_id=o.vector_store.id),
    "updateVectorStoreFileAttributes": lambda c, o: c.vector_stores.files.update(
        o.file.id, vector_store_id=o.vector_store.id, attributes={"x": "y"}
    ),
    "deleteVectorStoreFile": lambda c, o: c.vector_stores.files.delete(o.file.id, vector_store_id=o.vector_store.id),
    "retrieveVectorStoreFileContent": lambda c, o: c.vector_stores.files.content(
        o.file.id, vector_store_id=o.vector_store.id
    ),
    "createVectorStoreFileBatch (their store)": lambda c, o: c.vector_stores.file_batches.create(
        vector_store_id=o.vector_store.id, file_ids=[c.files.create(file=("x.txt", b"x"), purpose="assistants").id]
    ),
    "getVectorStoreFileBatch": lambda c, o: c.vector_stores.file_batches.retrieve(
        o.batch.id, vector_store_id=o.vector_store.id
    ),
    "cancelVectorStoreFileBatch": lambda c, o: c.vector_stores.file_batches.cancel(
        o.batch.id, vector_store_id=o.vector_store.id
    ),
    "listFilesInVectorStoreBatch": lambda c, o: c.vector_stores.file_batches.list_files(
        o.batch.id, vector_store_id=o.vector_store.id
    ),
    "searchVectorStore": lambda c, o: c.vector_stores.search(o.vector_store.id, query="tenant"),
    "getRunStep": lambda c, o: c.beta.threads.runs.steps.retrieve(o.step.id, thread_id=o.thread.id, run_id=o.run.id),
}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_another_project_gets_404(client, other_client, owned, operation):
    with pytest.raises(openai.NotFoundError):
        OPERATIONS[operation](other_client, owned)
    assert client.beta.threads.retrieve(owned.thread.id) == owned.thread
    assert [m.id for m in client.beta.threads.messages.list(owned.thread.id, order="asc").data][0] == owned.message.id
    assert client.beta.threads.messages.retrieve(owned.message.id, thread_id=owned.thread.id).metadata == {}
    assert client.beta.assistants.retrieve(owned.assistant.id) == owned.assistant
    run = client.beta.threads.runs.retrieve(owned.run.id, thread_id=owned.thread.id)
    assert (run.status, run.metadata) == ("completed", {})
    assert client.beta.threads.runs.steps.list(owned.run.id, thread_id=owned.thread.id).data == [owned.step]
    assert client.files.content(owned.file.id).content == b"tenant A only"
    assert client.vector_stores.retrieve(owned.vector_store.id) == owned.vector_store
    mine = client.vector_stores.files.retrieve(owned.file.id, vector_store_id=owned.vector_store.id)
    assert (mine.status, mine.attributes) == ("completed", None)
    assert (
        client.vector_stores.file_batches.retrieve(owned.batch.id, vector_store_id=owned.vector_store.id) == owned.batch
    )


def test_the_file_list_is_per_project(server):
    alice, mallory = server.client(f"sk-alice-f-{time.time_ns()}"), server.client(f"sk-mallory-f-{time.time_ns()}")
    mine = alice.files.create(file=("a.txt", b"a"), purpose="assistants")
    assert [f.id for f in alice.files.list()] == [mine.id]
    assert mallory.files.list().data == [] and mallory.files.list(purpose="assistants").data == []


def test_the_vector_store_list_is_per_project(server):
    alice, mallory = server.client(f"sk-alice-vs-{time.time_ns()}"), server.client(f"sk-mallory-vs-{time.time_ns()}")
    mine = alice.vector_stores.create(name="alice's")
    assert [store.id for store in alice.vector_stores.list()] == [mine.id]
    assert mallory.vector_stores.list().data == []


def test_the_assistant_list_is_per_project(server):
    alice, mallory = server.client(f"sk-alice-a-{time.time_ns()}"), server.client(f"sk-mallory-a-{time.time_ns()}")
    mine = alice.beta.assistants.create(model="offline")
    assert [a.id for a in alice.beta.assistants.list()] == [mine.id]
    assert mallory.beta.assistants.list().data == []


def test_the_thread_list_is_per_project(server):
    alice, mallory = server.client(f"sk-alice-{time.time_ns()}"), server.client(f"sk-mallory-{time.time_ns()}")
    mine = alice.beta.threads.create(metadata={"user": "u1"})
    for params in ({}, {"user": "u1"}):
        assert [t["id"] for t in alice.get("/threads", cast_to=object, options={"params": params})["data"]] == [mine.id]
        assert mallory.get("/threads", cast_to=object, options={"params": params})["data"] == []
