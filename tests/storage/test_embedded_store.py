"""The embedded store's mechanism (chalicelib/local/atomic_moto.py), in-process: pinned to its moto
version, Query by key range only and in DynamoDB's order, transactions that undo only themselves,
calls atomic under threads, nothing tracked, connections kept alive."""

from __future__ import annotations

import http.client
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version
from urllib.parse import urlparse

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb.models.dynamo_type import Item
from moto.dynamodb.models.table import Table

from chalicelib.local import atomic_moto, embedded_aws

TABLE = "embedded-store-test"


def test_the_patches_are_pinned_to_the_installed_moto_version():
    assert version("moto") == atomic_moto.PINNED_MOTO_VERSION


def test_install_refuses_any_other_moto_version(monkeypatch):
    monkeypatch.setattr(atomic_moto, "_installed", False)
    monkeypatch.setattr(atomic_moto, "version", lambda name: "5.2.6")
    with pytest.raises(atomic_moto.MotoVersionMismatch, match="5.2.5"):
        atomic_moto.install()


@pytest.fixture
def table():
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
                {"AttributeName": "gk", "AttributeType": "S"},
                {"AttributeName": "gn", "AttributeType": "N"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "by-g",
                    "KeySchema": [
                        {"AttributeName": "gk", "KeyType": "HASH"},
                        {"AttributeName": "gn", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def put(client, pk: str, sk: str, **extra) -> None:
    item = {"pk": {"S": pk}, "sk": {"S": sk}}
    item.update(
        {name: ({"N": str(value)} if isinstance(value, int) else {"S": value}) for name, value in extra.items()}
    )
    client.put_item(TableName=TABLE, Item=item)


def keys(items: list[dict]) -> list[tuple[str, str]]:
    return [(item["pk"]["S"], item["sk"]["S"]) for item in items]


def query_all(client, **params) -> tuple[list[tuple[str, str]], list[int]]:
    """Every page of a query; returns the keys in order and the page sizes."""
    found, sizes, start = [], [], None
    while True:
        page = client.query(TableName=TABLE, **params, **({"ExclusiveStartKey": start} if start else {}))
        found += keys(page["Items"])
        sizes.append(page["Count"])
        start = page.get("LastEvaluatedKey")
        if not start:
            return found, sizes


def test_queries_return_dynamodb_order_for_every_key_condition_direction_and_page_size(table):
    rng = random.Random(7)
    alphabet = "abcx"
    stored: dict[tuple[str, str], dict] = {}
    for _ in range(400):
        pk, sk = rng.choice(["p1", "p2", "p3"]), "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 3)))
        extra = {"gk": rng.choice(["g1", "g2"]), "gn": rng.randint(0, 30)} if rng.random() < 0.7 else {}
        put(table, pk, sk, **extra)
        stored[(pk, sk)] = extra
    for pk, sk in rng.sample(sorted(stored), 60):  # deletes and GSI key changes keep the index in step
        if rng.random() < 0.5:
            table.delete_item(TableName=TABLE, Key={"pk": {"S": pk}, "sk": {"S": sk}})
            del stored[(pk, sk)]
        else:
            table.update_item(
                TableName=TABLE,
                Key={"pk": {"S": pk}, "sk": {"S": sk}},
                UpdateExpression="SET gk = :g, gn = :n",
                ExpressionAttributeValues={":g": {"S": "g1"}, ":n": {"N": "5"}},
            )
            stored[(pk, sk)] = {"gk": "g1", "gn": 5}

    conditions = [
        ("", lambda sk: True, {}),
        ("AND sk = :a", lambda sk: sk == "b", {":a": "b"}),
        ("AND sk < :a", lambda sk: sk < "b", {":a": "b"}),
        ("AND sk <= :a", lambda sk: sk <= "b", {":a": "b"}),
        ("AND sk > :a", lambda sk: sk > "bx", {":a": "bx"}),
        ("AND sk >= :a", lambda sk: sk >= "bx", {":a": "bx"}),
        ("AND sk BETWEEN :a AND :b", lambda sk: "ab" <= sk <= "c", {":a": "ab", ":b": "c"}),
        ("AND begins_with(sk, :a)", lambda sk: sk.startswith("a"), {":a": "a"}),
    ]
    for pk in ("p1", "p2", "p3", "nobody"):
        for expression, keep, values in conditions:
            for forward in (True, False):
                for limit in (1, 7, 1000):
                    expected = sorted((key for key in stored if key[0] == pk and keep(key[1])), reverse=not forward)
                    attribute_values = {":p": {"S": pk}, **{name: {"S": value} for name, value in values.items()}}
                    found, sizes = query_all(
                        table,
                        KeyConditionExpression=f"pk = :p {expression}",
                        ExpressionAttributeValues=attribute_values,
                        ScanIndexForward=forward,
                        Limit=limit,
                    )
                    assert found == expected, (pk, expression, forward, limit)
                    assert max(sizes) <= limit

    for gk in ("g1", "g2"):
        for forward in (True, False):
            for limit in (1, 5, 1000):
                for low in (0, 10):
                    expected = sorted(
                        (
                            (extra["gn"], key)
                            for key, extra in stored.items()
                            if extra.get("gk") == gk and extra["gn"] >= low
                        ),
                        reverse=not forward,
                    )
                    found, _ = query_all(
                        table,
                        IndexName="by-g",
                        KeyConditionExpression="gk = :g AND gn >= :n",
                        ExpressionAttributeValues={":g": {"S": gk}, ":n": {"N": str(low)}},
                        ScanIndexForward=forward,
                        Limit=limit,
                    )
                    assert found == [key for _, key in expected], (gk, forward, limit, low)


def test_a_query_reads_its_key_range_not_the_table(table, monkeypatch):
    for n in range(50):
        put(table, "p1", f"{n:03d}", gk="g", gn=n)
    table.query(TableName=TABLE, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "p1"}})

    def walked(self):
        raise AssertionError("a Query walked the whole table")

    monkeypatch.setattr(Table, "all_items", walked)
    page = table.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :p AND sk > :s",
        ExpressionAttributeValues={":p": {"S": "p1"}, ":s": {"S": "040"}},
        Limit=3,
    )
    assert keys(page["Items"]) == [("p1", "041"), ("p1", "042"), ("p1", "043")]
    page = table.query(
        TableName=TABLE,
        IndexName="by-g",
        KeyConditionExpression="gk = :g",
        ExpressionAttributeValues={":g": {"S": "g"}},
        ScanIndexForward=False,
        Limit=2,
    )
    assert keys(page["Items"]) == [("p1", "049"), ("p1", "048")]


