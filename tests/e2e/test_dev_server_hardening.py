"""The local dev server against slow or malformed clients: read deadlines (slowloris), Content-Length
values other than plain digits, and multipart bodies crafted to be expensive to parse."""

from __future__ import annotations

import http.client
import json
import os
import select
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any, cast

import pytest

from tests.servers import LocalServer, start_local_server

READ_TIMEOUT_SECONDS = 2  # what the `slow_server` gives a client to send its request
WAIT_SECONDS = 30  # how long a test waits for the server to close a connection: generous on purpose


@pytest.fixture(scope="module")
def slow_server() -> Iterator[LocalServer]:
    """The dev server with a short read timeout, so that tests need not wait 30 s."""
    with start_local_server(auth="open", SPINDLE_DEV_READ_TIMEOUT_SECONDS=str(READ_TIMEOUT_SECONDS)) as running:
        yield running


def _connect(server: LocalServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=WAIT_SECONDS)


def _closed_by_server(sock: socket.socket) -> bool:
    """Whether the server closes the connection within WAIT_SECONDS (whatever it sends first)."""
    sock.settimeout(WAIT_SECONDS)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


def _trickle_until_closed(sock: socket.socket, data: bytes, interval: float = 0.25) -> bool:
    """Send `data` a byte at a time, `interval` apart: whether the server closes the connection
    before WAIT_SECONDS pass or the bytes run out. Every byte arrives well within the read timeout,
    so only a deadline for the whole request (not a timeout per read) ends this."""
    deadline = time.monotonic() + WAIT_SECONDS
    for byte in data:
        if time.monotonic() > deadline:
            return False
        try:
            sock.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            return True
        readable, _, _ = select.select([sock], [], [], interval)
        if readable:
            try:
                if not sock.recv(65536):
                    return True
            except ConnectionResetError:
                return True
    return False


def _read_response(sock: socket.socket) -> tuple[bytes, bytes]:
    """One response (head, body) read from a raw socket; its body has a Content-Length."""
    data = bytearray()
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the connection closed mid-response: {bytes(data)!r}"
        data += chunk
    head, _, rest = bytes(data).partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
    )
    body = bytearray(rest)
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "the connection closed mid-body"
        body += chunk
    assert len(body) == length, "more bytes than one response"
    return head, bytes(body)


def _threads_of(server: LocalServer, key: str) -> list[Any]:
    return cast(dict[str, Any], server.client(key).get("/threads", cast_to=object))["data"]


def _sdk_call_works(server: LocalServer) -> None:
    client = server.client(f"sk-hardening-{uuid.uuid4().hex}")
    thread = client.beta.threads.create(metadata={"meanwhile": "yes"})
    assert client.beta.threads.retrieve(thread.id).metadata == {"meanwhile": "yes"}


# --- Slowloris: reads from the client have deadlines --------------------------------------------


def test_a_request_head_that_never_ends_is_dropped_and_others_are_served_meanwhile(slow_server: LocalServer) -> None:
    stalled = _connect(slow_server)
    stalled.sendall(b"POST /v1/threads HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n")
    _sdk_call_works(slow_server)  # the stalled connection holds one thread, not the server
    assert _closed_by_server(stalled)
    stalled.close()


def test_a_request_line_that_is_never_finished_is_dropped(slow_server: LocalServer) -> None:
    stalled = _connect(slow_server)
    stalled.sendall(b"GET /v1/thr")
    assert _closed_by_server(stalled)
    stalled.close()


def test_a_request_head_trickled_in_a_byte_at_a_time_is_dropped(slow_server: LocalServer) -> None:
    """A socket timeout alone restarts with every byte: this client would hold its thread forever."""
    trickling = _connect(slow_server)
    endless_head = b"GET /v1/threads HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 10_000
    try:
        assert _trickle_until_closed(trickling, endless_head)
        _sdk_call_works(slow_server)
    finally:
        trickling.close()


