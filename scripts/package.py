"""`make package`: the deployable SAM template and zip in build/package, from the project's own files.

chalice package makes the functions and the REST API; infra/dynamodb.yaml (tables, bucket),
infra/runs.yaml (the run state machine) and infra/api.yaml (roles, settings, the stream function,
gateway responses) are merged into it with --merge-template. Then the routes that can stream are
pointed at the stream function, with API Gateway's response streaming (chalice cannot say that).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
INFRA = ROOT / "infra"
BUILD = ROOT / "build"


def _link_state_machine_to_function(node: Any) -> Any:
    """runs.yaml takes the advance_run Lambda as a parameter; in the package it is chalice's AdvanceRun."""
    if isinstance(node, dict):
        if node == {"Ref": "AdvanceRunFunctionArn"}:
            return {"Fn::GetAtt": ["AdvanceRun", "Arn"]}
        return {key: _link_state_machine_to_function(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_link_state_machine_to_function(value) for value in node]
    if isinstance(node, str):
        return node.replace("${AdvanceRunFunctionArn}", "${AdvanceRun.Arn}")
    return node


# The routes API Gateway sends to the stream function (infra/api.yaml), streaming its response as it is
# written, for up to 15 minutes; every other route stays on APIHandler. The three that can answer
# `stream: true`, and the download, whose bytes a streamed response passes as they are whatever the
# client's Accept (a buffered one decodes base64 only for an Accept among the binary media types).
STREAM_ROUTES = (
    ("/v1/threads/runs", "post"),
    ("/v1/threads/{thread_id}/runs", "post"),
    ("/v1/threads/{thread_id}/runs/{run_id}/submit_tool_outputs", "post"),
)
BYTES_ROUTES = (("/v1/files/{file_id}/content", "get"),)
STREAM_INVOCATION_URI = (
    "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2021-11-15/functions/${StreamRuns.Arn}"
    "/response-streaming-invocations"
)
STREAM_TIMEOUT_MS = 900_000


def stream_routes(template: dict[str, Any]) -> None:
    """Point the stream-capable routes and the download at the stream function, in STREAM transfer mode,
    and give the stream function the runtime chalice packaged the dependencies for."""
    resources = template["Resources"]
    resources["StreamRuns"]["Properties"]["Runtime"] = resources["APIHandler"]["Properties"]["Runtime"]
    paths = resources["RestAPI"]["Properties"]["DefinitionBody"]["paths"]
    for path, method in STREAM_ROUTES + BYTES_ROUTES:
        integration = paths[path][method]["x-amazon-apigateway-integration"]
        integration["uri"] = {"Fn::Sub": STREAM_INVOCATION_URI}
        integration["responseTransferMode"] = "STREAM"
        integration["timeoutInMillis"] = STREAM_TIMEOUT_MS
        integration.pop("contentHandling", None)  # the response is passed on as it is written, bytes as bytes


def merge_template() -> dict[str, Any]:
    merged: dict[str, Any] = {"Parameters": {}, "Resources": {}, "Outputs": {}}
    for name in ("dynamodb.yaml", "runs.yaml", "api.yaml"):
        template = yaml.safe_load((INFRA / name).read_text())
        if name == "runs.yaml":
            template["Parameters"].pop("AdvanceRunFunctionArn")
            machine = template["Resources"]["RunStateMachine"]["Properties"]
            machine["DefinitionSubstitutions"]["AdvanceRunFunctionArn"] = {"Fn::GetAtt": ["AdvanceRun", "Arn"]}
            template["Resources"]["RunStateMachineRole"] = _link_state_machine_to_function(
                template["Resources"]["RunStateMachineRole"]
            )
        for section in merged:
            for key, value in (template.get(section) or {}).items():
                if key in merged[section]:
                    raise SystemExit(f"{name}: {section}.{key} is defined twice")
                merged[section][key] = value
    return merged


def package(out: Path) -> Path:
    BUILD.mkdir(exist_ok=True)
    merge_path = BUILD / "merge-template.json"
    merge_path.write_text(json.dumps(merge_template(), indent=1))
    env = {**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
    chalice = Path(sys.executable).with_name("chalice")
    subprocess.run(
        [str(chalice), "package", "--stage", "dev", "--merge-template", str(merge_path), str(out)],
        cwd=ROOT,
        env=env,
        check=True,
    )
    sam = out / "sam.json"
    template = json.loads(sam.read_text())
    stream_routes(template)
    sam.write_text(json.dumps(template, indent=2))
    return sam


if __name__ == "__main__":
    print(package(Path(sys.argv[1]) if len(sys.argv) > 1 else BUILD / "package"))
