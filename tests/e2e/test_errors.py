"""Bad input gets a 4xx in the official error shape, never a 5xx, and nothing partial is stored."""

from __future__ import annotations

import http.client
import json
import time
import uuid

import boto3
import openai
import pytest

from chalicelib.domain.auth import project_for


def raw(server, method: str, path: str, body: bytes | str | None = None, headers: dict | None = None):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    all_headers = {"Authorization": "Bearer sk-errors", "Content-Type": "application/json", **(headers or {})}
    connection.request(method, path, body=body, headers={k: v for k, v in all_headers.items() if v is not None})
    response = connection.getresponse()
    payload = response.read()
    connection.close()
    return response.status, dict(response.getheaders()), payload


def assert_openai_error(status: int, payload: bytes, expected_status: int, param: str | None = "any") -> dict:
    assert status == expected_status, payload
    body = json.loads(payload)
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str)
    if param != "any":
        assert error["param"] == param
    return error


def stored_items(server, token: str) -> int:
    """Every item of the token's project in every table, read straight from the embedded DynamoDB."""
    project = project_for(f"Bearer {token}")
    dynamodb = boto3.client("dynamodb", endpoint_url=server.dynamodb_endpoint)
    count = 0
    for table in dynamodb.list_tables()["TableNames"]:
        for page in dynamodb.get_paginator("scan").paginate(TableName=table):
            count += sum(project in json.dumps(item) for item in page["Items"])
    return count


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"{not json", None),
        (b'{"metadata": NaN}', None),
        (b"[1, 2]", None),
        (b'"text"', None),
        (b"\xff\xfe", None),
        (b'{"metadata": {"k": "\\ud800"}}', None),
        (b"[" * 100_000, None),
        (b'{"metadata": {"k": 1}}', "metadata.k"),
        (b'{"metadata": "x"}', "metadata"),
        (b'{"metadata": {"": "empty key"}}', "metadata"),
        (json.dumps({"metadata": {"k" * 65: "v"}}).encode(), "metadata"),
        (json.dumps({"metadata": {"k": "v" * 513}}).encode(), "metadata.k"),
        (json.dumps({"metadata": {f"k{n}": "v" for n in range(17)}}).encode(), "metadata"),
        (b'{"unknown": 1}', "unknown"),
        (b'{"messages": [{"role": "system", "content": "x"}]}', "messages[0].role"),
        (b'{"messages": [{"role": "user"}]}', "messages[0].content"),
        (b'{"messages": [{"role": "user", "content": []}]}', "messages[0].content"),
        (b'{"messages": [{"role": "user", "content": ""}]}', "messages[0].content"),
        (b'{"messages": [{"role": "user", "content": [{"type": "video"}]}]}', "messages[0].content[0].type"),
        (b'{"messages": [{"role": "user", "content": "x", "extra": true}]}', "messages[0].extra"),
        (b'{"messages": {"role": "user"}}', "messages"),
        (b'{"tool_resources": {"code_interpreter": {"file_ids": 3}}}', "tool_resources.code_interpreter.file_ids"),
    ],
)
def test_bad_thread_bodies_are_rejected_and_nothing_is_stored(server, body, param):
    token = f"sk-bad-body-{time.time_ns()}"
    status, headers, payload = raw(server, "POST", "/v1/threads", body, {"Authorization": f"Bearer {token}"})
    error = assert_openai_error(status, payload, 400, param)
    assert error["type"] == "invalid_request_error"
    assert headers["Content-Type"].startswith("application/json")
    assert stored_items(server, token) == 0


def test_a_bad_last_message_stores_neither_the_thread_nor_the_first_ones(server):
    token = f"sk-partial-{time.time_ns()}"
    good = {"role": "user", "content": "fine"}
    body = {"messages": [good, good, {"role": "user", "content": [{"type": "text"}]}]}
    status, _, payload = raw(server, "POST", "/v1/threads", json.dumps(body), {"Authorization": f"Bearer {token}"})
    assert_openai_error(status, payload, 400, "messages[2].content[0].text")
    assert stored_items(server, token) == 0
    status, _, _ = raw(
        server, "POST", "/v1/threads", json.dumps({"messages": [good]}), {"Authorization": f"Bearer {token}"}
    )
    assert status == 200
    # the check above can see what a request stores: the thread, its live marker, its message
    assert stored_items(server, token) == 3