def _post_head(length: int) -> bytes:
    return (
        f"POST /v1/threads HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer sk-slow-body\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def test_a_body_shorter_than_its_content_length_is_dropped(slow_server: LocalServer) -> None:
    stalled = _connect(slow_server)
    stalled.sendall(_post_head(100) + b'{"metadata": ')
    assert _closed_by_server(stalled)
    stalled.close()
    assert _threads_of(slow_server, "sk-slow-body") == []


def test_a_body_trickled_in_a_byte_at_a_time_is_dropped(slow_server: LocalServer) -> None:
    trickling = _connect(slow_server)
    trickling.sendall(_post_head(2_000))
    try:
        assert _trickle_until_closed(trickling, b'{"metadata": {"k": "' + b"v" * 1_900)
    finally:
        trickling.close()


def test_an_idle_keep_alive_connection_is_closed(slow_server: LocalServer) -> None:
    idle = _connect(slow_server)
    idle.sendall(b"GET /v1/threads HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer sk-idle\r\n\r\n")
    head, body = _read_response(idle)
    assert head.startswith(b"HTTP/1.1 200") and b"connection: close" not in head.lower()
    assert json.loads(body)["data"] == []
    assert _closed_by_server(idle)  # then, idle, it is closed
    idle.close()


def test_a_client_reading_a_large_response_slowly_still_gets_all_of_it(slow_server: LocalServer) -> None:
    """The read timeout concerns reads: a response outlasting it (a download read slowly, with the
    socket buffers full) is not cut."""
    client = slow_server.client(f"sk-slow-reader-{uuid.uuid4().hex}")
    content = os.urandom(4 * 1024 * 1024)
    uploaded = client.files.create(file=("big.bin", content), purpose="assistants")
    reader = socket.socket()
    reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # so the server's writes block
    reader.settimeout(WAIT_SECONDS)
    reader.connect(("127.0.0.1", slow_server.port))
    reader.sendall(
        f"GET /v1/files/{uploaded.id}/content HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {client.api_key}\r\nAccept: application/octet-stream\r\n\r\n".encode()
    )
    time.sleep(READ_TIMEOUT_SECONDS * 2)
    head, body = _read_response(reader)
    reader.close()
    assert head.startswith(b"HTTP/1.1 200")
    assert body == content


# --- Content-Length: plain digits only ------------------------------------------------------------


@pytest.mark.parametrize(
    ("lengths", "status"),
    [
        (["-1"], 400),  # was read as "no body": the body was then taken for the next request
        (["+2"], 400),  # int() took these two
        (["1_0"], 400),
        (["2", "5"], 400),  # two lengths: the first one was used
        (["1e3"], 400),  # these were refused already
        (["0x2"], 400),
        (["2, 2"], 400),
        (["9" * 30], 413),
        (["9" * 5000], 413),  # was 400: int() refuses over 4300 digits
    ],
)
def test_a_content_length_other_than_plain_digits_is_refused_and_the_connection_closed(
    server: LocalServer, lengths: list[str], status: int
) -> None:
    key = f"sk-length-{uuid.uuid4().hex}"
    sock = _connect(server)
    head = "".join(f"Content-Length: {length}\r\n" for length in lengths)
    sock.sendall(
        f"POST /v1/threads HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\n{head}\r\n{{}}".encode()
    )
    response_head, body = _read_response(sock)
    assert response_head.startswith(f"HTTP/1.1 {status} ".encode()), response_head
    assert b"connection: close" in response_head.lower()
    error = json.loads(body)["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["type"] == "invalid_request_error"
    assert _closed_by_server(sock)  # and nothing else is read from this connection
    sock.close()
    assert _threads_of(server, key) == []  # the body was not used


# --- Multipart: bounded parsing --------------------------------------------------------------------


def _upload_raw(server: LocalServer, key: str, body: bytes) -> tuple[int, dict[str, Any]]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=WAIT_SECONDS)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "multipart/form-data; boundary=b0undary"}
    connection.request("POST", "/v1/files", body=body, headers=headers)
    response = connection.getresponse()
    result = response.status, json.loads(response.read())
    connection.close()
    return result