def test_a_failed_transaction_puts_back_only_the_items_it_named(table):
    put(table, "p", "changed", value="before", gk="g", gn=1)
    put(table, "p", "guard", value="x")
    with pytest.raises(ClientError, match="TransactionCanceled"):
        table.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": TABLE,
                        "Item": {"pk": {"S": "p"}, "sk": {"S": "changed"}, "value": {"S": "after"}},
                    }
                },
                {
                    "Put": {
                        "TableName": TABLE,
                        "Item": {"pk": {"S": "p"}, "sk": {"S": "new"}, "gk": {"S": "g"}, "gn": {"N": "2"}},
                    }
                },
                {
                    "ConditionCheck": {
                        "TableName": TABLE,
                        "Key": {"pk": {"S": "p"}, "sk": {"S": "guard"}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )
    found, _ = query_all(table, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "p"}})
    assert found == [("p", "changed"), ("p", "guard")]
    changed = table.get_item(TableName=TABLE, Key={"pk": {"S": "p"}, "sk": {"S": "changed"}})["Item"]
    assert changed["value"] == {"S": "before"}
    by_g, _ = query_all(
        table, IndexName="by-g", KeyConditionExpression="gk = :g", ExpressionAttributeValues={":g": {"S": "g"}}
    )
    assert by_g == [("p", "changed")]


def test_writes_that_race_failing_transactions_all_survive(table):
    """Eight threads commit puts while eight others run transactions that fail: every put stays."""
    put(table, "guard", "guard")
    barrier = threading.Barrier(16)

    def writer(worker: int) -> None:
        barrier.wait()
        for n in range(60):
            put(table, "kept", f"{worker}-{n:02d}")

    def failing(worker: int) -> None:
        barrier.wait()
        for n in range(60):
            with pytest.raises(ClientError):
                table.transact_write_items(
                    TransactItems=[
                        {"Put": {"TableName": TABLE, "Item": {"pk": {"S": "lost"}, "sk": {"S": f"{worker}-{n}"}}}},
                        {
                            "ConditionCheck": {
                                "TableName": TABLE,
                                "Key": {"pk": {"S": "guard"}, "sk": {"S": "guard"}},
                                "ConditionExpression": "attribute_not_exists(pk)",
                            }
                        },
                    ]
                )

    with ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(writer, w) for w in range(8)] + [pool.submit(failing, w) for w in range(8)]
        for future in futures:
            future.result()
    kept, _ = query_all(table, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "kept"}})
    assert len(kept) == 8 * 60
    lost, _ = query_all(table, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "lost"}})
    assert lost == []


