"""Streaming latency: how soon, and how evenly, a streamed run's text reaches the official SDK.

A stand-in chat-completions server in this process (a thread on loopback) plays a fixed latency model:
its first token 200 ms after the request arrives, then 40 more 50 ms apart (`stream: true`, SSE), and it
records the time.monotonic() at which it wrote each token. Spindle (`python -m chalicelib.local`, what
`make dev` runs) sits between it and the `openai` SDK, whose `runs.stream(...)` event handler records the
time.monotonic() of each `on_text_delta`. Both clocks are this machine's monotonic clock, so the two
records subtract directly. Two variants run side by side on their own servers, interleaved run by run:
"live", the checkout (or the tree named by SPINDLE_BENCH_LIVE_TREE), and "buffered", main before live
streaming (commit 4758154, the parent of d32288f "Streams stream under make dev"). Used by
`python bench/run.py stream_latency`.

This module does not import bench/run.py: run.py imports it, and run.py executed as a script would be
imported a second time under its module name, half-initialised, if this one imported it back.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import openai
from openai.types.beta.threads import Text, TextDelta

from tests.servers import free_port, wait_until_ready

ROOT = Path(__file__).resolve().parent.parent
# main just before d32288f made streams stream under `make dev`: a stream answered in one piece.
BUFFERED_COMMIT = os.environ.get("SPINDLE_BENCH_BUFFERED_COMMIT", "4758154")

# The latency model (seconds): what a hosted model's stream looks like, slowed to a readable scale.
FIRST_TOKEN_SECONDS = 0.200
TOKEN_GAP_SECONDS = 0.050
TOKENS = 41  # the first token and 40 more
REPLY = "".join(f" tok{number}" for number in range(TOKENS))  # what the tokens spell
SCHEDULE_SECONDS = FIRST_TOKEN_SECONDS + (TOKENS - 1) * TOKEN_GAP_SECONDS  # 2.2 s

# The targets the issue sets for the live variant (milliseconds).
TARGET_FIRST_DELTA_MEDIAN_MS = 30.0
TARGET_GAP_MEDIAN_ABS_DEVIATION_MS = 10.0


# --- the latency model: an OpenAI-compatible server that keeps a schedule --------------------------------


@dataclass
class ModelReply:
    """One streamed reply as the stand-in wrote it: when the request arrived, when each token was due
    and when it was actually written (time.monotonic(), after the socket write returned)."""

    arrived: float
    due: list[float] = field(default_factory=list)
    written: list[float] = field(default_factory=list)


class LatencyModel:
    """`with LatencyModel() as model:` serves POST /v1/chat/completions on 127.0.0.1 and a free port."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.replies: dict[str, list[ModelReply]] = {}  # by the request's model name
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _latency_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="latency-model", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> LatencyModel:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def record(self, model: str, reply: ModelReply) -> None:
        with self._lock:
            self.replies.setdefault(model, []).append(reply)

    def replies_for(self, model: str) -> list[ModelReply]:
        with self._lock:
            return list(self.replies.get(model, []))


