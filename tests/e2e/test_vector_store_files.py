"""A vector store's files through the official SDK over HTTP: added, ingested by the dev server's
poller (extracted, chunked, stored), counted, listed, updated, read back and removed."""

from __future__ import annotations

import uuid

import openai
import pytest

from tests.pdf_maker import make_pdf

MANUAL = "Spindle manual.\n\nTo reset the device, hold the power button for ten seconds.\n" * 3


@pytest.fixture
def client(server):
    return server.client(f"sk-vsf-{uuid.uuid4().hex}")


def upload(client, name: str, content: bytes):
    return client.files.create(file=(name, content), purpose="assistants")


def test_a_text_file_is_ingested_and_counted(client):
    store = client.vector_stores.create(name="manuals")
    file = upload(client, "manual.txt", MANUAL.encode())
    added = client.vector_stores.files.create_and_poll(file_id=file.id, vector_store_id=store.id, poll_interval_ms=50)
    assert (added.id, added.object, added.vector_store_id) == (file.id, "vector_store.file", store.id)
    assert (added.status, added.last_error, added.usage_bytes) == ("completed", None, len(MANUAL.encode()))
    assert added.chunking_strategy.model_dump() == {
        "type": "static",
        "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400},
    }
    counted = client.vector_stores.retrieve(store.id)
    assert counted.file_counts.model_dump() == {
        "in_progress": 0,
        "completed": 1,
        "failed": 0,
        "cancelled": 0,
        "total": 1,
    }
    assert (counted.usage_bytes, counted.status) == (len(MANUAL.encode()), "completed")
    content = client.vector_stores.files.content(file.id, vector_store_id=store.id)
    assert [(part.type, part.text) for part in content] == [("text", MANUAL)]


def test_a_pdf_is_read_page_by_page(client):
    store = client.vector_stores.create(name="manuals")
    pdf = make_pdf(["To reset the device, hold the power button", "for ten seconds."], ["Warranty: two years."])
    added = client.vector_stores.files.upload_and_poll(
        vector_store_id=store.id, file=("manual.pdf", pdf), poll_interval_ms=50
    )
    assert (added.status, added.last_error) == ("completed", None)
    text = "To reset the device, hold the power button\nfor ten seconds.\n\nWarranty: two years."
    assert [part.text for part in client.vector_stores.files.content(added.id, vector_store_id=store.id)] == [text]
    assert added.usage_bytes == len(text.encode())


