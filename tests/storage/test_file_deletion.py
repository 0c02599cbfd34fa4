"""Deleting an uploaded file takes it out of every vector store it is in, without a Scan, whatever
races it: an add to a store while it is deleted, a store already gone, an add after it is gone."""

from __future__ import annotations

import pytest

from chalicelib.domain import files, vector_store_files, vector_stores
from chalicelib.domain.errors import NotFound
from chalicelib.ingest import worker
from chalicelib.storage import files as file_records
from chalicelib.storage import vector_store_files as store
from chalicelib.storage.records import ListQuery
from chalicelib.storage.vector_store_files import FileRef

PROJECT = "proj_file_deletion"


def uploaded(name: str = "a.txt", content: bytes = b"alpha beta") -> str:
    return files.create_file(PROJECT, {"purpose": "assistants"}, name, content)["id"]


def a_store() -> str:
    return vector_stores.create_vector_store(PROJECT, {})["id"]


def listed(vector_store_id: str) -> list[str]:
    return [f["id"] for f in vector_store_files.list_files(PROJECT, vector_store_id, ListQuery(), None)["data"]]


def counts(vector_store_id: str) -> dict[str, int]:
    return vector_stores.get_vector_store(PROJECT, vector_store_id)["file_counts"]


def test_a_deleted_file_leaves_its_stores_with_no_scan(aws, dynamodb_calls):
    file_id = uploaded()
    stores = [a_store(), a_store()]
    for vector_store_id in stores:
        vector_store_files.add_file(PROJECT, vector_store_id, {"file_id": file_id})
    worker.ingest(FileRef(PROJECT, stores[0], file_id))  # one completed, one still in progress
    dynamodb_calls.clear()
    files.delete_file(PROJECT, file_id)
    assert "Scan" not in dynamodb_calls.operations
    for vector_store_id in stores:
        assert listed(vector_store_id) == [] and counts(vector_store_id)["total"] == 0
        assert store.load_chunks(FileRef(PROJECT, vector_store_id, file_id)) is None
    with pytest.raises(NotFound):
        files.get_file(PROJECT, file_id)


def test_a_store_added_to_while_the_file_is_deleted_is_left_too(aws, monkeypatch):
    file_id = uploaded()
    first, second = a_store(), a_store()
    vector_store_files.add_file(PROJECT, first, {"file_id": file_id})
    original = file_records.delete
    raced = []

    def added_meanwhile(*args):  # another request adds the file to a second store just before
        if not raced:
            raced.append(vector_store_files.add_file(PROJECT, second, {"file_id": file_id}))
        return original(*args)

    monkeypatch.setattr(file_records, "delete", added_meanwhile)
    assert files.delete_file(PROJECT, file_id)["deleted"] is True
    assert raced and listed(first) == [] and listed(second) == []
    assert counts(second) == {"in_progress": 0, "completed": 0, "failed": 0, "cancelled": 0, "total": 0}


def test_a_file_deleted_before_its_add_lands_is_not_added(aws):
    file_id = uploaded()
    vector_store_id = a_store()
    files.delete_file(PROJECT, file_id)
    adding = vector_store_files.batch_entries({"file_ids": [file_id]})
    with pytest.raises(NotFound) as refused:  # checked before, gone by the time of the write
        vector_store_files.add_files(PROJECT, vector_store_id, adding, {file_id: "a.txt"})
    assert refused.value.param == "file_id"
    assert listed(vector_store_id) == [] and counts(vector_store_id)["total"] == 0
    assert file_records.get(PROJECT, file_id) is None  # the refused add wrote no file record back


def test_a_file_in_a_store_that_was_deleted_is_deleted(aws):
    file_id = uploaded()
    gone, kept = a_store(), a_store()
    for vector_store_id in (gone, kept):
        vector_store_files.add_file(PROJECT, vector_store_id, {"file_id": file_id})
    vector_stores.delete_vector_store(PROJECT, gone)
    assert files.delete_file(PROJECT, file_id)["deleted"] is True
    assert listed(kept) == [] and counts(kept)["total"] == 0
