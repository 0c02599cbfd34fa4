"""Deleting a thread hides it at once; its messages, runs and run steps are removed here, in batches, resumably.

Driven by a scheduled Lambda on AWS and by a background thread in local mode: the same function.
"""

from __future__ import annotations

import time

from chalicelib.storage import threads as store


def purge_deleted_threads(seconds: float) -> int:
    """Work through the purge queue for up to `seconds`. Returns how many threads were finished."""
    deadline = time.monotonic() + seconds
    finished = 0
    while time.monotonic() < deadline:
        pending = store.pending_purges()
        if not pending:
            break
        for key in pending:
            if not store.purge_thread(key, deadline):
                return finished
            finished += 1
    return finished
