"""Where a store's chunk vectors live, behind one interface, `VectorIndex`:

- `S3VectorsIndex` (AWS, SPINDLE_VECTOR_BUCKET set): Amazon S3 Vectors, one index per store (AWS's
  advice: a query's cost grows with its index, so one index per tenant's collection), created with the
  store's first vectors and deleted with the store. A vector's key is `<file_id>#<chunk>`; its
  metadata holds `file_id` and the file's attributes (each as `a_<key>`), the only filterable keys.
- `LocalVectorIndex` (`make dev`, tests): each file's vectors as one float32 array in S3 beside its
  chunks, searched in process with numpy (imported on first use; `make dev` installs it, the Lambda
  package does not need it). moto stores S3 Vectors' vectors but does not answer `query_vectors`,
  which is why local mode keeps its own.

Both answer a query with the nearest chunks of the files a search may see (`files`: the store's
completed files that pass its attribute filter); similarity is cosine, as every vector is unit length.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

from chalicelib.config import settings
from chalicelib.search import cache as search_cache
from chalicelib.storage import vector_store_files as store
from chalicelib.storage.vector_store_files import FileRef, StoredFile

S3_VECTORS_BATCH = 500  # vectors per PutVectors / keys per DeleteVectors, the API's limit
S3_VECTORS_TOP_K = 100  # the most QueryVectors returns


class VectorsUnavailable(Exception):
    """The store can hold no vectors (S3 Vectors' 10,000 indexes per bucket are taken): its files are
    searched by keyword alone."""


@dataclass(frozen=True)
class VectorHit:
    file_id: str
    chunk: int
    similarity: float  # cosine, -1 to 1


class VectorIndex(Protocol):
    def put(self, ref: FileRef, vectors: Sequence[Sequence[float]], attributes: Mapping[str, Any] | None) -> None:
        """Store a file's chunk vectors (chunk n is vectors[n])."""
        ...

    def delete_file(self, ref: FileRef, chunk_count: int) -> None: ...

    def delete_store(self, project_id: str, vector_store_id: str) -> None: ...

    def query(
        self,
        project_id: str,
        vector_store_id: str,
        vector: Sequence[float],
        top_k: int,
        files: Sequence[StoredFile],
        filters: Mapping[str, Any] | None,
    ) -> list[VectorHit]:
        """The `top_k` chunks nearest `vector` among `files`, nearest first (`filters`, the search's
        attribute filter, lets an index narrow its own search; `files` is already filtered)."""
        ...


# --- S3 Vectors ---------------------------------------------------------------------------------


def index_name(project_id: str, vector_store_id: str) -> str:
    """A store's index: 3-63 lowercase letters, digits and hyphens, from the project and the store
    (ids are case-sensitive, so they are hashed rather than lowercased)."""
    digest = hashlib.sha256(f"{project_id}/{vector_store_id}".encode()).hexdigest()
    return f"vs-{digest[:48]}"


# The most file ids a query names in its filter: past that, the query asks for more neighbours instead
# and the answer is narrowed here.
MAX_FILTERED_FILES = 100


def files_filter(files: Sequence[StoredFile], narrowed: bool) -> dict[str, Any] | None:
    """The S3 Vectors filter for a search that may see only `files`: none when it sees the whole store
    (`narrowed` False) or too many files to name. Attributes are not vector metadata (they can exceed
    the 2 KB S3 Vectors allows for filterable metadata, and they change without the vectors), so an
    attribute filter reaches S3 Vectors as the files it lets through."""
    if not narrowed or not files or len(files) > MAX_FILTERED_FILES:
        return None
    return {"file_id": {"$in": sorted({file.ref.file_id for file in files})}}


class S3VectorsIndex:
    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def _ensure_index(self, name: str, dimension: int) -> None:
        try:
            self._client.create_index(
                vectorBucketName=self._bucket,
                indexName=name,
                dataType="float32",
                dimension=dimension,
                distanceMetric="cosine",
                metadataConfiguration={"nonFilterableMetadataKeys": ["chunk"]},
            )
        except self._client.exceptions.ConflictException:
            pass  # made with the store's first file
        except self._client.exceptions.ServiceQuotaExceededException as error:
            raise VectorsUnavailable(str(error)) from error

    def put(self, ref: FileRef, vectors: Sequence[Sequence[float]], attributes: Mapping[str, Any] | None) -> None:
        if not vectors:
            return
        name = index_name(ref.project_id, ref.vector_store_id)
        self._ensure_index(name, len(vectors[0]))
        entries = [
            {
                "key": f"{ref.file_id}#{number}",
                "data": {"float32": [float(x) for x in vector]},
                "metadata": {"file_id": ref.file_id, "chunk": number},
            }
            for number, vector in enumerate(vectors)
        ]
        for start in range(0, len(entries), S3_VECTORS_BATCH):
            self._client.put_vectors(
                vectorBucketName=self._bucket, indexName=name, vectors=entries[start : start + S3_VECTORS_BATCH]
            )

    def delete_file(self, ref: FileRef, chunk_count: int) -> None:
        name = index_name(ref.project_id, ref.vector_store_id)
        keys = [f"{ref.file_id}#{number}" for number in range(chunk_count)]
        for start in range(0, len(keys), S3_VECTORS_BATCH):
            try:
                self._client.delete_vectors(
                    vectorBucketName=self._bucket, indexName=name, keys=keys[start : start + S3_VECTORS_BATCH]
                )
            except self._client.exceptions.NotFoundException:
                return  # the store never had vectors

    def delete_store(self, project_id: str, vector_store_id: str) -> None:
        try:
            self._client.delete_index(vectorBucketName=self._bucket, indexName=index_name(project_id, vector_store_id))
        except self._client.exceptions.NotFoundException:
            pass

    def query(
        self,
        project_id: str,
        vector_store_id: str,
        vector: Sequence[float],
        top_k: int,
        files: Sequence[StoredFile],
        filters: Mapping[str, Any] | None,
    ) -> list[VectorHit]:
        request: dict[str, Any] = {
            "vectorBucketName": self._bucket,
            "indexName": index_name(project_id, vector_store_id),
            "topK": max(1, min(top_k, S3_VECTORS_TOP_K)),
            "queryVector": {"float32": [float(x) for x in vector]},
            "returnMetadata": True,
            "returnDistance": True,
        }
        narrowing = files_filter(files, filters is not None)
        if narrowing is not None:
            request["filter"] = narrowing
        elif filters is not None:  # ask for more: some neighbours will be files the filter keeps out
            request["topK"] = S3_VECTORS_TOP_K
        try:
            answer = self._client.query_vectors(**request)
        except self._client.exceptions.NotFoundException:
            return []  # no vectors yet
        visible = {file.ref.file_id for file in files}
        hits = []
        for found in answer.get("vectors", []):
            file_id, _, chunk = found["key"].rpartition("#")
            if file_id in visible and chunk.isdigit():
                hits.append(VectorHit(file_id, int(chunk), 1.0 - float(found.get("distance", 1.0))))
        return hits


# --- in process ---------------------------------------------------------------------------------


class LocalVectorIndex:
    """Vectors kept beside the chunks in S3, searched by a matrix product; each file's loaded once per
    process into the search cache (search/cache.py), beside its text and keyword index."""

    def put(self, ref: FileRef, vectors: Sequence[Sequence[float]], attributes: Mapping[str, Any] | None) -> None:
        import numpy

        store.save_vectors(
            ref, numpy.asarray(vectors, dtype=numpy.float32).tobytes(), len(vectors[0]) if vectors else 0
        )

    def delete_file(self, ref: FileRef, chunk_count: int) -> None:
        """Its vectors are deleted with its chunks (storage's delete_chunks)."""

    def delete_store(self, project_id: str, vector_store_id: str) -> None:
        """Each file's vectors are deleted with its chunks."""

    def _matrix(self, file: StoredFile, needed: set[search_cache.Key]) -> Any:
        import numpy

        wanted = search_cache.key("vectors", file)
        found = search_cache.files.get(wanted)
        if found is not None:
            return found
        loaded = store.load_vectors(file.ref)
        if loaded is None or not loaded[1]:
            return None
        data, dimension = loaded
        matrix = numpy.frombuffer(data, dtype=numpy.float32).reshape(-1, dimension)
        search_cache.files.put(wanted, matrix, matrix.nbytes, needed)
        return matrix

    def query(
        self,
        project_id: str,
        vector_store_id: str,
        vector: Sequence[float],
        top_k: int,
        files: Sequence[StoredFile],
        filters: Mapping[str, Any] | None,
    ) -> list[VectorHit]:
        import numpy

        query = numpy.asarray(vector, dtype=numpy.float32)
        needed = {search_cache.key("vectors", file) for file in files}
        hits: list[VectorHit] = []
        for file in files:
            matrix = self._matrix(file, needed)
            if matrix is None or matrix.shape[1] != query.shape[0]:
                continue
            similarities = matrix @ query
            best = numpy.argsort(-similarities)[:top_k]
            hits += [VectorHit(file.ref.file_id, int(n), float(similarities[n])) for n in best]
        hits.sort(key=lambda hit: hit.similarity, reverse=True)
        return hits[:top_k]


@cache
def configured() -> VectorIndex:
    if settings.vector_bucket:
        import boto3

        client = boto3.client("s3vectors", region_name=settings.region, endpoint_url=settings.s3vectors_endpoint)
        return S3VectorsIndex(client, settings.vector_bucket)
    return LocalVectorIndex()


def in_s3_vectors() -> bool:
    """Whether vectors are kept apart from the chunks (S3 Vectors), to be deleted on their own."""
    return bool(settings.vector_bucket)


def forget_file(ref: FileRef, chunk_count: int) -> None:
    """A file's vectors, once it is out of its store (its chunks, and local vectors, go with it)."""
    if in_s3_vectors() and chunk_count:
        configured().delete_file(ref, chunk_count)


def forget_store(project_id: str, vector_store_id: str) -> None:
    """A deleted store's index."""
    if in_s3_vectors():
        configured().delete_store(project_id, vector_store_id)