def _latency_handler(model_server: LatencyModel) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Each token is a small write: Nagle would hold it back until the previous one is acknowledged.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
            pass

        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            arrived = time.monotonic()  # the schedule counts from here, before the body is even parsed
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = json.loads(raw) if raw else {}
            name = str(body.get("model"))
            reply = ModelReply(arrived)
            model_server.record(name, reply)
            completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"

            def choice(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
                one = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
                return _chunk(completion_id, name, [one])

            try:
                # Headers at once, as a hosted model answers before it has a token; the body ends when the
                # connection closes (as tests/standin_model.py streams).
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                for number in range(TOKENS):
                    due = arrived + FIRST_TOKEN_SECONDS + number * TOKEN_GAP_SECONDS
                    delta = {"content": f" tok{number}"}
                    if number == 0:
                        delta["role"] = "assistant"
                    payload = choice(delta)  # built before the wait, so the write itself lands on time
                    # Sleep to each token's due time, not by fixed gaps: a late wake-up must not shift the rest.
                    delay = due - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    # wfile is unbuffered (wbufsize 0): each write is one sendall, on the wire when it returns.
                    self.wfile.write(payload)
                    reply.due.append(due)
                    reply.written.append(time.monotonic())
                self.wfile.write(choice({}, "stop"))
                if (body.get("stream_options") or {}).get("include_usage"):
                    usage = {"prompt_tokens": 11, "completion_tokens": TOKENS, "total_tokens": 11 + TOKENS}
                    self.wfile.write(_chunk(completion_id, name, [], usage=usage))
                self.wfile.write(b"data: [DONE]\n\n")
            except OSError:  # Spindle hung up mid-reply: the run shows it, nothing to answer
                pass
            self.close_connection = True

    return Handler


def _chunk(completion_id: str, model: str, choices: list[dict[str, Any]], **extra: Any) -> bytes:
    """One `chat.completion.chunk` server-sent event (with `usage` and no choices, the last one when
    `stream_options.include_usage` is asked)."""
    data = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        **extra,
    }
    return f"data: {json.dumps(data)}\n\n".encode()


# --- Spindle from a given tree ----------------------------------------------------------------------------


def _tree_at(commit: str, scratch: Path) -> Path | None:
    """`commit`'s app.py and chalicelib/ (git archive) under `scratch`, or None outside a git checkout."""
    archive = subprocess.run(["git", "archive", commit, "app.py", "chalicelib"], cwd=ROOT, capture_output=True)
    if archive.returncode != 0:
        return None
    subprocess.run(["tar", "-x", "-C", str(scratch)], input=archive.stdout, check=True)
    return scratch


@contextlib.contextmanager
def serve_tree(tree: Path, model_base_url: str) -> Iterator[str]:
    """`python -m chalicelib.local` (what `make dev` runs) from `tree`, on free ports with a fresh store,
    its model the OpenAI-compatible server at `model_base_url`; yields the API's base URL.
    tests/servers.py's start_local_server always runs the checkout: here the cwd is the tree, and `-m`
    puts the cwd first on sys.path, so the tree's own chalicelib is imported rather than the checkout's
    editable install (the supervisor then starts its API child with cwd at the same tree)."""
    port, moto_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="spindle-bench-stream-") as data_dir:
        env = {
            **os.environ,
            "PORT": str(port),
            "SPINDLE_MOTO_PORT": str(moto_port),
            "SPINDLE_AUTH": "open",
            "SPINDLE_RELOAD": "0",
            "SPINDLE_DATA_DIR": data_dir,
            "SPINDLE_LLM_BASE_URL": model_base_url,
            "SPINDLE_LLM_API_KEY": "bench",
        }
        env.pop("SPINDLE_DYNAMODB_ENDPOINT", None)  # the server starts its own embedded store
        log_path = Path(data_dir) / "server.log"
        with open(log_path, "w") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "chalicelib.local"],
                cwd=tree,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: the supervisor and its API child stop together
            )
            base_url = f"http://127.0.0.1:{port}/v1"
            try:
                try:
                    wait_until_ready(base_url, process)
                except RuntimeError as error:
                    raise RuntimeError(f"{error} (tree {tree}): {log_path.read_text()[-2000:]}") from error
                yield base_url
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
                    process.wait()


# --- one streamed run, timed from both ends --------------------------------------------------------------


class _Stopwatch(openai.AssistantEventHandler):
    """Notes when each event the measurement needs reaches the SDK's handler (time.monotonic())."""

    def __init__(self) -> None:
        super().__init__()
        self.run_created: float | None = None
        self.deltas: list[float] = []

    def on_event(self, event: Any) -> None:
        if event.event == "thread.run.created" and self.run_created is None:
            self.run_created = time.monotonic()

    def on_text_delta(self, delta: TextDelta, snapshot: Text) -> None:
        self.deltas.append(time.monotonic())


@dataclass
class StreamedRun:
    """One run as the client saw it, with the model's reply it streamed."""

    started: float
    ended: float
    watch: _Stopwatch
    reply: ModelReply
    status: str
    text: str


