"""`make package`: the deployable template is built from the project's files and validated offline."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import package as packaging  # noqa: E402

FUNCTIONS = ("APIHandler", "AdvanceRun", "PurgeDeletedThreads")


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("package")
    sam = packaging.package(out)
    assert (out / "deployment.zip").stat().st_size > 0
    return json.loads(sam.read_text()) | {"_path": str(sam)}


def test_cfn_lint_passes_on_the_packaged_template(template):
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run([str(cfn_lint), template["_path"]], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_function_has_its_own_least_privilege_role(template):
    resources = template["Resources"]
    assert "DefaultRole" not in resources
    roles = {name: resources[name]["Properties"]["Role"]["Fn::GetAtt"][0] for name in FUNCTIONS}
    assert len(set(roles.values())) == len(FUNCTIONS)
    for role in roles.values():
        for policy in resources[role]["Properties"]["Policies"]:
            for statement in policy["PolicyDocument"]["Statement"]:
                assert statement["Effect"] == "Allow"
                assert (
                    not any(
                        action.endswith(":*") or action == "*"
                        for action in statement["Action"]
                        if isinstance(statement["Action"], list)
                    )
                    and statement["Action"] != "*"
                )
                assert statement["Resource"] != "*"
    api_actions = json.dumps(resources[roles["APIHandler"]])
    assert "states:StartExecution" in api_actions and "dynamodb:Scan" not in api_actions
    purge = json.dumps(resources[roles["PurgeDeletedThreads"]])
    assert "ApiKeysTable" not in purge and "s3:" not in purge


def test_functions_read_the_deployed_tables_bucket_and_state_machine(template):
    variables = template["Resources"]["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert variables["SPINDLE_RUN_DRIVER"] == "stepfunctions"
    assert variables["SPINDLE_STATE_MACHINE_ARN"] == {"Ref": "RunStateMachine"}
    assert variables["SPINDLE_TABLE_PREFIX"] == {"Ref": "TablePrefix"}
    assert variables["SPINDLE_AUTH"] == "keys"
    machine = template["Resources"]["RunStateMachine"]["Properties"]
    assert machine["DefinitionSubstitutions"]["AdvanceRunFunctionArn"] == {"Fn::GetAtt": ["AdvanceRun", "Arn"]}


def test_gateway_responses_speak_the_openai_error_shape(template):
    responses = {
        resource["Properties"]["ResponseType"]: resource["Properties"]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::ApiGateway::GatewayResponse"
    }
    assert responses["MISSING_AUTHENTICATION_TOKEN"]["StatusCode"] == "404"
    for response in responses.values():
        body = response["ResponseTemplates"]["application/json"]
        rendered = re.sub(r"\$context\.error\.messageString", '"message"', body)
        rendered = re.sub(r"\$context\.[A-Za-z.]+", "x", rendered)
        assert set(json.loads(rendered)["error"]) == {"message", "type", "param", "code"}


def test_cors_admits_the_sdk_headers(template):
    paths = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["paths"]
    preflight = paths["/v1/threads/{thread_id}/runs"]["options"]
    allowed = json.dumps(preflight).lower()
    for header in ("openai-beta", "x-stainless-lang", "x-stainless-retry-count", "authorization"):
        assert header in allowed
