"""The local poller at rest: it sleeps until the soonest queued run or file is due (no fixed polling),
at most MAX_IDLE_SECONDS, and a short wait only while something due waits for a busy worker."""

from __future__ import annotations

import time

import pytest

from chalicelib.local.poller import IDLE_WAIT_SECONDS, MAX_IDLE_SECONDS, RunPoller
from chalicelib.storage import runs as store
from chalicelib.storage.records import RunRef


@pytest.fixture
def poller(aws):
    running = RunPoller(workers=1)
    yield running
    running.stop()


def test_with_nothing_queued_the_poller_sleeps_its_longest(poller):
    assert poller._until_next_due() == MAX_IDLE_SECONDS


def test_it_sleeps_until_the_soonest_entry_is_due(poller):
    ref = RunRef.parse("proj_a#thread_x#run_y")
    store.enqueue(ref, time.time() + 3.0)
    store.enqueue(ref, time.time() + 60.0)
    assert 2.0 < poller._until_next_due() <= 3.0
    store.enqueue(ref, time.time() + 600.0)
    assert poller._until_next_due() <= 3.0


def test_an_entry_due_already_gets_a_short_wait_not_a_spin(poller):
    store.enqueue(RunRef.parse("proj_a#thread_x#run_z"), time.time() - 1.0)
    assert poller._until_next_due() == IDLE_WAIT_SECONDS
