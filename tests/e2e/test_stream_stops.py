"""A run's stream ends where OpenAI's ends: right after `thread.run.requires_action` (then `done`), even
when the client submits its tool outputs while that stream is still open. The outputs' own stream
carries the rest of the run. Both patterns real apps use are played 20 times each, because whether an
open stream went on used to depend on timing:

- the peer suite's (datastax/astra-assistants-api): submit from `on_tool_call_done`, which the SDK calls
  while it handles `thread.run.requires_action`, before the first stream has ended;
- the SDK README's: submit from `on_event` when the event is `thread.run.requires_action`.
"""

from __future__ import annotations

import uuid

import pytest
from openai import AssistantEventHandler

from tests.e2e.test_node_sdk import heard_from_node
from tests.e2e.test_streaming import CITY, TEXT_ENDING
from tests.standin_model import text, tool_call

ROUNDS = 20
ARGUMENTS = '{"city": "Paris"}'


class Submitter(AssistantEventHandler):
    """Submits `21C` for each function call it hears of, from `on_tool_call_done` or from `on_event`,
    streaming the rest with a handler of the same kind, as the patterns above do."""

    def __init__(self, client, thread_id: str, pattern: str, submissions: list[str], names: list[list[str]]) -> None:
        super().__init__()
        self.client, self.thread_id, self.pattern = client, thread_id, pattern
        self.submissions, self.all_names = submissions, names
        self.names: list[str] = []
        names.append(self.names)

    def on_event(self, event) -> None:
        self.names.append(event.event)
        if self.pattern == "on_event" and event.event == "thread.run.requires_action":
            for call in event.data.required_action.submit_tool_outputs.tool_calls:
                self.submit(event.data.id, call.id)

    def on_tool_call_done(self, tool_call) -> None:
        if self.pattern == "on_tool_call_done" and tool_call.type == "function":
            self.submit(self.current_run.id, tool_call.id)

    def submit(self, run_id: str, call_id: str) -> None:
        self.submissions.append(call_id)
        after = Submitter(self.client, self.thread_id, self.pattern, self.submissions, self.all_names)
        with self.client.beta.threads.runs.submit_tool_outputs_stream(
            thread_id=self.thread_id,
            run_id=run_id,
            tool_outputs=[{"tool_call_id": call_id, "output": "21C"}],
            event_handler=after,
        ) as stream:
            stream.until_done()


@pytest.mark.parametrize("pattern", ["on_tool_call_done", "on_event"])
def test_tool_outputs_submitted_while_the_first_stream_is_open_get_a_stream_of_their_own(
    model_server, standin, pattern
):
    client = model_server.client(f"sk-stops-{uuid.uuid4().hex}")
    for round_number in range(ROUNDS):
        model = standin.script([tool_call("get_weather", ARGUMENTS, call_id="call_paris"), text("Sunny, 21C.")])
        assistant = client.beta.assistants.create(model=model, tools=[CITY])
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "Weather in Paris?"}])
        submissions: list[str] = []
        streams: list[list[str]] = []
        first = Submitter(client, thread.id, pattern, submissions, streams)
        with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id, event_handler=first) as s:
            s.until_done()

        context = f"round {round_number}: {streams}"
        assert submissions == ["call_paris"], context  # once: the first stream never shows the call again
        first_names, after_names = streams
        assert first_names[-1] == "thread.run.requires_action", context
        assert first_names.count("thread.run.requires_action") == 1, context
        assert after_names[:3] == ["thread.run.step.completed", "thread.run.queued", "thread.run.in_progress"], context
        assert after_names[-3:] == TEXT_ENDING, context
        (run,) = client.beta.threads.runs.list(thread.id).data
        assert run.status == "completed", context
        messages = client.beta.threads.messages.list(thread.id, run_id=run.id).data
        assert [m.content[0].text.value for m in messages] == ["Sunny, 21C."], context


def test_node_sdk_streams_end_at_requires_action_whatever_the_client_does_meanwhile(model_server, standin):
    """The Node SDK's own pattern: submit from the `toolCallDone` listener while the first stream is
    open, and from the `event` listener at `thread.run.requires_action` (tests/node/stream_run.mjs)."""
    token = f"sk-stops-node-{uuid.uuid4().hex}"
    client = model_server.client(token)
    for pattern in ("toolCallDone", "event"):
        runs = []
        for _ in range(ROUNDS):
            model = standin.script([tool_call("get_weather", ARGUMENTS, call_id="call_paris"), text("Sunny, 21C.")])
            assistant = client.beta.assistants.create(model=model, tools=[CITY])
            thread = client.beta.threads.create(messages=[{"role": "user", "content": "Weather in Paris?"}])
            runs.append(f"{assistant.id}:{thread.id}")
        lines = list(heard_from_node(model_server, token, "submit_while_open", pattern, ",".join(runs)))
        assert len(lines) == ROUNDS, lines
        for line in lines:
            assert line["submissions"] == 1, line
            assert line["first"][-1] == "thread.run.requires_action", line
            assert line["first"].count("thread.run.requires_action") == 1, line
            assert line["after"][-1] == "thread.run.completed", line
            assert line["final"] == "completed", line
