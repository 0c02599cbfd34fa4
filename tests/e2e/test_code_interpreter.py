"""The code_interpreter tool in runs, through the official SDK over HTTP: the engine runs the model's
code in the thread's sandbox (no requires_action), records a code_interpreter tool_calls step with its
input and outputs, streams the code as the model writes it, turns files the code writes into
`assistants_output` files (image_file parts, file_path annotations), and stops the code on a cancel.
The offline model (no key) and the scripted stand-in model both drive it."""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests.standin_model import text, tool_call

PNG = b"\x89PNG\r\n\x1a\n"
CODE = {"type": "code_interpreter"}


@pytest.fixture
def offline(server):
    return server.client(f"sk-ci-{uuid.uuid4().hex}")


@pytest.fixture
def client(code_server):
    return code_server.client(f"sk-ci-{uuid.uuid4().hex}")


def code_steps(client, thread_id: str, run_id: str):
    steps = client.beta.threads.runs.steps.list(run_id, thread_id=thread_id, order="asc").data
    return [
        call.code_interpreter
        for step in steps
        if step.type == "tool_calls"
        for call in step.step_details.tool_calls
        if call.type == "code_interpreter"
    ]


def logs_of(call) -> str:
    return "".join(output.logs for output in call.outputs if output.type == "logs")


def scripted_run(client, standin, steps, *, tool_resources=None, content="Go."):
    model = standin.script(steps)
    assistant = client.beta.assistants.create(model=model, tools=[CODE], tool_resources=tool_resources)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": content}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50)
    return model, thread, run


def code_call(code: str, number: int = 1):
    return tool_call("code_interpreter", json.dumps({"code": code}), call_id=f"call_code_{number}")


def test_the_offline_model_proves_the_tool_works_with_a_real_execution(offline):
    assistant = offline.beta.assistants.create(model="gpt-4o", tools=[CODE])
    thread = offline.beta.threads.create(
        messages=[{"role": "user", "content": "prove to me that the code_interpreter tool is in good working order"}]
    )
    run = offline.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50)
    assert (run.status, run.last_error) == ("completed", None)
    (call,) = code_steps(offline, thread.id, run.id)
    assert "primes" in call.input and call.outputs[0].type == "logs"
    assert "primes below 50: [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47]" in logs_of(call)
    assert "sum of the squares of 1..10: 385" in logs_of(call)
    answer = offline.beta.threads.messages.list(thread.id, order="desc").data[0]
    assert "primes below 50: [2, 3, 5, 7" in answer.content[0].text.value  # reported from the execution


def test_the_offline_model_computes_an_answer(offline):
    assistant = offline.beta.assistants.create(model="gpt-4o", tools=[CODE])
    thread = offline.beta.threads.create(messages=[{"role": "user", "content": "Please compute 2**100 - 7 * 3"}])
    run = offline.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50)
    assert run.status == "completed"
    (call,) = code_steps(offline, thread.id, run.id)
    assert logs_of(call) == str(2**100 - 7 * 3)
    answer = offline.beta.threads.messages.list(thread.id, order="desc").data[0].content[0].text.value
    assert str(2**100 - 21) in answer


def test_the_offline_model_plots_an_attached_csv(offline):
    data = offline.files.create(file=("sales.csv", b"month,units\n1,10\n2,14\n3,9\n4,20\n"), purpose="assistants")
    assistant = offline.beta.assistants.create(model="gpt-4o", tools=[CODE])
    thread = offline.beta.threads.create(
        messages=[
            {
                "role": "user",
                "content": "Plot sales.csv for me",
                "attachments": [{"file_id": data.id, "tools": [CODE]}],
            }
        ]
    )
    run = offline.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50)
    assert run.status == "completed", run.last_error
    (call,) = code_steps(offline, thread.id, run.id)
    assert "4 rows; columns: ['month', 'units']" in logs_of(call)
    (image,) = [output.image.file_id for output in call.outputs if output.type == "image"]
    answer = offline.beta.threads.messages.list(thread.id, order="desc").data[0]
    assert answer.content[0].type == "image_file" and answer.content[0].image_file.file_id == image
    assert offline.files.content(image).read().startswith(PNG)


