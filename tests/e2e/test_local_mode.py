"""Local mode (`make dev`): data lives outside the process that reloads; deleted threads are purged."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
import openai
import pytest
from chalice import Chalice
from chalice.config import Config
from chalice.local import LocalDevServer

from chalicelib.domain.auth import project_for
from chalicelib.http.server import SpindleRequestHandler
from chalicelib.storage.models import thread_key
from tests.servers import ROOT, children_of, free_port, start_local_server, wait_until_ready


def wait_for(condition, timeout: float = 30, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def test_data_survives_a_code_reload():
    with start_local_server(auth="open", reload=True) as server:
        client = server.client("sk-reload")
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "still here?"}])
        watched = ROOT / "chalicelib" / "__init__.py"
        stat = watched.stat()
        os.utime(watched, (stat.st_atime, stat.st_mtime + 5))
        try:
            wait_for(lambda: "restarting the API" in Path(server.log_path).read_text())
            wait_until_ready(server.base_url, server.process)
            assert client.beta.threads.retrieve(thread.id) == thread
            assert client.beta.threads.messages.list(thread.id).data[0].content[0].text.value == "still here?"
        finally:
            os.utime(watched, (stat.st_atime, stat.st_mtime))


def test_a_deleted_threads_messages_runs_and_steps_are_purged_from_storage(server):
    token = "sk-purge"
    client = server.client(token)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": str(n)} for n in range(30)])
    assistant = client.beta.assistants.create(model="offline")
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    dynamodb = boto3.resource("dynamodb", endpoint_url=server.dynamodb_endpoint)
    key = thread_key(project_for(f"Bearer {token}"), thread.id)

    def stored() -> tuple[int, int, int]:
        def count(table: str, attribute: str, value: str) -> int:
            return dynamodb.Table(table).query(
                KeyConditionExpression=f"{attribute} = :k", ExpressionAttributeValues={":k": value}
            )["Count"]

        return (
            count("spindle-messages", "thread_key", key),
            count("spindle-runs", "thread_key", key),
            count("spindle-run-steps", "run_key", f"{key}#{run.id}"),
        )

    assert stored() == (31 + 1, 1, 1)  # 31 messages and the thread's live marker (storage/models.py)
    client.beta.threads.delete(thread.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.list(thread.id)
    wait_for(lambda: stored() == (0, 0, 0))


def test_the_local_server_turns_nagle_off_on_its_sockets():
    """chalice local leaves Nagle's algorithm on: ~40 ms added to every keep-alive request."""
    observed: list[int] = []

    class Probe(SpindleRequestHandler):
        def setup(self):
            super().setup()
            observed.append(self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    app = Chalice(app_name="probe")
    app.route("/ping")(lambda: {"ok": True})
    server = LocalDevServer(app, Config(chalice_stage="local"), "127.0.0.1", 0, handler_cls=Probe)
    worker = threading.Thread(target=server.handle_single_request)
    worker.start()
    port = server.server.server_address[1]
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/ping")
    assert connection.getresponse().status == 200
    connection.close()
    worker.join(timeout=10)
    server.server.server_close()
    assert observed and observed[0] != 0


STEPS = 30


def test_concurrent_requests_never_see_each_others_bodies(server):
    """The local server is threaded: each request must read its own body and path."""
    failures: list[str] = []

    def worker(number: int) -> None:
        client = server.client(f"sk-concurrent-{number}")
        thread = client.beta.threads.create(metadata={"worker": str(number)})
        for step in range(STEPS):
            text_sent = f"worker {number} step {step}"
            try:
                message = client.beta.threads.messages.create(thread.id, role="user", content=text_sent)
                again = client.beta.threads.retrieve(thread.id)
            except openai.APIError as error:
                failures.append(f"{text_sent}: {error}")
                continue
            if message.content[0].text.value != text_sent or message.thread_id != thread.id or again.id != thread.id:
                failures.append(f"{text_sent} came back as {message.content[0].text.value} in {message.thread_id}")
        listed = [m.content[0].text.value for m in client.beta.threads.messages.list(thread.id, order="asc", limit=100)]
        if listed != [f"worker {number} step {step}" for step in range(STEPS)]:
            failures.append(f"worker {number} lists {listed[:3]}…")

    workers = [threading.Thread(target=worker, args=(number,)) for number in range(16)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert failures == []


def _store_something(client) -> tuple[str, str, str]:
    """A thread with messages and a completed run, and a file: one of each kind of stored thing."""
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "first"}])
    client.beta.threads.messages.create(thread.id, role="user", content="second")
    assistant = client.beta.assistants.create(model="offline", name="keeper")
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=20)
    assert run.status == "completed"
    file = client.files.create(file=("notes.txt", b"bytes that must survive"), purpose="assistants")
    return thread.id, assistant.id, file.id


