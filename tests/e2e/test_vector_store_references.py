"""A store named in `tool_resources.file_search.vector_store_ids` must be one of the project's: another
project's (or no store at all) is a 404 naming it, as a foreign `file_id` is, and nothing is stored."""

from __future__ import annotations

import time

import openai
import pytest

FILE_SEARCH = [{"type": "file_search"}]


def naming(store_id: str) -> dict:
    return {"file_search": {"vector_store_ids": [store_id]}}


REQUESTS = {
    "createAssistant": lambda c, store_id: c.beta.assistants.create(
        model="offline", tools=FILE_SEARCH, tool_resources=naming(store_id)
    ),
    "modifyAssistant": lambda c, store_id: c.beta.assistants.update(
        c.beta.assistants.list().data[0].id, tool_resources=naming(store_id)
    ),
    "createThread": lambda c, store_id: c.beta.threads.create(tool_resources=naming(store_id)),
    "modifyThread": lambda c, store_id: c.beta.threads.update(
        c.get("/threads", cast_to=object)["data"][0]["id"], tool_resources=naming(store_id)
    ),
    "createThreadAndRun (thread)": lambda c, store_id: c.beta.threads.create_and_run(
        assistant_id=c.beta.assistants.list().data[0].id, thread={"tool_resources": naming(store_id)}
    ),
    "createThreadAndRun (run)": lambda c, store_id: c.beta.threads.create_and_run(
        assistant_id=c.beta.assistants.list().data[0].id, tool_resources=naming(store_id)
    ),
}
PARAMS = {
    "createAssistant": "tool_resources.file_search.vector_store_ids[0]",
    "modifyAssistant": "tool_resources.file_search.vector_store_ids[0]",
    "createThread": "tool_resources.file_search.vector_store_ids[0]",
    "modifyThread": "tool_resources.file_search.vector_store_ids[0]",
    "createThreadAndRun (thread)": "thread.tool_resources.file_search.vector_store_ids[0]",
    "createThreadAndRun (run)": "tool_resources.file_search.vector_store_ids[0]",
}


def shown(c) -> tuple[list, list]:
    """What the project holds: its assistants and threads, as served."""
    return c.beta.assistants.list().data, c.get("/threads", cast_to=object)["data"]


@pytest.mark.parametrize("request_name", sorted(REQUESTS))
def test_another_projects_store_is_refused_naming_the_field(server, client, request_name):
    theirs = client.vector_stores.create(name="tenant A's").id
    mallory = server.client(f"sk-mallory-stores-{time.time_ns()}")
    mallory.beta.assistants.create(model="offline", tools=FILE_SEARCH)
    mallory.beta.threads.create()
    before = shown(mallory)
    for store_id in (theirs, "vs_" + "0" * 23, "vs_nope"):  # another's, none, and one no store could be
        with pytest.raises(openai.NotFoundError) as refused:
            REQUESTS[request_name](mallory, store_id)
        assert refused.value.body["param"] == PARAMS[request_name]
        assert store_id in refused.value.body["message"]
    assert shown(mallory) == before
    assert client.vector_stores.retrieve(theirs).name == "tenant A's"


def test_the_projects_own_store_is_taken(server):
    alice = server.client(f"sk-alice-stores-{time.time_ns()}")
    mine = alice.vector_stores.create().id
    assistant = alice.beta.assistants.create(model="offline", tools=FILE_SEARCH, tool_resources=naming(mine))
    thread = alice.beta.threads.create(tool_resources=naming(mine))
    assert assistant.tool_resources.file_search.vector_store_ids == [mine]
    assert thread.tool_resources.file_search.vector_store_ids == [mine]
    run = alice.beta.threads.create_and_run(assistant_id=assistant.id, thread={"tool_resources": naming(mine)})
    assert alice.beta.threads.retrieve(run.thread_id).tool_resources.file_search.vector_store_ids == [mine]
