"""/v1/assistants: create, list, retrieve, modify, delete."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.domain import assistants
from chalicelib.domain.pagination import parse_list_query
from chalicelib.http.routing import Call, api_route

blueprint = Blueprint(__name__)

ASSISTANT = "/v1/assistants/{assistant_id}"


@api_route(blueprint, "/v1/assistants", "POST")
def create_assistant(call: Call) -> dict[str, Any]:
    return assistants.create_assistant(call.project_id, call.json(required=True))


@api_route(blueprint, "/v1/assistants", "GET")
def list_assistants(call: Call) -> dict[str, Any]:
    return assistants.list_assistants(call.project_id, parse_list_query(call.query(), "assistant"))


@api_route(blueprint, ASSISTANT, "GET")
def get_assistant(call: Call, assistant_id: str) -> dict[str, Any]:
    return assistants.get_assistant(call.project_id, assistant_id)


@api_route(blueprint, ASSISTANT, "POST")
def modify_assistant(call: Call, assistant_id: str) -> dict[str, Any]:
    return assistants.modify_assistant(call.project_id, assistant_id, call.json(required=True))


@api_route(blueprint, ASSISTANT, "DELETE")
def delete_assistant(call: Call, assistant_id: str) -> dict[str, Any]:
    return assistants.delete_assistant(call.project_id, assistant_id)
