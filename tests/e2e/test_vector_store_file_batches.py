"""File batches and a store's `file_ids`, through the official SDK over HTTP."""

from __future__ import annotations

import uuid

import openai
import pytest


@pytest.fixture
def client(server):
    return server.client(f"sk-vsb-{uuid.uuid4().hex}")


def uploads(client, *contents: tuple[str, bytes]) -> list[str]:
    return [client.files.create(file=(name, content), purpose="assistants").id for name, content in contents]


def test_upload_and_poll_a_batch(client):
    store = client.vector_stores.create(name="docs")
    batch = client.vector_stores.file_batches.upload_and_poll(
        vector_store_id=store.id,
        files=[("a.txt", b"alpha"), ("b.md", b"# beta"), ("c.png", b"\x89PNG")],
        poll_interval_ms=50,
    )
    assert batch.id.startswith("vsfb_") and batch.object == "vector_store.files_batch"
    assert (batch.vector_store_id, batch.status) == (store.id, "completed")
    assert batch.file_counts.model_dump() == {"in_progress": 0, "completed": 2, "failed": 1, "cancelled": 0, "total": 3}
    assert client.vector_stores.file_batches.retrieve(batch.id, vector_store_id=store.id) == batch
    listed = client.vector_stores.file_batches.list_files(batch.id, vector_store_id=store.id)
    assert len(listed.data) == 3 and {f.status for f in listed.data} == {"completed", "failed"}
    failed = client.vector_stores.file_batches.list_files(batch.id, vector_store_id=store.id, filter="failed")
    assert [f.last_error.code for f in failed.data] == ["unsupported_file"]
    assert client.vector_stores.retrieve(store.id).file_counts.total == 3


def test_a_batch_with_per_file_attributes_and_chunking(client):
    store = client.vector_stores.create()
    first, second = uploads(client, ("a.txt", b"alpha"), ("b.txt", b"beta"))
    batch = client.vector_stores.file_batches.create_and_poll(
        vector_store_id=store.id,
        files=[
            {"file_id": first, "attributes": {"n": 1}},
            {
                "file_id": second,
                "chunking_strategy": {
                    "type": "static",
                    "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 0},
                },
            },
        ],
        poll_interval_ms=50,
    )
    assert batch.file_counts.completed == 2
    a = client.vector_stores.files.retrieve(first, vector_store_id=store.id)
    b = client.vector_stores.files.retrieve(second, vector_store_id=store.id)
    assert (a.attributes, a.chunking_strategy.static.max_chunk_size_tokens) == ({"n": 1}, 800)
    assert (b.attributes, b.chunking_strategy.static.max_chunk_size_tokens) == (None, 100)


def test_a_cancelled_batch_cancels_the_files_not_yet_ingested(client, server):
    store = client.vector_stores.create()
    ids = uploads(client, *[(f"f{number}.txt", b"x" * 10) for number in range(30)])
    batch = client.vector_stores.file_batches.create(vector_store_id=store.id, file_ids=ids)
    cancelled = client.vector_stores.file_batches.cancel(batch.id, vector_store_id=store.id)
    assert cancelled.status == "cancelled"
    counts = cancelled.file_counts
    assert counts.in_progress == 0 and counts.total == 30 and counts.completed + counts.cancelled + counts.failed == 30
    files = client.vector_stores.files.list(store.id, limit=100).data
    assert {f.status for f in files} <= {"completed", "cancelled"}
    assert sum(f.status == "cancelled" for f in files) == counts.cancelled
    store_counts = client.vector_stores.retrieve(store.id).file_counts
    assert (store_counts.cancelled, store_counts.in_progress) == (counts.cancelled, 0)
    with pytest.raises(openai.BadRequestError):
        client.vector_stores.file_batches.cancel(batch.id, vector_store_id=store.id)


def test_a_store_created_with_file_ids_ingests_them(client):
    ids = uploads(client, ("a.txt", b"alpha"), ("b.txt", b"beta"))
    store = client.vector_stores.create(
        file_ids=ids,
        chunking_strategy={"type": "static", "static": {"max_chunk_size_tokens": 300, "chunk_overlap_tokens": 150}},
    )
    assert store.file_counts.total == 2
    files = client.vector_stores.files.list(store.id).data
    assert {f.id for f in files} == set(ids)
    assert {f.chunking_strategy.static.max_chunk_size_tokens for f in files} == {300}


def test_bad_batches_store_nothing(client, server):
    store = client.vector_stores.create()
    (mine,) = uploads(client, ("a.txt", b"alpha"))
    theirs = server.client(f"sk-vsb-other-{uuid.uuid4().hex}").files.create(file=("t.txt", b"t"), purpose="assistants")
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.file_batches.create(vector_store_id=store.id, file_ids=[mine, theirs.id])
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.create(file_ids=[mine, "file-" + "0" * 23])
    with pytest.raises(openai.BadRequestError):
        client.post(
            f"/vector_stores/{store.id}/file_batches",
            body={"file_ids": [mine], "files": [{"file_id": mine}]},
            cast_to=object,
        )
    assert client.vector_stores.files.list(store.id).data == []
    assert [s.id for s in client.vector_stores.list()] == [store.id]
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.file_batches.retrieve("vsfb_" + "0" * 23, vector_store_id=store.id)
