"""Local mode's data on disk: what the embedded DynamoDB and S3 hold, kept in one SQLite file, as
DynamoDB Local's `-sharedDb` file keeps its tables.

moto keeps everything in memory. The journal mirrors it: each DynamoDB item, table definition and S3
object that a call changed is written to SQLite before that call's response is sent (the store
lock is still held, see atomic_moto.store_call), and everything is loaded back into moto at start.

One server per data directory: the journal holds an exclusive lock on `lock` in the directory for as
long as its process lives (flock, so a crashed server never leaves a stale lock). Two servers would
each keep their own in-memory view and overwrite each other's writes; a second one is refused.

Durability: SQLite runs in WAL mode with `synchronous=NORMAL`. A commit is in the operating
system's page cache when the call answers, so killing the process (even `kill -9`) loses nothing
that was acknowledged; an operating system crash or power loss can lose the commits since the last
WAL checkpoint (SQLite checkpoints every 1,000 pages, and on a clean stop).
"""

from __future__ import annotations

import base64
import fcntl
import functools
import inspect
import json
import os
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from chalicelib.local import atomic_moto

SCHEMA = """
CREATE TABLE IF NOT EXISTS tables (
    account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL,
    definition TEXT NOT NULL, ttl TEXT,
    PRIMARY KEY (account, region, name)
);
CREATE TABLE IF NOT EXISTS items (
    account TEXT NOT NULL, region TEXT NOT NULL, table_name TEXT NOT NULL,
    hash TEXT NOT NULL, range TEXT NOT NULL, attrs TEXT NOT NULL,
    PRIMARY KEY (account, region, table_name, hash, range)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS objects (
    account TEXT NOT NULL, region TEXT NOT NULL, bucket TEXT NOT NULL, key TEXT NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (account, bucket, key)
) WITHOUT ROWID;
"""

DATABASE_NAME = "store.sqlite3"
LOCK_NAME = "lock"


class DataDirInUse(Exception):
    """Another process holds the data directory's lock."""

    def __init__(self, directory: Path, holder: str) -> None:
        super().__init__(
            f"The data directory {directory} is in use by another Spindle server ({holder}). Stop it, or "
            "give this one another directory (SPINDLE_DATA_DIR=path, or SPINDLE_DATA_DIR=memory)."
        )


def _lock(directory: Path) -> int:
    """An open descriptor holding the directory's exclusive lock, naming this process in the lock file;
    DataDirInUse if another process holds it. The lock ends with the process, however it ends."""
    descriptor = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(descriptor, 4096, 0).decode("utf-8", "replace").strip() or "a process that did not say"
        os.close(descriptor)
        raise DataDirInUse(directory, holder) from None
    os.ftruncate(descriptor, 0)
    command = " ".join([sys.executable, *sys.argv])
    os.pwrite(descriptor, f"pid {os.getpid()}: {command}\n".encode(), 0)
    return descriptor


def _key_text(value: Any) -> str:
    """A row's identity for a key value: one text per DynamoDB value ("1", "1.0" and "1e0" are one
    number key), whatever spelling the request used."""
    if value is None:
        return ""
    if value.type == "N":
        return "N:" + str(value.cast_value.normalize())
    return value.type + ":" + json.dumps(atomic_moto.wire(value.value))


def _as_parsed(attrs: dict[str, Any]) -> dict[str, Any]:
    """Wire-format attributes as moto's request parser hands them to the backend: binary values at
    the top level decoded to bytes, binary values nested in lists and maps left in base64."""
    parsed = {}
    for name, value in attrs.items():
        if "B" in value:
            value = {"B": base64.b64decode(value["B"])}
        elif "BS" in value:
            value = {"BS": [base64.b64decode(member) for member in value["BS"]]}
        parsed[name] = value
    return parsed


