"""`make bench`: what every operation costs, and how that grows with the data. Never run as a test.

Writes bench/results.json and bench/RESULTS.md. Each figure is a median and p99 over repetitions on
this machine; each section's docstring says how it is measured. Run one section with
`python bench/run.py SECTION` (dynamodb, floor, http, list, read_path, cold_start, run, stream_latency, load,
store, purge, modify, faults, vector_search, code_interpreter).
"""

from __future__ import annotations

import inspect
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("SPINDLE_AUTH", "open")
os.environ.pop("SPINDLE_DYNAMODB_ENDPOINT", None)

AUTH = {"Authorization": "Bearer sk-bench", "Content-Type": "application/json"}
warnings.filterwarnings("ignore", category=DeprecationWarning)


def summary(samples: list[float], scale: float = 1000.0) -> dict[str, float]:
    """Median and p99 (milliseconds by default) of a sample list."""
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]
    return {"median": round(statistics.median(ordered) * scale, 3), "p99": round(p99 * scale, 3), "n": len(ordered)}


def timed(action: Callable[[], Any], repetitions: int) -> list[float]:
    samples = []
    for _ in range(repetitions):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return samples


# --- DynamoDB requests and capacity per operation -------------------------------------------------


class DynamoDBMeter:
    """Counts every DynamoDB request (a botocore hook on the client) and computes the capacity units
    it consumes from the item sizes it carries, by DynamoDB's rules: a write unit per KB written, a
    read unit per 4 KB read consistently, twice that in transactions. (moto reports a constant
    ConsumedCapacity, so its figure is not used.)"""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.read_units = 0.0
        self.write_units = 0.0

    def install(self) -> None:
        import botocore.client

        original = botocore.client.BaseClient._make_api_call
        meter = self

        def metered(client: Any, operation: str, params: dict[str, Any]) -> Any:
            response = original(client, operation, params)
            if client.meta.service_model.service_name == "dynamodb":
                meter.record(operation, params, response)
            return response

        botocore.client.BaseClient._make_api_call = metered  # type: ignore[method-assign]

    @staticmethod
    def _size(item: dict[str, Any]) -> int:
        return len(json.dumps(item, separators=(",", ":")))

    def record(self, operation: str, params: dict[str, Any], response: dict[str, Any]) -> None:
        import math

        self.requests.append(operation)
        if operation in ("GetItem",):
            self.read_units += max(1, math.ceil(self._size(response.get("Item", {})) / 4096))
        elif operation == "Query":
            self.read_units += max(1, math.ceil(sum(self._size(i) for i in response.get("Items", [])) / 4096))
        elif operation == "BatchGetItem":
            for items in response.get("Responses", {}).values():
                self.read_units += sum(max(1, math.ceil(self._size(i) / 4096)) for i in items)
        elif operation in ("PutItem",):
            self.write_units += max(1, math.ceil(self._size(params["Item"]) / 1024))
        elif operation in ("UpdateItem", "DeleteItem"):
            self.write_units += 1
        elif operation == "BatchWriteItem":
            self.write_units += sum(len(v) for v in params["RequestItems"].values())
        elif operation == "TransactWriteItems":
            for entry in params["TransactItems"]:
                kind, body = next(iter(entry.items()))
                size = self._size(body.get("Item", {})) if kind == "Put" else 1024
                units = 2 * max(1, math.ceil(size / 1024))
                if kind == "ConditionCheck":
                    self.read_units += 2
                else:
                    self.write_units += units
        elif operation == "TransactGetItems":
            self.read_units += 2 * len(params["TransactItems"])

    def reset(self) -> None:
        self.requests, self.read_units, self.write_units = [], 0.0, 0.0

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": len(self.requests),
            "operations": list(self.requests),
            "read_units": self.read_units,
            "write_units": self.write_units,
        }


def in_process_api() -> Any:
    from chalice.test import Client

    from app import app
    from chalicelib.storage.files import ensure_bucket
    from chalicelib.storage.models import create_tables

    create_tables()
    ensure_bucket()
    return Client(app)


def call(api: Any, method: str, path: str, body: dict | None = None) -> dict:
    response = api.http.request(method, path, headers=AUTH, body=json.dumps(body or {}).encode())
    if response.status_code != 200:
        raise RuntimeError(f"{method} {path}: {response.status_code} {response.body[:200]!r}")
    return json.loads(response.body) if response.headers.get("Content-Type", "").startswith("application/json") else {}


