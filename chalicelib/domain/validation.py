"""Request checking: strict JSON parsing and the official request schemas.

The schemas come from the official OpenAPI file (request_schemas.json, cut by scripts/cut_openapi.py),
so the server rejects exactly what the contract forbids. The checker below interprets the subset of
JSON Schema those schemas use; a general validator (jsonschema) costs ~90 ms of import on every Lambda
cold start for the same answers, and its messages are not the official API's.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from chalicelib.domain.errors import InvalidRequest

_SCHEMAS_FILE = Path(__file__).with_name("request_schemas.json")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s]*$")
# Objects and arrays nest at most this deep in a request body. Real bodies (function parameter
# schemas included) stay far below it; far deeper ones could be stored but not used by a run.
MAX_JSON_DEPTH = 64


@cache
def request_schema(name: str) -> dict[str, Any]:
    return json.loads(_SCHEMAS_FILE.read_text())[name]


def _reject_constant(token: str) -> Any:
    raise ValueError(f"{token} is not valid JSON")


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """Parse a request body. An empty body is an empty object, as the official API treats it."""
    if not raw.strip():
        return {}
    try:
        text = raw.decode("utf-8")
        body = json.loads(text, parse_constant=_reject_constant)
        # Lone surrogates ("\ud800") parse but can never be stored or echoed as UTF-8.
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except RecursionError as error:
        raise _too_deep() from error
    except (ValueError, UnicodeError) as error:
        raise InvalidRequest(
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
            "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
            code="invalid_json",
        ) from error
    if not isinstance(body, dict):
        raise InvalidRequest(
            f"Invalid type for request body: expected an object, but got {_type_phrase(body)} instead.",
            code="invalid_type",
        )
    if _depth(body) > MAX_JSON_DEPTH:
        raise _too_deep()
    return body


def _too_deep() -> InvalidRequest:
    return InvalidRequest(
        f"The JSON body is nested more than {MAX_JSON_DEPTH} levels deep; nest it less.", code="json_too_deep"
    )


def _depth(value: Any) -> int:
    """How deeply objects and arrays nest (iteratively: a deep body must not exhaust the stack)."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        current, depth = pending.pop()
        if isinstance(current, dict | list):
            deepest = max(deepest, depth)
            if depth > MAX_JSON_DEPTH:
                return depth
            members = current.values() if isinstance(current, dict) else current
            pending.extend((member, depth + 1) for member in members)
    return deepest


def validate(schema_name: str, body: dict[str, Any]) -> None:
    _check(request_schema(schema_name), body, "")


# --- the schema checker -------------------------------------------------------------------------

_TYPE_NAMES = {
    "object": "an object",
    "array": "an array",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "null": "null",
}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _type_phrase(value: Any) -> str:
    return _TYPE_NAMES[_json_type(value)]


def _matches_type(expected: str, value: Any) -> bool:
    actual = _json_type(value)
    if actual == expected or (expected == "number" and actual == "integer"):
        return True
    # JSON Schema counts 100.0 as an integer.
    return expected == "integer" and actual == "number" and value.is_integer()


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _param(path: str) -> str | None:
    return path or None


def _label(path: str) -> str:
    return path or "request body"


Schema = dict[str, Any]


