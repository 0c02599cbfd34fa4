"""moto made to keep DynamoDB's promises, for local mode and tests. Written for moto 5.2.5 only.

moto 5.2.5 serves each request on its own thread with no lock. Its TransactWriteItems deep-copies
every table it touches and, when a condition fails, puts those copies back, undoing what other
requests committed meanwhile. Every Query walks and sorts the whole table, and every item it ever
made (copies included) stays in a class-level list. `install()` changes these things:

1. **One lock around every DynamoDB and S3 call**, so each call is atomic with respect to every
   other, as DynamoDB's single-item writes and transactions are. moto works in memory, so the lock
   is held for microseconds to a few milliseconds. Hooks registered with `after_each_call` run
   before the lock is released (the journal writes what the call changed there).
2. **TransactWriteItems backs up only the items it names** and, if any condition fails, puts back
   only those: a failed transaction undoes itself and nothing else.
3. **Every table and GSI keeps its items sorted per partition.** A Query bisects to its key range
   and reads only the items it returns, whatever the size of the table.
4. **Items are not tracked**, and S3 keys only weakly, so memory holds the data, not every copy.
5. **Attribute values are written as they are.** moto serializes every response by walking the
   botocore output shape member by member; for DynamoDB's items that walk cost about 70 % of a
   Query's time. An attribute value is already its own JSON (only binary values need base64).

The patches replace moto internals; `install()` refuses any other moto version (a test checks it).
"""

from __future__ import annotations

import base64
import copy
import functools
import threading
import weakref
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.metadata import version
from operator import itemgetter
from typing import Any

PINNED_MOTO_VERSION = "5.2.5"
RESULT_SIZE_LIMIT = 1024 * 1024  # DynamoDB's 1 MB page, as moto applies it

_lock = threading.RLock()
_depth = 0  # nesting of store calls; only the lock holder touches it
_after_call: list[Callable[[], None]] = []
_installed = False

# An index entry: (sort order, table hash key, table range key). The order is a tuple of plain
# values (str, Decimal, bytes), unique within its partition.
Entry = tuple[tuple[Any, ...], Any, Any]
_order = itemgetter(0)


class MotoVersionMismatch(RuntimeError):
    pass


@contextmanager
def store_call() -> Iterator[None]:
    """Hold the store for one call; the after-call hooks run when the outermost call ends."""
    global _depth
    with _lock:
        _depth += 1
        try:
            yield
        finally:
            _depth -= 1
            if _depth == 0:
                for hook in _after_call:
                    hook()


def after_each_call(hook: Callable[[], None]) -> None:
    _after_call.append(hook)


