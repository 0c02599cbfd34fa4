"""Vector stores through the official SDK over HTTP: create, retrieve, update, list, delete."""

from __future__ import annotations

import json
import time
import uuid

import openai
import pytest

DAY = 86400


@pytest.fixture
def client(server):
    return server.client(f"sk-vs-{uuid.uuid4().hex}")


def test_a_vector_store_is_created_and_served_as_the_official_object(client):
    before = int(time.time())
    store = client.vector_stores.create(
        name="Support FAQ", metadata={"team": "support"}, expires_after={"anchor": "last_active_at", "days": 7}
    )
    assert store.id.startswith("vs_") and store.object == "vector_store"
    assert (store.name, store.metadata, store.status, store.usage_bytes) == (
        "Support FAQ",
        {"team": "support"},
        "completed",
        0,
    )
    assert store.file_counts.model_dump() == {"in_progress": 0, "completed": 0, "failed": 0, "cancelled": 0, "total": 0}
    assert before <= store.created_at <= time.time() and store.last_active_at == store.created_at
    assert store.expires_after.model_dump() == {"anchor": "last_active_at", "days": 7}
    assert store.expires_at == store.last_active_at + 7 * DAY
    assert client.vector_stores.retrieve(store.id) == store

    raw = client.get(f"/vector_stores/{store.id}", cast_to=object)
    assert set(raw) == {
        "id", "object", "created_at", "name", "usage_bytes", "file_counts", "status",
        "expires_after", "expires_at", "last_active_at", "metadata",
    }  # fmt: skip


def test_a_store_without_a_name_or_policy(client):
    store = client.vector_stores.create()
    assert (store.name, store.metadata, store.expires_after, store.expires_at) == ("", {}, None, None)
    raw = client.get(f"/vector_stores/{store.id}", cast_to=object)
    assert "expires_after" not in raw and raw["expires_at"] is None


def test_update_sets_only_what_it_names(client):
    store = client.vector_stores.create(
        name="a", metadata={"x": "1"}, expires_after={"anchor": "last_active_at", "days": 2}
    )
    renamed = client.vector_stores.update(store.id, name="b")
    assert (renamed.name, renamed.metadata, renamed.expires_at) == ("b", {"x": "1"}, store.expires_at)
    relabelled = client.vector_stores.update(store.id, metadata={"y": "2"})
    assert (relabelled.name, relabelled.metadata) == ("b", {"y": "2"})
    kept = client.vector_stores.update(store.id, expires_after=None)
    assert (kept.expires_after, kept.expires_at) == (None, None)
    assert client.vector_stores.retrieve(store.id) == kept


def test_list_pages_through_the_callers_stores(client):
    created = [client.vector_stores.create(name=f"store {n}").id for n in range(5)]
    assert [store.id for store in client.vector_stores.list()] == created[::-1]
    first = client.vector_stores.list(limit=2, order="asc")
    assert [store.id for store in first.data] == created[:2] and first.has_more
    assert [store.id for store in client.vector_stores.list(limit=2, order="asc")] == created  # auto-paginates
    assert [s.id for s in client.vector_stores.list(after=created[1], before=created[4], order="asc")] == created[2:4]


def test_delete_removes_the_store(client):
    store = client.vector_stores.create(name="gone soon")
    deleted = client.vector_stores.delete(store.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (store.id, "vector_store.deleted", True)
    with pytest.raises(openai.NotFoundError) as missing:
        client.vector_stores.retrieve(store.id)
    assert missing.value.body["message"] == f"No vector store found with id '{store.id}'."
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.delete(store.id)
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.update(store.id, name="back?")
    assert client.vector_stores.list().data == []


@pytest.mark.parametrize(
    "body, param",
    [
        ({"expires_after": {"anchor": "last_active_at", "days": 0}}, "expires_after.days"),
        ({"expires_after": {"anchor": "created_at", "days": 3}}, "expires_after.anchor"),
        ({"name": 7}, "name"),
        ({"metadata": {"k": "v" * 513}}, "metadata.k"),
        ({"unknown": 1}, None),
        ({"file_ids": "file-abc"}, "file_ids"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_stored(client, body, param):
    with pytest.raises(openai.BadRequestError) as refused:
        client.post("/vector_stores", body=body, cast_to=object)
    assert refused.value.status_code == 400
    if param is not None:
        assert refused.value.body["param"] == param
    assert client.vector_stores.list().data == []


def test_create_and_modify_need_a_body_as_the_contract_says(server, client):
    import http.client

    store = client.vector_stores.create()
    for path in ("/v1/vector_stores", f"/v1/vector_stores/{store.id}"):
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        connection.request("POST", path, headers={"Authorization": f"Bearer {client.api_key}"})
        response = connection.getresponse()
        assert response.status == 400
        assert json.loads(response.read())["error"]["code"] == "missing_body"
        connection.close()
    assert [s.id for s in client.vector_stores.list()] == [store.id]


def test_unknown_or_malformed_ids_are_404(client):
    for store_id in ("vs_" + "0" * 23, "vs_nope", "asst_" + "0" * 23):
        with pytest.raises(openai.NotFoundError):
            client.vector_stores.retrieve(store_id)
