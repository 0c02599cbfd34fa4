"""/v1/threads/{thread_id}/messages: create, list, retrieve, modify, delete."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.domain import threads
from chalicelib.domain.pagination import parse_list_query
from chalicelib.http.routing import Call, api_route

blueprint = Blueprint(__name__)

MESSAGES = "/v1/threads/{thread_id}/messages"
MESSAGE = MESSAGES + "/{message_id}"


@api_route(blueprint, MESSAGES, "POST")
def create_message(call: Call, thread_id: str) -> dict[str, Any]:
    return threads.create_message(call.project_id, thread_id, call.json(required=True))


@api_route(blueprint, MESSAGES, "GET")
def list_messages(call: Call, thread_id: str) -> dict[str, Any]:
    params = call.query()
    return threads.list_messages(call.project_id, thread_id, parse_list_query(params, "message"), params.get("run_id"))


@api_route(blueprint, MESSAGE, "GET")
def get_message(call: Call, thread_id: str, message_id: str) -> dict[str, Any]:
    return threads.get_message(call.project_id, thread_id, message_id)


@api_route(blueprint, MESSAGE, "POST")
def modify_message(call: Call, thread_id: str, message_id: str) -> dict[str, Any]:
    return threads.modify_message(call.project_id, thread_id, message_id, call.json(required=True))


@api_route(blueprint, MESSAGE, "DELETE")
def delete_message(call: Call, thread_id: str, message_id: str) -> dict[str, Any]:
    return threads.delete_message(call.project_id, thread_id, message_id)