def _check(schema: Schema, value: Any, path: str, anchor: Schema | None = None) -> None:
    """`anchor` is the innermost enclosing schema marked `$recursiveAnchor`, which `$recursiveRef: "#"`
    names (a compound filter's filters may be compound filters)."""
    if "$recursiveRef" in schema and anchor is not None:
        schema = anchor
    if schema.get("$recursiveAnchor"):
        anchor = schema
    if value is None and schema.get("nullable"):
        return
    alternatives = schema.get("anyOf") or schema.get("oneOf")
    if alternatives:
        _check_alternatives(alternatives, value, path, "oneOf" in schema, anchor)
    expected = schema.get("type")
    if expected is not None:
        expected_types = expected if isinstance(expected, list) else [expected]
        if not any(_matches_type(t, value) for t in expected_types):
            wanted = " or ".join(_TYPE_NAMES[t] for t in expected_types)
            raise InvalidRequest(
                f"Invalid type for '{_label(path)}': expected {wanted}, but got {_type_phrase(value)} instead.",
                param=_param(path),
                code="invalid_type",
            )
    if "enum" in schema and value not in schema["enum"]:
        supported = ", ".join(repr(v) for v in schema["enum"])
        raise InvalidRequest(
            f"Invalid value: {value!r}. Supported values are: {supported}.",
            param=_param(path),
            code="invalid_value",
        )
    if isinstance(value, dict):
        _check_object(schema, value, path, anchor)
    elif isinstance(value, list):
        _check_array(schema, value, path, anchor)
    elif isinstance(value, str):
        _check_string(schema, value, path)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        _check_number(schema, value, path)


def _check_alternatives(
    alternatives: list[Schema], value: Any, path: str, exactly_one: bool, anchor: Schema | None
) -> None:
    if anchor is not None:
        alternatives = [anchor if "$recursiveRef" in a else a for a in alternatives]
    typed = [a for a in alternatives if "type" not in a or _matches_type(a["type"], value)]
    if not typed:
        wanted = " or ".join(dict.fromkeys(_TYPE_NAMES[a["type"]] for a in alternatives if "type" in a))
        raise InvalidRequest(
            f"Invalid type for '{_label(path)}': expected {wanted}, but got {_type_phrase(value)} instead.",
            param=_param(path),
            code="invalid_type",
        )
    discriminated = _by_discriminator(typed, value, path)
    if discriminated is not None:
        _check(discriminated, value, path, anchor)
        return
    first_error: InvalidRequest | None = None
    passed = 0
    for alternative in typed:
        try:
            _check(alternative, value, path, anchor)
            passed += 1
        except InvalidRequest as error:
            first_error = first_error or error
    if passed == 0 and first_error is not None:
        raise first_error
    if exactly_one and passed > 1:
        raise InvalidRequest(
            f"Invalid '{_label(path)}': the value matches more than one of the allowed shapes; send exactly one.",
            param=_param(path),
            code="invalid_value",
        )


def _by_discriminator(alternatives: list[dict[str, Any]], value: Any, path: str) -> dict[str, Any] | None:
    """Objects told apart by a `type` enum (content parts, tools) are checked against their own shape."""
    if not isinstance(value, dict) or len(alternatives) < 2:
        return None
    tags: dict[str, dict[str, Any]] = {}
    for alternative in alternatives:
        enum = alternative.get("properties", {}).get("type", {}).get("enum")
        if not enum:
            return None
        for tag in enum:
            tags[tag] = alternative
    tag = value.get("type")
    if isinstance(tag, str) and tag in tags:
        return tags[tag]
    if "type" not in value:
        raise InvalidRequest(
            f"Missing required parameter: '{_join(path, 'type')}'.",
            param=_join(path, "type"),
            code="missing_required_parameter",
        )
    supported = ", ".join(repr(t) for t in tags)
    raise InvalidRequest(
        f"Invalid value: {tag!r}. Supported values are: {supported}.",
        param=_join(path, "type"),
        code="invalid_value",
    )


def _check_object(schema: Schema, value: dict[str, Any], path: str, anchor: Schema | None) -> None:
    properties: dict[str, Any] = schema.get("properties", {})
    for name in schema.get("required", []):
        if name not in value:
            raise InvalidRequest(
                f"Missing required parameter: '{_join(path, name)}'.",
                param=_join(path, name),
                code="missing_required_parameter",
            )
    names = schema.get("propertyNames")
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        if names and not names.get("minLength", 0) <= len(key) <= names.get("maxLength", len(key)):
            raise InvalidRequest(
                f"Invalid '{_label(path)}': keys must be between {names.get('minLength', 0)} and "
                f"{names.get('maxLength')} characters, but got a key of length {len(key)}.",
                param=_param(path),
                code="invalid_property_name",
            )
        if key in properties:
            _check(properties[key], item, _join(path, key), anchor)
            value[key] = _as_declared(properties[key], item)
        elif extra is False:
            raise InvalidRequest(
                f"Unrecognized request argument supplied: {_join(path, key)}",
                param=_join(path, key),
                code="unknown_parameter",
            )
        elif isinstance(extra, dict):
            _check(extra, item, _join(path, key), anchor)
            value[key] = _as_declared(extra, item)
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        raise InvalidRequest(
            f"Invalid '{_label(path)}': too many properties. Expected an object with at most "
            f"{schema['maxProperties']} properties, but got an object with {len(value)} properties instead.",
            param=_param(path),
            code="object_above_max_properties",
        )