def test_a_run_reads_a_csv_and_writes_a_png_plot_that_downloads(client, standin):
    data = client.files.create(file=("data.csv", b"x,y\n1,1\n2,4\n3,9\n"), purpose="assistants")
    code = (
        "import pandas as pd\nimport matplotlib.pyplot as plt\n"
        "frame = pd.read_csv('data.csv')\nprint('total', frame.y.sum())\n"
        "frame.plot(x='x', y='y').get_figure().savefig('plot.png')\nplt.close('all')\n"
        "frame.to_csv('/mnt/data/doubled.csv', index=False)"
    )
    reply = "Here is [the plot](sandbox:/mnt/data/plot.png) and the table: sandbox:/mnt/data/doubled.csv."
    model, thread, run = scripted_run(
        client,
        standin,
        [code_call(code), text(reply)],
        tool_resources={"code_interpreter": {"file_ids": [data.id]}},
    )
    assert (run.status, run.last_error) == ("completed", None)
    (call,) = code_steps(client, thread.id, run.id)
    assert call.input == code and logs_of(call) == "total 14"
    (image,) = [output.image.file_id for output in call.outputs if output.type == "image"]
    answer = client.beta.threads.messages.list(thread.id, order="desc").data[0]
    assert [part.type for part in answer.content] == ["image_file", "text"]
    assert answer.content[0].image_file.file_id == image
    body = answer.content[1].text
    assert body.value == reply
    links = [(a.type, a.text, a.file_path.file_id) for a in body.annotations]
    for annotation in body.annotations:
        assert body.value[annotation.start_index : annotation.end_index] == annotation.text
    assert links[0] == ("file_path", "sandbox:/mnt/data/plot.png", image)
    assert links[1][:2] == ("file_path", "sandbox:/mnt/data/doubled.csv")  # the trailing "." left out
    plot = client.files.retrieve(image)
    assert (plot.purpose, plot.filename) == ("assistants_output", "/mnt/data/plot.png")
    assert client.files.content(image).read().startswith(PNG)
    assert client.files.content(links[1][2]).read() == b"x,y\n1,1\n2,4\n3,9\n"
    # the model was offered the tool, and shown the execution's output and the files it saved
    first, second = standin.requests(model)[:2]
    assert [tool["function"]["name"] for tool in first["tools"]] == ["code_interpreter"]
    assert "data.csv" in first["messages"][0]["content"]
    shown = second["messages"][-1]["content"]
    assert "total 14" in shown and "sandbox:/mnt/data/plot.png" in shown


def test_the_stream_carries_the_code_as_it_is_written_then_the_outputs(client, standin):
    code = "values = [n * n for n in range(10)]\nprint('sum of squares:', sum(values))"
    model = standin.script([code_call(code), text("The sum is 285.")])
    assistant = client.beta.assistants.create(model=model, tools=[CODE])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Sum the squares below 10."}])
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
        events = list(stream)
    deltas = [event.data.delta.step_details.tool_calls[0] for event in events if event.event == "thread.run.step.delta"]
    assert deltas[0].id and deltas[0].code_interpreter.input == "" and deltas[0].code_interpreter.outputs == []
    fragments = [d.code_interpreter.input for d in deltas[1:] if d.code_interpreter.input]
    assert len(fragments) > 1 and "".join(fragments) == code  # piece by piece, as the model wrote it
    (outputs,) = [d.code_interpreter.outputs for d in deltas if d.code_interpreter.outputs]
    assert [(o.index, o.type, o.logs) for o in outputs] == [(0, "logs", "sum of squares: 285")]
    done = next(e.data for e in events if e.event == "thread.run.step.completed" and e.data.type == "tool_calls")
    assert done.step_details.tool_calls[0].code_interpreter.input == code
    assert events[-1].event == "thread.run.completed"


