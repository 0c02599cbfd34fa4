"""Storage tests: pynamodb on moto, in-process. Every DynamoDB call is recorded so tests can count them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import botocore.client
import pytest
from moto import mock_aws

from chalicelib.local import atomic_moto

# The embedded store's guarantees hold in-process too: every call atomic, Query by key range.
atomic_moto.install()


@dataclass
class CallLog:
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    @property
    def operations(self) -> list[str]:
        return [name for name, _ in self.calls]

    def clear(self) -> None:
        self.calls.clear()


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        from chalicelib.storage.files import ensure_bucket
        from chalicelib.storage.models import create_tables

        create_tables()
        ensure_bucket()
        yield


@pytest.fixture
def dynamodb_calls(aws, monkeypatch) -> CallLog:
    log = CallLog()
    original = botocore.client.BaseClient._make_api_call

    def recording(self, operation_name, api_params):
        if self.meta.service_model.service_name == "dynamodb":
            log.calls.append((operation_name, api_params))
        return original(self, operation_name, api_params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", recording)
    return log


@pytest.fixture
def api(aws):
    """The Chalice app in-process (chalice.test.Client): the same handlers API Gateway invokes."""
    from chalice.test import Client

    from app import app

    with Client(app) as client:
        yield client


def time_passes(ref, **run_fields) -> None:
    """Move a stored run's clock fields (e.g. expires_at into the past) without a lifecycle move: the
    test's stand-in for time passing, since moto keeps real time."""
    from chalicelib.storage.models import RunRecord, thread_key

    record = RunRecord.get(thread_key(ref.project_id, ref.thread_id), ref.run_id, consistent_read=True)
    record.update(actions=[RunRecord.run.set({**record.run, **run_fields})])