def _check_array(schema: Schema, value: list[Any], path: str, anchor: Schema | None) -> None:
    if "minItems" in schema and len(value) < schema["minItems"]:
        raise InvalidRequest(
            f"Invalid '{_label(path)}': empty array. Expected an array with minimum length {schema['minItems']}, "
            f"but got an array with length {len(value)} instead.",
            param=_param(path),
            code="empty_array" if not value else "array_below_min_length",
        )
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        raise InvalidRequest(
            f"Invalid '{_label(path)}': array too long. Expected an array with maximum length {schema['maxItems']}, "
            f"but got an array with length {len(value)} instead.",
            param=_param(path),
            code="array_above_max_length",
        )
    items = schema.get("items")
    if isinstance(items, dict):
        for index, item in enumerate(value):
            _check(items, item, f"{path}[{index}]", anchor)
            value[index] = _as_declared(items, item)


def _as_declared(schema: dict[str, Any], value: Any) -> Any:
    """An integral float (2.0) where the schema declares an integer is stored as the integer: JSON
    Schema accepts it, and everything downstream (slicing, token budgets) needs an int."""
    if not isinstance(value, float) or not value.is_integer():
        return value
    alternatives = schema.get("anyOf") or schema.get("oneOf") or [schema]
    for alternative in alternatives:
        declared = alternative.get("type")
        declared_types = declared if isinstance(declared, list) else [declared]
        if "integer" in declared_types and "number" not in declared_types:
            return int(value)
    return value


def _check_string(schema: dict[str, Any], value: str, path: str) -> None:
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        raise InvalidRequest(
            f"Invalid '{_label(path)}': string too long. Expected a string with maximum length "
            f"{schema['maxLength']}, but got a string with length {len(value)} instead.",
            param=_param(path),
            code="string_above_max_length",
        )
    if "minLength" in schema and len(value) < schema["minLength"]:
        raise InvalidRequest(
            f"Invalid '{_label(path)}': string too short. Expected a string with minimum length "
            f"{schema['minLength']}, but got a string with length {len(value)} instead.",
            param=_param(path),
            code="string_below_min_length",
        )
    if "pattern" in schema and not re.search(schema["pattern"], value):
        raise InvalidRequest(
            f"Invalid '{_label(path)}': string does not match pattern. Expected a string that matches the "
            f"pattern '{schema['pattern']}'.",
            param=_param(path),
            code="invalid_value",
        )
    if schema.get("format") == "uri" and not _URI.match(value):
        raise InvalidRequest(
            f"Invalid '{_label(path)}': expected a URI, but got {value!r} instead.",
            param=_param(path),
            code="invalid_url",
        )


def _check_number(schema: dict[str, Any], value: float, path: str) -> None:
    if "minimum" in schema and value < schema["minimum"]:
        raise InvalidRequest(
            f"Invalid '{_label(path)}': number below minimum value. Expected a value >= {schema['minimum']}, "
            f"but got {value} instead.",
            param=_param(path),
            code="integer_below_min_value",
        )
    if "maximum" in schema and value > schema["maximum"]:
        raise InvalidRequest(
            f"Invalid '{_label(path)}': number above maximum value. Expected a value <= {schema['maximum']}, "
            f"but got {value} instead.",
            param=_param(path),
            code="integer_above_max_value",
        )
