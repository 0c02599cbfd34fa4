"""How each operation touches DynamoDB: never a Scan, one Query per list page whatever the data size,
one round trip per operation where one will do."""

from __future__ import annotations

import json
import time

import pytest

from chalicelib.domain.ids import new_id
from chalicelib.domain.purge import purge_deleted_threads
from chalicelib.storage.models import MessageRecord, PurgeJobRecord, thread_key
from chalicelib.storage.threads import PURGE_BATCH

AUTH = {"Authorization": "Bearer sk-storage", "Content-Type": "application/json"}


def call(api, method: str, path: str, body: dict | None = None) -> dict:
    response = api.http.request(method, path, headers=AUTH, body=json.dumps(body or {}).encode())
    assert response.status_code == 200, response.body
    return json.loads(response.body)


def project_of(api) -> str:
    from chalicelib.domain.auth import project_for

    return project_for(AUTH["Authorization"])


def seed_messages(project_id: str, thread_id: str, count: int) -> list[str]:
    ids = [new_id("message") for _ in range(count)]
    now = int(time.time())
    with MessageRecord.batch_write() as batch:
        for message_id in ids:
            batch.save(
                MessageRecord(
                    thread_key(project_id, thread_id),
                    message_id,
                    thread_id=thread_id,
                    created_at=now,
                    role="user",
                    content=[{"type": "text", "text": {"value": message_id, "annotations": []}}],
                    attachments=[],
                    metadata={},
                    status="completed",
                )
            )
    return ids


def test_every_operation_costs_what_it_should(api, dynamodb_calls):
    def run(method, path, body=None, operations=()):
        dynamodb_calls.clear()
        result = call(api, method, path, body)
        assert dynamodb_calls.operations == list(operations), (method, path)
        return result

    thread = run("POST", "/v1/threads", {"metadata": {"user": "u"}}, ["TransactWriteItems"])  # with its marker
    with_messages = run("POST", "/v1/threads", {"messages": [{"role": "user", "content": "x"}]}, ["TransactWriteItems"])
    tid = thread["id"]
    run("GET", f"/v1/threads/{tid}", operations=["GetItem"])
    run("POST", f"/v1/threads/{tid}", {"metadata": {"a": "b"}}, ["UpdateItem"])
    message = run("POST", f"/v1/threads/{tid}/messages", {"role": "user", "content": "hi"}, ["TransactWriteItems"])
    mid = message["id"]
    run("GET", f"/v1/threads/{tid}/messages/{mid}", operations=["BatchGetItem"])
    run("POST", f"/v1/threads/{tid}/messages/{mid}", {"metadata": {}}, ["GetItem", "UpdateItem"])
    run("GET", f"/v1/threads/{tid}/messages", operations=["Query"])  # the thread's check rides on it
    run("GET", f"/v1/threads/{tid}/messages?order=asc", operations=["Query"])  # a page that ends the thread
    run("GET", "/v1/threads", operations=["Query"])
    run("GET", "/v1/threads?user=u", operations=["Query"])
    run("DELETE", f"/v1/threads/{tid}/messages/{mid}", operations=["TransactWriteItems"])
    run("DELETE", f"/v1/threads/{with_messages['id']}", operations=["TransactWriteItems"])
    assistant = run("POST", "/v1/assistants", {"model": "m"}, ["PutItem"])
    run("POST", f"/v1/assistants/{assistant['id']}", {"name": "n"}, ["GetItem", "PutItem"])  # over its version
    run("GET", f"/v1/assistants/{assistant['id']}", operations=["GetItem"])
    store = run("POST", "/v1/vector_stores", {"name": "s"}, ["PutItem"])
    run("GET", f"/v1/vector_stores/{store['id']}", operations=["GetItem"])
    run("POST", f"/v1/vector_stores/{store['id']}", {"name": "t"}, ["UpdateItem"])  # the fields it names
    run("GET", "/v1/vector_stores", operations=["Query"])
    run("DELETE", f"/v1/vector_stores/{store['id']}", operations=["DeleteItem", "Query"])  # and its files' Query


