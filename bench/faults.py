"""The fault matrix: one run per provider failure mode against one `make dev` server whose model is the
scripted stand-in (tests/standin_model.py), with the settings of the tests' `model_server` fixture
(SPINDLE_LLM_MAX_RETRIES=2, SPINDLE_LLM_TIMEOUT_SECONDS=5) and the default run lease.

For every mode it records how the run ends (status, last_error code or incomplete_details reason),
the seconds from runs.create to a terminal status (retrieve polled every 50 ms, "stuck" after 120 s),
and how many requests the model received; then checks the rule that a run ends only as `completed`,
`incomplete`, `failed` with a `last_error`, `cancelled` or `expired`, and that the API never answers
5xx. Streamed modes (`stream: true`) also check that the stream ends with the run's terminal event and
then `done`. Used by `python bench/run.py faults`.
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import openai
from openai.types.beta.threads.run_submit_tool_outputs_params import ToolOutput

from tests.servers import LocalServer, children_of, start_local_server, wait_until_ready
from tests.standin_model import (
    MALFORMED_CHUNKS,
    StandInModel,
    Step,
    broken_stream,
    chunk,
    length,
    malformed,
    rate_limited,
    raw_stream,
    server_error,
    slow,
    text,
    tool_call,
    tool_calls,
)

TERMINAL = ("completed", "incomplete", "failed", "cancelled", "expired")
POLL_SECONDS = 0.05
GIVE_UP_SECONDS = 120.0
MAX_RETRIES, TIMEOUT_SECONDS = "2", "5"  # the tests' model_server fixture; the lease stays at its default
SERVER_SETTINGS = {"SPINDLE_LLM_MAX_RETRIES": MAX_RETRIES, "SPINDLE_LLM_TIMEOUT_SECONDS": TIMEOUT_SECONDS}
LOOKUP = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}


# --- steps the stand-in's Step type can express beyond its helpers ------------------------------------


def _error_body(message: str, error_type: str, code: str | None) -> bytes:
    return json.dumps({"error": {"message": message, "type": error_type, "param": None, "code": code}}).encode()


def http_status(status: int, body: bytes, *headers: tuple[str, str]) -> Step:
    """The provider answers `status` with `body` (no Retry-After unless given)."""
    return Step("status", status=status, body=body, headers=headers)


def http_error(status: int, error_type: str, code: str | None, message: str) -> Step:
    return http_status(status, _error_body(message, error_type, code), ("retry-after-ms", "1"))


def ok_body(body: bytes) -> Step:
    """A 200 whose body is exactly `body` (served as application/json, not as an event stream)."""
    return Step("malformed", body=body)


# The malformed chunks the fault tests use (tests/standin_model.py), each a mode here.
MALFORMED_MODES = {f"chunk: {name}": chunks for name, chunks in MALFORMED_CHUNKS.items()}


# --- the modes ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mode:
    name: str
    steps: tuple[Step, ...]
    expected: str  # "status" or "status/code-or-reason"
    requests: int | None = None  # model requests expected (retries included); None: not checked
    streamed: bool = False
    instructions: str | None = "Answer briefly."
    messages: tuple[str, ...] = ("hello",)
    run_options: dict[str, Any] = field(default_factory=dict)
    at_requires_action: str = "submit"  # submit (output "ok" for every call) | cancel
    during_model_call: str | None = None  # cancel | kill_worker, once the model has the first request


def modes() -> list[Mode]:
    cut_call = replace(tool_call("lookup", '{"q": "Ro'), finish_reason="length")
    long_instructions = "Be thorough. " * 120  # ~1,560 characters: over 256 tokens by Spindle's estimate
    gateway = http_status(502, b"<html><body>502 Bad Gateway</body></html>", ("retry-after-ms", "1"))
    no_finish = raw_stream(chunk({"role": "assistant", "content": "half"}), chunk({"content": " a reply"}))
    error_event = raw_stream(
        chunk({"role": "assistant", "content": "par"}),
        {"error": {"message": "The server is overloaded.", "type": "server_error", "code": None}},
    )
    filtered = replace(text("Something I may"), finish_reason="content_filter")
    listing: list[Mode] = [
        Mode("normal text", (text("Hello."),), "completed", 1),
        Mode("tool call, outputs submitted", (tool_call("lookup", "{}"), text("Found it.")), "completed", 2),
        Mode(
            "parallel tool calls, ids repeated/missing, outputs submitted",
            (tool_calls(("call_d", "lookup", "{}"), ("call_d", "lookup", "{}"), (None, "lookup", "{}")), text("ok")),
            "completed",
            2,
        ),
        Mode("finish_reason length (text)", (length("The history of Rome"),), "incomplete/max_completion_tokens", 1),
        Mode("finish_reason length during tool calls", (cut_call,), "incomplete/max_completion_tokens", 1),
        Mode("finish_reason content_filter", (filtered,), "completed", 1),
        Mode("HTTP 429 once, then a reply", (rate_limited(), text("Made it.")), "completed", 2),
        Mode("HTTP 429 always", (rate_limited(),), "failed/rate_limit_exceeded", 3),
        Mode("HTTP 500 once, then a reply", (server_error(), text("Made it.")), "completed", 2),
        Mode("HTTP 500 always", (server_error(),), "failed/server_error", 3),
        Mode("HTTP 502 with an HTML body, always", (gateway,), "failed/server_error", 3),
        Mode(
            "HTTP 400 from the provider",
            (http_error(400, "invalid_request_error", "context_length_exceeded", "Too many tokens."),),
            "failed/server_error",
            1,
        ),
        Mode(
            "HTTP 401 from the provider",
            (http_error(401, "invalid_request_error", "invalid_api_key", "Incorrect API key provided."),),
            "failed/server_error",
            1,
        ),
        Mode(
            "HTTP 404 model not found",
            (http_error(404, "invalid_request_error", "model_not_found", "The model does not exist."),),
            "failed/server_error",
            1,
        ),
        Mode("200 with an invalid JSON body", (malformed("invalid_json"),), "failed/server_error", 1),
        Mode("200 completion without choices", (malformed("no_choices"),), "failed/server_error", 1),
        Mode("200 with an empty body", (ok_body(b""),), "failed/server_error", 1),
        Mode("stream breaks mid-way", (broken_stream("This reply never finishes"),), "failed/server_error", 1),
        Mode("stream ends without finish_reason", (no_finish,), "failed/server_error", 1),
        Mode("error event mid-stream", (error_event,), "failed/server_error", 1),
        *(
            Mode(name, (raw_stream(*chunks), text("recovered")), "failed/server_error", 1)
            for name, chunks in MALFORMED_MODES.items()
        ),
        Mode("model slow (2 s) but within the timeout", (slow(2, text("Late but fine.")),), "completed", 1),
        Mode("model slower than the timeout (6 s > 5 s)", (slow(6, text("Too late.")),), "failed/server_error", 3),
        Mode("reply too large to store (450 KB)", (text("x" * 450_000),), "failed/server_error", 1),
        Mode(
            "empty thread, no instructions",
            (text("unused"),),
            "failed/invalid_prompt",
            0,
            instructions=None,
            messages=(),
        ),
        Mode(
            "instructions over max_prompt_tokens=256",
            (text("unused"),),
            "incomplete/max_prompt_tokens",
            0,
            instructions=long_instructions,
            run_options={"max_prompt_tokens": 256},
        ),
        Mode(
            "model reports prompt_tokens 1000 > max_prompt_tokens 256",
            (text("Long prompt.", prompt_tokens=1000),),
            "incomplete/max_prompt_tokens",
            1,
            run_options={"max_prompt_tokens": 256},
        ),
        Mode(
            "cancel during a slow (3 s) model call",
            (slow(3, text("never seen")),),
            "cancelled",
            1,
            during_model_call="cancel",
        ),
        Mode(
            "cancel during a model call that times out (6 s > 5 s, retried)",
            (slow(6, text("never seen")),),
            "cancelled",
            None,
            during_model_call="cancel",
        ),
        Mode("cancel in requires_action", (tool_call("lookup", "{}"),), "cancelled", 1, at_requires_action="cancel"),
        # streamed
        Mode("normal text", (text("Hello."),), "completed", 1, streamed=True),
        Mode(
            "tool call, outputs submitted",
            (tool_call("lookup", "{}"), text("Found it.")),
            "completed",
            2,
            streamed=True,
        ),
        Mode("HTTP 500 always", (server_error(),), "failed/server_error", 3, streamed=True),
        Mode(
            "stream breaks mid-way",
            (broken_stream("This reply never finishes"),),
            "failed/server_error",
            1,
            streamed=True,
        ),
        Mode(
            "chunk: content not a string",
            (raw_stream(*MALFORMED_CHUNKS["content that is not a string"]),),
            "failed/server_error",
            1,
            streamed=True,
        ),
        # last: it kills the server's API process (its run worker) during the model call
        Mode(
            "run worker killed during the model call",
            (slow(30, text("never delivered")), text("resumed")),
            "completed",
            2,
            during_model_call="kill_worker",
        ),
    ]
    return listing


NOT_MEASURED = [
    {
        "mode": "run left in requires_action past expires_at",
        "expected": "expired",
        "why": "expires_at is 600 s after creation and cannot be moved from outside the server; covered by "
        "tests/storage/test_expiry.py::test_tool_outputs_after_expires_at_are_refused_and_the_run_expires",
    }
]


# --- measuring one mode ---------------------------------------------------------------------------


@dataclass
class Row:
    mode: str
    driver: str  # poll | stream
    expected: str
    status: str = "not started"
    reason: str | None = None  # last_error.code, or incomplete_details.reason
    message: str | None = None  # last_error.message (shortened)
    seconds: float | None = None  # runs.create to terminal; None when stuck
    model_requests: int = 0
    expected_requests: int | None = None
    thread_freed: bool | None = None
    events: str | None = None  # streamed: the last events of each stream
    note: str | None = None
    problems: list[str] = field(default_factory=list)  # breaches of the rule
    as_expected: bool = False


@dataclass
class Bench:
    server: LocalServer
    standin: StandInModel
    client: openai.OpenAI


def _shorten(value: str | None, limit: int = 90) -> str | None:
    if value is None:
        return None
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _record_end(row: Row, run: Any) -> None:
    row.status = run.status
    if run.last_error is not None:
        row.reason = run.last_error.code
        row.message = _shorten(run.last_error.message)
    elif run.incomplete_details is not None:
        row.reason = run.incomplete_details.reason
    if run.status == "failed" and (run.last_error is None or not run.last_error.code or not run.last_error.message):
        row.problems.append("failed without a last_error (code and message)")
    if run.status == "incomplete" and run.incomplete_details is None:
        row.problems.append("incomplete without incomplete_details")


def _outputs(run: Any) -> list[ToolOutput]:
    """Output "ok" for every call the run waits on."""
    return [{"tool_call_id": c.id, "output": "ok"} for c in run.required_action.submit_tool_outputs.tool_calls]


def _submit_outputs(bench: Bench, thread_id: str, run: Any) -> None:
    bench.client.beta.threads.runs.submit_tool_outputs(run.id, thread_id=thread_id, tool_outputs=_outputs(run))


def _poll(bench: Bench, mode: Mode, row: Row, thread_id: str, run_id: str, started: float) -> Any:
    """Retrieve every 50 ms until the run is terminal (its time then goes in the row) or 120 s pass."""
    answered: set[str] = set()
    notes: list[str] = []
    run = None
    while time.perf_counter() - started < GIVE_UP_SECONDS:
        try:
            run = bench.client.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
        except openai.APIConnectionError:
            if mode.during_model_call != "kill_worker":
                raise
            time.sleep(POLL_SECONDS)  # the API process is being restarted
            continue
        if run.status in TERMINAL:
            row.seconds = round(time.perf_counter() - started, 3)
            break
        if run.status == "requires_action" and run.id + str(run.required_action) not in answered:
            answered.add(run.id + str(run.required_action))
            notes.append(f"requires_action at {time.perf_counter() - started:.2f} s")
            if mode.at_requires_action == "cancel":
                bench.client.beta.threads.runs.cancel(run_id, thread_id=thread_id)
            else:
                _submit_outputs(bench, thread_id, run)
        time.sleep(POLL_SECONDS)
    if notes:
        row.note = "; ".join(notes)
    return run


def _freed(bench: Bench, thread_id: str) -> bool:
    try:
        bench.client.beta.threads.messages.create(thread_id, role="user", content="Still there?")
    except openai.BadRequestError:
        return False
    return True


def _interfere(bench: Bench, mode: Mode, model: str, thread_id: str, run_id: str) -> str:
    """Cancel the run, or kill the API process, once the model has the run's first request."""
    bench.standin.wait_for_requests(model, 1, timeout=30)
    at = time.perf_counter()
    if mode.during_model_call == "cancel":
        answer = bench.client.beta.threads.runs.cancel(run_id, thread_id=thread_id)
        return f"cancel answered {answer.status}"
    (api,) = children_of(bench.server.process.pid)
    os.kill(api, signal.SIGKILL)  # the API child of the server this section started
    wait_until_ready(bench.server.base_url, bench.server.process)
    return f"API process killed; serving again after {time.perf_counter() - at:.1f} s"