def stream_one_run(client: openai.OpenAI, model_server: LatencyModel) -> StreamedRun:
    """Create an assistant on a model name of its own (so the model's record of this run is unambiguous)
    and a thread, then stream a run with the SDK's event handler, timing from the request to its end."""
    name = f"latency-{uuid.uuid4().hex[:12]}"
    assistant = client.beta.assistants.create(model=name)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "go"}])
    watch = _Stopwatch()
    started = time.monotonic()  # the manager sends the request when entered
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id, event_handler=watch) as stream:
        stream.until_done()
    ended = time.monotonic()
    run = stream.current_run
    replies = model_server.replies_for(name)
    if len(replies) != 1:
        raise RuntimeError(f"the model was called {len(replies)} times for one run (status {run and run.status})")
    text = "".join(
        block.text.value for message in stream.get_final_messages() for block in message.content if block.type == "text"
    )
    return StreamedRun(started, ended, watch, replies[0], run.status if run else "unknown", text)


# --- figures --------------------------------------------------------------------------------------------


def _rank(ordered: list[float], q: float) -> float:
    """The q-quantile by nearest rank, as bench/run.py's summary() takes its p99."""
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def spread_ms(samples: list[float], *quantiles: float) -> dict[str, Any]:
    """Median and the given quantiles, in milliseconds, of samples in seconds (None when there are none)."""
    if not samples:
        return {"median": None, "n": 0}
    ordered = sorted(samples)
    figures: dict[str, Any] = {"median": round(statistics.median(ordered) * 1000, 1)}
    for q in quantiles:
        figures[f"p{round(q * 100)}"] = round(_rank(ordered, q) * 1000, 1)
    figures["n"] = len(ordered)
    return figures


def variant_figures(runs: list[StreamedRun]) -> dict[str, Any]:
    """What the issue asks of one variant, over its runs, with the targets beside the figures."""
    first_delta = [run.watch.deltas[0] - run.reply.written[0] for run in runs if run.watch.deltas and run.reply.written]
    gaps = [
        later - earlier for run in runs for earlier, later in zip(run.watch.deltas, run.watch.deltas[1:], strict=False)
    ]
    totals = [run.ended - run.started for run in runs]
    counts = [len(run.watch.deltas) for run in runs]
    first = spread_ms(first_delta, 0.9)
    first["target_median_ms"] = f"<= {TARGET_FIRST_DELTA_MEDIAN_MS:g}"
    first["meets_target"] = first["median"] is not None and first["median"] <= TARGET_FIRST_DELTA_MEDIAN_MS
    gap = spread_ms(gaps, 0.1, 0.9)
    gap["max"] = round(max(gaps) * 1000, 1) if gaps else None
    gap["model_gap_ms"] = TOKEN_GAP_SECONDS * 1000
    deviation = [abs(value - TOKEN_GAP_SECONDS) for value in gaps]
    gap["median_abs_deviation_from_model_gap_ms"] = round(statistics.median(deviation) * 1000, 1) if gaps else None
    gap["target_median_abs_deviation_ms"] = f"<= {TARGET_GAP_MEDIAN_ABS_DEVIATION_MS:g}"
    gap["meets_target"] = bool(gaps) and statistics.median(deviation) * 1000 <= TARGET_GAP_MEDIAN_ABS_DEVIATION_MS
    total = spread_ms(totals, 0.9)
    total["model_schedule_ms"] = round(SCHEDULE_SECONDS * 1000)
    total["ratio_median_to_schedule"] = round(statistics.median(totals) / SCHEDULE_SECONDS, 2)
    lateness = [written - due for run in runs for due, written in zip(run.reply.due, run.reply.written, strict=True)]
    return {
        "first_delta_after_model_first_token_ms": first,
        "inter_delta_gap_ms": gap,
        "total_ms": total,
        "deltas_received": {
            "median": statistics.median(counts),
            "min": min(counts),
            "max": max(counts),
            "expected": TOKENS,
        },
        # Where the rest of the time goes: the request until Spindle calls the model, and until the
        # client hears thread.run.created (both from the client's request start).
        "model_called_after_request_ms": spread_ms([run.reply.arrived - run.started for run in runs], 0.9),
        "run_created_event_after_request_ms": spread_ms(
            [run.watch.run_created - run.started for run in runs if run.watch.run_created is not None], 0.9
        ),
        # The stand-in's own accuracy: how late it wrote its tokens against its schedule.
        "model_write_lateness_ms": {
            "median": round(statistics.median(lateness) * 1000, 2) if lateness else None,
            "max": round(max(lateness) * 1000, 2) if lateness else None,
        },
        # After the model's last token: finishing the step and the run, until the client's stream ends.
        "stream_end_after_model_last_token_ms": spread_ms(
            [run.ended - run.reply.written[-1] for run in runs if run.reply.written], 0.9
        ),
        "statuses": sorted({run.status for run in runs}),
        "runs_whose_message_is_the_whole_reply": sum(1 for run in runs if run.text == REPLY),
    }