def test_upload_and_poll_and_static_chunking(client):
    store = client.vector_stores.create()
    added = client.vector_stores.files.upload_and_poll(
        vector_store_id=store.id,
        file=("notes.md", b"# Notes\n\nSome *markdown* text."),
        chunking_strategy={"type": "static", "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 100}},
        poll_interval_ms=50,
    )
    assert added.status == "completed"
    assert added.chunking_strategy.static.max_chunk_size_tokens == 200
    assert added.chunking_strategy.static.chunk_overlap_tokens == 100


@pytest.mark.parametrize(
    "name, content, code",
    [
        ("picture.png", b"\x89PNG\r\n\x1a\n", "unsupported_file"),
        ("broken.txt", b"\xff\xfe\xfa not utf-8 \xc3", "invalid_file"),
        ("empty.txt", b"", "invalid_file"),
        ("bad.json", b"{not json", "invalid_file"),
        ("broken.pdf", b"%PDF-1.4 truncated", "invalid_file"),
    ],
)
def test_a_file_that_cannot_be_read_fails_with_last_error(client, name, content, code):
    store = client.vector_stores.create()
    file = upload(client, name, content)
    added = client.vector_stores.files.create_and_poll(file_id=file.id, vector_store_id=store.id, poll_interval_ms=50)
    assert added.status == "failed" and added.last_error.code == code and added.last_error.message
    assert client.vector_stores.retrieve(store.id).file_counts.failed == 1
    with pytest.raises(openai.BadRequestError):
        client.vector_stores.files.content(file.id, vector_store_id=store.id)


def test_attributes_listing_filter_and_removal(client):
    store = client.vector_stores.create()
    good = upload(client, "a.txt", b"alpha")
    bad = upload(client, "b.png", b"\x89PNG")
    first = client.vector_stores.files.create_and_poll(
        file_id=good.id, vector_store_id=store.id, attributes={"team": "docs", "year": 2025}, poll_interval_ms=50
    )
    client.vector_stores.files.create_and_poll(file_id=bad.id, vector_store_id=store.id, poll_interval_ms=50)
    assert first.attributes == {"team": "docs", "year": 2025}
    updated = client.vector_stores.files.update(file_id=good.id, vector_store_id=store.id, attributes={"team": "ops"})
    assert updated.attributes == {"team": "ops"}
    assert [f.id for f in client.vector_stores.files.list(store.id)] == [bad.id, good.id]
    assert [f.id for f in client.vector_stores.files.list(store.id, filter="completed")] == [good.id]
    assert [f.id for f in client.vector_stores.files.list(store.id, filter="failed")] == [bad.id]

    again = client.vector_stores.files.create(file_id=good.id, vector_store_id=store.id)  # already there
    assert (again.status, again.attributes) == ("completed", {"team": "ops"})
    assert client.vector_stores.retrieve(store.id).file_counts.total == 2

    deleted = client.vector_stores.files.delete(file_id=good.id, vector_store_id=store.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (good.id, "vector_store.file.deleted", True)
    counted = client.vector_stores.retrieve(store.id)
    assert (counted.file_counts.completed, counted.file_counts.failed, counted.usage_bytes) == (0, 1, 0)
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.files.retrieve(file_id=good.id, vector_store_id=store.id)
    assert client.files.retrieve(good.id).id == good.id  # the file itself stays


def test_bad_input_and_other_projects(client, server):
    store = client.vector_stores.create()
    file = upload(client, "a.txt", b"alpha")
    with pytest.raises(openai.NotFoundError) as unknown:
        client.vector_stores.files.create(file_id="file-" + "0" * 23, vector_store_id=store.id)
    assert unknown.value.body["param"] == "file_id"
    with pytest.raises(openai.BadRequestError) as overlap:
        client.vector_stores.files.create(
            file_id=file.id,
            vector_store_id=store.id,
            chunking_strategy={"type": "static", "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 101}},
        )
    assert overlap.value.body["param"] == "chunking_strategy.static.chunk_overlap_tokens"
    with pytest.raises(openai.BadRequestError):
        client.vector_stores.files.create(
            file_id=file.id,
            vector_store_id=store.id,
            chunking_strategy={"type": "static", "static": {"max_chunk_size_tokens": 99, "chunk_overlap_tokens": 0}},
        )
    assert client.vector_stores.files.list(store.id).data == []

    other = server.client(f"sk-vsf-other-{uuid.uuid4().hex}")
    with pytest.raises(openai.NotFoundError):  # their file is no file of ours
        client.vector_stores.files.create(file_id=upload(other, "x.txt", b"x").id, vector_store_id=store.id)
    with pytest.raises(openai.NotFoundError):  # our store is no store of theirs
        other.vector_stores.files.create(file_id=upload(other, "y.txt", b"y").id, vector_store_id=store.id)
    with pytest.raises(openai.NotFoundError):
        other.vector_stores.files.list(store.id)


def test_deleting_a_store_removes_its_files(client):
    store = client.vector_stores.create()
    file = upload(client, "a.txt", b"alpha")
    client.vector_stores.files.create_and_poll(file_id=file.id, vector_store_id=store.id, poll_interval_ms=50)
    client.vector_stores.delete(store.id)
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.files.retrieve(file_id=file.id, vector_store_id=store.id)
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.files.list(store.id)


def test_the_vector_stores_helper_creates_a_store_for_an_assistant_or_a_thread(client):
    (manual,) = [upload(client, "manual.txt", MANUAL.encode()).id]
    helper = {"vector_stores": [{"file_ids": [manual], "metadata": {"from": "helper"}}]}
    assistant = client.beta.assistants.create(
        model="offline", tools=[{"type": "file_search"}], tool_resources={"file_search": helper}
    )
    thread = client.beta.threads.create(tool_resources={"file_search": helper})
    run = client.beta.threads.create_and_run(
        assistant_id=assistant.id, thread={"tool_resources": {"file_search": helper}}
    )
    made = [
        assistant.tool_resources.file_search.vector_store_ids,
        thread.tool_resources.file_search.vector_store_ids,
        client.beta.threads.retrieve(run.thread_id).tool_resources.file_search.vector_store_ids,
    ]
    assert all(len(ids) == 1 for ids in made) and len({ids[0] for ids in made}) == 3
    for (store_id,) in made:
        store = client.vector_stores.retrieve(store_id)
        assert store.metadata == {"from": "helper"} and store.file_counts.total == 1
        (file,) = client.vector_stores.files.list(store_id).data
        assert file.id == manual


def test_the_helper_with_an_unknown_file_creates_nothing(client):
    helper = {"vector_stores": [{"file_ids": ["file-" + "0" * 23]}]}
    with pytest.raises(openai.NotFoundError):
        client.beta.assistants.create(model="offline", tool_resources={"file_search": helper})
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.create(tool_resources={"file_search": helper})
    assert client.vector_stores.list().data == [] and client.beta.assistants.list().data == []


def test_a_deleted_file_leaves_every_store_it_was_in(client):
    """OpenAI's deleteFile: "Delete a file and remove it from all vector stores." Once the DELETE has
    answered, no store lists, counts, searches or serves it."""
    file = upload(client, "manual.txt", MANUAL.encode())
    kept = upload(client, "other.txt", b"Nothing about power buttons here, only the weather.")
    stores = [client.vector_stores.create(name=f"store {number}") for number in range(2)]
    for store in stores:
        client.vector_stores.file_batches.create_and_poll(
            vector_store_id=store.id, file_ids=[file.id, kept.id], poll_interval_ms=50
        )
    assert client.vector_stores.search(stores[0].id, query="power button").data[0].file_id == file.id

    assert client.files.delete(file.id).deleted is True
    for store in stores:
        assert [listed.id for listed in client.vector_stores.files.list(vector_store_id=store.id)] == [kept.id]
        counted = client.vector_stores.retrieve(store.id)
        assert (counted.file_counts.completed, counted.file_counts.total) == (1, 1)
        assert counted.usage_bytes == kept.bytes
        assert {hit.file_id for hit in client.vector_stores.search(store.id, query="power button").data} <= {kept.id}
        with pytest.raises(openai.NotFoundError):
            client.vector_stores.files.retrieve(file.id, vector_store_id=store.id)
        with pytest.raises(openai.NotFoundError):
            client.vector_stores.files.content(file.id, vector_store_id=store.id)
    with pytest.raises(openai.NotFoundError):  # and it cannot be added again
        client.vector_stores.files.create(vector_store_id=stores[0].id, file_id=file.id)