def test_a_failing_program_shows_its_error_in_the_logs_and_the_run_goes_on(client, standin):
    model, thread, run = scripted_run(
        client, standin, [code_call("def ratio(a, b):\n    return a / b\n\nratio(1, 0)"), text("Division by zero.")]
    )
    assert run.status == "completed"
    (call,) = code_steps(client, thread.id, run.id)
    logs = logs_of(call)
    assert "ZeroDivisionError: division by zero" in logs and "line 2, in ratio" in logs
    assert "ZeroDivisionError" in standin.requests(model)[1]["messages"][-1]["content"]


def test_one_projects_files_never_appear_in_another_projects_sandbox(code_server, standin):
    owner = code_server.client(f"sk-ci-a-{uuid.uuid4().hex}")
    stranger = code_server.client(f"sk-ci-b-{uuid.uuid4().hex}")
    secret = f"secret-{uuid.uuid4().hex}.csv"
    upload = owner.files.create(file=(secret, b"tenant a only"), purpose="assistants")
    _, thread, run = scripted_run(
        owner,
        standin,
        [code_call(f"print(open({secret!r}).read())"), text("read")],
        tool_resources={"code_interpreter": {"file_ids": [upload.id]}},
    )
    assert logs_of(code_steps(owner, thread.id, run.id)[0]) == "tenant a only"
    hunt = (
        "import os\nfound = []\n"
        "for top in ('/mnt', '/run', '/tmp', '/opt', '/root', '/home', '/work', '/var'):\n"
        "    for root, dirs, files in os.walk(top):\n"
        f"        found += [os.path.join(root, f) for f in files if f == {secret!r}]\n"
        "print('found:', found, sorted(os.listdir('.')))"
    )
    _, other_thread, other_run = scripted_run(stranger, standin, [code_call(hunt), text("nothing")])
    assert logs_of(code_steps(stranger, other_thread.id, other_run.id)[0]) == "found: [] []"
    # nor can the stranger name the owner's file for its own sandbox
    from openai import BadRequestError, NotFoundError

    with pytest.raises((BadRequestError, NotFoundError)):
        stranger.beta.assistants.create(
            model="gpt-4o", tools=[CODE], tool_resources={"code_interpreter": {"file_ids": [upload.id]}}
        )


def test_a_cancel_during_execution_stops_the_program(client, code_server, standin):
    tick = f"tick-{uuid.uuid4().hex}.txt"
    ticking = (  # the counter is replaced, never truncated: an interrupt never leaves it empty
        "import os, time\ncount = 0\nwhile True:\n    count += 1\n"
        f"    n = open('tick.tmp', 'w').write(str(count))\n    os.replace('tick.tmp', {tick!r})\n    time.sleep(0.05)"
    )
    model = standin.script([code_call(ticking)])
    assistant = client.beta.assistants.create(model=model, tools=[CODE])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Tick."}])
    sessions = Path(code_server.env["SPINDLE_CODE_SANDBOX_DIR"])
    names: list[str] = []
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
        for event in stream:
            names.append(event.event)
            if event.event == "thread.run.created":
                run_id = event.data.id
                threading.Thread(target=cancel_once_ticking, args=(client, thread.id, run_id, sessions, tick)).start()
    ended = client.beta.threads.runs.retrieve(run_id, thread_id=thread.id)
    assert names[-1] == "thread.run.cancelled", ended.last_error
    # the step stays, cancelled, with the code and its logs saying it was stopped
    (step,) = client.beta.threads.runs.steps.list(run_id, thread_id=thread.id).data
    assert (step.type, step.status) == ("tool_calls", "cancelled") and step.cancelled_at
    call = step.step_details.tool_calls[0].code_interpreter
    assert call.input == ticking and "cancelled" in logs_of(call)
    # the program stopped with the run: its counter no longer moves
    check = (
        f"import time\nfirst = open({tick!r}).read()\ntime.sleep(0.5)\n"
        f"print('stopped' if open({tick!r}).read() == first and int(first) > 0 else 'running')"
    )
    later = standin.script([code_call(check, 2), text("checked")])
    assistant = client.beta.assistants.create(model=later, tools=[CODE])
    started = time.monotonic()
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50)
    assert run.status == "completed" and time.monotonic() - started < 30
    assert logs_of(code_steps(client, thread.id, run.id)[0]) == "stopped"


