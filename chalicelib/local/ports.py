"""Who holds a local port: named in the error when `make dev`'s port is taken, so that a stale
Spindle (an API child whose supervisor was killed) or any other program can be found and stopped.
Linux only (it reads /proc); elsewhere the holder is not named."""

from __future__ import annotations

import os
from pathlib import Path

LISTEN = "0A"  # the socket state in /proc/net/tcp


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def _command(pid: str) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return " ".join(part.decode("utf-8", "replace") for part in raw.split(b"\0") if part)


def _parent(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]
    except (OSError, IndexError):
        return "?"


def holder_of(port: int) -> str | None:
    """Which process listens on the port, as `pid N (command)`, and whether it is a Spindle API left
    behind by its supervisor; None where that cannot be told."""
    inodes = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    if not inodes:
        return None
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            descriptors = os.listdir(proc / "fd")
        except OSError:
            continue
        for descriptor in descriptors:
            try:
                if os.readlink(proc / "fd" / descriptor) not in inodes:
                    continue
            except OSError:
                continue
            pid, command = proc.name, _command(proc.name)
            described = f"pid {pid} ({command})"
            if "chalicelib.local.server" in command and "chalicelib.local" not in _command(_parent(pid)):
                described += f", a Spindle API whose supervisor is gone: `kill {pid}` frees the port"
            return described
    return None