def measure_polled(bench: Bench, mode: Mode, assistant_id: str, thread_id: str, model: str, row: Row) -> None:
    started = time.perf_counter()
    run = bench.client.beta.threads.runs.create(thread_id=thread_id, assistant_id=assistant_id, **mode.run_options)
    interfered_at = None
    interference = None
    if mode.during_model_call:
        interference = _interfere(bench, mode, model, thread_id, run.id)
        interfered_at = time.perf_counter()
    final = _poll(bench, mode, row, thread_id, run.id, started)
    if interference:
        after = f"; then terminal after {time.perf_counter() - interfered_at:.2f} s" if interfered_at else ""
        row.note = "; ".join(n for n in (row.note, interference + (after if row.seconds is not None else "")) if n)
    if row.seconds is None:
        row.status = "stuck"
        row.problems.append(f"still {final.status if final else 'unknown'} after {GIVE_UP_SECONDS:.0f} s")
        return
    _record_end(row, final)


def _sse_events(response: Any) -> list[tuple[str, str]]:
    """(event, data) pairs of a raw server-sent event stream, `done` included."""
    received: list[tuple[str, str]] = []
    name, data = "", ""
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            data = line.removeprefix("data: ")
        elif line == "" and name:
            received.append((name, data))
            name, data = "", ""
    if name:
        received.append((name, data))
    return received


