"""infra/dynamodb.yaml declares exactly the tables, keys and indexes the pynamodb models use."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml
from pynamodb.attributes import TTLAttribute

from chalicelib.config import settings
from chalicelib.storage.models import ALL_MODELS, LOCAL_ONLY_MODELS

DEPLOYED_MODELS = [model for model in ALL_MODELS if model not in LOCAL_ONLY_MODELS]

TEMPLATE = Path(__file__).resolve().parents[2] / "infra" / "dynamodb.yaml"


def declared_tables() -> dict[str, dict]:
    resources = yaml.safe_load(TEMPLATE.read_text())["Resources"]
    tables = {}
    for resource in resources.values():
        if resource["Type"] == "AWS::DynamoDB::Table":
            properties = resource["Properties"]
            name = properties["TableName"]["Fn::Sub"].replace("${TablePrefix}", settings.table_prefix)
            tables[name] = properties
    return tables


def keys(schema: list[dict]) -> dict[str, str]:
    return {entry["KeyType"]: entry["AttributeName"] for entry in schema}


def test_the_template_and_the_models_agree():
    tables = declared_tables()
    assert set(tables) == {model.Meta.table_name for model in DEPLOYED_MODELS}
    for model in DEPLOYED_MODELS:
        declared = tables[model.Meta.table_name]
        expected = model._get_schema()
        assert keys(declared["KeySchema"]) == keys(expected["key_schema"]), model.__name__
        assert {(a["AttributeName"], a["AttributeType"]) for a in declared["AttributeDefinitions"]} == {
            (a["AttributeName"], a["AttributeType"]) for a in expected["attribute_definitions"]
        }, model.__name__
        declared_indexes = {
            index["IndexName"]: (keys(index["KeySchema"]), index["Projection"]["ProjectionType"])
            for index in declared.get("GlobalSecondaryIndexes", [])
        }
        expected_indexes = {
            index["index_name"]: (keys(index["key_schema"]), index["projection"]["ProjectionType"])
            for index in expected.get("global_secondary_indexes", [])
        }
        assert declared_indexes == expected_indexes, model.__name__
        ttl = [name for name, attribute in model.get_attributes().items() if isinstance(attribute, TTLAttribute)]
        declared_ttl = declared.get("TimeToLiveSpecification")
        assert ([declared_ttl["AttributeName"]] if declared_ttl and declared_ttl["Enabled"] else []) == ttl
        assert declared["BillingMode"] == "PAY_PER_REQUEST"
        assert declared["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
        assert declared["SSESpecification"]["SSEEnabled"] is True


def test_cfn_lint_passes():
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run([str(cfn_lint), str(TEMPLATE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
