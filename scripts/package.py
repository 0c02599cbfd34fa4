"""`make package`: the deployable SAM template and zip in build/package, from the project's own files.

chalice package makes the functions and the REST API; infra/dynamodb.yaml (tables, bucket),
infra/runs.yaml (the run state machine) and infra/api.yaml (roles, settings, gateway responses) are
merged into it with --merge-template.
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
    return out / "sam.json"


if __name__ == "__main__":
    print(package(Path(sys.argv[1]) if len(sys.argv) > 1 else BUILD / "package"))