def test_items_are_not_kept_alive_by_moto(table):
    for n in range(100):
        put(table, "p", f"{n:03d}")
        table.query(TableName=TABLE, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "p"}})
    assert len(Item.instances_tracked) == 0  # type: ignore[attr-defined]


def test_the_embedded_server_keeps_connections_alive():
    store = embedded_aws.start()
    try:
        address = urlparse(store.endpoint)
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
        headers = {
            "X-Amz-Target": "DynamoDB_20120810.ListTables",
            "Content-Type": "application/x-amz-json-1.0",
            "Authorization": "AWS4-HMAC-SHA256 Credential=x/20250101/us-east-1/dynamodb/aws4_request, "
            "SignedHeaders=host, Signature=x",
        }
        for _ in range(3):
            connection.request("POST", "/", body=b"{}", headers=headers)
            response = connection.getresponse()
            response.read()
            assert response.status == 200
            assert not response.will_close  # the same connection serves the next call
        connection.close()
    finally:
        store.stop()


def test_the_embedded_server_stores_an_empty_object():
    """botocore sends PutObject with `Expect: 100-continue` even for an empty body (found by the
    contract tests: waitress then waited for a body that never came)."""
    import botocore.session
    from botocore.config import Config

    store = embedded_aws.start()
    try:
        s3 = botocore.session.get_session().create_client(
            "s3",
            endpoint_url=store.endpoint,
            region_name="us-east-1",
            config=Config(read_timeout=10, retries={"max_attempts": 1}),
        )
        s3.create_bucket(Bucket="empty-objects")
        s3.put_object(Bucket="empty-objects", Key="nothing", Body=b"")
        assert s3.get_object(Bucket="empty-objects", Key="nothing")["Body"].read() == b""
    finally:
        store.stop()


def test_attribute_values_are_written_as_moto_itself_would(table, monkeypatch):
    """The response shortcut for attribute values gives byte-for-byte what moto's shape walker gives,
    for every attribute type, and boto3 reads back exactly what was stored."""
    item = {
        "pk": {"S": "types"},
        "sk": {"S": "all"},
        "s": {"S": "text é"},
        "empty": {"S": ""},
        "n": {"N": "-12.5"},
        "b": {"B": b"\x00\x01binary"},
        "bool": {"BOOL": False},
        "null": {"NULL": True},
        "ss": {"SS": ["a", "b"]},
        "ns": {"NS": ["1", "2"]},
        "bs": {"BS": [b"x", b"y"]},
        "l": {"L": [{"S": "x"}, {"N": "1"}, {"B": b"z"}, {"M": {"deep": {"L": [{"NULL": True}]}}}]},
        "m": {"M": {"k": {"S": "v"}, "b": {"B": b"q"}}},
    }
    table.put_item(TableName=TABLE, Item=item)
    key = {"pk": {"S": "types"}, "sk": {"S": "all"}}
    bodies = {}
    for fast in (True, False):
        monkeypatch.setattr(atomic_moto, "fast_attribute_values", fast)
        captured: list[bytes] = []

        def capture(http_response, captured=captured, **kwargs):
            captured.append(http_response.content)

        table.meta.events.register("after-call.dynamodb.*", capture)
        got = table.get_item(TableName=TABLE, Key=key)["Item"]
        queried = table.query(
            TableName=TABLE, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "types"}}
        )
        table.meta.events.unregister("after-call.dynamodb.*", capture)
        normalize = {
            name: ({k: sorted(v) for k, v in value.items()} if name in ("ss", "ns", "bs") else value)
            for name, value in got.items()
        }
        expected = {
            name: ({k: sorted(v) for k, v in value.items()} if name in ("ss", "ns", "bs") else value)
            for name, value in item.items()
        }
        assert normalize == expected
        assert queried["Items"][0] == got
        assert len(captured) == 2 and all(body.startswith(b"{") for body in captured)
        bodies[fast] = captured
    assert bodies[True] == bodies[False]


