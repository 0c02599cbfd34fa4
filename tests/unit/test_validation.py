from __future__ import annotations

import pytest

from chalicelib.domain import validation
from chalicelib.domain.errors import InvalidRequest
from chalicelib.domain.pagination import parse_list_query
from chalicelib.domain.validation import parse_json_object, validate


@pytest.mark.parametrize("raw", [b"", b"  \n", b"{}"])
def test_an_empty_body_is_an_empty_object(raw):
    assert parse_json_object(raw) == {}


@pytest.mark.parametrize(
    "raw", [b"{", b"[]", b"null", b"Infinity", b'{"a": -Infinity}', b'"\\udfff"', b"\xc3\x28", b"1" * 5000]
)
def test_what_is_not_a_json_object_is_refused(raw):
    with pytest.raises(InvalidRequest):
        parse_json_object(raw)


def rejects(schema: str, body: dict) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        validate(schema, body)
    return caught.value


def test_the_official_request_schemas_are_enforced():
    validate("CreateMessageRequest", {"role": "user", "content": "hi", "metadata": None, "attachments": None})
    validate("CreateThreadRequest", {"tool_resources": {"file_search": {"vector_store_ids": ["vs_1"]}}, "messages": []})
    assert rejects("CreateMessageRequest", {"content": "x"}).param == "role"
    assert rejects("CreateMessageRequest", {"role": "user", "content": 5}).code == "invalid_type"
    assert rejects("CreateMessageRequest", {"role": "user", "content": "x", "zzz": 1}).param == "zzz"
    error = rejects("CreateMessageRequest", {"role": "user", "content": [{"type": "image_url", "image_url": {}}]})
    assert error.param == "content[0].image_url.url"
    error = rejects(
        "CreateMessageRequest",
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "no scheme"}}]},
    )
    assert error.param == "content[0].image_url.url"
    error = rejects(
        "CreateMessageRequest",
        {"role": "user", "content": [{"type": "image_file", "image_file": {"file_id": "f", "detail": "max"}}]},
    )
    assert (error.param, error.code) == ("content[0].image_file.detail", "invalid_value")
    error = rejects("CreateThreadRequest", {"tool_resources": {"code_interpreter": {"file_ids": ["f"] * 21}}})
    assert error.code == "array_above_max_length"
    one_of = {"type": "object", "oneOf": [{"required": ["a"]}, {"required": ["b"]}]}
    with pytest.raises(InvalidRequest) as both:
        validation._check(one_of, {"a": 1, "b": 2}, "choice")
    assert both.value.param == "choice"
    validation._check(one_of, {"a": 1}, "choice")
    assert rejects("ModifyMessageRequest", {"metadata": []}).param == "metadata"


def test_metadata_limits_from_the_official_description():
    validate("CreateThreadRequest", {"metadata": {f"k{n}": "v" * 512 for n in range(16)}})
    validate("ModifyThreadRequest", {"metadata": {"k" * 64: "v"}})
    for bad in ({f"k{n}": "v" for n in range(17)}, {"k" * 65: "v"}, {"": "v"}, {"k": "v" * 513}):
        assert rejects("ModifyMessageRequest", {"metadata": bad}).param.startswith("metadata")
    assert rejects("CreateMessageRequest", {"role": "user", "content": ""}).param == "content"
    error = rejects("CreateMessageRequest", {"role": "user", "content": [{"type": "text", "text": ""}]})
    assert error.param == "content[0].text"


def test_list_queries_have_official_defaults_and_bounds():
    query = parse_list_query({}, "message")
    assert (query.limit, query.order, query.after, query.before) == (20, "desc", None, None)
    assert parse_list_query({"limit": "100", "order": "asc"}, "message").limit == 100
    for params in ({"limit": "0"}, {"limit": "-1"}, {"limit": "1.5"}, {"order": "up"}, {"after": "thread_x"}):
        with pytest.raises(InvalidRequest):
            parse_list_query(params, "message")


def test_a_non_string_discriminator_is_a_400_not_a_crash():
    error = rejects("CreateMessageRequest", {"role": "user", "content": [{"type": {}}]})
    assert error.param == "content[0].type"
    error = rejects(
        "CreateMessageRequest", {"role": "user", "content": "x", "attachments": [{"tools": [{"type": []}]}]}
    )
    assert error.param in ("attachments[0].file_id", "attachments[0].tools[0].type")


def test_an_integral_float_is_an_integer_as_json_schema_says():
    tokens = {"type": "object", "properties": {"max_tokens": {"type": "integer", "minimum": 256}}}
    validation._check(tokens, {"max_tokens": 800.0}, "")
    with pytest.raises(InvalidRequest) as fractional:
        validation._check(tokens, {"max_tokens": 800.5}, "")
    assert fractional.value.code == "invalid_type"


def test_integral_floats_are_stored_as_the_integers_the_schema_declares():
    body = {
        "assistant_id": "asst_x",
        "max_prompt_tokens": 1000.0,
        "max_completion_tokens": 300.0,
        "truncation_strategy": {"type": "last_messages", "last_messages": 2.0},
        "temperature": 1.0,
    }
    validate("CreateRunRequest", body)
    assert body["max_prompt_tokens"] == 1000 and type(body["max_prompt_tokens"]) is int
    assert type(body["max_completion_tokens"]) is int
    last_messages = body["truncation_strategy"]["last_messages"]
    assert last_messages == 2 and type(last_messages) is int
    assert type(body["temperature"]) is float  # a number stays a number


def test_a_body_nested_too_deep_is_refused_before_anything_uses_it():
    def nested(depth: int) -> bytes:
        return b'{"a": ' * depth + b"1" + b"}" * depth

    assert parse_json_object(nested(validation.MAX_JSON_DEPTH))
    with pytest.raises(InvalidRequest) as caught:
        parse_json_object(nested(validation.MAX_JSON_DEPTH + 1))
    assert caught.value.code == "json_too_deep"
    with pytest.raises(InvalidRequest):
        parse_json_object(nested(950))
