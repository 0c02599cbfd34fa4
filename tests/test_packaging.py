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

FUNCTIONS = ("APIHandler", "StreamRuns", "AdvanceRun", "PurgeDeletedThreads", "IngestPending", "IngestFiles")


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("package")
    sam = packaging.package(out)
    assert (out / "deployment.zip").stat().st_size > 0
    return json.loads(sam.read_text()) | {"_path": str(sam), "_zip": str(out / "deployment.zip")}


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


def _integrations(template) -> dict[tuple[str, str], dict]:
    paths = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["paths"]
    return {
        (path, method): operation["x-amazon-apigateway-integration"]
        for path, operations in paths.items()
        for method, operation in operations.items()
        if method != "options"  # CORS preflights are answered by API Gateway itself
    }


def test_exactly_the_three_stream_capable_routes_and_the_download_stream_from_the_stream_function(template):
    """A streamed response passes bytes as they are, whatever the client's Accept: the download needs no
    binary media type for the SDKs' Accept (openai-node 4.x sends application/json)."""
    streaming = {key: value for key, value in _integrations(template).items() if "responseTransferMode" in value}
    assert set(streaming) == {
        ("/v1/threads/runs", "post"),
        ("/v1/threads/{thread_id}/runs", "post"),
        ("/v1/threads/{thread_id}/runs/{run_id}/submit_tool_outputs", "post"),
        ("/v1/files/{file_id}/content", "get"),
    }
    for integration in streaming.values():
        assert integration["responseTransferMode"] == "STREAM"
        assert integration["type"] == "aws_proxy" and integration["httpMethod"] == "POST"
        uri = integration["uri"]["Fn::Sub"]
        assert uri.endswith("/2021-11-15/functions/${StreamRuns.Arn}/response-streaming-invocations")
        assert integration["timeoutInMillis"] == 900_000
    for key, integration in _integrations(template).items():
        if key not in streaming:
            assert "${APIHandler.Arn}/invocations" in integration["uri"]["Fn::Sub"], key
    assert template["Resources"]["RestAPI"]["Properties"]["EndpointConfiguration"] == "REGIONAL"  # 5 min idle


