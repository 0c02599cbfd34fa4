"""/v1/threads: create, retrieve, modify, delete, and (a Spindle extension) list."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.domain import threads
from chalicelib.domain.pagination import parse_list_query
from chalicelib.http.routing import Call, api_route

blueprint = Blueprint(__name__)


@api_route(blueprint, "/v1/threads", "POST")
def create_thread(call: Call) -> dict[str, Any]:
    return threads.create_thread(call.project_id, call.json())


@api_route(blueprint, "/v1/threads", "GET")
def list_threads(call: Call) -> dict[str, Any]:
    params = call.query()
    return threads.list_threads(call.project_id, parse_list_query(params, "thread"), params.get("user"))


@api_route(blueprint, "/v1/threads/{thread_id}", "GET")
def get_thread(call: Call, thread_id: str) -> dict[str, Any]:
    return threads.get_thread(call.project_id, thread_id)


@api_route(blueprint, "/v1/threads/{thread_id}", "POST")
def modify_thread(call: Call, thread_id: str) -> dict[str, Any]:
    return threads.modify_thread(call.project_id, thread_id, call.json(required=True))


@api_route(blueprint, "/v1/threads/{thread_id}", "DELETE")
def delete_thread(call: Call, thread_id: str) -> dict[str, Any]:
    return threads.delete_thread(call.project_id, thread_id)
