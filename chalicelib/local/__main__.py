"""`make dev`: the API on http://127.0.0.1:$PORT/v1, backed by an embedded moto DynamoDB.

The moto server lives in this (supervisor) process; the API runs in a child process that is restarted
when code changes. Data therefore survives code reloads: it is never in the process that reloads.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WATCH_INTERVAL_SECONDS = 0.5


def _start_moto() -> str:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    server = ThreadedMotoServer(
        ip_address="127.0.0.1", port=int(os.environ.get("SPINDLE_MOTO_PORT", "0")), verbose=False
    )
    server.start()
    host, port = server.get_host_and_port()
    return f"http://{host}:{port}"


def _code_fingerprint() -> dict[Path, float]:
    files = [ROOT / "app.py", *(ROOT / "chalicelib").rglob("*.py"), *(ROOT / "chalicelib").rglob("*.json")]
    return {path: path.stat().st_mtime for path in files if path.exists()}


def _local_environment(dynamodb_endpoint: str) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("SPINDLE_AUTH", "open")
    env["SPINDLE_DYNAMODB_ENDPOINT"] = dynamodb_endpoint
    env["SPINDLE_S3_ENDPOINT"] = dynamodb_endpoint  # the same embedded moto server serves S3
    # moto accepts any credentials; these keep botocore from looking for real ones.
    env.setdefault("AWS_ACCESS_KEY_ID", "local")
    env.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def main() -> int:
    endpoint = _start_moto()
    env = _local_environment(endpoint)
    print(f"Embedded DynamoDB (moto) at {endpoint}; auth mode {env['SPINDLE_AUTH']}", flush=True)
    reload = env.get("SPINDLE_RELOAD", "1") == "1"
    command = [sys.executable, "-m", "chalicelib.local.server"]
    while True:
        fingerprint = _code_fingerprint()
        child = subprocess.Popen(command, cwd=ROOT, env=env)
        try:
            while child.poll() is None:
                time.sleep(WATCH_INTERVAL_SECONDS)
                if reload and _code_fingerprint() != fingerprint:
                    print("Code changed: restarting the API (data is kept).", flush=True)
                    child.terminate()
                    child.wait(timeout=10)
                    break
            else:
                return child.returncode
        except KeyboardInterrupt:
            child.terminate()
            child.wait(timeout=10)
            return 0


if __name__ == "__main__":
    sys.exit(main())