def _assert_still_stored(client, thread_id: str, assistant_id: str, file_id: str) -> None:
    listed = [m.content[0].text.value for m in client.beta.threads.messages.list(thread_id, order="asc")]
    assert listed == ["first", "second", "You said: second"]
    assert [run.status for run in client.beta.threads.runs.list(thread_id)] == ["completed"]
    assert client.beta.assistants.retrieve(assistant_id).name == "keeper"
    assert client.files.content(file_id).read() == b"bytes that must survive"
    # ...and the store takes new writes beside them, in order.
    client.beta.threads.messages.create(thread_id, role="user", content="third")
    assert client.beta.threads.messages.list(thread_id).data[0].content[0].text.value == "third"


def test_a_crashed_api_is_restarted_and_nothing_is_lost():
    with start_local_server(auth="open") as server:
        client = server.client("sk-crash")
        stored = _store_something(client)
        (api,) = children_of(server.process.pid)
        os.kill(api, 9)
        wait_for(lambda: "restarting it (data is kept)" in Path(server.log_path).read_text())
        wait_until_ready(server.base_url, server.process)
        assert server.process.poll() is None
        _assert_still_stored(client, *stored)


def test_data_survives_a_hard_kill_of_the_whole_dev_server(tmp_path):
    """kill -9 of `make dev` and everything under it: every acknowledged write is in the journal."""
    with start_local_server(auth="open", data_dir=tmp_path) as server:
        client = server.client("sk-hard-kill")
        stored = _store_something(client)
        os.killpg(server.process.pid, 9)
        server.process.wait(timeout=10)
    with start_local_server(auth="open", data_dir=tmp_path) as server:
        _assert_still_stored(server.client("sk-hard-kill"), *stored)
        assert "Loaded" in Path(server.log_path).read_text()


def test_a_clean_stop_keeps_the_data_and_a_fresh_folder_starts_empty(tmp_path):
    with start_local_server(auth="open", data_dir=tmp_path / "kept") as server:
        stored = _store_something(server.client("sk-stop"))
        server.process.send_signal(signal.SIGTERM)  # what Ctrl-C or a service manager sends
        assert server.process.wait(timeout=30) == 0  # it stopped by itself, cleanly
    with start_local_server(auth="open", data_dir=tmp_path / "kept") as server:
        _assert_still_stored(server.client("sk-stop"), *stored)
    with start_local_server(auth="open", data_dir=tmp_path / "fresh") as server:
        with pytest.raises(openai.NotFoundError):
            server.client("sk-stop").beta.threads.retrieve(stored[0])


def test_a_burst_of_connections_is_queued_not_reset():
    """socketserver listens with a backlog of 5: under a burst, connections beyond it were reset
    (seen as APIConnectionError with 16 clients on a busy machine). The dev server queues 128."""
    from chalicelib.http.server import SpindleHTTPServer

    server = SpindleHTTPServer(("127.0.0.1", 0), SpindleRequestHandler)  # listening, not yet accepting
    opened: list[socket.socket] = []
    try:
        for _ in range(64):
            opened.append(socket.create_connection(server.server_address, timeout=2))
        assert len(opened) == 64
    finally:
        for sock in opened:
            sock.close()
        server.server_close()