def test_vector_store_files_cost_what_they_should(api, dynamodb_calls):
    from chalicelib.domain.files import create_file

    file = create_file(project_of(api), {"purpose": "assistants"}, "a.txt", b"alpha")
    store = call(api, "POST", "/v1/vector_stores", {})
    files = f"/v1/vector_stores/{store['id']}/files"

    def run(method, path, body=None, operations=()):
        dynamodb_calls.clear()
        result = call(api, method, path, body)
        assert dynamodb_calls.operations == list(operations), (method, path)
        return result

    # the store, the file, then the file record and the store's count in one transaction
    run("POST", files, {"file_id": file["id"]}, ["GetItem", "BatchGetItem", "TransactWriteItems"])
    run("GET", f"{files}/{file['id']}", operations=["GetItem"])
    # the file's attributes and its store's files_version, which searches' cached file lists key on
    run("POST", f"{files}/{file['id']}", {"attributes": {"a": "b"}}, ["TransactWriteItems", "GetItem"])
    run("GET", files, operations=["GetItem", "Query"])
    run("GET", f"{files}?filter=completed", operations=["GetItem", "Query"])
    run("DELETE", f"{files}/{file['id']}", operations=["GetItem", "TransactWriteItems"])


def test_a_search_lists_a_stores_files_only_when_they_changed(api, dynamodb_calls):
    """A search reads the store (its files_version) and lists its completed files only when the version
    moved since this process last listed them: an unchanged store costs one GetItem (and the update
    that keeps last_active_at, at most once a minute)."""
    from chalicelib.domain.files import create_file
    from chalicelib.ingest import worker

    store = call(api, "POST", "/v1/vector_stores", {})
    files = f"/v1/vector_stores/{store['id']}/files"
    search = f"/v1/vector_stores/{store['id']}/search"
    for name, text in (("a.txt", b"alpha apples"), ("b.txt", b"alpha bananas")):
        file = create_file(project_of(api), {"purpose": "assistants"}, name, text)
        call(api, "POST", files, {"file_id": file["id"], "attributes": {"fruit": name[0]}})
    assert worker.ingest_due(10) == 2

    def searched(body):
        dynamodb_calls.clear()
        found = call(api, "POST", search, body)
        return [item["filename"] for item in found["data"]], dynamodb_calls.operations

    names, operations = searched({"query": "alpha"})
    assert sorted(names) == ["a.txt", "b.txt"] and operations.count("Query") == 1
    names, operations = searched({"query": "alpha"})
    assert sorted(names) == ["a.txt", "b.txt"] and "Query" not in operations  # the list is reused
    b_file = next(f for f in call(api, "GET", files)["data"] if f["attributes"] == {"fruit": "b"})
    call(api, "POST", f"{files}/{b_file['id']}", {"attributes": {"fruit": "c"}})
    names, operations = searched({"query": "alpha", "filters": {"type": "eq", "key": "fruit", "value": "c"}})
    assert names == ["b.txt"] and operations.count("Query") == 1  # new attributes: listed again
    call(api, "DELETE", f"{files}/{b_file['id']}")
    names, _ = searched({"query": "alpha"})
    assert names == ["a.txt"]


def test_a_list_page_is_one_query_of_limit_plus_two_in_a_large_thread(api, dynamodb_calls):
    """The page, one more message for `has_more`, and one for the thread's live marker, which proves
    the thread is there where the page reaches it (a first page newest first, a last page); other
    pages read the thread too (one GetItem)."""
    thread = call(api, "POST", "/v1/threads")
    ids = seed_messages(project_of(api), thread["id"], 3000)
    for query, thread_read in (
        ("", False),
        ("?limit=20", False),
        (f"?after={ids[1500]}", True),
        (f"?order=asc&after={ids[2900]}&limit=100", False),  # the last page: it meets the marker
        (f"?order=asc&after={ids[1500]}&limit=100", True),
        (f"?before={ids[5]}", False),  # newest first, from the top
    ):
        dynamodb_calls.clear()
        call(api, "GET", f"/v1/threads/{thread['id']}/messages{query}")
        queries = [params for name, params in dynamodb_calls.calls if name == "Query"]
        assert len(queries) == 1
        limit = int(query.split("limit=")[1]) if "limit=" in query else 20
        assert queries[0]["Limit"] == limit + 2
        assert ("GetItem" in dynamodb_calls.operations) == thread_read, query
        assert "Scan" not in dynamodb_calls.operations


