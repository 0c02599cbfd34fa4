"""User ids for the kernels of bwrap sessions started as root, one per live session on the whole
machine: two sessions sharing one would share its process limit (RLIMIT_NPROC counts a user's
processes), so one session's processes could make another's fork() fail.

An id is claimed by holding an exclusive lock (flock) on a file named after it, in a directory only
root may write, for as long as its session lives: two API processes, or two test runs, never hold the
same one, and the lock goes when its holder does, a crash included. The files stay (one per id ever
in use at once), since removing one could let two holders lock two different files of the same name.
"""

from __future__ import annotations

import fcntl
import os
import stat
import tempfile
from pathlib import Path

from chalicelib.sandbox import SandboxUnavailable

UID_BASE = 1_800_000_000  # far above any real user's
COUNT = 1_000_000


class Claim:
    """A user id held for a session, until released (or this process ends)."""

    def __init__(self, uid: int, fd: int) -> None:
        self.uid = uid
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # the lock with it
            self._fd = None


def claim() -> Claim:
    """The lowest id no live session holds."""
    directory = _directory()
    try:
        for uid in range(UID_BASE, UID_BASE + COUNT):
            fd = os.open(str(uid), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=directory)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            return Claim(uid, fd)
    finally:
        os.close(directory)
    raise SandboxUnavailable(f"all {COUNT} sandbox user ids are in use")


def _directory() -> int:
    """The claims' directory, opened: made if missing, and refused unless it is root's own and no
    one else may write to it (a /tmp fallback could have been made by anyone)."""
    top = Path("/run") if os.path.isdir("/run") else Path(tempfile.gettempdir())
    path = top / "spindle-sandbox-uids"
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    found = os.fstat(fd)
    if found.st_uid != 0 or found.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        os.close(fd)
        raise SandboxUnavailable(f"{path} is not root's alone: sandbox user ids cannot be claimed safely")
    return fd