def _store_connections(port: int) -> dict[str, int]:
    """TCP sockets on this machine with the embedded store's port at either end, by state."""
    names = {"01": "established", "06": "time_wait"}
    counts: dict[str, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            ports = {int(fields[1].rsplit(":", 1)[1], 16), int(fields[2].rsplit(":", 1)[1], 16)}
            if port in ports:
                state = names.get(fields[3], "other")
                counts[state] = counts.get(state, 0) + 1
    return counts


def test_the_api_reuses_its_connections_to_the_embedded_store(server):
    """moto's own server closed the connection after every call: each DynamoDB call paid a new one
    (and left a socket in TIME_WAIT)."""
    client = server.client("sk-connections")
    thread = client.beta.threads.create()
    client.beta.threads.messages.create(thread.id, role="user", content="warm the pools")
    before = _store_connections(server.moto_port)
    for n in range(100):
        client.beta.threads.messages.create(thread.id, role="user", content=str(n))
    after = _store_connections(server.moto_port)
    # Both ends of each connection are on this machine. 100 calls, fewer than 5 new connections:
    assert after.get("time_wait", 0) - before.get("time_wait", 0) < 10, (before, after)
    assert after.get("established", 0) - before.get("established", 0) < 10, (before, after)


def _second_server(port: int, data_dir: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """`make dev` run again by hand: `python -m chalicelib.local` in the foreground, as a user would."""
    env = {
        **os.environ,
        "PORT": str(port),
        "SPINDLE_MOTO_PORT": str(free_port()),
        "SPINDLE_DATA_DIR": data_dir,
        "SPINDLE_RELOAD": "0",
    }
    env.pop("SPINDLE_DYNAMODB_ENDPOINT", None)
    command = [sys.executable, "-m", "chalicelib.local"]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def test_a_second_server_on_a_data_directory_in_use_is_refused_and_the_first_keeps_serving(tmp_path):
    """Two servers on one journal would each keep their own in-memory view, and whichever wrote last
    would win at the next start: the second one exits at once, naming the directory and the holder."""
    with start_local_server(auth="open", data_dir=tmp_path) as first:
        client = first.client("sk-one-server")
        thread = client.beta.threads.create(metadata={"kept": "yes"})
        second = _second_server(free_port(), str(tmp_path))
        assert second.returncode != 0
        assert str(tmp_path) in second.stderr and f"pid {first.process.pid}" in second.stderr, second.stderr
        assert client.beta.threads.retrieve(thread.id).metadata == {"kept": "yes"}
        client.beta.threads.update(thread.id, metadata={"kept": "still"})
        first.process.send_signal(signal.SIGTERM)
        assert first.process.wait(timeout=30) == 0
    with start_local_server(auth="open", data_dir=tmp_path) as again:  # the lock went with its process
        assert again.client("sk-one-server").beta.threads.retrieve(thread.id).metadata == {"kept": "still"}


def test_in_memory_servers_share_no_directory_and_are_not_refused():
    with start_local_server(auth="open", SPINDLE_DATA_DIR="memory") as first:
        with start_local_server(auth="open", SPINDLE_DATA_DIR="memory") as second:
            for server in (first, second):
                assert server.client("sk-memory").beta.threads.create().id.startswith("thread_")


def _bindable(port: int) -> bool:
    """Nothing listens on the port any more (bound as a server binds it)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _gone(pid: int) -> bool:
    """The process has exited: no longer there, or a zombie waiting to be reaped (state Z)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_the_api_ends_with_its_supervisor_and_frees_the_port_and_the_directory(tmp_path):
    """kill -9 of the supervisor alone (the OOM killer's way): its API child must not stay behind
    holding the port and answering 500 to every write, and a new server can start at once."""
    with start_local_server(auth="open", data_dir=tmp_path) as server:
        thread = server.client("sk-orphan").beta.threads.create(metadata={"kept": "yes"})
        (api,) = children_of(server.process.pid)
        os.kill(server.process.pid, 9)
        server.process.wait(timeout=10)
        wait_for(lambda: _gone(api))
    wait_for(lambda: _bindable(server.port))  # the kernel lets go of a dead process's socket soon after
    with start_local_server(auth="open", data_dir=tmp_path) as again:  # nor the directory
        assert again.client("sk-orphan").beta.threads.retrieve(thread.id).metadata == {"kept": "yes"}


def test_a_port_in_use_is_refused_at_once_naming_who_holds_it(tmp_path):
    with start_local_server(auth="open") as first:
        (api,) = children_of(first.process.pid)
        second = _second_server(first.port, str(tmp_path / "other"))
        assert second.returncode != 0
        assert f"Port {first.port} is in use by pid {api} (" in second.stderr, second.stderr
        assert second.stderr.count("Port ") == 1  # refused once, not restarted five times
