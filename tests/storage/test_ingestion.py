"""Ingestion in-process: claims are exclusive, a dead worker's file is taken again after its lease,
a file that keeps failing ends `failed`, and the store's counts move with every status change."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from chalicelib.domain import files, vector_store_files, vector_stores
from chalicelib.ingest import worker
from chalicelib.storage import vector_store_files as store
from chalicelib.storage.records import ListQuery
from chalicelib.storage.vector_store_files import FileRef

PROJECT = "proj_ingestion"


def a_store_with(*contents: tuple[str, bytes]) -> tuple[str, list[str]]:
    vector_store = vector_stores.create_vector_store(PROJECT, {})
    ids = []
    for name, content in contents:
        file = files.create_file(PROJECT, {"purpose": "assistants"}, name, content)
        vector_store_files.add_file(PROJECT, vector_store["id"], {"file_id": file["id"]})
        ids.append(file["id"])
    return vector_store["id"], ids


def counts(vector_store_id: str) -> dict[str, int]:
    return vector_stores.get_vector_store(PROJECT, vector_store_id)["file_counts"]


def test_two_workers_never_ingest_one_file(aws):
    vector_store_id, (file_id,) = a_store_with(("a.txt", b"alpha beta"))
    ref = FileRef(PROJECT, vector_store_id, file_id)
    now = time.time()
    with ThreadPoolExecutor(8) as pool:
        claims = list(pool.map(lambda _: store.claim(ref, now, 60), range(8)))
    assert sum(claim is not None for claim in claims) == 1
    assert worker.ingest(ref) is False  # claimed by another: not due until its lease ends
    (claimed,) = [claim for claim in claims if claim is not None]
    assert store.finish(claimed, "completed", 10, None)
    assert counts(vector_store_id) == {"in_progress": 0, "completed": 1, "failed": 0, "cancelled": 0, "total": 1}
    assert not store.finish(claimed, "completed", 10, None)  # only once


def test_a_dead_workers_file_is_taken_again_after_its_lease_then_fails_after_max_attempts(aws, monkeypatch):
    vector_store_id, (file_id,) = a_store_with(("a.txt", b"alpha"))
    ref = FileRef(PROJECT, vector_store_id, file_id)
    monkeypatch.setattr(worker, "LEASE_SECONDS", 0.05)

    def crash(*args, **kwargs):
        raise RuntimeError("the worker died here")

    monkeypatch.setattr(worker, "extract_text", crash)
    for _ in range(worker.MAX_ATTEMPTS):
        assert worker.ingest(ref) is False
        assert store.get(ref).status == "in_progress"
        time.sleep(0.06)  # the lease runs out: due again
    assert worker.ingest(ref) is True
    failed = store.get(ref)
    assert failed.status == "failed" and failed.last_error["code"] == "server_error"
    assert counts(vector_store_id)["failed"] == 1 and counts(vector_store_id)["in_progress"] == 0
    assert store.due_files(time.time() + 3600) == []  # out of the pending index


def test_counts_hold_while_files_are_added_ingested_and_removed_at_once(aws):
    contents = [(f"f{number}.txt", f"text {number}".encode()) for number in range(12)]
    vector_store_id, ids = a_store_with(*contents)
    assert counts(vector_store_id)["in_progress"] == 12
    with ThreadPoolExecutor(4) as pool:
        done = sum(pool.map(lambda _: worker.ingest_due(seconds=5), range(4)))
    assert done == 12
    assert counts(vector_store_id) == {"in_progress": 0, "completed": 12, "failed": 0, "cancelled": 0, "total": 12}
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda file_id: vector_store_files.remove_file(PROJECT, vector_store_id, file_id), ids[:6]))
    assert counts(vector_store_id)["completed"] == 6
    assert vector_stores.get_vector_store(PROJECT, vector_store_id)["usage_bytes"] == sum(
        len(content) for _, content in contents[6:]
    )


def test_a_file_removed_while_it_is_ingested_leaves_no_chunks(aws, monkeypatch):
    vector_store_id, (file_id,) = a_store_with(("a.txt", b"alpha"))
    ref = FileRef(PROJECT, vector_store_id, file_id)
    original = store.save_chunks

    def removed_first(*args):  # the file is removed just before its chunks are written
        vector_store_files.remove_file(PROJECT, vector_store_id, file_id)
        return original(*args)

    monkeypatch.setattr(store, "save_chunks", removed_first)
    assert worker.ingest(ref) is False
    assert store.get(ref) is None and store.load_chunks(ref) is None
    assert counts(vector_store_id)["total"] == 0


def test_a_batch_counts_its_files_and_a_cancel_takes_them_from_a_worker(aws, monkeypatch):
    vector_store = vector_stores.create_vector_store(PROJECT, {})
    ids = [files.create_file(PROJECT, {"purpose": "assistants"}, f"f{n}.txt", b"text")["id"] for n in range(4)]
    batch = vector_store_files.create_batch(PROJECT, vector_store["id"], {"file_ids": ids})
    assert batch["file_counts"]["in_progress"] == 4
    first = FileRef(PROJECT, vector_store["id"], ids[0])
    assert worker.ingest(first) is True  # one done before the cancel

    original = store.save_chunks

    def cancelled_meanwhile(*args):  # a worker has the second file when the batch is cancelled
        vector_store_files.cancel_batch(PROJECT, vector_store["id"], batch["id"])
        return original(*args)

    monkeypatch.setattr(store, "save_chunks", cancelled_meanwhile)
    second = FileRef(PROJECT, vector_store["id"], ids[1])
    assert worker.ingest(second) is False
    assert store.get(second).status == "cancelled" and store.load_chunks(second) is None
    after = vector_store_files.get_batch(PROJECT, vector_store["id"], batch["id"])
    assert after["status"] == "cancelled"
    assert after["file_counts"] == {"in_progress": 0, "completed": 1, "failed": 0, "cancelled": 3, "total": 4}
    assert counts(vector_store["id"]) == after["file_counts"]
    assert store.due_files(time.time() + 3600) == []


def test_on_aws_an_added_file_is_handed_to_the_ingest_function_at_once(aws, monkeypatch):
    """`SPINDLE_RUN_DRIVER=stepfunctions`: adding a file invokes the `ingest_files` Lambda (moto's
    Lambda, whose invocation runs app.py's real handler here), so the file is ingested without waiting
    for the scheduled sweep."""
    import dataclasses
    import json

    import boto3
    from moto.awslambda.models import LambdaBackend

    from chalicelib.config import settings
    from chalicelib.storage import drivers

    invocations = []

    def invoke(self, function_name, qualifier, body, headers, response_headers):
        from app import ingest_files

        invocations.append((function_name, headers.get("X-Amz-Invocation-Type")))
        return json.dumps(ingest_files(json.loads(body or b"{}"), None)).encode()

    monkeypatch.setattr(LambdaBackend, "invoke", invoke)  # no Docker: the handler runs in this process
    role = boto3.client("iam").create_role(RoleName="ingest", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    boto3.client("lambda").create_function(
        FunctionName="ingest_files",
        Runtime="python3.12",
        Role=role,
        Handler="app.ingest_files",
        Code={"ZipFile": b"not used by the simple backend"},
    )
    deployed = dataclasses.replace(settings, run_driver="stepfunctions", ingest_function="ingest_files")
    monkeypatch.setattr(drivers, "settings", deployed)
    drivers._lambda.cache_clear()
    try:
        vector_store_id, (file_id,) = a_store_with(("a.txt", b"alpha"))
    finally:
        drivers._lambda.cache_clear()  # the client belongs to this test's mock
    assert invocations == [("ingest_files", "Event")]
    assert store.get(FileRef(PROJECT, vector_store_id, file_id)).status == "completed"
    assert counts(vector_store_id)["completed"] == 1


def test_two_attachments_racing_give_a_thread_one_store(aws):
    from chalicelib.domain import threads
    from chalicelib.storage import vector_stores as store_records

    thread = threads.create_thread(PROJECT, {})
    ids = [files.create_file(PROJECT, {"purpose": "assistants"}, f"n{n}.txt", b"note")["id"] for n in range(2)]
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda file_id: vector_store_files.attach_to_thread(PROJECT, thread["id"], [file_id]), ids))
    (store_id,) = threads.get_thread(PROJECT, thread["id"])["tool_resources"]["file_search"]["vector_store_ids"]
    assert {f["id"] for f in vector_store_files.list_files(PROJECT, store_id, ListQuery(), None)["data"]} == set(ids)
    # the loser's store, if there was one, is gone: the project holds the one store
    assert [s.id for s in store_records.list_page(PROJECT, ListQuery(limit=100)).items] == [store_id]


def test_a_thread_whose_store_was_deleted_gets_a_new_one(aws):
    from chalicelib.domain import threads

    thread = threads.create_thread(PROJECT, {})
    first = files.create_file(PROJECT, {"purpose": "assistants"}, "a.txt", b"a")["id"]
    vector_store_files.attach_to_thread(PROJECT, thread["id"], [first])
    (old,) = threads.get_thread(PROJECT, thread["id"])["tool_resources"]["file_search"]["vector_store_ids"]
    vector_stores.delete_vector_store(PROJECT, old)
    second = files.create_file(PROJECT, {"purpose": "assistants"}, "b.txt", b"b")["id"]
    vector_store_files.attach_to_thread(PROJECT, thread["id"], [second])
    (new,) = threads.get_thread(PROJECT, thread["id"])["tool_resources"]["file_search"]["vector_store_ids"]
    assert new != old and vector_stores.get_vector_store(PROJECT, new)["file_counts"]["total"] == 1


def test_a_file_whose_store_is_gone_leaves_the_queue_at_its_next_claim(aws):
    """A store DELETE cut off after its item went (a crash before its files were removed): the file
    left in progress is not claimed again and again; its next claim removes it, with its chunks."""
    from chalicelib.storage import vector_stores as store_records

    vector_store_id, (file_id,) = a_store_with(("a.txt", b"alpha"))
    ref = FileRef(PROJECT, vector_store_id, file_id)
    store.save_chunks(ref, store.ParsedFile("alpha", [(0, 5, 1)], {}))  # an ingestion's leftovers
    assert store_records.delete(PROJECT, vector_store_id)  # ... and here the request died
    assert worker.ingest(ref) is False
    assert store.get(ref) is None and store.load_chunks(ref) is None
    assert store.due_files(time.time() + 3600) == []


def test_a_file_whose_store_goes_while_it_is_ingested_leaves_the_queue(aws, monkeypatch):
    from chalicelib.storage import vector_stores as store_records

    vector_store_id, (file_id,) = a_store_with(("a.txt", b"alpha"))
    ref = FileRef(PROJECT, vector_store_id, file_id)
    original = store.save_chunks

    def store_deleted_meanwhile(*args):  # its store item goes, and the request deleting it dies
        store_records.delete(PROJECT, vector_store_id)
        return original(*args)

    monkeypatch.setattr(store, "save_chunks", store_deleted_meanwhile)
    assert worker.ingest(ref) is False
    assert store.get(ref) is None and store.load_chunks(ref) is None
    assert store.due_files(time.time() + 3600) == []