def test_a_mistyped_index_key_is_refused_and_stores_nothing(table):
    """DynamoDB refuses an index key of another type than declared (moto stored it and the index broke)."""
    put(table, "p", "a", gk="g", gn=1)
    bad = {"pk": {"S": "p"}, "sk": {"S": "b"}, "gk": {"S": "g"}, "gn": {"S": "not a number"}}
    with pytest.raises(ClientError, match="Type mismatch for Index Key"):
        table.put_item(TableName=TABLE, Item=bad)
    with pytest.raises(ClientError, match="Type mismatch for Index Key"):  # a ValidationException, as DynamoDB
        table.transact_write_items(TransactItems=[{"Put": {"TableName": TABLE, "Item": bad}}])
    with pytest.raises(ClientError, match="Type mismatch for"):
        table.update_item(
            TableName=TABLE,
            Key={"pk": {"S": "p"}, "sk": {"S": "a"}},
            UpdateExpression="SET gn = :bad",
            ExpressionAttributeValues={":bad": {"S": "x"}},
        )
    found, _ = query_all(table, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "p"}})
    assert found == [("p", "a")]
    assert table.get_item(TableName=TABLE, Key={"pk": {"S": "p"}, "sk": {"S": "a"}})["Item"]["gn"] == {"N": "1"}
    by_g, _ = query_all(
        table, IndexName="by-g", KeyConditionExpression="gk = :g", ExpressionAttributeValues={":g": {"S": "g"}}
    )
    assert by_g == [("p", "a")]


def test_a_failed_update_changes_nothing(table):
    """moto applies an update's actions in place and can fail halfway; DynamoDB applies all or none."""
    put(table, "p", "a", gk="g", gn=1)
    with pytest.raises(ClientError):
        table.update_item(
            TableName=TABLE,
            Key={"pk": {"S": "p"}, "sk": {"S": "a"}},
            UpdateExpression="SET gn = :n ADD gk :one",
            ExpressionAttributeValues={":n": {"N": "9"}, ":one": {"N": "1"}},
        )
    assert table.get_item(TableName=TABLE, Key={"pk": {"S": "p"}, "sk": {"S": "a"}})["Item"]["gn"] == {"N": "1"}
    with pytest.raises(ClientError):
        table.update_item(
            TableName=TABLE,
            Key={"pk": {"S": "p"}, "sk": {"S": "missing"}},
            UpdateExpression="SET gn = :n ADD gk :one",
            ExpressionAttributeValues={":n": {"N": "9"}, ":one": {"N": "1"}},
        )
    assert "Item" not in table.get_item(TableName=TABLE, Key={"pk": {"S": "p"}, "sk": {"S": "missing"}})


def test_begins_with_any_prefix_and_values_of_another_type(table):
    put(table, "p", "a\U0010ffff")
    put(table, "p", "a\U0010ffffz")
    put(table, "p", "b")
    found, _ = query_all(
        table,
        KeyConditionExpression="pk = :p AND begins_with(sk, :s)",
        ExpressionAttributeValues={":p": {"S": "p"}, ":s": {"S": "a\U0010ffff"}},
    )
    assert found == [("p", "a\U0010ffff"), ("p", "a\U0010ffffz")]
    # A number compared with a string key: moto's own Query answers (an empty page), never a 500.
    page = table.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :p AND sk = :s",
        ExpressionAttributeValues={":p": {"S": "p"}, ":s": {"N": "1"}},
    )
    assert page["Items"] == []


def test_a_replaced_index_is_queried_as_it_now_is(table):
    put(table, "p", "a", gk="g", gn=1, h="x")
    table.update_table(TableName=TABLE, GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": "by-g"}}])
    table.update_table(
        TableName=TABLE,
        AttributeDefinitions=[{"AttributeName": "h", "AttributeType": "S"}],
        GlobalSecondaryIndexUpdates=[
            {
                "Create": {
                    "IndexName": "by-g",
                    "KeySchema": [{"AttributeName": "h", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                }
            }
        ],
    )
    found, _ = query_all(
        table, IndexName="by-g", KeyConditionExpression="h = :h", ExpressionAttributeValues={":h": {"S": "x"}}
    )
    assert found == [("p", "a")]
