"""Start the real local server (`python -m chalicelib.local`, what `make dev` runs) for tests."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from openai import AsyncOpenAI, OpenAI

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LocalServer:
    port: int
    moto_port: int
    process: subprocess.Popen
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.root_url + "/v1"

    @property
    def dynamodb_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.moto_port}"

    def client(self, api_key: str, **options) -> OpenAI:
        return OpenAI(base_url=self.base_url, api_key=api_key, max_retries=0, **options)

    def async_client(self, api_key: str) -> AsyncOpenAI:
        return AsyncOpenAI(base_url=self.base_url, api_key=api_key, max_retries=0)


def children_of(pid: int) -> list[int]:
    """The processes whose parent is `pid` (the supervisor's API child, for crash tests)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def wait_until_ready(base_url: str, process: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"local server exited with {process.returncode}")
        request = urllib.request.Request(base_url + "/threads", headers={"Authorization": "Bearer readiness"})
        try:
            with urllib.request.urlopen(request, timeout=2):
                return
        except urllib.error.HTTPError as error:
            if error.code == 401:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("local server did not become ready")


@contextlib.contextmanager
def start_local_server(
    auth: str, reload: bool = False, data_dir: Path | None = None, **extra_env: str
) -> Iterator[LocalServer]:
    """`python -m chalicelib.local` on free ports, with a fresh, isolated store (its journal in a new
    temporary folder) unless `data_dir` names one to reuse."""
    port, moto_port = free_port(), free_port()
    scratch = None
    if data_dir is None:
        scratch = tempfile.TemporaryDirectory(prefix="spindle-data-")
        data_dir = Path(scratch.name)
    env = {
        **os.environ,
        "PORT": str(port),
        "SPINDLE_MOTO_PORT": str(moto_port),
        "SPINDLE_AUTH": auth,
        "SPINDLE_RELOAD": "1" if reload else "0",
        "SPINDLE_DATA_DIR": str(data_dir),
        **extra_env,
    }
    env.pop("SPINDLE_DYNAMODB_ENDPOINT", None)
    try:
        with _serving([sys.executable, "-m", "chalicelib.local"], ROOT, env, port, moto_port, "server") as running:
            yield running
    finally:
        if scratch is not None:
            scratch.cleanup()


@contextlib.contextmanager
def start_stream_function(store: LocalServer, **extra_env: str) -> Iterator[LocalServer]:
    """The stream function's handler script (chalicelib/stream_function.sh, what the Lambda Web Adapter
    runs on AWS) as a process on a free port, on `store`'s embedded DynamoDB and S3 and with its settings.
    `store`'s poller is the background driver that takes over a run whose stream request died."""
    port = free_port()
    env = {
        **store.env,
        "AWS_LWA_PORT": str(port),
        "LAMBDA_TASK_ROOT": str(ROOT),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",  # its python3
        "SPINDLE_DYNAMODB_ENDPOINT": store.dynamodb_endpoint,
        "SPINDLE_S3_ENDPOINT": store.dynamodb_endpoint,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PYTHONUNBUFFERED": "1",
        **extra_env,
    }
    env.pop("PORT", None)
    # run from elsewhere: the script finds its package itself, as on Lambda
    script = [str(ROOT / "chalicelib" / "stream_function.sh")]
    with _serving(script, Path(tempfile.gettempdir()), env, port, store.moto_port, "stream-function") as running:
        yield running


@contextlib.contextmanager
def _serving(
    command: list[str], cwd: Path, env: dict[str, str], port: int, moto_port: int, name: str
) -> Iterator[LocalServer]:
    """`command` as a process (group) logging to a file, until it serves on `port`; stopped on exit."""
    log_path = Path(tempfile.gettempdir()) / f"spindle-{name}-{port}.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed when the process stops
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        running = LocalServer(port=port, moto_port=moto_port, process=process, log_path=log_path, env=env)
        wait_until_ready(running.base_url, process)
        yield running
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 15)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        log.close()


def cli(server: LocalServer, *args: str) -> subprocess.CompletedProcess:
    """`python -m chalicelib.cli keys ...` against the server's embedded DynamoDB."""
    env = {**server.env, "SPINDLE_DYNAMODB_ENDPOINT": server.dynamodb_endpoint}
    return subprocess.run(
        [sys.executable, "-m", "chalicelib.cli", "keys", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )


def mint(server: LocalServer, *args: str) -> dict:
    result = cli(server, "create", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
