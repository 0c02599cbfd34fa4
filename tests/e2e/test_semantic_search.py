"""Semantic search joining keyword search, through the official SDK over HTTP, on a server whose
embeddings provider is the stand-in's toy `/v1/embeddings` (it knows that an automobile is a car;
BM25 does not). Chunks are embedded at ingestion and kept in the local vector index; a search fuses
the keyword and vector rankings into one score from 0 to 1."""

from __future__ import annotations

import uuid

import pytest

CARS = "The car needs new tyres every forty thousand kilometres, and an oil change every year."
BIKES = "The bicycle chain should be cleaned and oiled every month in the rainy season."


@pytest.fixture
def client(embedding_server):
    return embedding_server.client(f"sk-sem-{uuid.uuid4().hex}")


@pytest.fixture
def keyword_client(server):
    return server.client(f"sk-sem-{uuid.uuid4().hex}")


def a_store(client):
    store = client.vector_stores.create(name="garage")
    for name, text in (("cars.txt", CARS), ("bikes.txt", BIKES)):
        added = client.vector_stores.files.upload_and_poll(
            vector_store_id=store.id, file=(name, text.encode()), poll_interval_ms=50
        )
        assert added.status == "completed", added.last_error
    return store


def test_a_synonym_only_the_embeddings_know_is_found(client, keyword_client, standin):
    before = len(standin.embedded)
    store = a_store(client)
    assert [(model, count) for model, count in standin.embedded[before:]] == [("toy-embed", 1), ("toy-embed", 1)]
    found = list(client.vector_stores.search(store.id, query="automobile"))
    assert found[0].filename == "cars.txt" and 0 < found[0].score <= 1
    assert all(0 <= result.score <= 1 for result in found)
    # the same store without embeddings (another server, keyword search alone) finds nothing
    plain = a_store(keyword_client)
    assert list(keyword_client.vector_stores.search(plain.id, query="automobile")) == []


def test_keyword_and_vector_agreement_ranks_first_and_filters_still_apply(client):
    store = a_store(client)
    results = list(client.vector_stores.search(store.id, query="car tyres"))
    assert results[0].filename == "cars.txt"
    assert results[0].score > max((r.score for r in results[1:]), default=0.0)
    only_bikes = {"type": "eq", "key": "missing", "value": "x"}
    assert list(client.vector_stores.search(store.id, query="automobile", filters=only_bikes)) == []


def test_a_run_searches_semantically_and_cites(client):
    store = a_store(client)
    assistant = client.beta.assistants.create(
        model="gpt-4o",
        tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_store_ids": [store.id]}},
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "When does my automobile need tyres?"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50)
    assert run.status == "completed", run.last_error
    answer = client.beta.threads.messages.list(thread.id, order="desc").data[0].content[0].text
    assert "forty thousand kilometres" in answer.value
    (citation,) = answer.annotations
    assert answer.value[citation.start_index : citation.end_index] == "【0:0†cars.txt】"


def test_removing_a_file_removes_it_from_semantic_results(client):
    store = a_store(client)
    cars = next(r.file_id for r in client.vector_stores.search(store.id, query="automobile"))
    client.vector_stores.files.delete(cars, vector_store_id=store.id)
    assert all(r.file_id != cars for r in client.vector_stores.search(store.id, query="automobile"))