def _check_stream(row: Row, received: list[tuple[str, str]], stops: tuple[str, ...]) -> str | None:
    """The run's last status in the stream; the stream must end with a stop event and then `done`."""
    names = [name for name, _ in received]
    row.events = "; ".join(n for n in (row.events, " → ".join(names[-2:])) if n)
    if not names or names[-1] != "done":
        row.problems.append(f"stream did not end with done (ended {names[-1:]})")
    if "error" in names:
        row.problems.append("stream carried an error event")
    statuses = [name.removeprefix("thread.run.") for name in names if name.startswith("thread.run.")]
    statuses = [s for s in statuses if not s.startswith("step")]
    last = statuses[-1] if statuses else None
    if last not in stops:
        row.problems.append(f"stream's last run event is {last!r}, not one of {stops}")
    return last


def measure_streamed(bench: Bench, mode: Mode, assistant_id: str, thread_id: str, row: Row) -> None:
    runs = bench.client.beta.threads.runs.with_streaming_response
    started = time.perf_counter()
    with runs.create(thread_id=thread_id, assistant_id=assistant_id, stream=True, **mode.run_options) as response:
        received = _sse_events(response)
    run_id = next(json.loads(data)["id"] for name, data in received if name == "thread.run.created")
    last = _check_stream(row, received, (*TERMINAL, "requires_action"))
    rounds = 0
    while last == "requires_action" and rounds < 5:
        rounds += 1
        run = bench.client.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
        outputs = _outputs(run)
        with runs.submit_tool_outputs(run_id, thread_id=thread_id, tool_outputs=outputs, stream=True) as response:
            received = _sse_events(response)
        last = _check_stream(row, received, (*TERMINAL, "requires_action"))
    row.seconds = round(time.perf_counter() - started, 3)
    final = bench.client.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
    if final.status not in TERMINAL:
        row.problems.append(f"the stream stopped but the run is {final.status}")
    elif last != final.status:
        row.problems.append(f"the stream's last run event is {last}, the run is {final.status}")
    _record_end(row, final)


