"""What the SDK's stream helpers deliver, collected by an AssistantEventHandler (shared by the
streaming tests of every provider)."""

from __future__ import annotations

from openai import AssistantEventHandler


class Collector(AssistantEventHandler):
    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []
        self.text_deltas: list[str] = []
        self.argument_deltas: list[str] = []
        self.steps_done: list[str] = []

    def on_event(self, event) -> None:
        self.names.append(event.event)

    def on_text_delta(self, delta, snapshot) -> None:
        self.text_deltas.append(delta.value)

    def on_tool_call_delta(self, delta, snapshot) -> None:
        if delta.type == "function" and delta.function and delta.function.arguments:
            self.argument_deltas.append(delta.function.arguments)

    def on_run_step_done(self, run_step) -> None:
        self.steps_done.append(run_step.type)


class Clocked(Collector):
    """Notes, for each text delta, how many chunks the stand-in model had sent when it arrived."""

    def __init__(self, standin, model: str) -> None:
        super().__init__()
        self.standin, self.model = standin, model
        self.model_chunks_at_delta: list[int] = []
        self.deltas_before_completed = 0

    def on_text_delta(self, delta, snapshot) -> None:
        super().on_text_delta(delta, snapshot)
        self.model_chunks_at_delta.append(self.standin.chunks_sent.get(self.model, 0))

    def on_event(self, event) -> None:
        super().on_event(event)
        if event.event == "thread.run.completed":
            self.deltas_before_completed = len(self.text_deltas)