def cancel_once_ticking(client, thread_id: str, run_id: str, sessions: Path, tick: str) -> None:
    """Cancel the run once its program has counted a few ticks (seen in the session's directory)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        counters = list(sessions.glob(f"*/*/data/{tick}"))
        if counters and counters[0].read_text().isdigit() and int(counters[0].read_text()) >= 3:
            break
        time.sleep(0.05)
    client.beta.threads.runs.cancel(run_id, thread_id=thread_id)


def test_each_limit_stops_the_code_says_so_in_the_logs_and_the_server_stays_healthy(client, standin):
    bombs = {
        "infinite loop": ("while True:\n    pass", "CPU time"),
        "memory bomb": ("hog = bytearray(16 * 1024 ** 3)", "MemoryError"),
        "network call": (
            "import urllib.request\nurllib.request.urlopen('http://1.1.1.1', timeout=3)",
            "Network is unreachable",
        ),
        "write outside": ("open('/usr/escape.txt', 'w').write('x')", "Read-only file system"),
        "fork bomb": ("import os\nwhile True:\n    os.fork()", "Resource temporarily unavailable"),
    }
    steps = [code_call(code, number) for number, (code, _) in enumerate(bombs.values())]
    _, thread, run = scripted_run(client, standin, [*steps, text("All stopped.")])
    assert (run.status, run.last_error) == ("completed", None)
    calls = code_steps(client, thread.id, run.id)
    assert len(calls) == len(bombs)
    for (name, (_, expected)), call in zip(bombs.items(), calls, strict=True):
        assert expected in logs_of(call), (name, logs_of(call))
    # healthy: the session still runs code, and the API answers
    _, thread, run = scripted_run(client, standin, [code_call("print('alive')", 9), text("ok")])
    assert run.status == "completed" and logs_of(code_steps(client, thread.id, run.id)[0]) == "alive"
    assert client.beta.assistants.list(limit=1).data


def test_the_stream_carries_image_parts_and_file_path_annotations_as_the_message_stores_them(client, standin):
    code = "import matplotlib.pyplot as plt\nplt.bar(['a', 'b'], [3, 5])\nn = open('report.txt', 'w').write('a 3, b 5')"
    reply = "The chart is above; the numbers are in [report.txt](sandbox:/mnt/data/report.txt)."
    model = standin.script([code_call(code), text(reply)])
    assistant = client.beta.assistants.create(model=model, tools=[CODE])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Chart it."}])
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
        events = list(stream)
        (final,) = stream.get_final_messages()
    parts = [p for e in events if e.event == "thread.message.delta" for p in e.data.delta.content]
    (image,) = [p for p in parts if p.type == "image_file"]
    assert image.index == 0
    assert "".join(p.text.value for p in parts if p.type == "text") == reply
    assert {p.index for p in parts if p.type == "text"} == {1}  # the text follows the image
    (link,) = [a for p in parts if p.type == "text" for a in (p.text.annotations or [])]
    stored = client.beta.threads.messages.retrieve(final.id, thread_id=thread.id)
    assert [part.type for part in stored.content] == ["image_file", "text"]
    assert stored.content[0].image_file.file_id == image.image_file.file_id
    (kept,) = stored.content[1].text.annotations
    assert (link.type, link.text, link.start_index, link.end_index, link.file_path.file_id) == (
        kept.type,
        kept.text,
        kept.start_index,
        kept.end_index,
        kept.file_path.file_id,
    )
    assert reply[kept.start_index : kept.end_index] == "sandbox:/mnt/data/report.txt"
    assert client.files.content(kept.file_path.file_id).read() == b"a 3, b 5"