def _part(disposition: bytes, value: bytes, extra_headers: bytes = b"") -> bytes:
    return (
        b"--b0undary\r\nContent-Disposition: form-data; "
        + disposition
        + b"\r\n"
        + extra_headers
        + b"\r\n"
        + value
        + b"\r\n"
    )


FILE_PART = _part(b'name="file"; filename="a.txt"', b"hello", b"Content-Type: text/plain\r\n")
PURPOSE_PART = _part(b'name="purpose"', b"assistants")


def test_a_multipart_body_of_more_than_16_parts_is_400(server: LocalServer) -> None:
    """Thousands of tiny parts cost email.parser half a minute of CPU; an upload has four fields."""
    key = f"sk-parts-{uuid.uuid4().hex}"
    client = server.client(key)
    within = FILE_PART + PURPOSE_PART * 15 + b"--b0undary--\r\n"  # 16 parts
    status, uploaded = _upload_raw(server, key, within)
    assert status == 200 and uploaded["filename"] == "a.txt"
    client.files.delete(uploaded["id"])
    over = FILE_PART + PURPOSE_PART * 16 + b"--b0undary--\r\n"  # 17 parts
    status, error = _upload_raw(server, key, over)
    assert (status, error["error"]["code"]) == (400, "invalid_multipart")
    assert client.files.list().data == []


def test_multipart_part_headers_over_8_kib_are_400(server: LocalServer) -> None:
    """A long header block (a Content-Disposition of many parameters) cost email.parser minutes."""
    key = f"sk-headers-{uuid.uuid4().hex}"
    padded = FILE_PART.replace(b"Content-Type", b"X-Padding: " + b"p" * 9000 + b"\r\nContent-Type")
    status, error = _upload_raw(server, key, padded + PURPOSE_PART + b"--b0undary--\r\n")
    assert (status, error["error"]["code"]) == (400, "invalid_multipart")
    assert server.client(key).files.list().data == []


def test_sdk_uploads_keep_their_filenames_and_bytes(server: LocalServer) -> None:
    """The parser that replaced email.parser reads what the SDK sends as email.parser did."""
    client = server.client(f"sk-names-{uuid.uuid4().hex}")
    names = ["naïve résumé.txt", 'say "hi".txt', "back\\slash.txt", "semi;colon=eq.txt", "日本語.md", "tab\there.txt"]
    for name in names:
        content = name.encode() + b"\r\n--b0undary--\r\n" + os.urandom(64)
        uploaded = client.files.create(file=(name, content), purpose="assistants")
        expected = name.replace('"', "%22").replace("\t", "%09")  # as the SDK (httpx) encodes them
        assert uploaded.filename == expected
        assert client.files.content(uploaded.id).content == content


def test_an_eml_file_uploads(server: LocalServer) -> None:
    """The SDK labels an .eml file message/rfc822; email.parser parsed it as a nested message and the
    upload was refused as a nested multipart."""
    client = server.client(f"sk-eml-{uuid.uuid4().hex}")
    mail = b"From: a@example.com\r\nSubject: hi\r\n\r\nHello.\r\n"
    uploaded = client.files.create(file=("mail.eml", mail), purpose="assistants")
    assert uploaded.filename == "mail.eml"
    assert client.files.content(uploaded.id).content == mail


def test_an_unterminated_or_empty_multipart_is_still_400(server: LocalServer) -> None:
    key = f"sk-nested-{uuid.uuid4().hex}"
    unterminated = FILE_PART + PURPOSE_PART
    for body in (unterminated, b"--b0undary--\r\n", b"no delimiter at all"):
        status, error = _upload_raw(server, key, body)
        assert (status, error["error"]["code"]) == (400, "invalid_multipart"), body
    assert server.client(key).files.list().data == []
