"""Semantic search in-process: chunk vectors made at ingestion, kept in the local index or in Amazon S3
Vectors, fused with keyword search; one store never mixes two embedding models; deleting a file or a
store deletes its vectors.

S3 Vectors is played by `FakeS3Vectors`: moto keeps vectors but does not answer `query_vectors`, so the
fake answers it, and checks every request and every answer against botocore's own `s3vectors` service
model (the shapes boto3 sends and parses), so the index cannot call it in a way the real one refuses."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator

from chalicelib.domain import files, vector_store_files, vector_stores
from chalicelib.ingest import worker
from chalicelib.search import embeddings, retrieval, vectors
from chalicelib.search.vectors import LocalVectorIndex, S3VectorsIndex, files_filter, index_name
from chalicelib.storage import vector_store_files as store
from chalicelib.storage.vector_store_files import FileRef
from tests.standin_model import toy_embedding

PROJECT = "proj_vectors"
CARS = "The car needs new tyres every forty thousand kilometres."
BIKES = "The bicycle chain should be oiled every month."


class ToyEmbedder:
    def __init__(self, model: str = "openai:toy-embed", dimensions: int = 64) -> None:
        self.model = model
        self.dimensions = dimensions
        self.calls = 0

    def embed(self, texts):
        self.calls += 1
        return [embeddings._unit(toy_embedding(text)[: self.dimensions], "toy") for text in texts]


# --- a fake of S3 Vectors that keeps to boto3's shapes -----------------------------------------------

_MODEL = botocore.session.get_session().get_service_model("s3vectors")


class _ClientError(Exception):
    pass


class FakeS3Vectors:
    """One vector bucket's indexes; each call checked against botocore's shapes both ways."""

    class exceptions:  # noqa: N801 - boto3's attribute name
        class ConflictException(_ClientError):
            pass

        class NotFoundException(_ClientError):
            pass

        class ServiceQuotaExceededException(_ClientError):
            pass

    def __init__(self, bucket: str, max_indexes: int = 10_000) -> None:
        self.bucket = bucket
        self.max_indexes = max_indexes
        self.indexes: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []

    def _checked(self, operation: str, params: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
        shape = _MODEL.operation_model(operation)
        report = ParamValidator().validate(params, shape.input_shape)
        assert not report.has_errors(), report.generate_report()
        if shape.output_shape is not None:
            report = ParamValidator().validate(answer, shape.output_shape)
            assert not report.has_errors(), report.generate_report()
        self.calls.append(operation)
        return answer

    def _index(self, params: dict[str, Any]) -> dict[str, Any]:
        assert params["vectorBucketName"] == self.bucket
        if params["indexName"] not in self.indexes:
            raise self.exceptions.NotFoundException(params["indexName"])
        return self.indexes[params["indexName"]]

    def create_index(self, **params):
        arn = f"arn:aws:s3vectors:us-east-1:123456789012:bucket/{self.bucket}/index/{params['indexName']}"
        self._checked("CreateIndex", params, {"indexArn": arn})
        if params["indexName"] in self.indexes:
            raise self.exceptions.ConflictException(params["indexName"])
        if len(self.indexes) >= self.max_indexes:  # AWS: 10,000 indexes per vector bucket
            raise self.exceptions.ServiceQuotaExceededException("indexes per vector bucket")
        self.indexes[params["indexName"]] = {"dimension": params["dimension"], "vectors": {}}
        return {"indexArn": arn}

    def put_vectors(self, **params):
        self._checked("PutVectors", params, {})
        index = self._index(params)
        assert len(params["vectors"]) <= 500
        for vector in params["vectors"]:
            assert len(vector["data"]["float32"]) == index["dimension"]
            index["vectors"][vector["key"]] = vector
        return {}

    def delete_vectors(self, **params):
        self._checked("DeleteVectors", params, {})
        for key in params["keys"]:
            self._index(params)["vectors"].pop(key, None)
        return {}

    def delete_index(self, **params):
        self._checked("DeleteIndex", params, {})
        self._index(params)
        del self.indexes[params["indexName"]]
        return {}

    def query_vectors(self, **params):
        index = self._index(params)
        query = params["queryVector"]["float32"]
        scored = []
        for vector in index["vectors"].values():
            if "filter" in params and not _passes(params["filter"], vector["metadata"]):
                continue
            data = vector["data"]["float32"]
            cosine = sum(a * b for a, b in zip(query, data, strict=True)) / (
                math.sqrt(sum(a * a for a in query)) * math.sqrt(sum(b * b for b in data))
            )
            scored.append((1.0 - cosine, vector))
        scored.sort(key=lambda item: item[0])
        found = [
            {"key": vector["key"], "distance": distance, "metadata": vector["metadata"]}
            for distance, vector in scored[: params["topK"]]
        ]
        return self._checked("QueryVectors", params, {"vectors": found, "distanceMetric": "cosine"})


def _passes(filter_: dict[str, Any], metadata: dict[str, Any]) -> bool:
    """The one filter the index writes: file_id in a list."""
    assert list(filter_) == ["file_id"] and list(filter_["file_id"]) == ["$in"], filter_
    return metadata["file_id"] in filter_["file_id"]["$in"]


# --- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture
def toy(monkeypatch) -> ToyEmbedder:
    embedder = ToyEmbedder()
    monkeypatch.setattr(embeddings, "configured", lambda: embedder)
    return embedder


@pytest.fixture(params=["local", "s3vectors"])
def index(request, monkeypatch, aws):
    """Each test runs on the local index and on S3 Vectors (the fake)."""
    if request.param == "local":
        chosen = LocalVectorIndex()
    else:
        chosen = S3VectorsIndex(FakeS3Vectors("spindle-vectors"), "spindle-vectors")
        monkeypatch.setattr(vectors, "settings", dataclasses.replace(vectors.settings, vector_bucket="spindle-vectors"))
    monkeypatch.setattr(vectors, "configured", lambda: chosen)
    return chosen


def a_store(*contents: tuple[str, str, dict | None]) -> tuple[str, dict[str, str]]:
    created = vector_stores.create_vector_store(PROJECT, {})
    ids = {}
    for name, text, attributes in contents:
        file = files.create_file(PROJECT, {"purpose": "assistants"}, name, text.encode())
        body: dict[str, Any] = {"file_id": file["id"]}
        if attributes is not None:
            body["attributes"] = attributes
        vector_store_files.add_file(PROJECT, created["id"], body)
        assert worker.ingest(FileRef(PROJECT, created["id"], file["id"])) is True
        ids[name] = file["id"]
    return created["id"], ids


def search(vector_store_id: str, query: str, **kwargs) -> list[retrieval.Hit]:
    stores = vector_stores.searchable_stores(PROJECT, [vector_store_id])
    return retrieval.search(stores, [query], max_results=kwargs.pop("max_results", 10), **kwargs)


# --- tests ------------------------------------------------------------------------------------------


def test_a_synonym_is_found_by_its_vector_and_scores_are_fused(toy, index):
    vector_store_id, ids = a_store(("cars.txt", CARS, None), ("bikes.txt", BIKES, None))
    hits = search(vector_store_id, "automobile")
    assert hits[0].file_id == ids["cars.txt"] and 0 < hits[0].score <= 1
    both = search(vector_store_id, "car tyres")
    assert both[0].file_id == ids["cars.txt"] and both[0].score > both[1].score
    assert vector_stores.get_vector_store(PROJECT, vector_store_id)["status"] == "completed"
    recorded = store_record(vector_store_id)
    assert (recorded.embedding_model, recorded.embedding_dimensions) == ("openai:toy-embed", 64)


def store_record(vector_store_id: str):
    from chalicelib.storage import vector_stores as records

    return records.get(PROJECT, vector_store_id)


def test_filters_narrow_vector_results_too(toy, index):
    vector_store_id, ids = a_store(
        ("cars.txt", CARS, {"kind": "car", "year": 2024}), ("bikes.txt", BIKES, {"kind": "bike", "year": 2020})
    )
    kept = {
        "type": "and",
        "filters": [{"type": "eq", "key": "kind", "value": "bike"}, {"type": "ne", "key": "x", "value": 1}],
    }
    assert [hit.file_id for hit in search(vector_store_id, "automobile", filters=kept)] == [ids["bikes.txt"]]
    newer = {"type": "gte", "key": "year", "value": 2021}
    assert [hit.file_id for hit in search(vector_store_id, "automobile", filters=newer)] == [ids["cars.txt"]]


def test_deleting_a_file_or_the_store_deletes_its_vectors(toy, index):
    vector_store_id, ids = a_store(("cars.txt", CARS, None), ("bikes.txt", BIKES, None))
    vector_store_files.remove_file(PROJECT, vector_store_id, ids["cars.txt"])
    assert all(hit.file_id != ids["cars.txt"] for hit in search(vector_store_id, "automobile"))
    if isinstance(index, S3VectorsIndex):
        fake = index._client
        assert set(fake.indexes[index_name(PROJECT, vector_store_id)]["vectors"]) == {f"{ids['bikes.txt']}#0"}
        vector_stores.delete_vector_store(PROJECT, vector_store_id)
        assert fake.indexes == {}
    else:
        assert store.load_vectors(FileRef(PROJECT, vector_store_id, ids["cars.txt"])) is None
        vector_stores.delete_vector_store(PROJECT, vector_store_id)
        assert store.load_vectors(FileRef(PROJECT, vector_store_id, ids["bikes.txt"])) is None


def test_a_store_never_mixes_two_embedding_models(toy, index, monkeypatch):
    vector_store_id, _ = a_store(("cars.txt", CARS, None))
    other = ToyEmbedder("openai:other-embed", 32)
    monkeypatch.setattr(embeddings, "configured", lambda: other)
    file = files.create_file(PROJECT, {"purpose": "assistants"}, "bikes.txt", BIKES.encode())
    vector_store_files.add_file(PROJECT, vector_store_id, {"file_id": file["id"]})
    assert worker.ingest(FileRef(PROJECT, vector_store_id, file["id"])) is True
    failed = vector_store_files.get_file(PROJECT, vector_store_id, file["id"])
    assert failed["status"] == "failed" and failed["last_error"]["code"] == "server_error"
    assert "openai:toy-embed" in failed["last_error"]["message"]
    # and its searches use keywords alone (the query cannot be embedded as the store's vectors were)
    assert search(vector_store_id, "automobile") == []
    assert [hit.filename for hit in search(vector_store_id, "car")] == ["cars.txt"]


def test_an_embeddings_outage_leaves_keyword_search(toy, index, monkeypatch):
    vector_store_id, ids = a_store(("cars.txt", CARS, None))

    def down(texts):
        raise embeddings.EmbeddingError("down")

    monkeypatch.setattr(toy, "embed", down)
    assert [hit.file_id for hit in search(vector_store_id, "car")] == [ids["cars.txt"]]


def test_a_narrowed_search_names_its_files_to_s3_vectors_and_a_full_quota_leaves_keywords(toy, monkeypatch, aws):
    fake = FakeS3Vectors("spindle-vectors", max_indexes=1)
    index = S3VectorsIndex(fake, "spindle-vectors")
    monkeypatch.setattr(vectors, "configured", lambda: index)
    monkeypatch.setattr(vectors, "settings", dataclasses.replace(vectors.settings, vector_bucket="spindle-vectors"))
    first, ids = a_store(("cars.txt", CARS, {"kind": "car"}), ("bikes.txt", BIKES, {"kind": "bike"}))
    visible = store.completed_files(PROJECT, first)
    assert files_filter(visible, narrowed=False) is None
    assert files_filter(visible[:1], narrowed=True) == {"file_id": {"$in": [visible[0].ref.file_id]}}
    assert files_filter(visible * 60, narrowed=True) is None  # too many to name: asked for more instead
    cars = {"type": "eq", "key": "kind", "value": "car"}
    assert [hit.file_id for hit in search(first, "automobile", filters=cars)] == [ids["cars.txt"]]
    # the bucket holds its one index: a second store's files are ingested and searched by keyword
    second, more = a_store(("cars.txt", CARS, None))
    assert len(fake.indexes) == 1
    assert vector_store_files.get_file(PROJECT, second, more["cars.txt"])["status"] == "completed"
    assert search(second, "automobile") == [] and [hit.filename for hit in search(second, "car")] == ["cars.txt"]


def test_expiry_counts_from_the_last_search_and_an_expired_store_is_not_searched(aws):
    import time as clock

    from chalicelib.domain.errors import InvalidRequest
    from chalicelib.storage import vector_stores as records

    created = vector_stores.create_vector_store(PROJECT, {"expires_after": {"anchor": "last_active_at", "days": 1}})
    file = files.create_file(PROJECT, {"purpose": "assistants"}, "cars.txt", CARS.encode())
    vector_store_files.add_file(PROJECT, created["id"], {"file_id": file["id"]})
    assert worker.ingest(FileRef(PROJECT, created["id"], file["id"])) is True
    now = int(clock.time())
    records.modify(PROJECT, created["id"], {"last_active_at": now - 3600})  # last used an hour ago
    vector_stores.search_vector_store(PROJECT, created["id"], {"query": "car"})
    touched = vector_stores.get_vector_store(PROJECT, created["id"])
    assert touched["last_active_at"] >= now and touched["expires_at"] == touched["last_active_at"] + 86400

    records.modify(PROJECT, created["id"], {"last_active_at": now - 2 * 86400})  # idle for two days
    assert vector_stores.get_vector_store(PROJECT, created["id"])["status"] == "expired"
    with pytest.raises(InvalidRequest) as refused:
        vector_stores.search_vector_store(PROJECT, created["id"], {"query": "car"})
    assert refused.value.code == "vector_store_expired"
    assert vector_stores.searchable_stores(PROJECT, [created["id"]]) == []  # a run does not search it
