"""/v1/vector_stores: the stores (create, list, retrieve, modify, delete) and their files."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.domain import vector_store_files, vector_stores
from chalicelib.domain.pagination import parse_list_query
from chalicelib.http.routing import Call, api_route

blueprint = Blueprint(__name__)

VECTOR_STORE = "/v1/vector_stores/{vector_store_id}"


@api_route(blueprint, "/v1/vector_stores", "POST")
def create_vector_store(call: Call) -> dict[str, Any]:
    return vector_store_files.create_vector_store(call.project_id, call.json(required=True))


@api_route(blueprint, "/v1/vector_stores", "GET")
def list_vector_stores(call: Call) -> dict[str, Any]:
    return vector_stores.list_vector_stores(call.project_id, parse_list_query(call.query(), "vector_store"))


@api_route(blueprint, VECTOR_STORE, "GET")
def get_vector_store(call: Call, vector_store_id: str) -> dict[str, Any]:
    return vector_stores.get_vector_store(call.project_id, vector_store_id)


@api_route(blueprint, VECTOR_STORE, "POST")
def modify_vector_store(call: Call, vector_store_id: str) -> dict[str, Any]:
    return vector_stores.modify_vector_store(call.project_id, vector_store_id, call.json(required=True))


@api_route(blueprint, VECTOR_STORE, "DELETE")
def delete_vector_store(call: Call, vector_store_id: str) -> dict[str, Any]:
    return vector_stores.delete_vector_store(call.project_id, vector_store_id)


@api_route(blueprint, VECTOR_STORE + "/search", "POST")
def search_vector_store(call: Call, vector_store_id: str) -> dict[str, Any]:
    return vector_stores.search_vector_store(call.project_id, vector_store_id, call.json(required=True))


# --- a store's files ----------------------------------------------------------------------------

FILES = VECTOR_STORE + "/files"
FILE = FILES + "/{file_id}"


@api_route(blueprint, FILES, "POST")
def create_vector_store_file(call: Call, vector_store_id: str) -> dict[str, Any]:
    return vector_store_files.add_file(call.project_id, vector_store_id, call.json(required=True))


@api_route(blueprint, FILES, "GET")
def list_vector_store_files(call: Call, vector_store_id: str) -> dict[str, Any]:
    params = call.query()
    query = parse_list_query(params, "file")
    return vector_store_files.list_files(call.project_id, vector_store_id, query, params.get("filter"))


@api_route(blueprint, FILE, "GET")
def get_vector_store_file(call: Call, vector_store_id: str, file_id: str) -> dict[str, Any]:
    return vector_store_files.get_file(call.project_id, vector_store_id, file_id)


@api_route(blueprint, FILE, "POST")
def update_vector_store_file_attributes(call: Call, vector_store_id: str, file_id: str) -> dict[str, Any]:
    return vector_store_files.update_attributes(call.project_id, vector_store_id, file_id, call.json(required=True))


@api_route(blueprint, FILE, "DELETE")
def delete_vector_store_file(call: Call, vector_store_id: str, file_id: str) -> dict[str, Any]:
    return vector_store_files.remove_file(call.project_id, vector_store_id, file_id)


@api_route(blueprint, FILE + "/content", "GET")
def retrieve_vector_store_file_content(call: Call, vector_store_id: str, file_id: str) -> dict[str, Any]:
    return vector_store_files.file_content(call.project_id, vector_store_id, file_id)


# --- file batches -------------------------------------------------------------------------------

BATCHES = VECTOR_STORE + "/file_batches"
BATCH = BATCHES + "/{batch_id}"


@api_route(blueprint, BATCHES, "POST")
def create_vector_store_file_batch(call: Call, vector_store_id: str) -> dict[str, Any]:
    return vector_store_files.create_batch(call.project_id, vector_store_id, call.json(required=True))


@api_route(blueprint, BATCH, "GET")
def get_vector_store_file_batch(call: Call, vector_store_id: str, batch_id: str) -> dict[str, Any]:
    return vector_store_files.get_batch(call.project_id, vector_store_id, batch_id)


@api_route(blueprint, BATCH + "/cancel", "POST")
def cancel_vector_store_file_batch(call: Call, vector_store_id: str, batch_id: str) -> dict[str, Any]:
    return vector_store_files.cancel_batch(call.project_id, vector_store_id, batch_id)


@api_route(blueprint, BATCH + "/files", "GET")
def list_files_in_vector_store_batch(call: Call, vector_store_id: str, batch_id: str) -> dict[str, Any]:
    params = call.query()
    query = parse_list_query(params, "file")
    return vector_store_files.list_batch_files(call.project_id, vector_store_id, batch_id, query, params.get("filter"))