def measure(bench: Bench, mode: Mode) -> Row:
    row = Row(mode.name, "stream" if mode.streamed else "poll", mode.expected, expected_requests=mode.requests)
    model = bench.standin.script(list(mode.steps), prefix="fault")
    thread_id = None
    try:
        assistant = bench.client.beta.assistants.create(
            model=model,
            instructions=mode.instructions,
            tools=[LOOKUP],  # type: ignore[list-item]
        )
        thread = bench.client.beta.threads.create(messages=[{"role": "user", "content": m} for m in mode.messages])
        thread_id = thread.id
        if mode.streamed:
            measure_streamed(bench, mode, assistant.id, thread.id, row)
        else:
            measure_polled(bench, mode, assistant.id, thread.id, model, row)
    except openai.APIStatusError as error:
        row.status = f"API answered {error.status_code}"
        row.message = _shorten(str(error))
        if error.status_code >= 500:
            row.problems.append(f"the API answered {error.status_code}")
        else:
            row.note = "a request of the benchmark was refused"
    except Exception as error:  # recorded, never hidden
        row.status = "benchmark error"
        row.message = _shorten(f"{type(error).__name__}: {error}")
    row.model_requests = len(bench.standin.requests(model))
    if thread_id is not None and row.status in TERMINAL:
        try:
            row.thread_freed = _freed(bench, thread_id)
        except openai.APIStatusError as error:
            row.problems.append(f"adding a message after the run: the API answered {error.status_code}")
        if row.thread_freed is False:
            row.problems.append("the thread still has an active run")
    if row.status not in TERMINAL and row.status != "stuck" and not row.problems:
        row.problems.append(f"ended as {row.status!r}")
    outcome = row.status + (f"/{row.reason}" if "/" in mode.expected else "")
    row.as_expected = outcome == mode.expected and (mode.requests is None or mode.requests == row.model_requests)
    return row


