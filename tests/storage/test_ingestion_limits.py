"""What one file may take of ingestion: reading it is bounded in time and pages (it then ends `failed`
with `last_error`), its lease outlasts that bound, an AWS invocation starts only files it can finish,
and one project's slow files hold up neither another project's files nor its own next one."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator

import pytest

from chalicelib.config import IngestLimits, settings
from chalicelib.domain import files, vector_store_files, vector_stores
from chalicelib.ingest import pdf, text, worker
from chalicelib.ingest.text import InvalidFile
from chalicelib.local.poller import PROJECT_INGEST_WORKERS, RunPoller
from chalicelib.storage import vector_store_files as store
from chalicelib.storage.vector_store_files import FileRef
from tests.pdf_maker import make_pdf, make_slow_pdf

A, B = "proj_limits_a", "proj_limits_b"


def added(project_id: str, name: str, content: bytes, vector_store_id: str | None = None) -> FileRef:
    vector_store_id = vector_store_id or vector_stores.create_vector_store(project_id, {})["id"]
    file = files.create_file(project_id, {"purpose": "assistants"}, name, content)
    vector_store_files.add_file(project_id, vector_store_id, {"file_id": file["id"]})
    return FileRef(project_id, vector_store_id, file["id"])


@pytest.fixture
def limits(monkeypatch) -> Iterator[None]:
    """A one-second time limit and a three-page limit for reading a file."""
    limited = dataclasses.replace(settings, ingest_limits=IngestLimits(file_seconds=1.0, max_pages=3))
    monkeypatch.setattr(pdf, "settings", limited)
    yield


def test_a_pdf_that_reads_longer_than_the_limit_fails_and_frees_its_worker(aws, limits):
    slow = added(A, "slow.pdf", make_slow_pdf(pages=3, draws=12000))  # some ten seconds to read
    started = time.monotonic()
    assert worker.ingest(slow) is True
    assert time.monotonic() - started < 15  # the limit and a child's start, however loaded the machine
    failed = store.get(slow)
    assert failed is not None and failed.status == "failed"
    assert failed.last_error is not None and failed.last_error["code"] == "invalid_file"
    assert "1 s" in failed.last_error["message"] and "SPINDLE_INGEST_FILE_SECONDS" in failed.last_error["message"]
    assert store.due_files(time.time() + 3600) == []


def test_a_pdf_with_more_pages_than_the_limit_fails(aws, limits):
    long = added(A, "long.pdf", make_pdf(*[[f"page {number}"] for number in range(4)]))
    short = added(A, "short.pdf", make_pdf(*[[f"page {number}"] for number in range(3)]))
    assert worker.ingest(long) and worker.ingest(short)
    failed = store.get(long)
    assert failed is not None and failed.status == "failed" and failed.last_error is not None
    assert failed.last_error["code"] == "invalid_file"
    assert "4 pages" in failed.last_error["message"] and "SPINDLE_INGEST_MAX_PAGES" in failed.last_error["message"]
    read = store.get(short)
    assert read is not None and read.status == "completed"


def test_the_lease_outlasts_what_a_file_may_take(aws):
    ref = added(A, "a.txt", b"alpha")
    now = time.time()
    assert store.claim(ref, now, worker.LEASE_SECONDS) is not None
    may_take = settings.ingest_limits.file_seconds + worker.STORING_SECONDS
    assert store.claim(ref, now + may_take, worker.LEASE_SECONDS) is None  # no second worker meanwhile
    assert store.claim(ref, now + worker.LEASE_SECONDS + 1, worker.LEASE_SECONDS) is not None  # a dead one's


def test_an_invocation_starts_only_files_it_can_finish(aws):
    ref = added(A, "a.txt", b"alpha")
    may_take = settings.ingest_limits.file_seconds + worker.STORING_SECONDS
    assert worker.ingest_in_invocation(may_take - 1) == 0
    untouched = store.get(ref)
    assert untouched is not None and (untouched.status, untouched.attempts) == ("in_progress", 0)
    assert worker.ingest_in_invocation(may_take + 30) == 1


def test_files_are_taken_in_turns_across_projects(aws):
    a_files = [added(A, f"a{number}.txt", b"alpha") for number in range(3)]
    b_file = added(B, "b.txt", b"beta")
    assert [ref.project_id for ref in worker.due_in_turns(time.time())] == [A, B, A, A]
    assert worker.due_in_turns(time.time())[:2] == [a_files[0], b_file]


@pytest.fixture
def hostile_pdfs(monkeypatch) -> Iterator[threading.Event]:
    """PDFs whose reading holds its worker until the test lets it go (then they fail)."""
    release = threading.Event()

    def held(data: bytes) -> str:
        release.wait(60)
        raise InvalidFile("held by the test")

    monkeypatch.setitem(text.EXTRACTORS, "pdf", held)
    yield release
    release.set()


@pytest.fixture
def poller(aws) -> Iterator[RunPoller]:
    """The dev server's poller, in this process."""
    running = RunPoller()
    thread = threading.Thread(target=running.run_forever, daemon=True)
    thread.start()
    yield running
    running.stop()
    thread.join(10)


def status(ref: FileRef) -> str | None:
    stored = store.get(ref)
    return None if stored is None else stored.status


def wait_for(condition, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_one_projects_slow_files_hold_up_neither_another_project_nor_its_own_next_file(hostile_pdfs, poller):
    held = [added(A, f"slow{number}.pdf", b"%PDF-") for number in range(PROJECT_INGEST_WORKERS + 1)]
    theirs = added(B, "note.txt", b"a small note")
    assert wait_for(lambda: status(theirs) == "completed")
    assert [status(ref) for ref in held] == ["in_progress"] * len(held)  # all still held

    hostile_pdfs.set()  # the held ones fail; then one project alone: its next file is not held up
    assert wait_for(lambda: all(status(ref) == "failed" for ref in held))
    hostile_pdfs.clear()
    slow = added(A, "slow.pdf", b"%PDF-")
    own_next = added(A, "next.txt", b"the next file", slow.vector_store_id)
    assert wait_for(lambda: status(own_next) == "completed")
    assert status(slow) == "in_progress"
    hostile_pdfs.set()
    assert wait_for(lambda: status(slow) == "failed")
