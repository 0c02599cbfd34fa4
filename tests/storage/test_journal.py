"""The journal (chalicelib/local/journal.py) in-process: one call's changes are one SQLite
transaction, and every attribute type comes back from the file exactly as it was stored."""

from __future__ import annotations

import os

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.models.dynamo_type import DynamoType

from chalicelib.local.journal import Journal

TABLE = "journal-test"
ITEM = {
    "pk": {"S": "p"},
    "sk": {"N": "7"},
    "text": {"S": "é and ✓"},
    "number": {"N": "-0.125"},
    "binary": {"B": b"\x00\xff"},
    "flag": {"BOOL": True},
    "nothing": {"NULL": True},
    "strings": {"SS": ["a", "b"]},
    "list": {"L": [{"N": "1"}, {"M": {"inner": {"B": b"z"}}}]},
}


def _create_table(client) -> None:
    client.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "N"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


def _moto_table():
    return dynamodb_backends["123456789012"]["us-east-1"].tables[TABLE]


def test_one_calls_changes_are_written_in_one_sqlite_transaction(tmp_path):
    journal = Journal(tmp_path)
    statements: list[str] = []
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        _create_table(client)
        for n in range(3):
            client.put_item(TableName=TABLE, Item={"pk": {"S": "p"}, "sk": {"N": str(n)}})
        table = _moto_table()
        for n in range(3):
            journal.item_changed(table, DynamoType({"S": "p"}), DynamoType({"N": str(n)}))
        journal._db.set_trace_callback(statements.append)
        journal.flush()
    verbs = [statement.split()[0] for statement in statements]
    assert verbs == ["BEGIN", "INSERT", "INSERT", "INSERT", "COMMIT"]


def test_every_attribute_type_comes_back_from_the_file(tmp_path):
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        _create_table(client)
        client.put_item(TableName=TABLE, Item=ITEM)
        journal = Journal(tmp_path)
        journal.table_created(
            _moto_table(),
            {
                "schema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                "throughput": None,
                "attr": [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "N"}],
                "global_indexes": [],
                "indexes": [],
                "streams": None,
                "billing_mode": "PAY_PER_REQUEST",
                "sse_specification": None,
                "tags": [],
                "deletion_protection_enabled": False,
                "warm_throughput": None,
            },
        )
        journal.item_changed(_moto_table(), DynamoType({"S": "p"}), DynamoType({"N": "7"}))
        journal.close()  # the process that wrote it ends, and with it its lock on the directory
    with mock_aws():  # a fresh moto: what a restart of `make dev` starts from
        assert Journal(tmp_path).load() == (1, 0)
        client = boto3.client("dynamodb", region_name="us-east-1")
        stored = client.get_item(TableName=TABLE, Key={"pk": {"S": "p"}, "sk": {"N": "7"}})["Item"]
        page = client.query(
            TableName=TABLE, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "p"}}
        )
    assert stored == ITEM
    assert page["Items"] == [ITEM]


def test_a_number_key_is_one_row_however_it_is_spelled(tmp_path):
    """ "1" and "1.0" are one DynamoDB key: a delete spelled "1.0" removes the item put as "1"."""
    journal = Journal(tmp_path)
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        _create_table(client)
        table = _moto_table()
        for spelled in ("1", "1.0"):
            journal.item_changed(table, DynamoType({"S": "p"}), DynamoType({"N": spelled}))
        client.put_item(TableName=TABLE, Item={"pk": {"S": "p"}, "sk": {"N": "1"}})
        journal.item_changed(table, DynamoType({"S": "p"}), DynamoType({"N": "1"}))
        journal.flush()
        client.delete_item(TableName=TABLE, Key={"pk": {"S": "p"}, "sk": {"N": "1.0"}})
        journal.item_changed(table, DynamoType({"S": "p"}), DynamoType({"N": "1.0"}))
        journal.flush()
    assert journal._db.execute("SELECT COUNT(*) FROM items").fetchone() == (0,)


def test_a_second_journal_on_a_directory_in_use_is_refused_until_the_first_closes(tmp_path):
    from chalicelib.local.journal import DataDirInUse

    first = Journal(tmp_path)
    with pytest.raises(DataDirInUse) as refused:
        Journal(tmp_path)
    assert str(tmp_path) in str(refused.value) and f"pid {os.getpid()}" in str(refused.value)
    first.close()
    Journal(tmp_path).close()