def _message_record(key: str, thread_id: str, message_id: str, text: str = "m") -> Any:
    """A stored user message as the API writes it, for seeding large threads quickly."""
    from chalicelib.storage.models import MessageRecord

    return MessageRecord(
        key,
        message_id,
        thread_id=thread_id,
        created_at=int(time.time()),
        role="user",
        content=[{"type": "text", "text": {"value": text, "annotations": []}}],
        attachments=[],
        metadata={},
        status="completed",
    )


def section_dynamodb() -> dict[str, Any]:
    """DynamoDB requests and capacity units per API operation, in-process on moto (chalice.test)."""
    from moto import mock_aws

    from chalicelib.runs.engine import advance_run
    from chalicelib.storage.records import RunRef

    meter = DynamoDBMeter()
    meter.install()
    figures: dict[str, Any] = {}
    with mock_aws():
        api = in_process_api()
        tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}
        assistant = call(api, "POST", "/v1/assistants", {"model": "offline", "tools": [tool]})
        thread = call(api, "POST", "/v1/threads", {"messages": [{"role": "user", "content": "hello"}] * 20})
        tid = thread["id"]

        def measure(name: str, action: Callable[[], Any]) -> Any:
            meter.reset()
            result = action()
            figures[name] = meter.snapshot()
            return result

        measure("retrieve thread", lambda: call(api, "GET", f"/v1/threads/{tid}"))
        measure(
            "create message",
            lambda: call(api, "POST", f"/v1/threads/{tid}/messages", {"role": "user", "content": "hi"}),
        )
        measure("list 20 messages", lambda: call(api, "GET", f"/v1/threads/{tid}/messages?limit=20"))
        run = measure(
            "create run",
            lambda: call(
                api, "POST", f"/v1/threads/{tid}/runs", {"assistant_id": assistant["id"], "tool_choice": "required"}
            ),
        )
        ref = RunRef.parse(f"proj_{__import__('hashlib').sha256(b'sk-bench').hexdigest()[:32]}#{tid}#{run['id']}")

        def complete_run() -> None:
            advance_run(ref)  # -> requires_action
            current = call(api, "GET", f"/v1/threads/{tid}/runs/{run['id']}")
            call_id = current["required_action"]["submit_tool_outputs"]["tool_calls"][0]["id"]
            call(
                api,
                "POST",
                f"/v1/threads/{tid}/runs/{run['id']}/submit_tool_outputs",
                {"tool_outputs": [{"tool_call_id": call_id, "output": "ok"}]},
            )
            advance_run(ref)  # -> completed

        measure("complete a run with one tool call (after create)", complete_run)
    return figures


# --- framework overhead against the bare DynamoDB calls ----------------------------------------------


def section_floor(repetitions: int = 300) -> dict[str, Any]:
    """Handler latency in-process (chalice.test.Client) divided by the bare DynamoDB call(s) it needs
    on the same moto: the framework's overhead as a ratio."""
    from moto import mock_aws

    from chalicelib.domain.auth import project_for
    from chalicelib.storage import threads as store
    from chalicelib.storage.records import ListQuery

    figures: dict[str, Any] = {}
    with mock_aws():
        api = in_process_api()
        thread = call(api, "POST", "/v1/threads", {"messages": [{"role": "user", "content": "hello"}] * 20})
        tid = thread["id"]
        project = project_for(AUTH["Authorization"])
        cases = {
            "retrieve thread": (
                lambda: call(api, "GET", f"/v1/threads/{tid}"),
                lambda: store.get_thread(project, tid),
            ),
            "create message": (
                lambda: call(api, "POST", f"/v1/threads/{tid}/messages", {"role": "user", "content": "hi"}),
                lambda: store.add_message(
                    __import__("chalicelib.domain.threads", fromlist=["x"]).new_message(
                        project, tid, {"role": "user", "content": "hi"}, "", int(time.time())
                    )
                ),
            ),
            "list 20 messages": (
                lambda: call(api, "GET", f"/v1/threads/{tid}/messages?limit=20"),
                lambda: (store.get_thread(project, tid), store.list_messages(project, tid, ListQuery(limit=20))),
            ),
        }
        for name, (handler, bare) in cases.items():
            # Interleaved, so that both see the same data (moto slows as a partition grows).
            handler_samples, bare_samples = [], []
            for _ in range(repetitions):
                handler_samples += timed(handler, 1)
                bare_samples += timed(bare, 1)
            figures[name] = {
                "handler_ms": summary(handler_samples),
                "bare_dynamodb_ms": summary(bare_samples),
                "ratio_median": round(statistics.median(handler_samples) / statistics.median(bare_samples), 2),
            }
    return figures


