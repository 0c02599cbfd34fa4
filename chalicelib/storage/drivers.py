"""Telling a run's driver that the run has something to do (created, cancelled, tool outputs submitted).

- `local` (make dev, tests): the run queue entry was written with the change; wake the poller.
- `stepfunctions` (AWS): start an execution of the state machine in infra/ for the run.

It lives in storage/ because it is where Spindle talks to AWS; the domain calls it, the engine never does.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from functools import cache
from typing import Any

from chalicelib.config import settings
from chalicelib.storage.records import RunRef

wake_local_poller = threading.Event()
wake_local_purger = threading.Event()
log = logging.getLogger("spindle.drivers")


@cache
def _stepfunctions() -> Any:
    import boto3  # only the run paths need the Step Functions client
    from botocore.config import Config

    return boto3.client("stepfunctions", region_name=settings.region, config=Config(retries={"mode": "standard"}))


@cache
def _lambda() -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client("lambda", region_name=settings.region, config=Config(retries={"mode": "standard"}))


def ingestion_changed() -> None:
    """A file was added to a vector store. Locally the poller ingests it at once. On AWS the `ingest_files`
    Lambda is invoked without waiting (InvocationType Event); should that fail, the scheduled
    `ingest_pending` Lambda (app.py) finds the file within a minute, so a failure is only logged."""
    if settings.run_driver != "stepfunctions":
        wake_local_poller.set()
        return
    if settings.ingest_function is None:
        return
    try:
        _lambda().invoke(FunctionName=settings.ingest_function, InvocationType="Event", Payload=b"{}")
    except Exception:
        log.warning("could not invoke %s; the scheduled sweep will ingest the file", settings.ingest_function)


def thread_deleted() -> None:
    """A thread was deleted: locally its messages are purged at once; on AWS the scheduled
    `purge_deleted_threads` Lambda (app.py) purges them within a minute."""
    if settings.run_driver != "stepfunctions":
        wake_local_purger.set()


def run_changed(ref: RunRef, after_seconds: float = 0.0) -> bool:
    """Hand the run to its driver, to advance after `after_seconds` (a streaming request drives the run
    meanwhile). False if the driver could not be told (the caller fails the run).

    The local driver's queue entry, written with the change, already says when. The state machine is
    started at once, told to wait first (its Wait state takes whole seconds)."""
    if settings.run_driver != "stepfunctions":
        wake_local_poller.set()
        return True
    task: dict[str, Any] = {"run": ref.key}
    if after_seconds > 0:
        task["wait_seconds"] = math.ceil(after_seconds)
    try:
        # botocore's standard retry mode has already retried throttling and transient errors
        _stepfunctions().start_execution(stateMachineArn=settings.state_machine_arn, input=json.dumps(task))
    except Exception:
        log.exception("could not start the state machine for %s", ref.key)
        return False
    return True
