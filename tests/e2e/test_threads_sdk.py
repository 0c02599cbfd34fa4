"""The official `openai` SDK, over real HTTP, against the local server: every thread and message call."""

from __future__ import annotations

import asyncio
import time

import openai
import pytest

from chalicelib.domain.ids import is_valid_id

PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000")


def test_a_thread_with_messages_round_trips_through_the_sdk(client):
    before = int(time.time())
    thread = client.beta.threads.create(
        messages=[
            {"role": "user", "content": "Hello, what is AI?"},
            {"role": "assistant", "content": [{"type": "text", "text": "A field of computer science."}]},
        ],
        metadata={"user": "ada", "topic": "ai"},
    )
    assert is_valid_id("thread", thread.id)
    assert thread.object == "thread"
    assert before <= thread.created_at <= int(time.time()) + 1
    assert thread.metadata == {"user": "ada", "topic": "ai"}
    assert thread.tool_resources is not None and thread.tool_resources.code_interpreter is None

    fetched = client.beta.threads.retrieve(thread.id)
    assert fetched == thread

    messages = client.beta.threads.messages.list(thread.id, order="asc").data
    assert [m.role for m in messages] == ["user", "assistant"]
    first = messages[0]
    assert is_valid_id("message", first.id)
    assert first.object == "thread.message"
    assert first.thread_id == thread.id
    assert first.content[0].type == "text"
    assert first.content[0].text.value == "Hello, what is AI?"
    assert first.content[0].text.annotations == []
    assert first.status == "completed"
    assert first.assistant_id is None and first.run_id is None
    assert first.attachments == [] and first.metadata == {}
    assert first.incomplete_details is None and first.incomplete_at is None


def test_tool_resources_come_back_in_the_thread_object_shape(client):
    store = client.vector_stores.create()  # a store the thread may name: its project's own
    thread = client.beta.threads.create(
        tool_resources={"code_interpreter": {}, "file_search": {"vector_store_ids": [store.id]}},
    )
    assert thread.tool_resources.code_interpreter.file_ids == []
    assert thread.tool_resources.file_search.vector_store_ids == [store.id]
    data = client.files.create(file=("data.csv", b"a,b\n"), purpose="assistants")
    raw = client.beta.threads.with_raw_response.update(
        thread.id, tool_resources={"code_interpreter": {"file_ids": [data.id], "bogus": {"x": 1}}}
    )
    assert raw.http_response.json()["tool_resources"] == {"code_interpreter": {"file_ids": [data.id]}}
    with pytest.raises(openai.BadRequestError) as refused:  # the helper creates stores: creation only
        client.post(
            f"/threads/{thread.id}",
            body={"tool_resources": {"file_search": {"vector_stores": [{"file_ids": [data.id]}]}}},
            cast_to=object,
        )
    assert refused.value.body["param"] == "tool_resources.file_search.vector_stores"


def test_a_long_unicode_user_is_stored_and_filtered(server):
    tenant = server.client(f"sk-unicode-{time.time_ns()}")
    user = "\U0001f600" * 512
    thread = tenant.beta.threads.create(metadata={"user": user})
    listed = tenant.get("/threads", cast_to=object, options={"params": {"user": user}})
    assert [t["id"] for t in listed["data"]] == [thread.id]
    updated = tenant.beta.threads.update(thread.id, metadata={"user": user, "k": "v"})
    assert updated.metadata == {"user": user, "k": "v"}
    listed = tenant.get("/threads", cast_to=object, options={"params": {"user": user}})
    assert [t["id"] for t in listed["data"]] == [thread.id]