class Journal:
    """The SQLite mirror of the embedded store. Every method runs under the store lock."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._lock = _lock(directory)
        self.path = directory / DATABASE_NAME
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._changed_items: dict[tuple[str, str, str, str, str], tuple[Any, Any, Any]] = {}
        self._changed_objects: dict[tuple[str, str, str, str], Any] = {}
        self._loading = False

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """All of one call's changes or none of them: a transaction's items are restored together.
        (The connection is in autocommit mode, so the transaction is begun explicitly.)"""
        self._db.execute("BEGIN")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # --- recording (hooks installed by `attach`) ---

    def item_changed(self, table: Any, hash_key: Any, range_key: Any) -> None:
        if not self._loading:
            key = (table.account_id, table.region_name, table.name, _key_text(hash_key), _key_text(range_key))
            self._changed_items[key] = (table, hash_key, range_key)

    def object_changed(self, backend: Any, bucket_name: str, key_name: str) -> None:
        if not self._loading:
            bucket = backend.buckets.get(bucket_name)
            region = bucket.region_name if bucket is not None else "us-east-1"
            self._changed_objects[(backend.account_id, region, bucket_name, key_name)] = backend

    def table_created(self, table: Any, definition: dict[str, Any]) -> None:
        if not self._loading:
            self._db.execute(
                "INSERT OR REPLACE INTO tables VALUES (?, ?, ?, ?, NULL)",
                (table.account_id, table.region_name, table.name, json.dumps(definition)),
            )

    def table_deleted(self, table: Any) -> None:
        if not self._loading:
            key = (table.account_id, table.region_name, table.name)
            self._changed_items = {k: v for k, v in self._changed_items.items() if k[:3] != key}
            with self._transaction():
                self._db.execute("DELETE FROM tables WHERE account=? AND region=? AND name=?", key)
                self._db.execute("DELETE FROM items WHERE account=? AND region=? AND table_name=?", key)

    def ttl_changed(self, table: Any) -> None:
        if not self._loading:
            self._db.execute(
                "UPDATE tables SET ttl=? WHERE account=? AND region=? AND name=?",
                (json.dumps(table.ttl), table.account_id, table.region_name, table.name),
            )

    def flush(self) -> None:
        """Write what the call changed, in one SQLite transaction."""
        if not self._changed_items and not self._changed_objects:
            return
        items, objects = self._changed_items, self._changed_objects
        with self._transaction():
            for key, (table, hash_key, range_key) in items.items():
                item = atomic_moto.stored_item(table, hash_key, range_key)
                if item is None:
                    self._db.execute(
                        "DELETE FROM items WHERE account=? AND region=? AND table_name=? AND hash=? AND range=?", key
                    )
                else:
                    attrs = json.dumps(atomic_moto.wire(item.to_json()["Attributes"]), separators=(",", ":"))
                    self._db.execute("INSERT OR REPLACE INTO items VALUES (?, ?, ?, ?, ?, ?)", (*key, attrs))
            for (account, region, bucket_name, key_name), backend in objects.items():
                bucket = backend.buckets.get(bucket_name)
                stored = bucket.keys.get(key_name) if bucket is not None else None
                if stored is None:
                    self._db.execute(
                        "DELETE FROM objects WHERE account=? AND bucket=? AND key=?", (account, bucket_name, key_name)
                    )
                else:
                    self._db.execute(
                        "INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?, ?)",
                        (account, region, bucket_name, key_name, stored.value),
                    )
        # Only once they are on disk: a failed write keeps them for the next call's flush.
        self._changed_items, self._changed_objects = {}, {}

    # --- loading ---

    def load(self) -> tuple[int, int]:
        """Put everything the file holds back into moto. Returns (items, objects) loaded."""
        self._loading = True
        try:
            tables = self._load_tables()
            items = self._load_items(tables)
            for table in tables.values():
                atomic_moto.forget_index(table)  # rebuilt from the loaded items on first use
            return items, self._load_objects()
        finally:
            self._loading = False

    def _load_tables(self) -> dict[tuple[str, str, str], Any]:
        from moto.dynamodb.models import dynamodb_backends

        tables: dict[tuple[str, str, str], Any] = {}
        for account, region, name, definition, ttl in self._db.execute("SELECT * FROM tables"):
            backend = dynamodb_backends[account][region]
            table = backend.tables.get(name) or backend.create_table(name, **json.loads(definition))
            if ttl:
                table.ttl = json.loads(ttl)
            tables[(account, region, name)] = table
        return tables

    def _load_items(self, tables: dict[tuple[str, str, str], Any]) -> int:
        from moto.dynamodb.models.dynamo_type import DynamoType, Item

        count = 0
        for account, region, table_name, attrs in self._db.execute(
            "SELECT account, region, table_name, attrs FROM items"
        ):
            table = tables.get((account, region, table_name))
            if table is None:
                continue
            parsed = _as_parsed(json.loads(attrs))
            hash_key = DynamoType(parsed[table.hash_key_attr])
            range_key = DynamoType(parsed[table.range_key_attr]) if table.range_key_attr else None
            # Straight into moto's dict: put_item's validation already ran when it was written.
            item = Item(hash_key, range_key, parsed)
            if range_key is None:
                table.items[hash_key] = item
            else:
                table.items[hash_key][range_key] = item
            count += 1
        return count

    def _load_objects(self) -> int:
        from moto.s3.models import s3_backends

        count = 0
        for account, region, bucket_name, key_name, body in self._db.execute("SELECT * FROM objects"):
            backend = s3_backends[account]["aws"]
            if bucket_name not in backend.buckets:
                backend.create_bucket(bucket_name, region)
            backend.put_object(bucket_name, key_name, body)
            count += 1
        return count

    def close(self) -> None:
        with atomic_moto.store_call():
            self.flush()
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.close()
        os.close(self._lock)


def attach(journal: Journal) -> None:
    """Send every change moto makes in this process to the journal (after atomic_moto.install())."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.s3.models import S3Backend

    atomic_moto.on_item_change(journal.item_changed)
    atomic_moto.after_each_call(journal.flush)

    def after(original: Callable[..., Any], record: Callable[[Any, Any, dict[str, Any]], None]) -> Callable[..., Any]:
        """Wrap a backend method so that `record(backend, result, arguments by name)` runs after it."""
        signature = inspect.signature(original)

        @functools.wraps(original)
        def recorded(self: Any, *args: Any, **kwargs: Any) -> Any:
            result = original(self, *args, **kwargs)
            arguments = signature.bind(self, *args, **kwargs).arguments
            arguments.pop("self")
            record(self, result, arguments)
            return result

        return recorded

    def created(backend: Any, table: Any, arguments: dict[str, Any]) -> None:
        arguments.pop("name")
        journal.table_created(table, arguments)

    def object_changed(backend: Any, _: Any, arguments: dict[str, Any]) -> None:
        journal.object_changed(backend, arguments["bucket_name"], arguments["key_name"])

    DynamoDBBackend.create_table = after(DynamoDBBackend.create_table, created)  # type: ignore[method-assign]
    DynamoDBBackend.delete_table = after(  # type: ignore[method-assign]
        DynamoDBBackend.delete_table, lambda backend, table, _: journal.table_deleted(table)
    )
    DynamoDBBackend.update_time_to_live = after(  # type: ignore[method-assign]
        DynamoDBBackend.update_time_to_live,
        lambda backend, _, arguments: journal.ttl_changed(backend.tables[arguments["table_name"]]),
    )
    S3Backend.put_object = after(S3Backend.put_object, object_changed)  # type: ignore[method-assign]
    S3Backend.delete_object = after(S3Backend.delete_object, object_changed)  # type: ignore[method-assign]
