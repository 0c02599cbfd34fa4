"""The file_search tool in runs, through the official SDK over HTTP: the engine searches when the model
asks (no requires_action), records a file_search tool_calls step, shows the model numbered sources, and
turns the markers the model copies into `file_citation` annotations with exact offsets, stored and
streamed. The offline model (no key) and the scripted stand-in model both drive it."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.pdf_maker import make_pdf
from tests.standin_model import text, tool_call, tool_calls

RESET = "To reset the router, hold the reset button for ten seconds until the light blinks orange."
WARRANTY = "The router has a warranty of two years. Damage from water is not covered by the warranty."
INCLUDE = ["step_details.tool_calls[*].file_search.results[*].content"]
WEATHER = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
}


@pytest.fixture
def offline(server):
    return server.client(f"sk-fs-{uuid.uuid4().hex}")


@pytest.fixture
def client(model_server):
    return model_server.client(f"sk-fs-{uuid.uuid4().hex}")


def a_store(client):
    """A store with a PDF manual and a text file, both ingested; their file ids by name."""
    store = client.vector_stores.create(name="router")
    pdf = make_pdf(["Router manual.", RESET], ["Wi-Fi: the default password is on the label."])
    manual = client.vector_stores.files.upload_and_poll(
        vector_store_id=store.id, file=("manual.pdf", pdf), poll_interval_ms=50
    )
    notes = client.vector_stores.files.upload_and_poll(
        vector_store_id=store.id, file=("warranty.txt", WARRANTY.encode()), poll_interval_ms=50
    )
    assert (manual.status, notes.status) == ("completed", "completed")
    return store, {"manual.pdf": manual.id, "warranty.txt": notes.id}


def asked_offline(offline, store_id: str, question: str):
    """A new thread asking the offline model, whose assistant searches the store; the run, polled."""
    assistant = offline.beta.assistants.create(
        model="gpt-4o",
        tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_store_ids": [store_id]}},
    )
    thread = offline.beta.threads.create(messages=[{"role": "user", "content": question}])
    run = offline.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50)
    return thread, run


def citations_of(message):
    """Each annotation, checked to point exactly at its marker in the text."""
    part = message.content[0].text
    found = []
    for annotation in part.annotations:
        assert annotation.type == "file_citation"
        assert part.value[annotation.start_index : annotation.end_index] == annotation.text
        found.append((annotation.text, annotation.file_citation.file_id))
    return found


def test_the_offline_model_answers_from_a_pdf_with_an_exact_citation(offline):
    store, ids = a_store(offline)
    thread, run = asked_offline(offline, store.id, "How do I reset the router button?")
    assert (run.status, run.last_error) == ("completed", None)
    answer = offline.beta.threads.messages.list(thread.id, order="desc").data[0]
    assert answer.role == "assistant" and "hold the reset button for ten seconds" in answer.content[0].text.value
    assert citations_of(answer) == [("【0:0†manual.pdf】", ids["manual.pdf"])]
    assert answer.content[0].text.value.endswith("【0:0†manual.pdf】")

    steps = offline.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc").data
    assert [step.type for step in steps] == ["tool_calls", "message_creation"]
    (call,) = steps[0].step_details.tool_calls
    assert (call.type, steps[0].status) == ("file_search", "completed")
    assert call.file_search.ranking_options.model_dump() == {"ranker": "auto", "score_threshold": 0.0}
    results = call.file_search.results
    assert results[0].file_id == ids["manual.pdf"] and results[0].file_name == "manual.pdf"
    assert all(0 < result.score <= 1 and result.content is None for result in results)
    raw = offline.beta.threads.runs.steps.with_raw_response.retrieve(steps[0].id, thread_id=thread.id, run_id=run.id)
    assert "content" not in raw.http_response.json()["step_details"]["tool_calls"][0]["file_search"]["results"][0]
    assert "_model" not in raw.http_response.json()["step_details"]["tool_calls"][0]

    # include[] adds the results' content, on list and on get
    listed = offline.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc", include=INCLUDE).data
    got = offline.beta.threads.runs.steps.retrieve(steps[0].id, thread_id=thread.id, run_id=run.id, include=INCLUDE)
    for step in (listed[0], got):
        (first, *_) = step.step_details.tool_calls[0].file_search.results
        assert RESET in first.content[0].text and first.content[0].type == "text"


def test_the_stream_carries_the_search_step_and_the_citation(offline):
    store, ids = a_store(offline)
    assistant = offline.beta.assistants.create(model="gpt-4o", tools=[{"type": "file_search"}])
    thread = offline.beta.threads.create(
        messages=[{"role": "user", "content": "Is water damage covered by the warranty?"}],
        tool_resources={"file_search": {"vector_store_ids": [store.id]}},  # the thread's store this time
    )
    events = []
    with offline.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id, include=INCLUDE) as stream:
        for event in stream:
            events.append(event)
        final = stream.get_final_messages()
    names = [event.event for event in events]
    step_deltas = [e.data.delta.step_details.tool_calls[0] for e in events if e.event == "thread.run.step.delta"]
    assert [(d.type, d.index, d.file_search) for d in step_deltas] == [("file_search", 0, {})]
    done = next(e.data for e in events if e.event == "thread.run.step.completed" and e.data.type == "tool_calls")
    assert WARRANTY in done.step_details.tool_calls[0].file_search.results[0].content[0].text  # include[] asked
    annotated = [
        annotation
        for e in events
        if e.event == "thread.message.delta"
        for annotation in (e.data.delta.content[0].text.annotations or [])
    ]
    assert [(a.index, a.type, a.text, a.file_citation.file_id) for a in annotated] == [
        (0, "file_citation", "【0:0†warranty.txt】", ids["warranty.txt"])
    ]
    assert names[-1] == "thread.run.completed"
    (message,) = final
    assert citations_of(message) == [("【0:0†warranty.txt】", ids["warranty.txt"])]
    stored = offline.beta.threads.messages.retrieve(message.id, thread_id=thread.id)
    assert stored.content == message.content
    assert (annotated[0].start_index, annotated[0].end_index) == (
        stored.content[0].text.annotations[0].start_index,
        stored.content[0].text.annotations[0].end_index,
    )


def test_a_scripted_model_searches_and_only_returned_sources_are_cited(client, standin):
    store, ids = a_store(client)
    answer = (
        "Hold it ten seconds 【0:0†manual.pdf】, the warranty is two years 【0:1†warranty.txt】 (【3:0†made-up.pdf】)."
    )
    model = standin.script(
        [
            tool_call("file_search", json.dumps({"queries": ["reset router", "warranty years"]}), call_id="call_s"),
            text(answer),
        ]
    )
    assistant = client.beta.assistants.create(
        model=model,
        instructions="Be brief.",
        tools=[{"type": "file_search", "file_search": {"max_num_results": 2}}],
        tool_resources={"file_search": {"vector_store_ids": [store.id]}},
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Reset and warranty?"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50)
    assert run.status == "completed", run.last_error
    message = client.beta.threads.messages.list(thread.id, order="desc").data[0]
    assert message.content[0].text.value == answer
    step = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc").data[0]
    results = step.step_details.tool_calls[0].file_search.results
    assert sorted(r.file_name for r in results) == ["manual.pdf", "warranty.txt"]  # max_num_results 2
    # the first two markers name returned results (whatever their file names say); the third does not
    assert [file_id for _, file_id in citations_of(message)] == [results[0].file_id, results[1].file_id]
    assert run.usage.prompt_tokens > 0

    first, second = standin.requests(model)
    offered = {tool["function"]["name"]: tool["function"] for tool in first["tools"]}
    assert set(offered) == {"file_search"} and "queries" in offered["file_search"]["parameters"]["properties"]
    system = first["messages"][0]["content"]
    assert system.startswith("Be brief.") and "citation marker" in system
    tool_message = second["messages"][-1]
    assert tool_message["role"] == "tool" and tool_message["tool_call_id"] == "call_s"
    assert tool_message["content"].startswith(f"【0:0†{results[0].file_name}】\n")
    assert f"【0:1†{results[1].file_name}】\n" in tool_message["content"]
    assert RESET in tool_message["content"] and WARRANTY in tool_message["content"]
    assert second["messages"][-2]["tool_calls"][0]["function"] == {
        "name": "file_search",
        "arguments": json.dumps({"queries": ["reset router", "warranty years"]}),
    }


def test_file_search_mixes_with_function_tools(client, standin):
    store, ids = a_store(client)
    model = standin.script(
        [
            tool_calls(
                ("call_s", "file_search", json.dumps({"queries": ["warranty"]})),
                ("call_w", "get_weather", '{"city": "Oslo"}'),
            ),
            text("Two years 【0:0†warranty.txt】, and it rains."),
        ]
    )
    assistant = client.beta.assistants.create(
        model=model,
        tools=[{"type": "file_search"}, WEATHER],
        tool_resources={"file_search": {"vector_store_ids": [store.id]}},
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Warranty, and weather in Oslo?"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50)
    assert run.status == "requires_action"
    pending = run.required_action.submit_tool_outputs.tool_calls
    assert [(call.id, call.function.name) for call in pending] == [("call_w", "get_weather")]
    step = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data[0]
    assert [call.type for call in step.step_details.tool_calls] == ["file_search", "function"]
    assert step.step_details.tool_calls[0].file_search.results[0].file_id == ids["warranty.txt"]
    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id,
        thread_id=thread.id,
        tool_outputs=[{"tool_call_id": "call_w", "output": "rain"}],
        poll_interval_ms=50,
    )
    assert run.status == "completed", run.last_error
    message = client.beta.threads.messages.list(thread.id, order="desc").data[0]
    assert citations_of(message) == [("【0:0†warranty.txt】", ids["warranty.txt"])]
    done = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc").data[0]
    assert done.status == "completed" and done.step_details.tool_calls[1].function.output == "rain"
    last = standin.requests(model)[-1]["messages"]
    assert [m.get("tool_call_id") for m in last if m["role"] == "tool"] == ["call_s", "call_w"]


def test_search_rounds_are_capped(client, standin):
    store, _ = a_store(client)
    model = standin.script([tool_call("file_search", json.dumps({"queries": ["router"]}))])  # it never stops
    assistant = client.beta.assistants.create(
        model=model, tools=[{"type": "file_search"}], tool_resources={"file_search": {"vector_store_ids": [store.id]}}
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "router?"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50)
    assert run.status == "failed" and "after 5 searching turns" in run.last_error.message
    requests = standin.requests(model)
    # five searches; then told to answer (tool_choice none), it searches anyway and hears the limit is
    # reached; told again, it searches again, and the run ends
    assert [request.get("tool_choice", "auto") for request in requests] == ["auto"] * 5 + ["none"] * 2
    assert "search limit of this run" in requests[-1]["messages"][-1]["content"]
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc").data
    assert [step.type for step in steps] == ["tool_calls"] * 6
    assert [len(step.step_details.tool_calls[0].file_search.results) > 0 for step in steps] == [True] * 5 + [False]


def test_no_store_means_no_search_tool(client, standin):
    model = standin.script([text("No files here.")])
    assistant = client.beta.assistants.create(model=model, tools=[{"type": "file_search"}])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50)
    assert run.status == "completed"
    assert "tools" not in standin.requests(model)[0]
    # forcing file_search where it cannot run forces nothing (the functions stay the model's choice)
    forced = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant.id,
        tools=[{"type": "file_search"}, WEATHER],
        tool_choice={"type": "file_search"},
        poll_interval_ms=50,
    )
    assert forced.status == "completed"
    request = standin.requests(model)[-1]
    assert [tool["function"]["name"] for tool in request["tools"]] == ["get_weather"]
    assert request.get("tool_choice", "auto") == "auto"


def test_a_run_waits_for_its_store_to_finish_ingesting(offline):
    store = offline.vector_stores.create(name="late")
    uploaded = offline.files.create(file=("warranty.txt", WARRANTY.encode()), purpose="assistants")
    offline.vector_stores.files.create(vector_store_id=store.id, file_id=uploaded.id)  # not polled
    thread, run = asked_offline(offline, store.id, "warranty water damage")
    assert run.status == "completed"
    answer = offline.beta.threads.messages.list(thread.id, order="desc").data[0]
    assert citations_of(answer) == [("【0:0†warranty.txt】", uploaded.id)]


def test_attachments_for_file_search_feed_the_threads_own_store(offline):
    warranty = offline.files.create(file=("warranty.txt", WARRANTY.encode()), purpose="assistants")
    manual = offline.files.create(file=("reset.txt", RESET.encode()), purpose="assistants")
    other = offline.files.create(file=("data.csv", b"a,b\n1,2\n"), purpose="assistants")
    thread = offline.beta.threads.create(
        messages=[
            {
                "role": "user",
                "content": "Here is the warranty.",
                "attachments": [{"file_id": warranty.id, "tools": [{"type": "file_search"}]}],
            }
        ]
    )
    (store_id,) = thread.tool_resources.file_search.vector_store_ids
    store = offline.vector_stores.retrieve(store_id)
    assert store.expires_after.model_dump() == {"anchor": "last_active_at", "days": 7}
    assert store.expires_at == store.last_active_at + 7 * 86400

    # a later message adds to the same store; an attachment for code_interpreter only adds nothing
    offline.beta.threads.messages.create(
        thread.id,
        role="user",
        content="And the manual; and some data.",
        attachments=[
            {"file_id": manual.id, "tools": [{"type": "file_search"}, {"type": "code_interpreter"}]},
            {"file_id": other.id, "tools": [{"type": "code_interpreter"}]},
        ],
    )
    assert offline.beta.threads.retrieve(thread.id).tool_resources.file_search.vector_store_ids == [store_id]
    in_store = {f.id for f in offline.vector_stores.files.list(store_id)}
    assert in_store == {warranty.id, manual.id}

    # an assistant with the tool but no store of its own searches the thread's
    assistant = offline.beta.assistants.create(model="gpt-4o", tools=[{"type": "file_search"}])
    offline.beta.threads.messages.create(thread.id, role="user", content="How long do I hold the reset button?")
    run = offline.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50)
    assert run.status == "completed", run.last_error
    answer = offline.beta.threads.messages.list(thread.id, order="desc").data[0]
    assert citations_of(answer) == [("【0:0†reset.txt】", manual.id)]


def test_a_message_attachment_gives_an_existing_thread_a_store_once(offline):
    thread = offline.beta.threads.create()
    files = [offline.files.create(file=(f"n{n}.txt", b"note"), purpose="assistants") for n in range(3)]
    for file in files:
        offline.beta.threads.messages.create(
            thread.id,
            role="user",
            content="note",
            attachments=[{"file_id": file.id, "tools": [{"type": "file_search"}]}],
        )
    (store_id,) = offline.beta.threads.retrieve(thread.id).tool_resources.file_search.vector_store_ids
    assert {f.id for f in offline.vector_stores.files.list(store_id)} == {file.id for file in files}
    assert offline.vector_stores.retrieve(store_id).file_counts.total == 3