def test_an_oversized_message_is_refused_before_storage(server, client):
    thread = client.beta.threads.create()
    with pytest.raises(openai.BadRequestError) as refused:
        client.beta.threads.messages.create(thread.id, role="user", content="x" * 300_000)
    assert refused.value.param == "content"
    assert client.beta.threads.messages.list(thread.id).data == []


def test_oversized_tool_resources_are_refused_before_storage(server, client):
    huge = {"code_interpreter": {"file_ids": ["file-" + "x" * 300_000]}}
    with pytest.raises(openai.BadRequestError) as refused:
        client.beta.threads.create(tool_resources=huge)
    assert refused.value.param == "tool_resources"
    thread = client.beta.threads.create()
    with pytest.raises(openai.BadRequestError):
        client.beta.threads.update(thread.id, tool_resources=huge)
    assert client.beta.threads.retrieve(thread.id).tool_resources.code_interpreter is None


def test_a_huge_body_is_413(server):
    status, _, payload = raw(server, "POST", "/v1/threads", b'{"metadata": {"k": "' + b"x" * 5_000_000 + b'"}}')
    assert_openai_error(status, payload, 413)


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/v1/nothing-here", 404),
        ("GET", "/", 404),
        ("POST", "/v1/threads/thread_x/unknown", 404),
        ("PUT", "/v1/threads", 405),
        ("PATCH", "/v1/threads/thread_abc", 405),
        ("TRACE", "/v1/threads", 405),
        ("BREW", "/v1/threads", 405),
    ],
)
def test_routes_and_methods_chalice_does_not_know_answer_in_the_openai_shape(server, method, path, expected):
    status, _, payload = raw(server, method, path, b"{}")
    assert_openai_error(status, payload, expected)


def test_the_sdk_maps_unknown_routes_to_not_found_not_permission_denied(client):
    with pytest.raises(openai.NotFoundError):
        client.get("/no-such-resource", cast_to=object)


def test_a_wrong_content_type_is_415(server):
    status, _, payload = raw(server, "POST", "/v1/threads", b"a=b", {"Content-Type": "text/plain"})
    assert_openai_error(status, payload, 415)


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("limit=%EF%BC%95", "limit"),
        ("limit=5_0", "limit"),
        ("order=sideways", "order"),
        ("after=msg_nope", "after"),
        ("before=thread_00VbbVeNB011ZmOdWO4EZPo", "before"),
        ("run_id=bad", "run_id"),
    ],
)
def test_list_parameters_are_checked(server, query, param):
    _, _, created = raw(server, "POST", "/v1/threads", b"{}")
    thread_id = json.loads(created)["id"]
    status, _, payload = raw(server, "GET", f"/v1/threads/{thread_id}/messages?{query}")
    assert_openai_error(status, payload, 400, param)


@pytest.mark.parametrize("authorization", [None, "", "Bearer", "Basic abc", "Bearer  "])
def test_a_missing_key_is_401(server, authorization):
    status, _, payload = raw(server, "GET", "/v1/threads", headers={"Authorization": authorization})
    assert_openai_error(status, payload, 401)