def section_stream_latency(repetitions: int = 12) -> dict[str, Any]:
    """Streaming latency with the official SDK (`runs.stream` and an AssistantEventHandler's
    on_text_delta) through the `make dev` server, against an OpenAI-compatible stand-in on loopback that
    streams its first token 200 ms after the request and 40 more 50 ms apart (2,200 ms in all). Per
    variant: the first `thread.message.delta` at the client after the model wrote its first token
    (median, p90; target <= 30 ms median), the gaps between deltas as received against the model's
    50 ms (median, p10, p90, and their median absolute deviation from 50 ms, target <= 10 ms), request
    to end of stream against the 2,200 ms schedule (ratio), and the deltas received (41 expected).
    Variants, on their own servers side by side, interleaved run by run after one warm-up run each:
    "live" (the checkout, or SPINDLE_BENCH_LIVE_TREE) and "buffered" (4758154, main before d32288f
    made streams stream). Both clocks are this machine's time.monotonic() (bench/stream_latency.py)."""
    live_tree = Path(os.environ.get("SPINDLE_BENCH_LIVE_TREE") or ROOT)
    with contextlib.ExitStack() as stack, LatencyModel() as model_server:
        trees = {"live": live_tree}
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="spindle-bench-buffered-")))
        buffered = _tree_at(BUFFERED_COMMIT, scratch)
        if buffered is not None:
            trees["buffered"] = buffered
        clients = {
            variant: openai.OpenAI(
                base_url=stack.enter_context(serve_tree(tree, model_server.base_url)),
                api_key=f"sk-bench-stream-{variant}",
                max_retries=0,
                timeout=60,
            )
            for variant, tree in trees.items()
        }
        runs: dict[str, list[StreamedRun]] = {variant: [] for variant in clients}
        for client in clients.values():
            stream_one_run(client, model_server)  # warm-up: the server's first run imports the model SDK
        for round_number in range(repetitions):
            # Alternate which variant goes first, so neither always follows the other's teardown.
            order = list(clients) if round_number % 2 == 0 else list(reversed(clients))
            for variant in order:
                runs[variant].append(stream_one_run(clients[variant], model_server))
    figures: dict[str, Any] = {
        "model": {
            "first_token_ms": round(FIRST_TOKEN_SECONDS * 1000),
            "tokens": TOKENS,
            "gap_ms": round(TOKEN_GAP_SECONDS * 1000),
            "schedule_ms": round(SCHEDULE_SECONDS * 1000),
        },
        "runs_per_variant": repetitions,
    }
    for variant, samples in runs.items():
        figures[variant] = {
            "tree": "checkout" if trees[variant] == ROOT else str(trees[variant]),
            **variant_figures(samples),
        }
    if "buffered" in figures:
        figures["buffered"]["tree"] = f"git archive {BUFFERED_COMMIT}"
        live_first = figures["live"]["first_delta_after_model_first_token_ms"]["median"]
        buffered_first = figures["buffered"]["first_delta_after_model_first_token_ms"]["median"]
        if live_first is not None and buffered_first:
            figures["ratio_first_delta_median_live_to_buffered"] = round(live_first / buffered_first, 4)
    return figures