def test_a_thread_without_its_marker_is_still_listed_and_a_deleted_one_is_404(api, dynamodb_calls):
    """Threads made before the marker existed have none: their pages read the thread, as before."""
    from chalicelib.storage.models import LiveThreadMarker

    project_id = project_of(api)
    older = call(api, "POST", "/v1/threads", {"messages": [{"role": "user", "content": "from before"}]})
    LiveThreadMarker(thread_key(project_id, older["id"])).delete()
    dynamodb_calls.clear()
    page = call(api, "GET", f"/v1/threads/{older['id']}/messages")
    assert [m["content"][0]["text"]["value"] for m in page["data"]] == ["from before"]
    assert page["has_more"] is False
    assert dynamodb_calls.operations == ["Query", "GetItem"]
    gone = call(api, "POST", "/v1/threads", {"messages": [{"role": "user", "content": "deleted"}]})
    call(api, "DELETE", f"/v1/threads/{gone['id']}")
    for query in ("", "?order=asc", "?limit=1"):  # its messages wait for the purge: unreachable already
        response = api.http.request("GET", f"/v1/threads/{gone['id']}/messages{query}", headers=AUTH)
        assert response.status_code == 404
    empty = call(api, "POST", "/v1/threads")
    dynamodb_calls.clear()
    listed = call(api, "GET", f"/v1/threads/{empty['id']}/messages")
    assert (listed["data"], listed["has_more"]) == ([], False)
    assert dynamodb_calls.operations == ["Query"]  # its marker alone


def test_deleting_a_large_thread_is_one_write_and_a_resumable_purge(api, dynamodb_calls):
    """Several purge batches' worth; `make bench` (section purge) times the same on 100,000 messages."""
    project_id = project_of(api)
    thread = call(api, "POST", "/v1/threads")
    seed_messages(project_id, thread["id"], 6 * PURGE_BATCH + 1)
    keep = call(api, "POST", "/v1/threads", {"messages": [{"role": "user", "content": "keep me"}]})

    dynamodb_calls.clear()
    call(api, "DELETE", f"/v1/threads/{thread['id']}")
    assert dynamodb_calls.operations == ["TransactWriteItems"]
    response = api.http.request("GET", f"/v1/threads/{thread['id']}/messages", headers=AUTH)
    assert response.status_code == 404

    key = thread_key(project_id, thread["id"])
    assert purge_deleted_threads(seconds=0) == 0  # no time: nothing done, nothing lost
    assert MessageRecord.count(key) == 6 * PURGE_BATCH + 1
    assert purge_deleted_threads(seconds=600) == 1
    assert MessageRecord.count(key) == 0
    assert list(PurgeJobRecord.query("threads")) == []
    assert "Scan" not in dynamodb_calls.operations
    assert len(call(api, "GET", f"/v1/threads/{keep['id']}/messages")["data"]) == 1


def reference_page(ids: list[str], order: str, after: str | None, before: str | None, limit: int):
    ordered = ids if order == "asc" else list(reversed(ids))
    position = {item: index for index, item in enumerate(ordered)}
    candidates = [
        item
        for item in ordered
        if (after is None or position[item] > position[after]) and (before is None or position[item] < position[before])
    ]
    return candidates[:limit], len(candidates) > limit


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_every_cursor_combination_matches_the_reference_order(api, order):
    thread = call(api, "POST", "/v1/threads")
    ids = seed_messages(project_of(api), thread["id"], 9)
    cursors = [None, *ids]
    for limit in (1, 3, 20):
        for after in cursors:
            for before in cursors:
                query = f"?order={order}&limit={limit}"
                query += f"&after={after}" if after else ""
                query += f"&before={before}" if before else ""
                page = call(api, "GET", f"/v1/threads/{thread['id']}/messages{query}")
                expected_ids, expected_more = reference_page(ids, order, after, before, limit)
                assert [m["id"] for m in page["data"]] == expected_ids, query
                assert page["has_more"] == expected_more, query
