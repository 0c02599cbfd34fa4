"""Files with the official SDK: upload, list, retrieve, download, delete; references and images in runs."""

from __future__ import annotations

import base64
import http.client
import json
import os
import time
import uuid

import openai
import pytest

from chalicelib.domain.ids import is_valid_id
from tests.standin_model import text

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c6360000002000154a24f5d"
    "0000000049454e44ae426082"
)


@pytest.fixture
def client(server):
    return server.client(f"sk-files-{uuid.uuid4().hex}")


def test_upload_from_a_file_object_and_from_bytes(client, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes(b"line one\nline two\n")
    before = int(time.time())
    with path.open("rb") as handle:
        uploaded = client.files.create(file=handle, purpose="assistants")
    assert is_valid_id("file", uploaded.id)
    assert (uploaded.object, uploaded.filename, uploaded.bytes, uploaded.purpose) == (
        "file",
        "notes.txt",
        18,
        "assistants",
    )
    assert before <= uploaded.created_at <= int(time.time()) + 1
    assert uploaded.status == "processed"
    from_bytes = client.files.create(file=("image.png", PNG), purpose="vision")
    assert (from_bytes.filename, from_bytes.bytes, from_bytes.purpose) == ("image.png", len(PNG), "vision")
    assert client.files.retrieve(uploaded.id) == uploaded


def test_content_round_trips_byte_for_byte(client):
    payload = os.urandom(200_000) + b"\r\n--boundary--\r\n" + bytes(range(256)) * 4
    uploaded = client.files.create(file=("blob.bin", payload), purpose="assistants")
    assert client.files.content(uploaded.id).content == payload


def test_list_is_newest_first_filters_by_purpose_and_paginates(client):
    made = [client.files.create(file=(f"{n}.txt", b"x"), purpose="assistants").id for n in range(3)]
    image = client.files.create(file=("i.png", PNG), purpose="vision").id
    assert [f.id for f in client.files.list()] == [image, *reversed(made)]
    assert [f.id for f in client.files.list(purpose="vision")] == [image]
    assert [f.id for f in client.files.list(purpose="assistants", limit=2)] == list(reversed(made))
    page = client.files.list(limit=2, order="asc")
    assert [f.id for f in page.data] == made[:2] and page.has_more is True


def test_delete_then_404(client):
    uploaded = client.files.create(file=("gone.txt", b"bye"), purpose="assistants")
    deleted = client.files.delete(uploaded.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (uploaded.id, "file", True)
    for call in (client.files.retrieve, client.files.content, client.files.delete):
        with pytest.raises(openai.NotFoundError):
            call(uploaded.id)


def test_upload_errors_are_openai_shaped(client, server):
    with pytest.raises(openai.BadRequestError) as bad_purpose:
        client.files.create(file=("a.txt", b"a"), purpose="nonsense")
    assert bad_purpose.value.param == "purpose"
    with pytest.raises(openai.APIStatusError) as too_large:
        client.files.create(file=("big.bin", b"0" * (4 * 1024 * 1024 + 1)), purpose="assistants")
    assert too_large.value.status_code == 413
    assert too_large.value.body["code"] == "file_too_large"
    with pytest.raises(openai.BadRequestError) as missing:
        client.post(
            "/files",
            body=None,
            options={"headers": {"Content-Type": "multipart/form-data; boundary=x"}},
            files=[("purpose", (None, b"assistants"))],
            cast_to=object,
        )
    assert missing.value.param == "file"
    assert client.files.list().data == []  # nothing was stored


def test_references_must_name_files_of_the_callers_project(client, server):
    mine = client.files.create(file=("mine.txt", b"mine"), purpose="assistants")
    other = server.client(f"sk-files-other-{uuid.uuid4().hex}")
    theirs = other.files.create(file=("theirs.png", PNG), purpose="vision")
    thread = client.beta.threads.create()
    cases = [
        lambda: client.beta.threads.messages.create(
            thread.id,
            role="user",
            content="x",
            attachments=[{"file_id": theirs.id, "tools": [{"type": "file_search"}]}],
        ),
        lambda: client.beta.threads.messages.create(
            thread.id, role="user", content=[{"type": "image_file", "image_file": {"file_id": theirs.id}}]
        ),
        lambda: client.beta.threads.create(tool_resources={"code_interpreter": {"file_ids": [mine.id, theirs.id]}}),
        lambda: client.beta.threads.update(thread.id, tool_resources={"code_interpreter": {"file_ids": [theirs.id]}}),
        lambda: client.beta.assistants.create(
            model="m", tool_resources={"code_interpreter": {"file_ids": [theirs.id]}}
        ),
        lambda: client.beta.threads.create(
            messages=[{"role": "user", "content": "x", "attachments": [{"file_id": "file-nope", "tools": []}]}]
        ),
    ]
    for case in cases:
        with pytest.raises(openai.NotFoundError) as missing:
            case()
        assert "No file found" in missing.value.message
    assert client.beta.threads.messages.list(thread.id).data == []
    assert client.beta.threads.retrieve(thread.id).tool_resources.code_interpreter is None
    assert client.beta.assistants.list().data == []
    assert [t["id"] for t in client.get("/threads", cast_to=object)["data"]] == [thread.id]


def test_an_uploaded_image_reaches_the_model_as_a_data_url(model_server, standin):
    client = model_server.client(f"sk-files-run-{uuid.uuid4().hex}")
    image = client.files.create(file=("cat.png", PNG), purpose="vision")
    model = standin.script([text("A cat.")])
    assistant = client.beta.assistants.create(model=model)
    thread = client.beta.threads.create(
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_file", "image_file": {"file_id": image.id, "detail": "high"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/dog.jpg"}},
                ],
            }
        ]
    )
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed"
    parts = standin.requests(model)[0]["messages"][-1]["content"]
    assert parts[0] == {"type": "text", "text": "What is this?"}
    expected_url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert parts[1] == {"type": "image_url", "image_url": {"url": expected_url, "detail": "high"}}
    assert parts[2] == {"type": "image_url", "image_url": {"url": "https://example.com/dog.jpg", "detail": "auto"}}


def test_a_filename_too_long_or_a_nested_multipart_is_400(client, server):
    with pytest.raises(openai.BadRequestError) as long_name:
        client.files.create(file=("n" * 256 + ".txt", b"x"), purpose="assistants")
    assert long_name.value.param == "file"
    nested = (
        b'--outer\r\nContent-Disposition: form-data; name="file"\r\n'
        b"Content-Type: multipart/mixed; boundary=inner\r\n\r\n"
        b"--inner\r\nContent-Type: text/plain\r\n\r\nhello\r\n--inner--\r\n"
        b'--outer\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nassistants\r\n--outer--\r\n'
    )
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    headers = {"Authorization": f"Bearer {client.api_key}", "Content-Type": "multipart/form-data; boundary=outer"}
    connection.request("POST", "/v1/files", body=nested, headers=headers)
    response = connection.getresponse()
    assert response.status == 400
    assert json.loads(response.read())["error"]["code"] == "invalid_multipart"
    connection.close()
    assert client.files.list().data == []
