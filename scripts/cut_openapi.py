"""Cut openapi.yaml (the contract Spindle serves) and the request schemas from the official reference.

Run with `make openapi`. Official operations keep their schemas intact; Spindle adds the error
responses it returns, the auth scheme, OpenAPI links for stateful tests, and its own extensions,
each marked `x-spindle-extension: true`. tests/test_openapi_contract.py fails when the output is
stale or disagrees with app.py's routes.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from chalicelib.domain.ids import BODY_LENGTH, PREFIXES  # noqa: E402
from chalicelib.domain.pagination import MAX_LIMIT  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT.parent / "shared" / "reference" / "openai-assistants-v2.openapi.yaml"
FILES_REFERENCE = ROOT.parent / "shared" / "reference" / "openai-files.openapi.yaml"
VECTOR_STORES_REFERENCE = ROOT.parent / "shared" / "reference" / "openai-vector-stores.openapi.yaml"
REFERENCES = (REFERENCE, FILES_REFERENCE, VECTOR_STORES_REFERENCE)
OPENAPI_OUT = ROOT / "openapi.yaml"
SCHEMAS_OUT = ROOT / "chalicelib" / "domain" / "request_schemas.json"

# (path, method) of the official operations Spindle serves.
SERVED = [
    ("/files", "get"),
    ("/files", "post"),
    ("/files/{file_id}", "get"),
    ("/files/{file_id}", "delete"),
    ("/files/{file_id}/content", "get"),
    ("/assistants", "get"),
    ("/assistants", "post"),
    ("/assistants/{assistant_id}", "get"),
    ("/assistants/{assistant_id}", "post"),
    ("/assistants/{assistant_id}", "delete"),
    ("/threads/runs", "post"),
    ("/threads/{thread_id}/runs", "get"),
    ("/threads/{thread_id}/runs", "post"),
    ("/threads/{thread_id}/runs/{run_id}", "get"),
    ("/threads/{thread_id}/runs/{run_id}", "post"),
    ("/threads/{thread_id}/runs/{run_id}/cancel", "post"),
    ("/threads/{thread_id}/runs/{run_id}/steps", "get"),
    ("/threads/{thread_id}/runs/{run_id}/steps/{step_id}", "get"),
    ("/threads/{thread_id}/runs/{run_id}/submit_tool_outputs", "post"),
    ("/threads", "post"),
    ("/threads/{thread_id}", "get"),
    ("/threads/{thread_id}", "post"),
    ("/threads/{thread_id}", "delete"),
    ("/threads/{thread_id}/messages", "get"),
    ("/threads/{thread_id}/messages", "post"),
    ("/threads/{thread_id}/messages/{message_id}", "get"),
    ("/threads/{thread_id}/messages/{message_id}", "post"),
    ("/threads/{thread_id}/messages/{message_id}", "delete"),
    ("/vector_stores", "get"),
    ("/vector_stores", "post"),
    ("/vector_stores/{vector_store_id}", "get"),
    ("/vector_stores/{vector_store_id}", "post"),
    ("/vector_stores/{vector_store_id}", "delete"),
    ("/vector_stores/{vector_store_id}/files", "get"),
    ("/vector_stores/{vector_store_id}/files", "post"),
    ("/vector_stores/{vector_store_id}/files/{file_id}", "get"),
    ("/vector_stores/{vector_store_id}/files/{file_id}", "post"),
    ("/vector_stores/{vector_store_id}/files/{file_id}", "delete"),
    ("/vector_stores/{vector_store_id}/files/{file_id}/content", "get"),
    ("/vector_stores/{vector_store_id}/search", "post"),
    ("/vector_stores/{vector_store_id}/file_batches", "post"),
    ("/vector_stores/{vector_store_id}/file_batches/{batch_id}", "get"),
    ("/vector_stores/{vector_store_id}/file_batches/{batch_id}/cancel", "post"),
    ("/vector_stores/{vector_store_id}/file_batches/{batch_id}/files", "get"),
]

ERROR_STATUSES = {
    "400": "Invalid request: the body, a parameter or a cursor is malformed.",
    "401": "Missing or unknown API key.",
    "404": "No such object in the caller's project.",
    "413": "The request body is larger than Spindle accepts.",
    "415": "The request body is not JSON.",
}


def _run_link(operation_id: str) -> dict[str, Any]:
    return {
        "operationId": operation_id,
        "parameters": {"thread_id": "$response.body#/thread_id", "run_id": "$response.body#/id"},
    }


LINKS = {
    ("/files", "post"): {
        "RetrieveFile": {"operationId": "retrieveFile", "parameters": {"file_id": "$response.body#/id"}},
        "DownloadFile": {"operationId": "downloadFile", "parameters": {"file_id": "$response.body#/id"}},
        "DeleteFile": {"operationId": "deleteFile", "parameters": {"file_id": "$response.body#/id"}},
    },
    ("/assistants", "post"): {
        "GetAssistant": {"operationId": "getAssistant", "parameters": {"assistant_id": "$response.body#/id"}},
        "ModifyAssistant": {"operationId": "modifyAssistant", "parameters": {"assistant_id": "$response.body#/id"}},
        "DeleteAssistant": {"operationId": "deleteAssistant", "parameters": {"assistant_id": "$response.body#/id"}},
    },
    ("/vector_stores", "post"): {
        "GetVectorStore": {"operationId": "getVectorStore", "parameters": {"vector_store_id": "$response.body#/id"}},
        "ModifyVectorStore": {
            "operationId": "modifyVectorStore",
            "parameters": {"vector_store_id": "$response.body#/id"},
        },
        "DeleteVectorStore": {
            "operationId": "deleteVectorStore",
            "parameters": {"vector_store_id": "$response.body#/id"},
        },
        "SearchVectorStore": {
            "operationId": "searchVectorStore",
            "parameters": {"vector_store_id": "$response.body#/id"},
        },
    },
    ("/vector_stores/{vector_store_id}/files", "post"): {
        name: {
            "operationId": operation,
            "parameters": {"vector_store_id": "$response.body#/vector_store_id", "file_id": "$response.body#/id"},
        }
        for name, operation in (
            ("GetVectorStoreFile", "getVectorStoreFile"),
            ("UpdateVectorStoreFileAttributes", "updateVectorStoreFileAttributes"),
            ("DeleteVectorStoreFile", "deleteVectorStoreFile"),
        )
    },
    ("/vector_stores/{vector_store_id}/file_batches", "post"): {
        name: {
            "operationId": operation,
            "parameters": {"vector_store_id": "$response.body#/vector_store_id", "batch_id": "$response.body#/id"},
        }
        for name, operation in (
            ("GetVectorStoreFileBatch", "getVectorStoreFileBatch"),
            ("CancelVectorStoreFileBatch", "cancelVectorStoreFileBatch"),
            ("ListFilesInVectorStoreBatch", "listFilesInVectorStoreBatch"),
        )
    },
    ("/threads/{thread_id}/runs", "post"): {
        "GetRun": _run_link("getRun"),
        "ModifyRun": _run_link("modifyRun"),
        "CancelRun": _run_link("cancelRun"),
        "ListRunSteps": _run_link("listRunSteps"),
    },
    ("/threads/runs", "post"): {
        "GetRun": _run_link("getRun"),
        "GetThread": {"operationId": "getThread", "parameters": {"thread_id": "$response.body#/thread_id"}},
    },
    ("/threads", "post"): {
        "GetThread": {"operationId": "getThread", "parameters": {"thread_id": "$response.body#/id"}},
        "CreateMessage": {"operationId": "createMessage", "parameters": {"thread_id": "$response.body#/id"}},
        "ListMessages": {"operationId": "listMessages", "parameters": {"thread_id": "$response.body#/id"}},
        "DeleteThread": {"operationId": "deleteThread", "parameters": {"thread_id": "$response.body#/id"}},
    },
    ("/threads/{thread_id}/messages", "post"): {
        "GetMessage": {
            "operationId": "getMessage",
            "parameters": {"thread_id": "$response.body#/thread_id", "message_id": "$response.body#/id"},
        },
        "ModifyMessage": {
            "operationId": "modifyMessage",
            "parameters": {"thread_id": "$response.body#/thread_id", "message_id": "$response.body#/id"},
        },
        "DeleteMessage": {
            "operationId": "deleteMessage",
            "parameters": {"thread_id": "$response.body#/thread_id", "message_id": "$response.body#/id"},
        },
    },
}

LIST_PARAMETERS = ("limit", "order", "after", "before")
STREAMING = {
    ("/threads/runs", "post"),
    ("/threads/{thread_id}/runs", "post"),
    ("/threads/{thread_id}/runs/{run_id}/submit_tool_outputs", "post"),
}

DOCUMENTED_LIMIT = "The official description states this limit; Spindle's schema states it too."


def _nullable_all_of(node: Any) -> Any:
    """`allOf: [X, {nullable: true}]` is OpenAPI 3.0 spelling in a 3.1 file, and it means "X or null"
    (the SDK sends null for None). Write it the 3.1 way so that validators agree."""
    if isinstance(node, dict):
        all_of = node.get("allOf")
        if isinstance(all_of, list) and len(all_of) == 2 and all_of[1] == {"nullable": True}:
            rest = {key: value for key, value in node.items() if key != "allOf"}
            return {
                **rest,
                "anyOf": [_nullable_all_of(all_of[0]), {"type": "null"}],
                "x-spindle-extension": "allOf + nullable written as anyOf null",
            }
        return {key: _nullable_all_of(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_nullable_all_of(value) for value in node]
    return node


def _documented_limits(schemas: dict[str, Any]) -> None:
    """Limits the official API enforces and documents in prose, written into the schema so that the
    server and schemathesis agree on what is valid. Each touched schema is marked."""
    for name in list(schemas):
        schemas[name] = _nullable_all_of(schemas[name])
    if "OpenAIFile" in schemas:
        purpose = schemas["OpenAIFile"]["properties"]["purpose"]
        purpose["enum"].append("evals")
        purpose["x-spindle-extension"] = "Uploads may have purpose `evals` (CreateFileRequest); the object shows it."
    metadata = schemas["Metadata"]["anyOf"][0]
    metadata["maxProperties"] = 16
    metadata["propertyNames"] = {"minLength": 1, "maxLength": 64}
    metadata["additionalProperties"] = {"type": "string", "maxLength": 512}
    metadata["x-spindle-extension"] = DOCUMENTED_LIMIT
    content = schemas["CreateMessageRequest"]["properties"]["content"]["oneOf"][0]
    content["minLength"] = 1
    content["x-spindle-extension"] = "The official API refuses empty message content."
    text = schemas["MessageRequestContentTextObject"]["properties"]["text"]
    text["minLength"] = 1
    text["x-spindle-extension"] = "The official API refuses empty message content."
    if "StaticChunkingStrategy" in schemas:
        overlap = schemas["StaticChunkingStrategy"]["properties"]["chunk_overlap_tokens"]
        overlap["minimum"] = 0
        overlap["x-spindle-extension"] = "An overlap is a number of tokens: at least 0 (and at most half the size)."
    if "CreateVectorStoreFileBatchRequest" in schemas:
        for name in ("file_ids", "files"):
            listed = schemas["CreateVectorStoreFileBatchRequest"]["properties"][name]
            listed["maxItems"] = 500
            listed["x-spindle-extension"] = "At most 500 files a batch, as for a new store's file_ids."


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            found.add(ref.rsplit("/", 1)[1])
        for value in node.values():
            found |= _refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= _refs(value)
    return found


def _closure(names: set[str], schemas: dict[str, Any]) -> set[str]:
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(_refs(schemas[name]) - seen)
    return seen


def _dereference(node: Any, schemas: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        skipped = ("$ref", "x-oaiMeta")
        siblings = {key: _dereference(value, schemas) for key, value in node.items() if key not in skipped}
        if isinstance(ref, str):  # keywords beside a $ref (`nullable`) still apply
            return {**_dereference(schemas[ref.rsplit("/", 1)[1]], schemas), **siblings}
        return siblings
    if isinstance(node, list):
        return [_dereference(value, schemas) for value in node]
    return node


def _list_threads_operation(list_messages: dict[str, Any]) -> dict[str, Any]:
    parameters = [
        copy.deepcopy(p) for p in list_messages["parameters"] if p["in"] == "query" and p["name"] in LIST_PARAMETERS
    ]
    parameters.append(
        {
            "name": "user",
            "in": "query",
            "required": False,
            "description": "Only threads whose `metadata.user` equals this value.",
            "schema": {"type": "string"},
        }
    )
    return {
        "operationId": "listThreads",
        "summary": "Returns the caller's threads, newest first (Spindle extension).",
        "x-spindle-extension": True,
        "tags": ["Assistants"],
        "parameters": parameters,
        "responses": {
            "200": {
                "description": "OK",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ListThreadsResponse"}}},
            }
        },
    }


def _list_threads_schema(list_messages_schema: dict[str, Any]) -> dict[str, Any]:
    schema = copy.deepcopy(list_messages_schema)
    schema["properties"]["data"]["items"] = {"$ref": "#/components/schemas/ThreadObject"}
    schema["properties"]["first_id"]["example"] = "thread_abc123"
    schema["properties"]["last_id"]["example"] = "thread_abc123"
    schema["x-spindle-extension"] = True
    return schema


def id_pattern(kind: str) -> str:
    return f"^{PREFIXES[kind]}[0-9A-Za-z]{{{BODY_LENGTH}}}$"


def _checked_list_parameters(operation: dict[str, Any], kind: str) -> None:
    """`limit` is documented as 1-100; cursors and `run_id` are ids, which Spindle checks by shape."""
    for parameter in operation["parameters"]:
        name = parameter["name"]
        if name == "limit":
            parameter["schema"].update({"minimum": 1, "maximum": MAX_LIMIT})
            parameter["x-spindle-extension"] = DOCUMENTED_LIMIT
        elif name in ("after", "before", "run_id"):
            parameter["schema"]["pattern"] = id_pattern("run" if name == "run_id" else kind)
            parameter["x-spindle-extension"] = "Spindle refuses a cursor that is not an id of the listed kind."


def merge_references(first: dict[str, Any], *others: dict[str, Any]) -> dict[str, Any]:
    """The official cuts as one document. They share a few components (Error, Metadata, ...): those
    must be the same in every cut, and any other name may be defined once only."""
    merged = copy.deepcopy(first)
    for other in others:
        merged["paths"].update(copy.deepcopy(other["paths"]))
        schemas = merged["components"]["schemas"]
        clash = [
            name
            for name in other["components"]["schemas"]
            if name in schemas and schemas[name] != other["components"]["schemas"][name]
        ]
        if clash:
            raise SystemExit(f"component names collide with different schemas: {sorted(clash)}")
        schemas.update(copy.deepcopy(other["components"]["schemas"]))
    return merged


def load_references() -> dict[str, Any]:
    return merge_references(*(yaml.safe_load(path.read_text()) for path in REFERENCES))


def _files_limits(paths: dict[str, Any]) -> None:
    listing = paths["/files"]["get"]
    for parameter in listing["parameters"]:
        if parameter["name"] == "limit":
            parameter["schema"] = {"type": "integer", "default": 20, "minimum": 1, "maximum": 100}
            parameter["x-spindle-extension"] = "Spindle pages files like every list: 20 by default, 100 at most."
        elif parameter["name"] == "after":
            parameter["schema"]["pattern"] = id_pattern("file")
            parameter["x-spindle-extension"] = "Spindle refuses a cursor that is not an id of the listed kind."
    download = paths["/files/{file_id}/content"]["get"]["responses"]["200"]["content"]
    download["*/*"] = {
        "schema": {"type": "string", "format": "binary"},
        "x-spindle-extension": (
            "The file's bytes, with the media type its filename names (application/octet-stream when it names"
            " none), whatever the request's Accept."
        ),
    }


def build(reference: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    reference = copy.deepcopy(reference)
    schemas = reference["components"]["schemas"]
    _documented_limits(schemas)
    paths: dict[str, dict[str, Any]] = {}
    for path, method in SERVED:
        operation = copy.deepcopy(reference["paths"][path][method])
        operation.pop("x-oaiMeta", None)
        for status, description in ERROR_STATUSES.items():
            operation["responses"][status] = {
                "description": description,
                "x-spindle-extension": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
            }
        if (path, method) in LINKS:
            operation["responses"]["200"]["links"] = LINKS[(path, method)]
        if (path, method) in STREAMING:
            operation["responses"]["200"]["content"]["text/event-stream"] = {
                "schema": {"type": "string"},
                "x-spindle-extension": "With `stream: true` the answer is the run's server-sent events, as the "
                "official API streams them (AssistantStreamEvent), ending `event: done` / `data: [DONE]`.",
            }
        paths.setdefault(path, {})[method] = operation

    list_messages = reference["paths"]["/threads/{thread_id}/messages"]["get"]
    paths["/threads"]["get"] = _list_threads_operation(list_messages)
    for status in ("400", "401"):
        paths["/threads"]["get"]["responses"][status] = copy.deepcopy(
            paths["/threads/{thread_id}"]["get"]["responses"][status]
        )

    _files_limits(paths)
    _checked_list_parameters(paths["/threads/{thread_id}/messages"]["get"], "message")
    _checked_list_parameters(paths["/threads"]["get"], "thread")
    _checked_list_parameters(paths["/assistants"]["get"], "assistant")
    _checked_list_parameters(paths["/threads/{thread_id}/runs"]["get"], "run")
    _checked_list_parameters(paths["/threads/{thread_id}/runs/{run_id}/steps"]["get"], "step")
    _checked_list_parameters(paths["/vector_stores"]["get"], "vector_store")
    _checked_list_parameters(paths["/vector_stores/{vector_store_id}/files"]["get"], "file")
    _checked_list_parameters(paths["/vector_stores/{vector_store_id}/file_batches/{batch_id}/files"]["get"], "file")

    needed = _closure((_refs(paths) - {"ListThreadsResponse"}) | {"ErrorResponse", "ThreadObject"}, schemas)
    components = {name: copy.deepcopy(schemas[name]) for name in sorted(needed)}
    components["ListThreadsResponse"] = _list_threads_schema(schemas["ListMessagesResponse"])

    spec = {
        "openapi": reference["openapi"],
        "info": {
            "title": "Spindle: the OpenAI Assistants API v2, self-hosted",
            "version": "2.0.0",
            "description": (
                "Cut from the official OpenAI OpenAPI file by scripts/cut_openapi.py. Official operations "
                "and schemas are intact; additions are marked `x-spindle-extension: true`."
            ),
        },
        "servers": [{"url": "http://127.0.0.1:8000/v1"}],
        "security": [{"ApiKeyAuth": []}],
        "paths": paths,
        "components": {
            "schemas": components,
            "responses": copy.deepcopy(reference["components"]["responses"]),
            "securitySchemes": copy.deepcopy(reference["components"]["securitySchemes"]),
        },
    }

    request_schemas = {}
    for path, method in SERVED:
        body = reference["paths"][path][method].get("requestBody")
        if body and "application/json" in body["content"]:
            ref = body["content"]["application/json"]["schema"]["$ref"]
            name = ref.rsplit("/", 1)[1]
            request_schemas[name] = _dereference(schemas[name], schemas)
    _compound_filter_reference(components)
    return spec, request_schemas


def _compound_filter_reference(components: dict[str, Any]) -> None:
    """In openapi.yaml only (the request schemas inline it, and their validator knows the keyword): the
    CompoundFilter's `$recursiveRef: "#"` means the CompoundFilter itself (JSON Schema 2019-09), which
    schemathesis reads as the document's root and fills with any value, arrays among the filters, then
    calls the server's refusal of them a rejection of valid data. The same reference, as a plain $ref."""
    compound = components.get("CompoundFilter")
    if compound is None or not compound.pop("$recursiveAnchor", None):
        return
    for alternative in compound["properties"]["filters"]["items"]["oneOf"]:
        if alternative.pop("$recursiveRef", None) is not None:
            alternative["$ref"] = "#/components/schemas/CompoundFilter"
    compound["x-spindle-extension"] = "`$recursiveRef: '#'` spelled as the $ref to this schema that it means."


def render(spec: dict[str, Any], request_schemas: dict[str, Any]) -> tuple[str, str]:
    openapi_text = (
        "# Generated by scripts/cut_openapi.py from the official reference: edit the script, not this file.\n"
    )
    openapi_text += yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=120)
    schemas_text = json.dumps(request_schemas, indent=1, sort_keys=True) + "\n"
    return openapi_text, schemas_text


def main() -> int:
    reference = load_references()
    openapi_text, schemas_text = render(*build(reference))
    OPENAPI_OUT.write_text(openapi_text)
    SCHEMAS_OUT.write_text(schemas_text)
    print(f"wrote {OPENAPI_OUT.relative_to(ROOT)} and {SCHEMAS_OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
