"""`SPINDLE_AUTH=keys`: keys are minted with the CLI, stored hashed, and name a project."""

from __future__ import annotations

import hashlib
import json

import boto3
import openai
import pytest

from tests.servers import cli, mint


def test_minted_keys_work_and_share_their_project(keys_server):
    first = mint(keys_server, "--name", "ci")
    second = mint(keys_server, "--project", first["project_id"])
    stranger = mint(keys_server)
    assert first["api_key"].startswith("sk-spindle-")
    thread = keys_server.client(first["api_key"]).beta.threads.create()
    assert keys_server.client(second["api_key"]).beta.threads.retrieve(thread.id) == thread
    with pytest.raises(openai.NotFoundError):
        keys_server.client(stranger["api_key"]).beta.threads.retrieve(thread.id)


def test_an_unknown_key_is_401(keys_server):
    with pytest.raises(openai.AuthenticationError) as refused:
        keys_server.client("sk-spindle-made-up").beta.threads.create()
    assert refused.value.code == "invalid_api_key"
    assert "sk-spindle-made-up" not in refused.value.message


def test_keys_are_stored_only_as_hashes(keys_server):
    key = mint(keys_server, "--name", "hashed")["api_key"]
    table = boto3.resource("dynamodb", endpoint_url=keys_server.dynamodb_endpoint).Table("spindle-api-keys")
    item = table.get_item(Key={"key_hash": hashlib.sha256(key.encode()).hexdigest()})["Item"]
    assert key not in json.dumps(item, default=str)
    assert item["name"] == "hashed"


def test_a_revoked_key_stops_working(keys_server):
    key = mint(keys_server)["api_key"]
    keys_server.client(key).beta.threads.create()
    assert cli(keys_server, "revoke", key).returncode == 0
    with pytest.raises(openai.AuthenticationError):
        keys_server.client(key).beta.threads.create()
    assert cli(keys_server, "revoke", key).returncode == 1


def test_project_ids_that_could_forge_keys_are_refused(keys_server):
    for project in ("proj_acme#team", "acme", "proj_", "proj_" + "a" * 65):
        result = cli(keys_server, "create", "--project", project)
        assert result.returncode == 2, project
        assert "project id" in result.stderr