def test_modify_and_delete_a_thread(client):
    thread = client.beta.threads.create(metadata={"a": "1"})
    modified = client.beta.threads.update(thread.id, metadata={"b": "2"})
    assert modified.metadata == {"b": "2"}
    assert modified.created_at == thread.created_at
    resources = client.beta.threads.update(thread.id, tool_resources={"code_interpreter": {"file_ids": []}})
    assert resources.metadata == {"b": "2"}
    assert resources.tool_resources.code_interpreter.file_ids == []

    deleted = client.beta.threads.delete(thread.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (thread.id, "thread.deleted", True)
    with pytest.raises(openai.NotFoundError) as missing:
        client.beta.threads.retrieve(thread.id)
    assert missing.value.body["message"] == f"No thread found with id '{thread.id}'."
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.delete(thread.id)


def test_message_content_parts_attachments_and_metadata(client):
    thread = client.beta.threads.create()
    image = client.files.create(file=("cat.png", PNG), purpose="vision")
    report = client.files.create(file=("report.pdf", b"%PDF-1.4 ..."), purpose="assistants")
    message = client.beta.threads.messages.create(
        thread.id,
        role="user",
        content=[
            {"type": "text", "text": "Describe these"},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}},
            {"type": "image_file", "image_file": {"file_id": image.id}},
        ],
        attachments=[{"file_id": report.id, "tools": [{"type": "code_interpreter"}, {"type": "file_search"}]}],
        metadata={"source": "test"},
    )
    assert [block.type for block in message.content] == ["text", "image_url", "image_file"]
    assert message.content[1].image_url.url == "https://example.com/cat.png"
    assert message.content[1].image_url.detail == "low"
    assert message.content[2].image_file.file_id == image.id
    assert message.content[2].image_file.detail == "auto"
    assert message.attachments[0].file_id == report.id
    assert [tool.type for tool in message.attachments[0].tools] == ["code_interpreter", "file_search"]

    assert client.beta.threads.messages.retrieve(message.id, thread_id=thread.id) == message
    updated = client.beta.threads.messages.update(message.id, thread_id=thread.id, metadata={"k": "v"})
    assert updated.metadata == {"k": "v"}
    assert updated.content == message.content

    deleted = client.beta.threads.messages.delete(message.id, thread_id=thread.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (message.id, "thread.message.deleted", True)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.retrieve(message.id, thread_id=thread.id)
    assert client.beta.threads.messages.list(thread.id).data == []


def test_auto_pagination_walks_every_message_in_both_orders(client):
    thread = client.beta.threads.create()
    created = [
        client.beta.threads.messages.create(thread.id, role="user", content=f"message {n}").id for n in range(23)
    ]
    ascending = [m.id for m in client.beta.threads.messages.list(thread.id, order="asc", limit=5)]
    descending = [m.id for m in client.beta.threads.messages.list(thread.id, order="desc", limit=4)]
    assert ascending == created
    assert descending == list(reversed(created))
    assert sorted(created) == created  # ids sort by creation

    first_page = client.beta.threads.messages.list(thread.id, limit=20)
    assert first_page.has_more is True
    assert len(first_page.data) == 20
    assert first_page.first_id == created[-1] and first_page.last_id == created[3]


def test_before_and_after_filter_the_list_and_auto_pagination_walks_the_range(client):
    thread = client.beta.threads.create()
    ids = [client.beta.threads.messages.create(thread.id, role="user", content=str(n)).id for n in range(7)]
    page = client.beta.threads.messages.list(thread.id, order="asc", before=ids[5], limit=2)
    assert [m.id for m in page.data] == ids[0:2]
    assert page.has_more is True
    page = client.beta.threads.messages.list(thread.id, order="desc", before=ids[2], limit=3)
    assert [m.id for m in page.data] == [ids[6], ids[5], ids[4]]
    assert page.has_more is True
    page = client.beta.threads.messages.list(thread.id, order="desc", before=ids[4], limit=5)
    assert [m.id for m in page.data] == [ids[6], ids[5]]
    assert page.has_more is False
    between = client.beta.threads.messages.list(thread.id, order="asc", after=ids[1], before=ids[5])
    assert [m.id for m in between.data] == ids[2:5]
    assert between.has_more is False
    crossed = client.beta.threads.messages.list(thread.id, order="asc", after=ids[4], before=ids[1])
    assert crossed.data == [] and crossed.has_more is False
    walked = [m.id for m in client.beta.threads.messages.list(thread.id, order="asc", before=ids[6], limit=2)]
    assert walked == ids[0:6]
    walked = [m.id for m in client.beta.threads.messages.list(thread.id, order="desc", before=ids[0], limit=4)]
    assert walked == list(reversed(ids[1:]))


def test_listing_threads_is_an_extension_with_a_user_filter(client, server):
    # A fresh tenant so the list holds only what this test made.
    tenant = server.client(f"sk-threads-{time.time_ns()}")
    ada = [tenant.beta.threads.create(metadata={"user": "ada"}).id for _ in range(3)]
    bob = tenant.beta.threads.create(metadata={"user": "bob"}).id
    plain = tenant.beta.threads.create().id

    listed = tenant.get("/threads", cast_to=object, options={"params": {"limit": 2}})
    assert listed["object"] == "list"
    assert [t["id"] for t in listed["data"]] == [plain, bob]
    assert listed["has_more"] is True
    rest = tenant.get("/threads", cast_to=object, options={"params": {"after": bob}})
    assert [t["id"] for t in rest["data"]] == list(reversed(ada))

    only_ada = tenant.get("/threads", cast_to=object, options={"params": {"user": "ada", "order": "asc"}})
    assert [t["id"] for t in only_ada["data"]] == ada

    tenant.beta.threads.update(bob, metadata={"user": "ada"})
    moved = tenant.get("/threads", cast_to=object, options={"params": {"user": "ada", "order": "asc"}})
    assert [t["id"] for t in moved["data"]] == [*ada, bob]
    tenant.beta.threads.delete(ada[0])
    after_delete = tenant.get("/threads", cast_to=object, options={"params": {"user": "ada", "order": "asc"}})
    assert [t["id"] for t in after_delete["data"]] == [*ada[1:], bob]


def test_deleting_a_thread_hides_its_messages_at_once(client):
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "one"}])
    message = client.beta.threads.messages.list(thread.id).data[0]
    client.beta.threads.delete(thread.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.retrieve(message.id, thread_id=thread.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.list(thread.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.create(thread.id, role="user", content="late")
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.update(message.id, thread_id=thread.id, metadata={})
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.delete(message.id, thread_id=thread.id)


def test_the_async_client_works_too(server):
    async def story() -> list[str]:
        client = server.async_client("sk-async")
        thread = await client.beta.threads.create()
        for n in range(5):
            await client.beta.threads.messages.create(thread.id, role="user", content=f"m{n}")
        texts = [m.content[0].text.value async for m in client.beta.threads.messages.list(thread.id, limit=2)]
        await client.beta.threads.delete(thread.id)
        await client.close()
        return texts

    assert asyncio.run(story()) == ["m4", "m3", "m2", "m1", "m0"]


def test_responses_carry_a_request_id(client):
    response = client.beta.threads.with_raw_response.create()
    assert response.headers["x-request-id"].startswith("req_")
    assert response.headers["content-type"].startswith("application/json")


def test_file_search_resources_without_vector_store_ids_are_refused(client):
    """The official schema requires `vector_store_ids` (or the `vector_stores` helper) in
    `tool_resources.file_search` of a new thread or assistant: `{}` is a 400 naming the parameter."""
    with pytest.raises(openai.BadRequestError) as refused:
        client.beta.threads.create(tool_resources={"file_search": {}})
    assert refused.value.param == "tool_resources.file_search.vector_store_ids"
    with pytest.raises(openai.BadRequestError) as refused:
        client.beta.assistants.create(model="offline", tool_resources={"file_search": {}})
    assert refused.value.param == "tool_resources.file_search.vector_store_ids"
    with pytest.raises(openai.BadRequestError) as refused:
        client.beta.threads.create_and_run(assistant_id="asst_x", thread={"tool_resources": {"file_search": {}}})
    assert refused.value.param == "thread.tool_resources.file_search.vector_store_ids"
    assert client.beta.threads.create(tool_resources={"file_search": {"vector_store_ids": []}}).tool_resources
