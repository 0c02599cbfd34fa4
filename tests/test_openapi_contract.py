"""openapi.yaml is the contract: it matches app.py's routes, it is what the cut script makes from the
official reference today, and official schemas are intact except where Spindle marks a change."""

from __future__ import annotations

import json
import os
import re
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import cut_openapi  # noqa: E402

SERVED = yaml.safe_load((ROOT / "openapi.yaml").read_text())


@cache
def _load_reference() -> dict[str, Any]:
    return cut_openapi.load_references()


def reference() -> dict[str, Any]:
    """The official contract (the assistants, files and vector stores references, merged), which lives
    beside the checkout in ../shared/reference/. CI always has it, so its absence fails rather than skips."""
    needed = cut_openapi.REFERENCES
    missing = [os.path.relpath(path, ROOT) for path in needed if not path.is_file()]
    if missing:
        pytest.fail(
            f"tests/test_openapi_contract.py compares openapi.yaml with the official contract in "
            f"{' and '.join(os.path.relpath(path, ROOT) for path in needed)} (beside this checkout, in "
            f"{cut_openapi.REFERENCE.parent}); missing: {', '.join(missing)}. "
            "Clone the repository next to `shared/` as CI does.",
            pytrace=False,
        )
    return _load_reference()


def app_routes() -> set[tuple[str, str]]:
    from app import app

    return {
        (path.removeprefix("/v1"), method.lower())
        for path, methods in app.routes.items()
        for method in methods
        if path.startswith("/v1/")
    }


def test_every_route_is_in_openapi_and_every_operation_is_routed():
    documented = {(path, method) for path, operations in SERVED["paths"].items() for method in operations}
    assert app_routes() == documented


def test_openapi_yaml_and_request_schemas_are_freshly_cut():
    openapi_text, schemas_text = cut_openapi.render(*cut_openapi.build(reference()))
    assert (ROOT / "openapi.yaml").read_text() == openapi_text, "run `make openapi`"
    assert (ROOT / "chalicelib/domain/request_schemas.json").read_text() == schemas_text, "run `make openapi`"


def _marked(node) -> bool:
    return "x-spindle-extension" in json.dumps(node)


def test_official_operations_and_schemas_are_intact_unless_marked():
    official_contract = reference()
    for path, operations in SERVED["paths"].items():
        for method, operation in operations.items():
            if operation.get("x-spindle-extension"):
                continue
            official = official_contract["paths"][path][method]
            assert operation["operationId"] == official["operationId"]
            assert operation.get("requestBody") == official.get("requestBody")
            content = dict(operation["responses"]["200"]["content"])
            for extra in ("text/event-stream", "*/*"):  # marked additions: streams, any file type
                if extra in content:
                    assert content.pop(extra)["x-spindle-extension"]
            assert content == official["responses"]["200"]["content"]
            for parameter, official_parameter in zip(
                operation.get("parameters", []), official.get("parameters", []), strict=True
            ):
                if not parameter.get("x-spindle-extension"):
                    assert parameter == official_parameter
            for status, response in operation["responses"].items():
                if status not in official["responses"]:
                    assert response["x-spindle-extension"] is True
    for name, schema in SERVED["components"]["schemas"].items():
        official_schemas = official_contract["components"]["schemas"]
        if name in official_schemas and schema != official_schemas[name]:
            assert _marked(schema), f"{name} differs from the reference without a marker"


def test_extensions_are_marked():
    assert SERVED["paths"]["/threads"]["get"]["x-spindle-extension"] is True
    assert SERVED["components"]["schemas"]["ListThreadsResponse"]["x-spindle-extension"] is True


def test_id_patterns_match_the_ids_the_server_mints():
    from chalicelib.domain.ids import new_id

    for kind in ("thread", "message", "run"):
        assert re.match(cut_openapi.id_pattern(kind), new_id(kind))
