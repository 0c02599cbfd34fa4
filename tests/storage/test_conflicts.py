"""DynamoDB cancels concurrent transactions on the same item; storage retries them instead of failing."""

from __future__ import annotations

import pytest
from pynamodb.exceptions import CancellationReason, TransactWriteError, VerboseClientError
from pynamodb.transactions import TransactWrite

from chalicelib.domain.ids import new_id
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