def _locked(function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with store_call():
            return function(*args, **kwargs)

    return locked


# --- sorted partitions ----------------------------------------------------------------------------


class _Partitions:
    """Entries grouped by partition key, each group sorted by its order."""

    def __init__(self) -> None:
        self.groups: dict[Any, list[Entry]] = {}

    def add(self, partition: Any, entry: Entry) -> None:
        insort(self.groups.setdefault(partition, []), entry, key=_order)

    def remove(self, partition: Any, order: tuple[Any, ...]) -> None:
        group = self.groups.get(partition)
        if group is None:
            return
        position = bisect_left(group, order, key=_order)
        if position < len(group) and group[position][0] == order:
            del group[position]
            if not group:
                del self.groups[partition]


class _IndexSpec:
    """Where an item sits in one index: its partition and its order within it, or None if absent."""

    def __init__(self, hash_attr: str, range_attr: str | None, with_table_key: bool, types: dict[str, str]) -> None:
        self.hash_attr = hash_attr
        self.range_attr = range_attr
        self.with_table_key = with_table_key  # a GSI's order ends with the table key (ties, uniqueness)
        self.hash_type = types.get(hash_attr)
        self.range_type = types.get(range_attr) if range_attr else None
        self.partitions = _Partitions()

    def place(self, item: Any) -> tuple[Any, tuple[Any, ...]] | None:
        hash_value = item.attrs.get(self.hash_attr)
        if hash_value is None or hash_value.type != self.hash_type:
            return None  # sparse; DynamoDB refuses a mistyped index key (see _check_index_keys)
        order: tuple[Any, ...] = ()
        if self.range_attr is not None:
            range_value = item.attrs.get(self.range_attr)
            if range_value is None or range_value.type != self.range_type:
                return None  # sparse: DynamoDB indexes only items with every key attribute
            order = (range_value.cast_value,)
        if self.with_table_key:
            order += _table_order(item)
        return hash_value.cast_value, order


def _declared_types(table: Any) -> dict[str, str]:
    return {attribute["AttributeName"]: attribute["AttributeType"] for attribute in table.attr}


def _check_index_keys(table: Any, attribute_types: dict[str, str]) -> None:
    """DynamoDB refuses a write whose index key attribute has another type than the table declares.
    `attribute_types` maps the written item's attribute names to their types ("S", "N", ...)."""
    from moto.dynamodb.exceptions import MockValidationException

    declared = _declared_types(table)
    for gsi in table.global_indexes:
        for key in gsi.schema:
            name = key["AttributeName"]
            actual = attribute_types.get(name)
            if actual is not None and actual != declared.get(name):
                raise MockValidationException(
                    "One or more parameter values were invalid: Type mismatch for Index Key "
                    f"{name} Expected: {declared.get(name)} Actual: {actual} IndexName: {gsi.name}"
                )


def _table_order(item: Any) -> tuple[Any, ...]:
    if item.range_key is None:
        return (item.hash_key.cast_value,)
    return (item.hash_key.cast_value, item.range_key.cast_value)


class _TableIndex:
    """A table's items in key order per partition: the table itself and each simple GSI."""

    def __init__(self, table: Any) -> None:
        types = _declared_types(table)
        self.base = _IndexSpec(table.hash_key_attr, table.range_key_attr, False, types)
        self.gsis: dict[str, _IndexSpec] = {}
        for gsi in table.global_indexes:
            hashes = [k["AttributeName"] for k in gsi.schema if k["KeyType"] == "HASH"]
            ranges = [k["AttributeName"] for k in gsi.schema if k["KeyType"] == "RANGE"]
            if len(hashes) == 1 and len(ranges) <= 1:
                self.gsis[gsi.name] = _IndexSpec(hashes[0], ranges[0] if ranges else None, True, types)
        # (hash, range) of the table -> where the item sits in each index, to move it on change
        self.placed: dict[tuple[Any, Any], list[tuple[_IndexSpec, Any, tuple[Any, ...]]]] = {}
        for item in table.all_items():
            self._add(item)

    def _specs(self) -> list[_IndexSpec]:
        return [self.base, *self.gsis.values()]

    def _add(self, item: Any) -> None:
        places = []
        for spec in self._specs():
            place = spec.place(item)
            if place is not None:
                places.append((spec, *place))
        self.placed[(item.hash_key, item.range_key)] = places
        for spec, partition, order in places:
            spec.partitions.add(partition, (order, item.hash_key, item.range_key))

    def refresh(self, table: Any, hash_key: Any, range_key: Any) -> None:
        """Re-place one item after any change to it (put, update, delete, rollback)."""
        for spec, partition, order in self.placed.pop((hash_key, range_key), ()):
            spec.partitions.remove(partition, order)
        item = stored_item(table, hash_key, range_key)
        if item is not None:
            self._add(item)


def stored_item(table: Any, hash_key: Any, range_key: Any) -> Any:
    if table.range_key_attr is None:
        return table.items.get(hash_key)
    return table.items.get(hash_key, {}).get(range_key)


def forget_index(table: Any) -> None:
    """Drop a table's index after its items were replaced wholesale; the next Query rebuilds it."""
    table.__dict__.pop("_spindle_index", None)


def _index_of(table: Any) -> _TableIndex:
    index = table.__dict__.get("_spindle_index")
    if index is None:
        index = table.__dict__["_spindle_index"] = _TableIndex(table)
    return index


def _refresh(table: Any, hash_key: Any, range_key: Any) -> None:
    _index_of(table).refresh(table, hash_key, range_key)
    for hook in _item_change_hooks:
        hook(table, hash_key, range_key)


_item_change_hooks: list[Callable[[Any, Any, Any], None]] = []


def on_item_change(hook: Callable[[Any, Any, Any], None]) -> None:
    """Call hook(table, hash_key, range_key) after any item of any table changes."""
    _item_change_hooks.append(hook)


# --- Query over the sorted partitions -------------------------------------------------------------


def _bounds(group: list[Entry], comparison: str | None, values: list[Any]) -> tuple[int, int]:
    """The slice of a partition (sorted on its first order element) that a key condition keeps."""
    low, high = 0, len(group)
    if comparison is None:
        return low, high

    def left(value: Any) -> int:
        return bisect_left(group, (value,), key=lambda entry: entry[0][:1])

    def right(value: Any) -> int:
        return bisect_right(group, (value,), key=lambda entry: entry[0][:1])

    if comparison in ("=", "EQ"):
        return left(values[0]), right(values[0])
    if comparison in ("<", "LT"):
        return low, left(values[0])
    if comparison in ("<=", "LE"):
        return low, right(values[0])
    if comparison in (">", "GT"):
        return right(values[0]), high
    if comparison in (">=", "GE"):
        return left(values[0]), high
    if comparison == "BETWEEN":
        return left(values[0]), right(values[1])
    # BEGINS_WITH: the values that, cut to the prefix's length, equal it (a contiguous run)
    prefix = values[0]
    low = left(prefix)
    high = bisect_right(group, prefix, lo=low, key=lambda entry: entry[0][0][: len(prefix)])
    return low, high


_SUPPORTED_COMPARISONS = {"=", "EQ", "<", "LT", "<=", "LE", ">", "GT", ">=", "GE", "BETWEEN", "BEGINS_WITH"}


def _start_order(spec: _IndexSpec, table: Any, start_key: dict[str, Any]) -> tuple[Any, ...]:
    from moto.dynamodb.models.dynamo_type import DynamoType

    def value(attr: str) -> Any:
        return DynamoType(start_key[attr]).cast_value

    order: tuple[Any, ...] = (value(spec.range_attr),) if spec.range_attr is not None else ()
    if spec.with_table_key:
        order += (value(table.hash_key_attr),)
        if table.range_key_attr is not None:
            order += (value(table.range_key_attr),)
    return order


def _query(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def query(
        self: Any,
        hash_key: Any,
        range_comparison: str | None,
        range_objs: list[Any],
        limit: int,
        exclusive_start_key: dict[str, Any] | None,
        scan_index_forward: bool,
        projection_expressions: list[list[str]] | None,
        index_name: str | None = None,
        consistent_read: bool = False,
        filter_expression: Any = None,
        hash_key_conditions: list[Any] | None = None,
        range_key_conditions: list[Any] | None = None,
        **filter_kwargs: Any,
    ) -> tuple[list[Any], int, dict[str, Any] | None]:
        index = _index_of(self)
        spec = index.gsis.get(index_name) if index_name else index.base
        comparison = range_comparison.upper() if range_comparison else None
        simple = (
            spec is not None
            and hash_key is not None
            and not filter_kwargs
            and not (index_name and consistent_read)  # moto raises the right error
            and len(hash_key_conditions or []) <= 1
            and len(range_key_conditions or []) <= 1
            and (comparison is None or comparison in _SUPPORTED_COMPARISONS)
            and (comparison is None or spec.range_attr is not None)
            and hash_key.type == spec.hash_type
            and all(value.type == spec.range_type for value in range_objs)
        )
        if not simple:
            return original(
                self,
                hash_key,
                range_comparison,
                range_objs,
                limit,
                exclusive_start_key,
                scan_index_forward,
                projection_expressions,
                index_name,
                consistent_read,
                filter_expression,
                hash_key_conditions=hash_key_conditions,
                range_key_conditions=range_key_conditions,
                **filter_kwargs,
            )
        assert spec is not None
        group = spec.partitions.groups.get(hash_key.cast_value, [])
        low, high = _bounds(group, comparison, [value.cast_value for value in range_objs])
        if exclusive_start_key:
            start = _start_order(spec, self, exclusive_start_key)
            if scan_index_forward:
                low = max(low, bisect_right(group, start, key=_order))
            else:
                high = min(high, bisect_left(group, start, key=_order))
        positions = range(low, high) if scan_index_forward else range(high - 1, low - 1, -1)
        results: list[Any] = []
        size = 0
        last_evaluated_key = None
        for position in positions:
            _, item_hash, item_range = group[position]
            item = stored_item(self, item_hash, item_range)
            if len(results) == limit or size + item.size() > RESULT_SIZE_LIMIT:
                last_evaluated_key = self._get_last_evaluated_key(results[-1], index_name)
                break
            results.append(item)
            size += item.size()
        scanned_count = len(results)
        results = copy.deepcopy(results)
        if index_name:
            gsi = self.get_index(index_name)
            results = [gsi.project(item) for item in results]
        if filter_expression is not None:
            results = [item for item in results if filter_expression.expr(item)]
        if projection_expressions:
            results = [item.project(projection_expressions) for item in results]
        return results, scanned_count, last_evaluated_key

    return query


# --- item changes: keep the indexes (and the journal) in step --------------------------------------


def _tracking_put(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def put_item(self: Any, item_attrs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        _check_index_keys(
            self, {name: next(iter(value), "") for name, value in item_attrs.items() if isinstance(value, dict)}
        )
        item = original(self, item_attrs, *args, **kwargs)
        _refresh(self, item.hash_key, item.range_key)
        return item

    return put_item


def _tracking_delete(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def delete_item(self: Any, hash_key: Any, range_key: Any) -> Any:
        item = original(self, hash_key, range_key)
        if item is not None:
            _refresh(self, hash_key, range_key)
        return item

    return delete_item


def _key_values(table: Any, key: dict[str, Any]) -> tuple[Any, Any]:
    from moto.dynamodb.models.dynamo_type import DynamoType

    hash_key = DynamoType(key[table.hash_key_attr])
    range_key = DynamoType(key[table.range_key_attr]) if table.range_key_attr is not None else None
    return hash_key, range_key


def _put_back(table: Any, hash_key: Any, range_key: Any, item: Any) -> None:
    """Make an item what it was (None: absent), and re-place it in the indexes."""
    if table.range_key_attr is None:
        if item is None:
            table.items.pop(hash_key, None)
        else:
            table.items[hash_key] = item
    elif item is None:
        partition = table.items.get(hash_key)
        if partition is not None:
            partition.pop(range_key, None)
            if not partition:
                del table.items[hash_key]
    else:
        table.items[hash_key][range_key] = item
    _refresh(table, hash_key, range_key)


def _tracking_update(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def update_item(self: Any, table_name: str, key: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        table = self.tables.get(table_name)
        try:
            hash_key, range_key = _key_values(table, key)
        except (KeyError, TypeError, AttributeError):
            return original(self, table_name, key, *args, **kwargs)  # moto reports the bad key
        before = copy.deepcopy(stored_item(table, hash_key, range_key))
        try:
            updated = original(self, table_name, key, *args, **kwargs)
        except BaseException:
            # moto updates in place and can fail halfway; DynamoDB applies all of an update or none
            _put_back(table, hash_key, range_key, before)
            raise
        after = stored_item(table, hash_key, range_key)
        written = {name: value.type for name, value in after.attrs.items()} if after is not None else {}
        try:
            _check_index_keys(table, written)
        except Exception:
            _put_back(table, hash_key, range_key, before)
            raise
        _refresh(table, hash_key, range_key)
        return updated

    return update_item


def _forgetting_indexes(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def update_table(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        table = original(self, name, *args, **kwargs)
        forget_index(table)  # its GSIs may have changed
        return table

    return update_table


# --- transactions that undo only themselves --------------------------------------------------------


def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    """moto 5.2.5's TransactWriteItems, except for its backup: the items named, not whole tables."""
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MockValidationException,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )
    from moto.dynamodb.models import get_filter_expression

    if len(transact_items) > 100:
        raise TooManyTransactionsException()

    backups: dict[tuple[str, Any, Any], Any] = {}
    for entry in transact_items:
        _, op = next(iter(entry.items()))
        table = self.tables.get(op.get("TableName"))
        if table is None:
            continue
        try:
            hash_key, range_key = _key_values(table, op["Item"] if "Item" in op else op["Key"])
        except (KeyError, TypeError, AttributeError):
            continue  # malformed: the loop below reports it, nothing of it is written
        if (table.name, hash_key, range_key) not in backups:
            backups[(table.name, hash_key, range_key)] = copy.deepcopy(stored_item(table, hash_key, range_key))

    def roll_back() -> None:
        for (table_name, hash_key, range_key), item in backups.items():
            _put_back(self.tables[table_name], hash_key, range_key, item)

    target_items: set[tuple[str, str]] = set()

    def check_unicity(table_name: str, key: dict[str, Any]) -> None:
        item = (str(table_name), str(dict(sorted(key.items()))))
        if item in target_items:
            raise MultipleTransactionsException()
        target_items.add(item)

    errors: list[tuple[str, str, dict[str, Any]] | tuple[None, None, None]] = []
    for entry in transact_items:
        original_item: dict[str, Any] | None = None
        if len(list(entry.keys())) > 1:
            roll_back()
            raise TransactWriteSingleOpException
        try:
            op_type, op = next(iter(entry.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")
            table_name = op["TableName"]
            condition_expression = op.get("ConditionExpression")
            names = op.get("ExpressionAttributeNames")
            values = op.get("ExpressionAttributeValues")
            if op_type == "Put":
                attrs = op["Item"]
                table = self.get_table(table_name)
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            else:
                key = op["Key"]
            check_unicity(table_name, key)
            current = self.get_item(table_name, key)
            if condition_expression is not None:
                condition = get_filter_expression(condition_expression, names, values)
                if not condition.expr(current):
                    if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                        original_item = current.to_json()["Attributes"]
                    raise ConditionalCheckFailed(item=original_item)
            common = {
                "condition_expression": condition_expression,
                "expression_attribute_names": names,
                "expression_attribute_values": values,
            }
            if op_type == "Put":
                self.put_item(table_name, op["Item"], **common)
            elif op_type == "Delete":
                self.delete_item(table_name, key, **common)
            elif op_type == "Update":
                self.update_item(table_name, key, update_expression=op["UpdateExpression"], **common)
            errors.append((None, None, None))
        except (MultipleTransactionsException, MockValidationException):
            roll_back()
            raise
        except ConditionalCheckFailed as error:
            errors.append(("ConditionalCheckFailed", str(error.message), original_item))  # type: ignore[arg-type]
        except Exception as error:  # noqa: BLE001 - moto reports any other failure per item
            errors.append((type(error).__name__, str(error), original_item))  # type: ignore[arg-type]
    if any(code is not None for code, _, _ in errors):
        roll_back()
        raise TransactionCanceledException(errors)


# --- responses ---------------------------------------------------------------------------------


def wire(value: Any) -> Any:
    """An attribute value (or a map of them) as DynamoDB's JSON protocol writes it."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return {key: wire(member) for key, member in value.items()}
    if isinstance(value, list | set | tuple):
        return [wire(member) for member in value]
    return value


def _is_attribute_values(shape: Any) -> bool:
    if shape.name == "AttributeValue":
        return True
    return shape.type_name == "map" and getattr(shape.value, "name", None) == "AttributeValue"


fast_attribute_values = True  # a test turns this off to compare with moto's own serializer


def _serialize(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def serialize(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if (
            fast_attribute_values
            and value is not None
            and _is_attribute_values(shape)
            and self.operation_model.service_model.service_name == "dynamodb"
        ):
            serialized[self.get_serialized_name(shape, key)] = wire(value)
            return
        original(self, serialized, value, shape, key)

    return serialize


# --- memory ---------------------------------------------------------------------------------------


class _WeakInstances:
    """Stands in for moto's class-level `instances_tracked` list without keeping instances alive."""

    def __init__(self) -> None:
        self._instances: weakref.WeakSet[Any] = weakref.WeakSet()

    def append(self, instance: Any) -> None:
        self._instances.add(instance)

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._instances))

    def __len__(self) -> int:
        return len(self._instances)


def _untracked_new(cls: type, *args: Any, **kwargs: Any) -> Any:
    return object.__new__(cls)


# --- install --------------------------------------------------------------------------------------


def install() -> None:
    """Patch moto in this process (idempotent). Raises if moto is not the pinned version."""
    global _installed
    if _installed:
        return
    installed_version = version("moto")
    if installed_version != PINNED_MOTO_VERSION:
        raise MotoVersionMismatch(
            f"chalicelib/local/atomic_moto.py patches moto {PINNED_MOTO_VERSION} internals, but moto "
            f"{installed_version} is installed: re-read moto's DynamoDB transaction and query code, "
            "port the patches, then update PINNED_MOTO_VERSION."
        )
    from moto.core.responses import BaseResponse
    from moto.core.serialize import BaseJSONSerializer
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import Item
    from moto.dynamodb.models.table import Table
    from moto.s3.models import FakeKey, FakeMultipart
    from moto.s3.responses import S3Response

    BaseResponse._dispatch = _locked(BaseResponse._dispatch)  # type: ignore[method-assign]
    for name in ("ambiguous_response", "bucket_response", "key_response"):
        setattr(S3Response, name, _locked(getattr(S3Response, name)))
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    DynamoDBBackend.update_item = _tracking_update(DynamoDBBackend.update_item)  # type: ignore[method-assign]
    DynamoDBBackend.update_table = _forgetting_indexes(DynamoDBBackend.update_table)  # type: ignore[method-assign]
    Table.put_item = _tracking_put(Table.put_item)  # type: ignore[method-assign]
    Table.delete_item = _tracking_delete(Table.delete_item)  # type: ignore[method-assign]
    Table.query = _query(Table.query)  # type: ignore[method-assign]
    BaseJSONSerializer._serialize = _serialize(BaseJSONSerializer._serialize)  # type: ignore[method-assign]
    Item.__new__ = _untracked_new  # type: ignore[assignment,method-assign]
    Item.instances_tracked = []  # type: ignore[attr-defined]
    FakeKey.instances_tracked = _WeakInstances()  # type: ignore[attr-defined]
    FakeMultipart.instances_tracked = _WeakInstances()  # type: ignore[attr-defined]
    _installed = True
