"""A local sandbox session's control group (cgroup), where the machine lets Spindle make one: its
processes' memory is bounded together (per process, RLIMIT_AS lets N processes take N times the limit),
their number too, and they are listed by the kernel's own account, which no fork nor reparenting
escapes.

cgroup v1 (a hierarchy per controller, as here: memory, and pids where mounted) or v2 (one hierarchy,
whose group must delegate the memory controller to its children). A session's group is made beneath
the one Spindle's process is in, named `spindle-<pid>-<session>`. Making one needs root (or a
delegated hierarchy); `available()` tries once per process, and where it cannot, sessions have none
and README's per-process bound applies.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import subprocess
import time
from pathlib import Path

from chalicelib.sandbox import processes

log = logging.getLogger("spindle.sandbox")

PREFIX = "spindle-"
REMOVE_SECONDS = 5.0  # for a group's last processes to leave it once killed


class ControlGroup:
    """A group's directories, one per hierarchy (the memory controller's first)."""

    def __init__(self, directories: list[Path]) -> None:
        self.directories = directories
        self._procs = [str(directory / "cgroup.procs").encode() for directory in directories]

    @classmethod
    def make(cls, name: str, memory_bytes: int, max_tasks: int) -> ControlGroup | None:
        """A new group with these limits, or None where none can be made."""
        if not available():
            return None
        return cls._make(f"{PREFIX}{os.getpid()}-{name}", memory_bytes, max_tasks)

    @classmethod
    def _make(cls, name: str, memory_bytes: int, max_tasks: int) -> ControlGroup | None:
        parents = _parents()
        if parents is None:
            return None
        group = cls([parent / name for parent in parents])
        try:
            for directory in group.directories:
                directory.mkdir(exist_ok=True)
            group._limit(memory_bytes, max_tasks)
        except OSError as error:
            log.warning("a sandbox control group could not be made: %s", error)
            group.remove()
            return None
        return group

    def _limit(self, memory_bytes: int, max_tasks: int) -> None:
        memory = self.directories[0]
        if (memory / "memory.max").exists():  # v2
            _write(memory / "memory.max", memory_bytes)
            _write(memory / "memory.swap.max", 0, optional=True)
        else:
            _write(memory / "memory.limit_in_bytes", memory_bytes)
            _write(memory / "memory.memsw.limit_in_bytes", memory_bytes, optional=True)  # no swap past it
        for directory in self.directories:
            _write(directory / "pids.max", max_tasks, optional=True)

    def enter(self) -> None:
        """Put the calling process in the group: called in the child between fork and exec, so that
        all it runs is in it from its start. Nothing but system calls on what was made beforehand (a
        forked child of a threaded process must not allocate): "0" names the writer itself."""
        for procs in self._procs:
            fd = os.open(procs, os.O_WRONLY)
            try:
                os.write(fd, b"0")
            finally:
                os.close(fd)

    def pids(self) -> list[int]:
        """The group's processes, as the kernel counts them."""
        try:
            with open(self.directories[0] / "cgroup.procs") as stream:
                return [int(line) for line in stream if line.strip()]
        except (OSError, ValueError):
            return []

    def remove(self) -> None:
        """Remove the group, once its processes (killed first) have left it."""
        ends = time.monotonic() + REMOVE_SECONDS
        for directory in self.directories:
            while True:
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as error:
                    if error.errno != errno.EBUSY or time.monotonic() > ends:
                        log.warning("sandbox control group %s could not be removed: %s", directory, error)
                        break
                    time.sleep(0.02)


@functools.cache
def available() -> bool:
    """Whether this process can make a session's group, limit its memory and put a process in it:
    tried once, with a process that exits at once."""
    group = ControlGroup._make(f"{PREFIX}{os.getpid()}-probe", 64 * 1024 * 1024, 8)
    if group is None:
        return False
    try:
        subprocess.run(["true"], preexec_fn=group.enter, check=True, timeout=20)  # noqa: PLW1509
    except (OSError, subprocess.SubprocessError) as error:
        log.warning("sandbox control groups cannot be used here: %s", error)
        return False
    finally:
        group.remove()
    return True


def forget_dead() -> None:
    """End the groups of API processes that have died without closing their sessions (a crash, a
    reload): whatever still runs in one is killed, and the group removed."""
    for parent in _parents() or ():
        try:
            entries = list(parent.iterdir())
        except OSError:
            continue
        for entry in entries:
            owner = entry.name[len(PREFIX) :].split("-")[0]
            if entry.name.startswith(PREFIX) and owner.isdigit() and not Path(f"/proc/{owner}").exists():
                group = ControlGroup([entry])
                processes.stop_and_kill(group.pids)
                group.remove()


def _parents() -> list[Path] | None:
    """Where sessions' groups go: this process's own group in the memory hierarchy (then in the pids
    one, if that is a separate v1 hierarchy), or None if there is no memory controller to use."""
    mounts: dict[str, tuple[Path, str]] = {}  # a v1 controller, or "" for v2: mount point and its root
    try:
        with open("/proc/self/mountinfo") as stream:
            for line in stream:
                left, _, right = line.partition(" - ")
                fields, kinds = left.split(), right.split()
                if len(fields) < 5 or len(kinds) < 3:
                    continue
                if kinds[0] == "cgroup":
                    for option in kinds[2].split(","):
                        if option in ("memory", "pids"):
                            mounts.setdefault(option, (Path(fields[4]), fields[3]))
                elif kinds[0] == "cgroup2":
                    mounts.setdefault("", (Path(fields[4]), fields[3]))
        with open("/proc/self/cgroup") as stream:
            own = dict(_membership(line) for line in stream if line.count(":") >= 2)
    except OSError:
        return None
    if "memory" in mounts and "memory" in own:
        found = [_beneath(*mounts["memory"], own["memory"])]
        if "pids" in mounts and "pids" in own and mounts["pids"][0] != mounts["memory"][0]:
            found.append(_beneath(*mounts["pids"], own["pids"]))
        return found
    if "" in mounts and "" in own:
        parent = _beneath(*mounts[""], own[""])
        try:
            delegated = (parent / "cgroup.subtree_control").read_text().split()
        except OSError:
            return None
        return [parent] if "memory" in delegated else None
    return None


def _membership(line: str) -> tuple[str, str]:
    """A line of /proc/self/cgroup: its hierarchy ("memory" or "pids" for those v1 controllers,
    "" for v2) and the group's path there."""
    _, controllers, path = line.rstrip("\n").split(":", 2)
    names = controllers.split(",")
    for name in ("memory", "pids"):
        if name in names:
            return name, path
    return ("" if controllers == "" else controllers), path


def _beneath(mount: Path, root: str, path: str) -> Path:
    """A group's directory: its path, less the part of the hierarchy above what is mounted."""
    relative = os.path.relpath(path, root) if path.startswith(root) else path.lstrip("/")
    return mount if relative == "." else mount / relative


def _write(path: Path, value: int, optional: bool = False) -> None:
    """Set a control file: an optional one only where it is (a controller that is not there, swap
    accounting that is off); cgroupfs refuses to make the others."""
    if optional and not path.exists():
        return
    path.write_text(str(value))