def test_unknown_ids_are_404(client):
    thread = client.beta.threads.create()
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.retrieve("thread_doesnotexist")
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.retrieve("msg_00VbbVeNB011ZmOdWO4EZPo", thread_id=thread.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.retrieve("garbage", thread_id=thread.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.update("thread_00VbbVeNB011ZmOdWO4EZPo", metadata={})


def test_validation_errors_surface_through_the_sdk(client):
    with pytest.raises(openai.BadRequestError) as invalid:
        client.beta.threads.create(messages=[{"role": "robot", "content": "hi"}])
    assert invalid.value.param == "messages[0].role"
    assert invalid.value.code == "invalid_value"
    assert invalid.value.type == "invalid_request_error"


def test_a_chunked_body_is_411_not_a_desynchronised_connection(server):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.putrequest("POST", "/v1/threads")
    connection.putheader("Authorization", "Bearer sk-errors")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Transfer-Encoding", "chunked")
    connection.endheaders()
    connection.send(b"2\r\n{}\r\n0\r\n\r\n")
    response = connection.getresponse()
    assert_openai_error(response.status, response.read(), 411)
    connection.close()


def test_unknown_query_parameters_are_ignored(server):
    status, _, payload = raw(server, "GET", "/v1/threads?limit=1&cache_buster=123")
    assert status == 200
    assert json.loads(payload)["object"] == "list"


def test_head_gets_headers_only_and_the_connection_stays_usable(server):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    headers = {"Authorization": "Bearer sk-errors"}
    connection.request("HEAD", "/v1/threads", headers=headers)
    head = connection.getresponse()
    assert head.status == 405
    assert head.read() == b""
    connection.request("GET", "/v1/threads?limit=1", headers=headers)
    follow_up = connection.getresponse()
    assert follow_up.status == 200
    assert json.loads(follow_up.read())["object"] == "list"
    connection.close()


def test_a_modify_or_create_with_no_body_is_400_as_the_contract_requires_a_body(server):
    """OpenAI's spec marks these request bodies required: no body at all is refused (and changes
    nothing); `{}` stays a valid no-op modify."""
    token = f"sk-no-body-{uuid.uuid4().hex}"
    client = server.client(token)
    assistant = client.beta.assistants.create(model="gpt-4o", name="kept")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Hi"}], metadata={"k": "v"})
    message = client.beta.threads.messages.list(thread.id).data[0]
    run = client.beta.threads.runs.create(thread.id, assistant_id=assistant.id)
    paths = [
        f"/v1/assistants/{assistant.id}",
        f"/v1/threads/{thread.id}",
        f"/v1/threads/{thread.id}/messages/{message.id}",
        f"/v1/threads/{thread.id}/runs/{run.id}",
        "/v1/assistants",
        f"/v1/threads/{thread.id}/messages",
        f"/v1/threads/{thread.id}/runs",
        "/v1/threads/runs",
        f"/v1/threads/{thread.id}/runs/{run.id}/submit_tool_outputs",
    ]
    no_body = {"Authorization": f"Bearer {token}", "Content-Type": None}
    for path in paths:
        status, _, payload = raw(server, "POST", path, headers=no_body)
        error = assert_openai_error(status, payload, 400, param=None)
        assert error["code"] == "missing_body", path
    assert client.beta.assistants.retrieve(assistant.id).name == "kept"
    assert client.beta.threads.retrieve(thread.id).metadata == {"k": "v"}
    assert [a.id for a in client.beta.assistants.list()] == [assistant.id]
    # the run (offline model) may have answered meanwhile; no user message was added
    assert [m.id for m in client.beta.threads.messages.list(thread.id).data if m.role == "user"] == [message.id]
    # `{}` is a valid modify that changes nothing
    for path in paths[:4]:
        status, _, payload = raw(server, "POST", path, body="{}", headers={"Authorization": f"Bearer {token}"})
        assert status == 200, (path, payload)
    assert client.beta.threads.retrieve(thread.id).metadata == {"k": "v"}


def test_the_most_initial_messages_fit_one_transaction_with_the_thread_and_its_marker(server):
    """98 messages, the thread and its live marker are 100 items, DynamoDB's most per transaction; 99
    messages are refused up front (a 400, never a 500 from the store), and so are 91 in a create-and-run
    thread; 90 there still fit beside the run, its events and its queue entry."""
    token = f"sk-most-messages-{uuid.uuid4().hex}"
    client = server.client(token)
    message = {"role": "user", "content": "m"}
    thread = client.beta.threads.create(messages=[message] * 98)
    assert len(client.beta.threads.messages.list(thread.id, limit=100).data) == 98
    status, _, payload = raw(
        server, "POST", "/v1/threads", json.dumps({"messages": [message] * 99}), {"Authorization": f"Bearer {token}"}
    )
    assert assert_openai_error(status, payload, 400, "messages")["code"] == "array_above_max_length"
    assistant = client.beta.assistants.create(model="gpt-4o")
    run = client.beta.threads.create_and_run(assistant_id=assistant.id, thread={"messages": [message] * 90})
    assert len(client.beta.threads.messages.list(run.thread_id, limit=100, order="asc").data) >= 90
    status, _, payload = raw(
        server,
        "POST",
        "/v1/threads/runs",
        json.dumps({"assistant_id": assistant.id, "thread": {"messages": [message] * 91}}),
        {"Authorization": f"Bearer {token}"},
    )
    assert status == 400, payload