# --- over HTTP with the SDK ---------------------------------------------------------------------------


def section_http(repetitions: int = 200) -> dict[str, Any]:
    """The same operations over HTTP against the `make dev` server, with the official SDK."""
    from tests.servers import start_local_server

    figures: dict[str, Any] = {}
    with start_local_server(auth="open") as server:
        client = server.client("sk-bench-http")
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "hello"}] * 20)
        figures["retrieve thread"] = summary(timed(lambda: client.beta.threads.retrieve(thread.id), repetitions))
        figures["create message"] = summary(
            timed(lambda: client.beta.threads.messages.create(thread.id, role="user", content="hi"), repetitions)
        )
        figures["list 20 messages"] = summary(
            timed(lambda: client.beta.threads.messages.list(thread.id, limit=20), repetitions)
        )
    return figures


# --- list cost against thread size ------------------------------------------------------------------


def section_list(repetitions: int = 50) -> dict[str, Any]:
    """List 20 messages (first page and a deep `after` cursor) in a thread of 50 messages and in one of
    100,000 (both pages hold 20 messages), in-process on moto as the embedded store runs it; the ratio
    should stay near 1. `items_read` is what DynamoDB read for the page (the Query's ScannedCount,
    from a botocore hook): the figure that carries over to AWS."""
    from moto import mock_aws

    from chalicelib.domain.auth import project_for
    from chalicelib.domain.ids import new_id
    from chalicelib.storage.models import MessageRecord, thread_key

    figures: dict[str, Any] = {}
    with mock_aws():
        api = in_process_api()
        project = project_for(AUTH["Authorization"])
        threads = {}
        for size in (50, 100_000):
            thread = call(api, "POST", "/v1/threads")
            ids = [new_id("message") for _ in range(size)]
            with MessageRecord.batch_write() as batch:
                for message_id in ids:
                    batch.save(_message_record(thread_key(project, thread["id"]), thread["id"], message_id))
            threads[size] = (thread["id"], ids[len(ids) // 2])
        scanned: list[int] = []

        def count_scanned(**kwargs: Any) -> None:
            parsed = kwargs.get("parsed") or {}
            if "ScannedCount" in parsed:
                scanned.append(parsed["ScannedCount"])

        client = MessageRecord._get_connection().connection.client
        client.meta.events.register("after-call.dynamodb.Query", count_scanned)
        for size, (tid, middle) in threads.items():
            for page, query in (("first page", ""), ("deep cursor", f"&after={middle}")):
                scanned.clear()
                call(api, "GET", f"/v1/threads/{tid}/messages?limit=20{query}")
                figures[f"{size} messages, {page}, items_read"] = scanned[-1]
        for size, (tid, middle) in threads.items():
            figures[f"{size} messages, first page"] = summary(
                timed(lambda tid=tid: call(api, "GET", f"/v1/threads/{tid}/messages?limit=20"), repetitions)
            )
            figures[f"{size} messages, deep cursor"] = summary(
                timed(
                    lambda tid=tid, middle=middle: call(
                        api, "GET", f"/v1/threads/{tid}/messages?limit=20&after={middle}"
                    ),
                    repetitions,
                )
            )
        for page in ("first page", "deep cursor"):
            figures[f"ratio 100000/50, {page}"] = round(
                figures[f"100000 messages, {page}"]["median"] / figures[f"50 messages, {page}"]["median"], 2
            )
    return figures


# --- cold start ---------------------------------------------------------------------------------------


def _importtime(statement: str, cwd: Path = ROOT) -> list[tuple[int, float, str]]:
    """(depth, cumulative ms, module) for each import `python -X importtime` reports."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement], cwd=cwd, capture_output=True, text=True, check=True
    )
    rows = []
    for line in result.stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        _, cumulative, name = line.removeprefix("import time:").split("|")
        if not cumulative.strip().isdigit():
            continue  # the header line
        depth = (len(name) - len(name.lstrip()) - 1) // 2
        rows.append((depth, int(cumulative) / 1000, name.strip()))
    return rows


def _import_ms(statement: str, cwd: Path = ROOT) -> float:
    return sum(ms for depth, ms, _ in _importtime(statement, cwd) if depth == 0)


# The tree `import app` is compared with: the commit before issue #12 reshaped the run engine.
BASELINE = os.environ.get("SPINDLE_BENCH_BASELINE", "47a0d82")


def _baseline_tree(scratch: Path) -> Path | None:
    """The baseline commit's app.py and chalicelib/ (git archive), or None outside a git checkout."""
    archive = subprocess.run(
        ["git", "archive", BASELINE, "app.py", "chalicelib"], cwd=ROOT, capture_output=True, check=False
    )
    if archive.returncode != 0:
        return None
    subprocess.run(["tar", "-x", "-C", str(scratch)], input=archive.stdout, check=True)
    return scratch


def section_cold_start(repetitions: int = 15) -> dict[str, Any]:
    """`python -X importtime` of app.py against the bare chalice + pynamodb + boto3 imports and against
    app.py at the baseline commit (SPINDLE_BENCH_BASELINE), interleaved; and which top-level modules
    dominate app.py's import."""
    with tempfile.TemporaryDirectory(prefix="spindle-baseline-") as scratch:
        baseline = _baseline_tree(Path(scratch))
        app_ms, bare_ms, baseline_ms = [], [], []
        for _ in range(repetitions):
            app_ms.append(_import_ms("import app"))
            bare_ms.append(_import_ms("import chalice, pynamodb.models, boto3"))
            if baseline is not None:
                # the baseline's own chalicelib (first on the path), not the checkout's editable install
                baseline_ms.append(_import_ms("import sys; sys.path.insert(0, '.'); import app", baseline))
    # summary() takes seconds
    heaviest = sorted(((ms, name) for depth, ms, name in _importtime("import app") if depth == 1), reverse=True)
    result: dict[str, Any] = {
        "app_import_ms": summary([ms / 1000 for ms in app_ms]),
        "bare_import_ms": summary([ms / 1000 for ms in bare_ms]),
        "ratio_median": round(statistics.median(app_ms) / statistics.median(bare_ms), 2),
        "dominant_modules_ms": heaviest[:8],
    }
    if baseline_ms:
        result["baseline"] = BASELINE
        result["baseline_app_import_ms"] = summary([ms / 1000 for ms in baseline_ms])
        result["ratio_to_baseline_median"] = round(statistics.median(app_ms) / statistics.median(baseline_ms), 2)
    return result


# --- a run end to end -----------------------------------------------------------------------------------


def section_run(repetitions: int = 50) -> dict[str, Any]:
    """Time from runs.create to completed (create_and_poll) with zero-latency stand-in models, locally,
    for each provider, interleaved in one server: what Spindle adds on top of the model call, and what
    each provider's client adds (the OpenAI-compatible stand-in through the `openai` SDK, the Bedrock
    stand-in through boto3's ConverseStream, and the built-in offline model)."""
    from tests.servers import start_local_server
    from tests.standin_bedrock import StandInBedrock
    from tests.standin_bedrock import text as bedrock_text
    from tests.standin_model import StandInModel, text

    with (
        StandInModel() as standin,
        StandInBedrock() as bedrock,
        start_local_server(
            auth="open",
            SPINDLE_LLM_BASE_URL=standin.base_url,
            SPINDLE_LLM_API_KEY="bench",
            SPINDLE_MODEL_PROVIDERS="anthropic.=bedrock,offline=offline",
            SPINDLE_BEDROCK_ENDPOINT=bedrock.endpoint_url,
        ) as server,
    ):
        client = server.client("sk-bench-run")
        models = {
            "openai_compatible": standin.script([text("done")]),
            "bedrock": bedrock.script([bedrock_text("done")]),
            "offline": "offline",
        }
        assistants = {name: client.beta.assistants.create(model=model).id for name, model in models.items()}
        samples: dict[str, list[float]] = {name: [] for name in models}
        for _ in range(repetitions):
            for name, assistant_id in assistants.items():
                thread = client.beta.threads.create(messages=[{"role": "user", "content": "go"}])
                start = time.perf_counter()
                run = client.beta.threads.runs.create_and_poll(
                    thread_id=thread.id, assistant_id=assistant_id, poll_interval_ms=10
                )
                samples[name].append(time.perf_counter() - start)
                assert run.status == "completed", (name, run.last_error)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    return {
        "create_to_completed_ms": summary(samples["openai_compatible"]),
        "by_provider_ms": {name: summary(values) for name, values in samples.items()},
        "ratio_to_offline_median": {name: round(medians[name] / medians["offline"], 2) for name in medians},
        "note": "the stand-ins answer with no latency, so this is Spindle's overhead around the model call",
    }


# --- load -----------------------------------------------------------------------------------------------


def section_load(clients: int = 8, requests_each: int = 100) -> dict[str, Any]:
    """N concurrent SDK clients × M requests of a mixed workload (create message 40 %, list 30 %, get
    thread 20 %, create thread 10 %) against the dev server; then every created message must list."""
    from tests.servers import start_local_server

    with start_local_server(auth="open") as server:
        return _mixed_load(server, clients, requests_each)


# --- the read path a chat UI hits most, against the previous main ------------------------------------

# The main this round started from (issue #25): the read path's figures are measured against it.
PREVIOUS_MAIN = os.environ.get("SPINDLE_BENCH_PREVIOUS", "8664c07")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children that are still running (the supervisor and its
    API child), from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for candidate in Path("/proc").glob("[0-9]*"):
        try:
            fields = (candidate / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(candidate.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def section_read_path(repetitions: int = 300, rest_seconds: float = 10.0) -> dict[str, Any]:
    """Retrieve one message and list 20 (newest first, the chat UI's turn), with the official SDK over
    HTTP against two `make dev` servers at once: this tree's and the previous main's
    (SPINDLE_BENCH_PREVIOUS, extracted with git archive), requests interleaved one by one so that both
    see the same machine. Then the servers' CPU per request (supervisor and API child, from /proc) and
    at rest (no requests for `rest_seconds`). Ratios are this tree over the previous main (below 1:
    faster or leaner)."""
    from tests.servers import ROOT as TESTS_ROOT
    from tests.servers import _serving, free_port

    def server(tree: Path, name: str) -> Any:
        port, moto_port = free_port(), free_port()
        env = {**os.environ, "PORT": str(port), "SPINDLE_MOTO_PORT": str(moto_port), "SPINDLE_AUTH": "open"}
        env |= {"SPINDLE_DATA_DIR": "memory", "SPINDLE_RELOAD": "1"}  # as `make dev` runs: reloading on
        env.pop("SPINDLE_DYNAMODB_ENDPOINT", None)
        return _serving([sys.executable, "-m", "chalicelib.local"], tree, env, port, moto_port, name)

    with tempfile.TemporaryDirectory(prefix="spindle-previous-") as scratch:
        archive = subprocess.run(["git", "archive", PREVIOUS_MAIN], cwd=ROOT, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", scratch], input=archive.stdout, check=True)
        with server(TESTS_ROOT, "read-now") as now, server(Path(scratch), "read-previous") as previous:
            sides = {"now": now, "previous": previous}
            targets = {}
            for side, running in sides.items():
                client = running.client("sk-bench-read")
                thread = client.beta.threads.create(
                    messages=[{"role": "user", "content": f"message {n} of a chat turn"} for n in range(30)]
                )
                message = client.beta.threads.messages.list(thread.id, limit=1).data[0]
                targets[side] = (client, thread.id, message.id)
            actions = {
                "retrieve message": lambda c, t, m: c.beta.threads.messages.retrieve(m, thread_id=t),
                "list 20 messages": lambda c, t, m: c.beta.threads.messages.list(t, limit=20),
            }
            samples: dict[str, dict[str, list[float]]] = {a: {"now": [], "previous": []} for a in actions}
            cpu_before = {side: _cpu_seconds(running.process.pid) for side, running in sides.items()}
            for repetition in range(repetitions):
                for name, action in actions.items():
                    # each side goes first every other time: neither gains from the other's warm caches
                    for side in ("now", "previous") if repetition % 2 == 0 else ("previous", "now"):
                        client, thread_id, message_id = targets[side]
                        started = time.perf_counter()
                        action(client, thread_id, message_id)
                        samples[name][side].append(time.perf_counter() - started)
            requests = repetitions * len(actions)
            cpu_per_request = {
                side: (_cpu_seconds(running.process.pid) - cpu_before[side]) / requests * 1000
                for side, running in sides.items()
            }
            time.sleep(1.0)  # let the last requests' work settle
            at_rest_before = {side: _cpu_seconds(running.process.pid) for side, running in sides.items()}
            time.sleep(rest_seconds)
            at_rest = {
                side: (_cpu_seconds(running.process.pid) - at_rest_before[side]) / rest_seconds * 100
                for side, running in sides.items()
            }
    figures: dict[str, Any] = {"previous_main": PREVIOUS_MAIN}
    for name, by_side in samples.items():
        figures[name] = {side: summary(values) for side, values in by_side.items()}
        figures[name]["ratio_median"] = round(
            statistics.median(by_side["now"]) / statistics.median(by_side["previous"]), 2
        )
    figures["cpu_ms_per_request"] = {side: round(value, 3) for side, value in cpu_per_request.items()}
    figures["cpu_ms_per_request"]["ratio"] = round(cpu_per_request["now"] / cpu_per_request["previous"], 2)
    figures["cpu_percent_of_a_core_at_rest"] = {side: round(value, 2) for side, value in at_rest.items()}
    return figures


# --- the embedded store against its data size -------------------------------------------------------


def _rss_mib(pid: int) -> float:
    """Resident memory of a process and its children (the `make dev` supervisor holds the store)."""
    total = 0.0
    for candidate in Path("/proc").glob("[0-9]*"):
        try:
            stat = (candidate / "stat").read_text().rsplit(")", 1)[1].split()
            if int(candidate.name) != pid and int(stat[1]) != pid:
                continue
            for line in (candidate / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except (OSError, ValueError, IndexError):
            continue
    return round(total, 1)


def _seed_messages_over_http(endpoint: str, project: str, thread_id: str, count: int) -> float:
    """Write `count` messages of one thread straight into the embedded DynamoDB (BatchWriteItem, 25 a
    request, over its HTTP endpoint): the API would take an hour to type them. Returns seconds."""
    import boto3

    from chalicelib.domain.ids import new_id
    from chalicelib.storage.models import MessageRecord, thread_key

    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
    table = MessageRecord.Meta.table_name
    started = time.perf_counter()
    batch: list[dict[str, Any]] = []
    for n in range(count):
        record = _message_record(thread_key(project, thread_id), thread_id, new_id("message"), f"seeded message {n}")
        batch.append({"PutRequest": {"Item": record.serialize()}})
        if len(batch) == 25 or n == count - 1:
            pending = {table: batch}
            while pending:
                pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            batch = []
    return time.perf_counter() - started


def _mixed_load(server: Any, clients: int, requests_each: int) -> dict[str, Any]:
    """N SDK clients × M requests (create message 40 %, list 20 30 %, get thread 20 %, create thread
    10 %) at once; every created message must list afterwards."""
    latencies: list[float] = []
    errors: list[str] = []
    lost: list[str] = []
    lock = threading.Lock()

    def worker(number: int) -> None:
        client = server.client(f"sk-load-{number}-{uuid.uuid4().hex}")
        thread = client.beta.threads.create()
        mine: list[str] = []
        for step in range(requests_each):
            kind = step % 10
            start = time.perf_counter()
            try:
                if kind < 4:
                    mine.append(client.beta.threads.messages.create(thread.id, role="user", content=str(step)).id)
                elif kind < 7:
                    client.beta.threads.messages.list(thread.id, limit=20)
                elif kind < 9:
                    client.beta.threads.retrieve(thread.id)
                else:
                    client.beta.threads.create()
            except Exception as error:  # counted, never hidden
                with lock:
                    errors.append(repr(error))
            with lock:
                latencies.append(time.perf_counter() - start)
        listed = {m.id for m in client.beta.threads.messages.list(thread.id, order="asc", limit=100)}
        with lock:
            lost.extend(m for m in mine if m not in listed)

    started = time.perf_counter()
    workers = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - started
    return {
        "clients": clients,
        "requests": len(latencies),
        "throughput_rps": round(len(latencies) / elapsed, 1),
        "latency_ms": summary(latencies),
        "errors": len(errors),
        "error_samples": errors[:5],
        "lost_messages": len(lost),
    }


def section_store(stored: int = 100_000, repetitions: int = 300) -> dict[str, Any]:
    """The `make dev` server (embedded store with its journal on disk) empty, then holding 100,000
    messages in one thread: a message create and a list of 20 in each (SDK over HTTP, medians), the
    ratio full/empty (target at most 1.5), the dev server's RSS (supervisor and API child) after
    storing them and again after 10 s at rest, 8-client throughput on the empty and the full store,
    and how long a restart takes to load the journal back."""
    import tempfile

    from chalicelib.domain.auth import project_for
    from tests.servers import start_local_server

    figures: dict[str, Any] = {}
    token = "sk-bench-store"
    with tempfile.TemporaryDirectory(prefix="spindle-bench-") as data_dir:
        with start_local_server(auth="open", data_dir=Path(data_dir)) as server:
            client = server.client(token)
            small = client.beta.threads.create(messages=[{"role": "user", "content": "hello"}] * 20)
            big = client.beta.threads.create()

            def measure(label: str, thread_id: str) -> None:
                figures[f"create message, {label}"] = summary(
                    timed(
                        lambda: client.beta.threads.messages.create(thread_id, role="user", content="hi"), repetitions
                    )
                )
                figures[f"list 20, {label}"] = summary(
                    timed(lambda: client.beta.threads.messages.list(thread_id, limit=20), repetitions)
                )

            measure("empty store", small.id)
            figures["rss_mib, empty store"] = _rss_mib(server.process.pid)
            figures["load, empty store"] = _mixed_load(server, clients=8, requests_each=100)
            seconds = _seed_messages_over_http(server.dynamodb_endpoint, project_for(f"Bearer {token}"), big.id, stored)
            figures["seeding"] = {"messages": stored, "seconds": round(seconds, 1)}
            figures[f"rss_mib, {stored} messages stored"] = _rss_mib(server.process.pid)
            time.sleep(10)
            figures[f"rss_mib, {stored} messages stored, 10 s later at rest"] = _rss_mib(server.process.pid)
            measure(f"{stored}-message thread", big.id)
            measure(f"20-message thread beside {stored}", small.id)
            figures["load, full store"] = _mixed_load(server, clients=8, requests_each=100)
            figures["rss_mib, after the load on the full store"] = _rss_mib(server.process.pid)
        started = time.perf_counter()
        with start_local_server(auth="open", data_dir=Path(data_dir)) as server:
            figures["restart: journal loaded and serving, seconds"] = round(time.perf_counter() - started, 1)
            assert len(server.client(token).beta.threads.messages.list(big.id, limit=20).data) == 20
    for operation in ("create message", "list 20"):
        empty = figures[f"{operation}, empty store"]["median"]
        figures[f"ratio {operation}, {stored}-message thread / empty"] = round(
            figures[f"{operation}, {stored}-message thread"]["median"] / empty, 2
        )
        figures[f"ratio {operation}, small thread beside {stored} / empty"] = round(
            figures[f"{operation}, 20-message thread beside {stored}"]["median"] / empty, 2
        )
    figures["ratio throughput full / empty"] = round(
        figures["load, full store"]["throughput_rps"] / figures["load, empty store"]["throughput_rps"], 2
    )
    return figures


def section_purge(size: int = 100_000) -> dict[str, Any]:
    """Deleting a thread of 100,000 messages, in-process on moto: the DELETE (one write) and the
    background purge that removes the messages in resumable batches."""
    from moto import mock_aws

    from chalicelib.domain.auth import project_for
    from chalicelib.domain.ids import new_id
    from chalicelib.domain.purge import purge_deleted_threads
    from chalicelib.storage.models import MessageRecord, thread_key

    with mock_aws():
        api = in_process_api()
        thread = call(api, "POST", "/v1/threads")
        key = thread_key(project_for(AUTH["Authorization"]), thread["id"])
        with MessageRecord.batch_write() as batch:
            for _ in range(size):
                batch.save(_message_record(key, thread["id"], new_id("message")))
        start = time.perf_counter()
        call(api, "DELETE", f"/v1/threads/{thread['id']}")
        delete_ms = (time.perf_counter() - start) * 1000
        start = time.perf_counter()
        finished = purge_deleted_threads(seconds=3600)
        purge_seconds = time.perf_counter() - start
        assert finished == 1 and MessageRecord.count(key) == 0
    return {
        "messages": size,
        "delete_request_ms": round(delete_ms, 1),
        "purge_seconds": round(purge_seconds, 1),
        "messages_purged_per_second": round(size / purge_seconds),
    }


# --- concurrent modifies of one object ------------------------------------------------------------


def section_modify(rounds: int = 25) -> dict[str, Any]:
    """Optimistic locking under contention, over HTTP with the SDK: modify-assistant latency with one
    writer (200 calls); eight writers released together on eight assistants (the same load without
    contention); and eight on one assistant, each changing its own field (`rounds` rounds each). The
    ratio of the last two is the cost of lost races; after each round every acknowledged change must
    be stored."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.servers import start_local_server

    fields = ["name", "description", "instructions", "metadata", "temperature", "top_p", "tools", "response_format"]
    values: dict[str, Any] = {
        "name": "n",
        "description": "d",
        "instructions": "i",
        "metadata": {"k": "v"},
        "temperature": 0.5,
        "top_p": 0.5,
        "tools": [{"type": "code_interpreter"}],
        "response_format": {"type": "json_object"},
    }
    with start_local_server(auth="open") as server:
        client = server.client("sk-bench-modify", timeout=60)
        alone = client.beta.assistants.create(model="m")
        one_writer = timed(lambda: client.beta.assistants.update(alone.id, name=uuid.uuid4().hex), 200)
        contended: list[float] = []
        apart: list[float] = []
        lost = 0
        with ThreadPoolExecutor(len(fields)) as pool:
            for _ in range(rounds):
                assistant = client.beta.assistants.create(model="m")
                others = {field: client.beta.assistants.create(model="m").id for field in fields}
                barrier = threading.Barrier(len(fields))

                def change(
                    field: str, assistant_id: str | None = None, barrier: Any = barrier, others: Any = others
                ) -> float:
                    barrier.wait()
                    start = time.perf_counter()
                    client.beta.assistants.update(assistant_id or others[field], **{field: values[field]})
                    return time.perf_counter() - start

                apart += list(pool.map(change, fields))  # the same load, no two writers on one object
                contended += list(pool.map(lambda field, target=assistant.id: change(field, target), fields))
                stored = client.beta.assistants.retrieve(assistant.id).model_dump(mode="json")
                lost += sum(1 for field in fields if field != "tools" and stored[field] != values[field])
                lost += 0 if stored["tools"] == values["tools"] else 1
    alone_figures, apart_figures, contended_figures = summary(one_writer), summary(apart), summary(contended)
    return {
        "one writer": alone_figures,
        "eight writers on eight assistants": apart_figures,
        "eight writers on one assistant": contended_figures,
        "median ratio, one assistant vs eight": round(contended_figures["median"] / apart_figures["median"], 2),
        "acknowledged changes lost": lost,
        "acknowledged changes": rounds * len(fields),
    }


# --- how each provider fault ends a run ------------------------------------------------------------------


def section_faults() -> dict[str, Any]:
    """The fault matrix: one run per provider failure mode (the scripted stand-in model, on one `make
    dev` server with SPINDLE_LLM_MAX_RETRIES=2, SPINDLE_LLM_TIMEOUT_SECONDS=5 and the default lease),
    driven with the official SDK: how it ends, its last_error code or incomplete reason, the seconds
    from runs.create to a terminal status (retrieve every 50 ms; "stuck" after 120 s), and how many
    requests the model received. The rule: a run ends only `completed`, `incomplete`, `failed` with a
    `last_error`, `cancelled`, or `expired`, and the API never answers 5xx. Streamed rows end with the
    run's terminal event and then `done`. (bench/faults.py)"""
    from bench.faults import fault_matrix

    return fault_matrix()


from bench.code_interpreter import section_code_interpreter  # noqa: E402 - as above
from bench.stream_latency import section_stream_latency  # noqa: E402 - bench/ is importable once ROOT is on sys.path
from bench.vector_search import section_vector_search  # noqa: E402 - as above

SECTIONS = {
    "dynamodb": section_dynamodb,
    "floor": section_floor,
    "http": section_http,
    "list": section_list,
    "read_path": section_read_path,
    "cold_start": section_cold_start,
    "run": section_run,
    "stream_latency": section_stream_latency,
    "load": section_load,
    "store": section_store,
    "purge": section_purge,
    "modify": section_modify,
    "faults": section_faults,
    "vector_search": section_vector_search,
    "code_interpreter": section_code_interpreter,
}


def markdown(results: dict[str, Any]) -> str:
    lines = ["# Spindle benchmarks", "", f"Machine: {os.cpu_count()} cores; `make bench` to reproduce.", ""]
    for section, figures in results.items():
        # cleandoc: a docstring's indented lines (bullets) would otherwise render as a code block
        lines += [f"## {section}", "", inspect.cleandoc(SECTIONS[section].__doc__ or ""), ""]
        if section == "faults":
            from bench.faults import markdown_table

            lines += markdown_table(figures)  # a table: the rows are the point, not their JSON
            continue
        lines += ["```json", json.dumps(figures, indent=1), "```", ""]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    from chalicelib.local import atomic_moto

    # In-process sections measure moto as the embedded store and the storage tests run it.
    atomic_moto.install()
    chosen = argv or list(SECTIONS)
    out = ROOT / "bench" / "results.json"
    results = json.loads(out.read_text()) if out.exists() and argv else {}
    for name in chosen:
        print(f"== {name}", flush=True)
        results[name] = SECTIONS[name]()
        print(json.dumps(results[name], indent=1), flush=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    (ROOT / "bench" / "RESULTS.md").write_text(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
