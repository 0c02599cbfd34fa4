"""The processes of a local sandbox session, as /proc shows them: found as the descendants of the
process Spindle started (code's orphans stay beneath it: bubblewrap's init reaps them in the bwrap tier,
the kernel is a child subreaper in the process tier), their CPU time, and how they are ended.

Nothing here trusts the session's processes: they are read from /proc and signalled by Spindle,
never asked.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Collection, Iterable

TICKS = os.sysconf("SC_CLK_TCK")
STOP_ROUNDS = 200  # stop-all passes before the processes are killed anyway (each pass finds more)


def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat's fields after the command (its name may hold spaces and parentheses), so
    that field n of proc(5) is [n - 3]; None if the process is gone."""
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
    except OSError:
        return None
    try:
        data = os.read(fd, 4096)
    except OSError:
        return None
    finally:
        os.close(fd)
    return data[data.rfind(b")") + 2 :].decode().split()


def descendants(root: int) -> list[int]:
    """`root` and every process beneath it, parents before their children."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        fields = _stat(int(name))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(name))
    found = [root]
    for pid in found:
        found.extend(children.get(pid, ()))
    return found


def namespace_pid(pid: int) -> int | None:
    """The process's id in its own (innermost) PID namespace."""
    try:
        with open(f"/proc/{pid}/status") as stream:
            for line in stream:
                if line.startswith("NSpid:"):
                    return int(line.split()[-1])
    except (OSError, ValueError):
        return None
    return None


def cpu_seconds(pids: Iterable[int]) -> float:
    """The CPU time the processes used, with that of the children they have reaped (whose own entries
    are gone): a process's time is counted once, alive or reaped."""
    ticks = 0
    for pid in pids:
        fields = _stat(pid)
        if fields is not None:
            ticks += sum(int(field) for field in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / TICKS


def signal_each(pids: Iterable[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except (ProcessLookupError, PermissionError):
            pass


def stop_and_kill(find: Callable[[], Collection[int]], keep: Collection[int] = (), deadline: float = 5.0) -> None:
    """Kill every process `find` names but those in `keep`, which are stopped (SIGSTOP) and left so.
    All are stopped first, pass after pass until a pass finds no new one, because a stopped process
    cannot fork: a process forking while the others are killed could otherwise leave a child behind
    (orphaned beyond the session, in the process tier). Whatever is found after `deadline` seconds is
    killed as it is."""
    stopped: set[int] = set()
    ends = time.monotonic() + deadline
    for _ in range(STOP_ROUNDS):
        new = set(find()) - stopped
        if not new:
            break
        signal_each(new, signal.SIGSTOP)
        stopped |= new
        if time.monotonic() > ends:
            break
    signal_each(stopped - set(keep), signal.SIGKILL)