def fault_matrix(progress: Callable[[str], None] = print) -> dict[str, Any]:
    rows: list[Row] = []
    started = time.perf_counter()
    with (
        StandInModel() as standin,
        start_local_server(
            auth="open",
            SPINDLE_LLM_BASE_URL=standin.base_url,
            SPINDLE_LLM_API_KEY="test",
            SPINDLE_LLM_MAX_RETRIES=MAX_RETRIES,
            SPINDLE_LLM_TIMEOUT_SECONDS=TIMEOUT_SECONDS,
        ) as server,
    ):
        bench = Bench(server, standin, server.client(f"sk-bench-faults-{uuid.uuid4().hex}", timeout=GIVE_UP_SECONDS))
        for mode in modes():
            row = measure(bench, mode)
            rows.append(row)
            seconds = "stuck" if row.seconds is None else f"{row.seconds:.2f} s"
            flag = "" if row.as_expected else "  (not as expected)"
            flag += f"  RULE BROKEN: {row.problems}" if row.problems else ""
            progress(
                f"  [{row.driver}] {mode.name}: {row.status}/{row.reason} in {seconds}, "
                f"{row.model_requests} model requests{flag}"
            )
    return {
        "settings": {
            **SERVER_SETTINGS,
            "SPINDLE_RUN_LEASE_SECONDS": "20 (default)",
            "poll_interval_ms": 50,
            "give_up_seconds": GIVE_UP_SECONDS,
        },
        "rows": [asdict(row) for row in rows],
        "not_measured": NOT_MEASURED,
        "rule_breaches": [
            {"mode": row.mode, "driver": row.driver, "status": row.status, "problems": row.problems}
            for row in rows
            if row.problems
        ],
        "not_as_expected": [
            {
                "mode": row.mode,
                "driver": row.driver,
                "expected": row.expected,
                "got": f"{row.status}/{row.reason}",
                "model_requests": row.model_requests,
                "expected_requests": row.expected_requests,
            }
            for row in rows
            if not row.as_expected
        ],
        "total_seconds": round(time.perf_counter() - started, 1),
    }


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(figures: dict[str, Any]) -> list[str]:
    """The fault matrix as a markdown table, then what was not measured and any breach of the rule."""
    lines = [
        "| mode | driver | outcome | code / reason | s to terminal | model requests | thread freed | rule | note |",
        "|---|---|---|---|---:|---:|---|---|---|",
    ]
    for row in figures["rows"]:
        seconds = "**stuck**" if row["seconds"] is None else f"{row['seconds']:.2f}"
        requests = str(row["model_requests"])
        if row["expected_requests"] is not None and row["expected_requests"] != row["model_requests"]:
            requests += f" (expected {row['expected_requests']})"
        outcome = row["status"] if row["as_expected"] else f"{row['status']} (expected {row['expected']})"
        note = "; ".join(n for n in (row["events"], row["note"]) if n)
        rule = "ok" if not row["problems"] else "**BROKEN**: " + "; ".join(row["problems"])
        lines.append(
            "| "
            + " | ".join(
                _cell(v)
                for v in (
                    row["mode"],
                    row["driver"],
                    outcome,
                    row["reason"],
                    seconds,
                    requests,
                    row["thread_freed"],
                    rule,
                    note or None,
                )
            )
            + " |"
        )
    lines.append("")
    for item in figures["not_measured"]:
        lines.append(f"Not measured: {item['mode']} (expected `{item['expected']}`): {item['why']}.")
    lines.append("")
    breaches = figures["rule_breaches"]
    lines.append(f"Breaches of the rule: {len(breaches) or 'none'}.")
    lines.append("")
    lines.append(f"Settings: `{json.dumps(figures['settings'])}`; the whole matrix took {figures['total_seconds']} s.")
    lines.append("")
    return lines