def test_the_stream_function_serves_the_same_package_under_the_web_adapter(template):
    import stat
    import zipfile

    resources = template["Resources"]
    function, handler = resources["StreamRuns"]["Properties"], resources["APIHandler"]["Properties"]
    assert function["CodeUri"] == handler["CodeUri"] and function["Runtime"] == handler["Runtime"]
    with zipfile.ZipFile(template["_zip"]) as package:
        script = package.getinfo(function["Handler"])  # the adapter's /opt/bootstrap executes it
        assert stat.S_IMODE(script.external_attr >> 16) & stat.S_IXUSR
        assert b"python3 -m chalicelib.stream_function" in package.read(script)
        assert "chalicelib/stream_function.py" in package.namelist() and "app.py" in package.namelist()
    assert any("layer:LambdaAdapterLayerX86:" in layer["Fn::Sub"] for layer in function["Layers"])
    assert function["Architectures"] == ["x86_64"]
    variables = function["Environment"]["Variables"]
    assert variables["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/bootstrap"
    assert variables["AWS_LWA_INVOKE_MODE"] == "response_stream"
    # the same settings as the API handler, and a stream that ends before the function is stopped
    shared = {name: value for name, value in variables.items() if name != "SPINDLE_STREAM_MAX_SECONDS"}
    assert {name: value for name, value in shared.items() if name.startswith("SPINDLE_")} == handler["Environment"][
        "Variables"
    ]
    assert function["Timeout"] == 900
    assert 0 < float(variables["SPINDLE_STREAM_MAX_SECONDS"]) < function["Timeout"] - 10
    permission = resources["StreamRunsInvokePermission"]["Properties"]
    assert permission["FunctionName"] == {"Ref": "StreamRuns"}
    assert permission["Principal"] == "apigateway.amazonaws.com"


def test_the_stream_function_role_has_only_what_its_routes_and_runs_need(template):
    resources = template["Resources"]
    role = resources[resources["StreamRuns"]["Properties"]["Role"]["Fn::GetAtt"][0]]
    statements = [s for policy in role["Properties"]["Policies"] for s in policy["PolicyDocument"]["Statement"]]
    actions = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert "states:StartExecution" in actions and "s3:GetObject" in actions
    assert not actions & {"dynamodb:DeleteItem", "dynamodb:Scan", "dynamodb:BatchWriteItem"}
    assert not actions & {"s3:DeleteObject", "states:StopExecution"}
    # it writes only the files a streamed run's code_interpreter makes, into the files bucket
    (puts,) = [
        s for s in statements if "s3:PutObject" in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    ]
    assert puts["Action"] == "s3:PutObject" and puts["Resource"] == {"Fn::Sub": "${FilesBucket.Arn}/*"}
    granted = json.dumps(statements)
    # no table's secondary index (an S3 Vectors index of a store, `…/bucket/…/index/*`, is no table's)
    assert "PurgeJobsTable" not in granted and "Table.Arn}/index/" not in granted


def test_runs_drive_agentcore_code_interpreter_sessions_and_nothing_else_may(template):
    """The two functions that advance runs run code in AgentCore (the AWS-managed interpreter, or one
    of the account's) and store its output files; no other function may, and all of them are told so."""
    resources = template["Resources"]
    agentcore = {
        "bedrock-agentcore:StartCodeInterpreterSession",
        "bedrock-agentcore:InvokeCodeInterpreter",
        "bedrock-agentcore:StopCodeInterpreterSession",
    }
    for name in ("APIHandler", "StreamRuns", "AdvanceRun", "IngestFiles", "IngestPending", "PurgeDeletedThreads"):
        function = resources[name]["Properties"]
        role = resources[function["Role"]["Fn::GetAtt"][0]]
        statements = [s for policy in role["Properties"]["Policies"] for s in policy["PolicyDocument"]["Statement"]]
        granted = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
        runs_code = name in ("StreamRuns", "AdvanceRun")
        assert (granted & agentcore == agentcore) if runs_code else not granted & agentcore, name
        if runs_code:
            (sessions,) = [s for s in statements if s.get("Sid") == "CodeInterpreterSessions"]
            assert all(":code-interpreter/*" in json.dumps(resource) for resource in sessions["Resource"])
            variables = function["Environment"]["Variables"]
            assert variables["SPINDLE_CODE_SANDBOX"] == "agentcore"
            assert variables["SPINDLE_AGENTCORE_INTERPRETER_ID"] == {"Ref": "CodeInterpreterId"}
    assert template["Parameters"]["CodeInterpreterId"]["Default"] == "aws.codeinterpreter.v1"


def test_each_worker_outlasts_the_longest_model_reply(template):
    """A step on the AdvanceRun Lambda ends before the Lambda is stopped: the whole-reply limit
    (SPINDLE_LLM_REPLY_MAX_SECONDS) fits in its timeout, as it does in the stream function's."""
    from chalicelib.config import settings

    for name in ("AdvanceRun", "StreamRuns"):
        assert settings.llm_reply_max_seconds + 60 <= template["Resources"][name]["Properties"]["Timeout"]


def test_an_added_file_is_ingested_by_a_function_the_api_may_only_invoke(template):
    """The API hands added files to `IngestFiles` (asynchronously); the scheduled IngestPending sweeps
    whatever that missed. Both ingest with the same rights, and the API can invoke nothing else."""
    resources = template["Resources"]
    for name in ("APIHandler", "StreamRuns"):
        variables = resources[name]["Properties"]["Environment"]["Variables"]
        assert variables["SPINDLE_INGEST_FUNCTION"] == {"Ref": "IngestFiles"}
        role = resources[resources[name]["Properties"]["Role"]["Fn::GetAtt"][0]]
        invoking = [
            statement
            for policy in role["Properties"]["Policies"]
            for statement in policy["PolicyDocument"]["Statement"]
            if "lambda:InvokeFunction" in json.dumps(statement["Action"])
        ]
        assert [statement["Resource"] for statement in invoking] == [{"Fn::GetAtt": ["IngestFiles", "Arn"]}]
    pending, added = (
        resources[name]["Properties"]["Role"]["Fn::GetAtt"][0] for name in ("IngestPending", "IngestFiles")
    )
    assert resources[pending]["Properties"]["Policies"] == resources[added]["Properties"]["Policies"]
    assert (
        resources["IngestFiles"]["Properties"]["Timeout"] == resources["IngestPending"]["Properties"]["Timeout"] == 300
    )


def test_vectors_live_in_the_stacks_vector_bucket_with_least_privilege(template):
    """Every function that ingests or searches names the S3 Vectors bucket; ingestion may create a
    store's index and put vectors, searches may only query, and only the API deletes."""
    resources = template["Resources"]
    assert resources["VectorBucket"]["Type"] == "AWS::S3Vectors::VectorBucket"

    def actions_of(function: str) -> set[str]:
        role = resources[resources[function]["Properties"]["Role"]["Fn::GetAtt"][0]]
        statements = [s for policy in role["Properties"]["Policies"] for s in policy["PolicyDocument"]["Statement"]]
        found = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
        return {action for action in found if action.startswith("s3vectors:")}

    for name in ("APIHandler", "StreamRuns", "AdvanceRun", "IngestFiles", "IngestPending"):
        variables = resources[name]["Properties"]["Environment"]["Variables"]
        assert variables["SPINDLE_VECTOR_BUCKET"] == {"Fn::Sub": "${TablePrefix}vectors-${AWS::AccountId}"}
        assert variables["SPINDLE_EMBEDDINGS"] == {"Ref": "Embeddings"}
    for name in ("IngestFiles", "IngestPending"):
        assert actions_of(name) == {"s3vectors:CreateIndex", "s3vectors:PutVectors", "s3vectors:DeleteVectors"}
    for name in ("StreamRuns", "AdvanceRun"):
        assert actions_of(name) == {"s3vectors:QueryVectors", "s3vectors:GetVectors"}
    assert actions_of("APIHandler") == {
        "s3vectors:QueryVectors",
        "s3vectors:GetVectors",
        "s3vectors:DeleteVectors",
        "s3vectors:DeleteIndex",
    }


def test_the_console_is_served_by_the_api_function_from_the_package(template):
    import zipfile

    paths = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["paths"]
    for route in ("/console", "/console/{name}"):
        operation = paths[route]["get"]
        assert "security" not in operation  # the page loads before any key is pasted; the API checks the key
        assert "${APIHandler.Arn}/invocations" in operation["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]
    served = {path.name for path in (ROOT / "chalicelib" / "console").iterdir()}
    with zipfile.ZipFile(template["_zip"]) as package:
        assert {f"chalicelib/console/{name}" for name in served} <= set(package.namelist())
