"""The DynamoDB plumbing every storage module shares, said once.

- Conditional writes: a write whose condition fails is an answer ("not there", "someone else got
  there first"), not an error; `written` and `transact` say which, and a refused transaction hands
  back the old items it was asked for instead of the caller reading them again.
- Consistent batch reads that retry what DynamoDB leaves unprocessed.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from pynamodb.connection import Connection
from pynamodb.exceptions import DeleteError, PutError, TransactWriteError, UpdateError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib.config import settings

CONFLICT_RETRIES = 6
# Ask a failed write for the item as it found it, instead of reading it again.
OLD_ITEM_ON_FAILURE = "ALL_OLD"


@cache
def connection() -> Connection:
    return Connection(region=settings.region, host=settings.dynamodb_endpoint)


def written(write: Callable[[], object]) -> bool:
    """Make one conditional write (a pynamodb save, update or delete). False if its condition failed."""
    try:
        write()
    except (PutError, UpdateError, DeleteError) as error:
        if error.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise
    return True


@dataclass(frozen=True)
class Refusal:
    """Which items of a cancelled transaction failed their conditions, by position, and the old item
    of each that asked for it (OLD_ITEM_ON_FAILURE), as raw DynamoDB attributes.

    pynamodb sends a transaction's items as condition checks, then deletes, then puts, then updates,
    each group in call order: positions count accordingly; negative ones count from the end."""

    size: int
    failed: dict[int, dict[str, Any] | None]

    def failed_at(self, index: int) -> bool:
        return self._position(index) in self.failed

    def old_item(self, index: int) -> dict[str, Any] | None:
        return self.failed.get(self._position(index))

    def _position(self, index: int) -> int:
        return index + self.size if index < 0 else index


def transact(build: Callable[[TransactWrite], None]) -> Refusal | None:
    """Commit a transaction: None when it is written, a Refusal when a condition failed. Any other
    failure raises.

    DynamoDB cancels concurrent transactions that touch the same item (two messages appended to one
    thread at once both check the thread); the loser is safe to run again, and is.
    """
    for attempt in range(CONFLICT_RETRIES):
        try:
            with TransactWrite(connection=connection()) as transaction:
                build(transaction)
            return None
        except TransactWriteError as error:
            reasons = error.cancellation_reasons
            failed = {
                index: reason.raw_item
                for index, reason in enumerate(reasons)
                if reason is not None and reason.code == "ConditionalCheckFailed"
            }
            if failed:
                return Refusal(len(reasons), failed)
            conflicted = "TransactionConflict" in {reason.code for reason in reasons if reason is not None}
            if not conflicted or attempt == CONFLICT_RETRIES - 1:
                raise
            time.sleep(random.uniform(0, 0.01 * 2**attempt))
    raise AssertionError("unreachable")


def commit(build: Callable[[TransactWrite], None]) -> None:
    """Commit a transaction whose conditions only guard against the impossible (a new id already
    taken): a refusal is a bug, and raises."""
    refusal = transact(build)
    if refusal is not None:
        raise RuntimeError(f"a transaction was refused at items {sorted(refusal.failed)}")


# --- batch reads --------------------------------------------------------------------------------


def _batch_get_items(request: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """One consistent BatchGetItem (at most 100 keys), retrying what DynamoDB leaves unprocessed:
    {table: raw items found}."""
    found: dict[str, list[dict[str, Any]]] = {table: [] for table in request}
    for attempt in range(CONFLICT_RETRIES):
        response = connection().client.batch_get_item(RequestItems=request)
        for table, items in response.get("Responses", {}).items():
            found[table].extend(items)
        request = response.get("UnprocessedKeys") or {}
        if not request:
            return found
        time.sleep(random.uniform(0, 0.01 * 2**attempt))
    raise RuntimeError("DynamoDB left keys unprocessed after retries (throttled)")


def batch_get(keys: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any] | None]:
    """One consistent BatchGetItem of one item per table: {table: raw item or None}.

    (TransactGetItems would do too, but it costs twice the reads and is cancelled while a write
    transaction holds one of the items.)"""
    found = _batch_get_items({table: {"Keys": [key], "ConsistentRead": True} for table, key in keys.items()})
    return {table: (items[0] if items else None) for table, items in found.items()}


def batch_get_many(table: str, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Consistent BatchGetItem of many keys of one table (100 a request): the raw items found."""
    found: list[dict[str, Any]] = []
    for start in range(0, len(keys), 100):
        found += _batch_get_items({table: {"Keys": keys[start : start + 100], "ConsistentRead": True}})[table]
    return found


def key_item(model: type[Model], hash_key: str, range_key: str | None = None) -> dict[str, Any]:
    """An item's key as raw attributes (for batch reads), named by the model itself."""
    key = {model._hash_key_attribute().attr_name: {"S": hash_key}}
    if range_key is not None:
        key[model._range_key_attribute().attr_name] = {"S": range_key}
    return key
