"""The run lifecycle's table decides every move: builders follow it, refuse what it lacks, and carry
the official events of their move (no AWS needed: builders only describe changes)."""

from __future__ import annotations

import dataclasses

import pytest

from chalicelib.domain import lifecycle
from chalicelib.domain.lifecycle import FunctionCall, IllegalTransition
from chalicelib.storage.records import RunRef, StoredRun

REF = RunRef("proj_unit", "thread_unit", "run_unit")
DRAFT = lifecycle.new_draft(1)
RUN = {
    "id": REF.run_id,
    "object": "thread.run",
    "thread_id": REF.thread_id,
    "assistant_id": "asst_unit",
    "created_at": 1,
    "started_at": None,
    "expires_at": 601,
    "required_action": None,
    "last_error": None,
    "usage": None,
}


def a_run(status: str, **fields) -> StoredRun:
    return StoredRun(
        REF,
        status,
        {"k": "v"},
        dict(RUN),
        lease_token="lease" if status == "in_progress" else None,
        event_seq=3,
        **fields,
    )


def test_terminal_and_active_statuses_come_from_the_table():
    assert lifecycle.TERMINAL == {"completed", "incomplete", "failed", "cancelled", "expired"}
    assert lifecycle.ACTIVE == {"queued", "in_progress", "requires_action", "cancelling"}
    assert all(not lifecycle.TRANSITIONS[status] for status in lifecycle.TERMINAL)
    assert all(lifecycle.allowed(status, "failed") for status in lifecycle.ACTIVE)  # every run can end


def test_every_built_move_is_in_the_table_and_ends_with_the_runs_own_event():
    working = a_run("in_progress")
    calls = [FunctionCall("call_1", "f", "{}", ("{", "}"))]
    usage = lifecycle.usage(1, 2)
    changes = [
        lifecycle.claimed(a_run("queued"), "token", 10.0, 20),
        lifecycle.required_action(working, DRAFT, calls, step_usage=usage, now=5),
        lifecycle.answered(working, DRAFT, ["Hel", "lo"], truncated=False, step_usage=usage, now=5),
        lifecycle.answered(working, DRAFT, ["Hel"], truncated=True, step_usage=usage, now=5),
        lifecycle.incomplete(working, "max_prompt_tokens", 5),
        lifecycle.failed(working, "server_error", "broken", 5),
        lifecycle.cancel_requested(a_run("requires_action"), enqueue_at=None),
        lifecycle.cancelled(a_run("cancelling"), [], 5),
        lifecycle.expired(a_run("queued"), [], 5),
    ]
    for change in changes:
        assert all(lifecycle.allowed(before, change.to_status) for before in change.from_statuses), change.move
        assert change.event_seq == 3
        assert change.events[-1]["event"] == f"thread.run.{change.to_status}"
        assert change.events[-1]["data"]["status"] == change.to_status
        assert change.events[-1]["data"]["metadata"] == {"k": "v"}


def test_a_move_the_table_lacks_is_refused():
    with pytest.raises(IllegalTransition):
        lifecycle.failed(a_run("completed"), "server_error", "too late", 5)
    with pytest.raises(IllegalTransition):
        lifecycle.cancel_requested(a_run("cancelled"), enqueue_at=None)
    with pytest.raises(IllegalTransition):
        lifecycle.expired(a_run("cancelling"), [], 5)  # a cancel is finished as cancelled, never expired


def test_the_answer_carries_its_message_step_and_events_in_the_official_order():
    working = lifecycle.with_usage(a_run("in_progress"), 3, 4)
    change = lifecycle.answered(working, DRAFT, ["Hel", "lo"], truncated=False, step_usage=lifecycle.usage(3, 4), now=9)
    (message,) = change.messages
    (step,) = change.steps
    assert message.content[0]["text"]["value"] == "Hello"
    assert step["step_details"]["message_creation"]["message_id"] == message.id
    assert [event["event"] for event in change.events] == [
        "thread.run.step.created",
        "thread.run.step.in_progress",
        "thread.message.created",
        "thread.message.in_progress",
        "thread.message.delta",
        "thread.message.delta",
        "thread.message.completed",
        "thread.run.step.completed",
        "thread.run.completed",
    ]
    assert change.run["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    assert change.release_thread and change.lease_token == "lease"


def test_private_state_stays_out_of_the_served_run():
    calls = [FunctionCall("call_1", "f", "{}", ("{}",))]
    working = lifecycle.with_usage(a_run("in_progress"), 3, 4)
    change = lifecycle.required_action(working, DRAFT, calls, step_usage=lifecycle.usage(3, 4), now=5)
    assert change.tool_step_id == change.steps[0]["id"]
    assert change.usage_so_far == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    served = lifecycle.render_run(lifecycle.after(working, change))
    assert served["usage"] is None  # shown only once the run ends
    assert not any(key.startswith("_") for key in served)


def test_changes_cannot_be_altered_after_they_are_built():
    change = lifecycle.failed(a_run("queued"), "server_error", "x", 5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        change.messages = ()  # type: ignore[misc]
    assert isinstance(change.messages, tuple) and isinstance(change.events, tuple)


def test_what_streams_live_is_what_the_committed_move_logs():
    """The events a worker streams while the model writes carry the ids, and the very objects, the
    committed move logs: a client that saw them live is told only the rest."""
    working = a_run("in_progress")
    draft = lifecycle.new_draft(4)
    live = [*lifecycle.message_opening(working, draft), lifecycle.message_delta(draft, "Hel")]
    change = lifecycle.answered(working, draft, ["Hel", "lo"], truncated=False, step_usage=lifecycle.usage(1, 2), now=9)
    assert list(change.events[:4]) == live[:4]  # step created/in_progress, message created/in_progress
    assert change.messages[0].id == draft.message_id and change.steps[0]["id"] == draft.message_step_id
    assert live[4]["data"]["id"] == draft.message_id


def test_text_before_function_calls_is_kept_as_a_message_of_its_own():
    working = a_run("in_progress")
    draft = lifecycle.new_draft(4)
    calls = [FunctionCall("call_1", "f", "{}", ("{}",))]
    change = lifecycle.required_action(
        working, draft, calls, step_usage=lifecycle.usage(1, 2), now=9, text_deltas=["Let me ", "check."]
    )
    (message,) = change.messages
    assert message.content[0]["text"]["value"] == "Let me check." and message.status == "completed"
    assert [step["type"] for step in change.steps] == ["message_creation", "tool_calls"]
    assert change.tool_step_id == draft.tool_step_id
    names = [event["event"] for event in change.events]
    assert names.index("thread.message.completed") < names.index("thread.run.step.delta")
    assert names[-1] == "thread.run.requires_action"
