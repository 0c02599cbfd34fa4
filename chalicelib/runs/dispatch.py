"""Telling a run driver that a run has something to do (created, cancelled, tool outputs submitted).

- `local` (make dev, tests): the run queue entry was written with the change; wake the poller.
- `stepfunctions` (AWS): start an execution of the state machine in infra/ for the run.
"""

from __future__ import annotations

import json
import threading
from functools import cache
from typing import Any

from chalicelib.config import settings
from chalicelib.storage.runs import RunRef

wake_local_poller = threading.Event()


@cache
def _stepfunctions() -> Any:
    import boto3  # only the run paths need the Step Functions client

    return boto3.client("stepfunctions", region_name=settings.region)


def run_changed(ref: RunRef) -> None:
    if settings.run_driver == "stepfunctions":
        _stepfunctions().start_execution(stateMachineArn=settings.state_machine_arn, input=json.dumps({"run": ref.key}))
    else:
        wake_local_poller.set()
