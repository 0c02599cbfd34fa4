"""DynamoDB cancels concurrent transactions on the same item; storage retries them instead of failing."""

from __future__ import annotations

import pytest
from pynamodb.exceptions import CancellationReason, TransactWriteError, VerboseClientError
from pynamodb.transactions import TransactWrite

from chalicelib.domain.ids import new_id
from chalicelib.storage import assistants
from chalicelib.storage import threads as store
from chalicelib.storage.records import Message, Thread


def conflict() -> TransactWriteError:
    """What pynamodb raises when DynamoDB cancels a transaction because another one held its items."""
    cause = VerboseClientError(
        {"Error": {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"}},
        "TransactWriteItems",
        cancellation_reasons=[CancellationReason(code="TransactionConflict"), CancellationReason(code="None")],
    )
    return TransactWriteError("Failed to write transaction items", cause=cause)


@pytest.fixture
def thread(aws) -> Thread:
    thread = Thread(project_id="proj_conflict", id=new_id("thread"), created_at=1)
    store.create_thread(thread, [])
    return thread


def message_of(thread: Thread) -> Message:
    return Message(
        project_id=thread.project_id, thread_id=thread.id, id=new_id("message"), created_at=1, role="user", content=[]
    )


def test_a_conflicting_append_is_retried_until_it_lands(thread, monkeypatch):
    real_commit = TransactWrite._commit
    failures = iter([True, True])

    def flaky_commit(self):
        if next(failures, False):
            raise conflict()
        return real_commit(self)

    monkeypatch.setattr(TransactWrite, "_commit", flaky_commit)
    message = message_of(thread)
    assert store.add_message(message) is True
    assert store.get_thread_and_message(thread.project_id, thread.id, message.id)[1] == message


def test_endless_conflicts_surface_after_the_retries(thread, monkeypatch):
    def always_conflicting(self):
        raise conflict()

    monkeypatch.setattr(TransactWrite, "_commit", always_conflicting)
    monkeypatch.setattr(store.time, "sleep", lambda seconds: None)
    with pytest.raises(TransactWriteError):
        store.add_message(message_of(thread))


# --- optimistic locking: a modify that lost the race reads again and re-applies ------------------


def test_a_modify_that_lost_the_race_is_applied_again_over_the_winners_change(aws):
    assistants.create("proj_conflict", {"id": "asst_race", "name": None, "description": None})
    applied_to: list[dict] = []

    def set_name(stored: dict) -> dict:
        applied_to.append(dict(stored))
        if len(applied_to) == 1:  # another writer lands between this read and this write
            assistants.modify("proj_conflict", "asst_race", lambda other: dict(other, description="theirs"))
        return dict(stored, name="mine")

    final = assistants.modify("proj_conflict", "asst_race", set_name)
    assert [before["description"] for before in applied_to] == [None, "theirs"]
    assert final is not None and final["name"] == "mine" and final["description"] == "theirs"
    assert assistants.get("proj_conflict", "asst_race") == final


def test_a_modify_always_overtaken_answers_a_conflict_not_an_overwrite(aws, monkeypatch):
    monkeypatch.setattr(assistants, "MODIFY_ATTEMPTS", 3)
    assistants.create("proj_conflict", {"id": "asst_busy", "n": 0})

    def always_overtaken(stored: dict) -> dict:
        assistants.modify("proj_conflict", "asst_busy", lambda other: dict(other, n=other["n"] + 1))
        return dict(stored, mine=True)

    with pytest.raises(assistants.ModifyConflict):
        assistants.modify("proj_conflict", "asst_busy", always_overtaken)
    assert assistants.get("proj_conflict", "asst_busy") == {"id": "asst_busy", "n": 3}


def test_a_modify_of_an_assistant_deleted_meanwhile_finds_none(aws):
    assistants.create("proj_conflict", {"id": "asst_gone"})

    def deleted_meanwhile(stored: dict) -> dict:
        assistants.delete("proj_conflict", "asst_gone")
        return dict(stored, name="too late")

    assert assistants.modify("proj_conflict", "asst_gone", deleted_meanwhile) is None
    assert assistants.get("proj_conflict", "asst_gone") is None
