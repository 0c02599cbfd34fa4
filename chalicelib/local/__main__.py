"""`make dev`: the API on http://127.0.0.1:$PORT/v1, backed by an embedded moto DynamoDB and S3.

The embedded store lives in this (supervisor) process and keeps its data in a journal on disk
(`SPINDLE_DATA_DIR`, `.spindle/` by default). The API runs in a child process that is restarted
when code changes or when it dies, so neither a reload nor a crash of the API loses data, and the
journal carries the data over a restart of `make dev` itself.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from chalicelib.local.embedded_aws import start
from chalicelib.local.journal import DataDirInUse
from chalicelib.local.server import PARENT_PIPE, PORT_IN_USE

ROOT = Path(__file__).resolve().parents[2]
WATCH_INTERVAL_SECONDS = 0.5
DEFAULT_DATA_DIR = ROOT / ".spindle"
IN_MEMORY = "memory"
# A child that dies this many times within CRASH_WINDOW_SECONDS is not coming back: stop instead of
# looping.
CRASH_LIMIT = 5
CRASH_WINDOW_SECONDS = 30.0


class Stop(Exception):
    """SIGTERM or Ctrl-C: stop the API, then close the store cleanly."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    # A second signal (a process group kill reaches us twice through `timeout`, say) must not
    # interrupt the clean stop that the first one began.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise Stop


def data_dir_from_environment() -> Path | None:
    value = os.environ.get("SPINDLE_DATA_DIR", "")
    if value == IN_MEMORY:
        return None
    return Path(value) if value else DEFAULT_DATA_DIR


def _code_fingerprint() -> dict[Path, float]:
    files = [ROOT / "app.py", *(ROOT / "chalicelib").rglob("*.py"), *(ROOT / "chalicelib").rglob("*.json")]
    return {path: path.stat().st_mtime for path in files if path.exists()}


def _local_environment(endpoint: str) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("SPINDLE_AUTH", "open")
    # Open mode takes any token as a project: no other web page may drive it from a browser.
    env.setdefault("SPINDLE_CORS_ORIGINS", "")
    env["SPINDLE_DYNAMODB_ENDPOINT"] = endpoint
    env["SPINDLE_S3_ENDPOINT"] = endpoint  # the same embedded server serves S3
    # moto accepts any credentials; these keep botocore from looking for real ones.
    env.setdefault("AWS_ACCESS_KEY_ID", "local")
    env.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _stop_child(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def supervise(env: dict[str, str]) -> int:
    """Run the API child until stopped: restart it on code changes and when it dies."""
    reload = env.get("SPINDLE_RELOAD", "1") == "1"
    command = [sys.executable, "-m", "chalicelib.local.server"]
    crashes: list[float] = []
    child: subprocess.Popen[bytes] | None = None
    # The API child ends with this process, however it ends (kill -9, the OOM killer): it watches the
    # read end of this pipe, which reads end-of-file once the write end, held here only, is closed.
    watched, _held_here = os.pipe()
    env = {**env, PARENT_PIPE: str(watched)}
    while True:
        fingerprint = _code_fingerprint()
        try:
            child = subprocess.Popen(command, cwd=ROOT, env=env, pass_fds=(watched,))
            while child.poll() is None:
                time.sleep(WATCH_INTERVAL_SECONDS)
                if reload and _code_fingerprint() != fingerprint:
                    print("Code changed: restarting the API (data is kept).", flush=True)
                    _stop_child(child)
                    break
            else:
                if child.returncode == PORT_IN_USE:  # it said who holds the port: restarting cannot help
                    return child.returncode
                now = time.monotonic()
                crashes = [at for at in crashes if now - at < CRASH_WINDOW_SECONDS] + [now]
                if len(crashes) >= CRASH_LIMIT:
                    print(f"The API exited {len(crashes)} times in {CRASH_WINDOW_SECONDS:.0f} s; stopping.", flush=True)
                    return child.returncode or 1
                print(f"The API exited with {child.returncode}: restarting it (data is kept).", flush=True)
                time.sleep(0.2 * len(crashes))
        except Stop:
            if child is not None:
                _stop_child(child)
            return 0


def main() -> int:
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    data_dir = data_dir_from_environment()
    try:
        store = start(int(os.environ.get("SPINDLE_MOTO_PORT", "0")), data_dir)
    except DataDirInUse as in_use:
        print(in_use, file=sys.stderr, flush=True)
        return 1
    env = _local_environment(store.endpoint)
    kept = f"data in {data_dir}" if data_dir else "data in memory only"
    print(f"Embedded DynamoDB and S3 (moto) at {store.endpoint}; {kept}; auth mode {env['SPINDLE_AUTH']}", flush=True)
    try:
        return supervise(env)
    except Stop:
        return 0
    finally:
        store.stop()


if __name__ == "__main__":
    sys.exit(main())
