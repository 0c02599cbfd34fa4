"""The program that runs inside a local sandbox: a small Python kernel that keeps one namespace per
session (as a notebook does) and executes the code it is sent, one request at a time.

It is started by chalicelib/sandbox/local.py, in a separate process, and imports nothing of Spindle
(only the standard library), because the sandbox may see nothing else. It talks to its parent over
two pipes of its own (its stdin and a copy of its first stdout); the code it runs writes its stdout
and stderr, at the file-descriptor level, so subprocesses included, to a capture file the parent reads,
and cannot reach those pipes by printing.

The first line the parent sends is the configuration: the limits to apply to this process and the
code it runs (resource limits, inherited by any child), where the capture file and figures go, and,
when the sandbox was started as root, the unprivileged user to become. Then each line is a request:
`{"execute": code, "number": n}` (the reply carries n), or `{"interrupt": n}`, which raises
KeyboardInterrupt in execution n, or has it not run at all if it has not begun.

Between executions the parent keeps the kernel stopped (SIGSTOP), threads and all, and kills every
other process of the session: what an execution starts does not run on after it.
"""

from __future__ import annotations

import ast
import io
import json
import os
import queue
import resource
import signal
import sys
import threading
import traceback
from typing import Any

PROCESS_TIER_GUARDS = ("network", "writes", "processes")


class CpuLimitExceeded(BaseException):
    """Raised in the running code at its CPU-time limit (SIGXCPU), like KeyboardInterrupt is at a stop."""


class _Capped(io.TextIOBase):
    """sys.stdout and sys.stderr: the code's text goes to the capture file until `limit` bytes, and
    what comes after is counted, not written (the parent reports how much was dropped)."""

    def __init__(self, fd: int, shared: dict[str, int]) -> None:
        self._fd = fd
        self._shared = shared

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        data = text.encode("utf-8", "backslashreplace")
        room = self._shared["limit"] - self._shared["written"]
        if room > 0:
            kept = data[:room]
            os.write(self._fd, kept)
            self._shared["written"] += len(kept)
        self._shared["dropped"] += max(0, len(data) - max(room, 0))
        return len(text)

    def fileno(self) -> int:
        return self._fd


def _set_limits(config: dict[str, Any]) -> None:
    def cap(which: int, value: int) -> None:
        resource.setrlimit(which, (value, value))

    mb = 1024 * 1024
    cap(resource.RLIMIT_AS, int(config["memory_mb"]) * mb)
    cap(resource.RLIMIT_FSIZE, int(config["file_mb"]) * mb)
    cap(resource.RLIMIT_CORE, 0)
    cap(resource.RLIMIT_NOFILE, 256)
    if config.get("max_processes"):
        cap(resource.RLIMIT_NPROC, int(config["max_processes"]))
    # The session's whole CPU budget is the hard limit (SIGKILL past it); each execution gets a soft
    # limit of its own below it (SIGXCPU, raised in the code as CpuLimitExceeded).
    cap(resource.RLIMIT_CPU, int(config["session_cpu_seconds"]))


def _become(uid: int, gid: int) -> None:
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)


def _tie_to_parent(parent: int) -> None:
    """What bubblewrap does for the bwrap tier, for the process tier: die with the parent (which
    keeps the kernel stopped between executions, where it would never read the end of its requests),
    and become the parent of the orphans of the processes the code starts (a child subreaper), so that
    they stay beneath the kernel, where the parent finds them to end them."""
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    pr_set_pdeathsig, pr_set_child_subreaper = 1, 36
    prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # it died before that
        os._exit(1)
    prctl(pr_set_child_subreaper, 1, 0, 0, 0)


def _reap() -> None:
    """Collect the processes an earlier execution started, which the parent killed as it ended (left
    as zombies, they would count against the process limit)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _guard(config: dict[str, Any]) -> None:
    """The process tier (no namespaces to lean on): audit hooks refuse network access, writes outside
    the session's directories and, where the kernel runs as root (whose process count no limit holds),
    starting processes. Audit hooks are not a security boundary (ctypes gets around them); README says
    what this tier does and does not protect against."""
    writable = tuple(os.path.realpath(path) + os.sep for path in config["writable"])
    guarded = set(config.get("guards") or ())

    def refuse(what: str) -> None:
        raise PermissionError(f"{what} is not allowed in the sandbox")

    def outside(path: Any) -> bool:
        if isinstance(path, int):
            return False
        real = os.path.realpath(os.fsdecode(path)) + os.sep
        return not real.startswith(writable)

    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if "network" in guarded and event in ("socket.connect", "socket.bind", "socket.sendto", "socket.getaddrinfo"):
            refuse("Network access")
        if "writes" in guarded:
            if event == "open" and len(args) >= 3:
                path, mode, flags = args[0], args[1], args[2]
                writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool(
                    isinstance(flags, int) and flags & write_flags
                )
                if writing and path is not None and outside(path):
                    refuse(f"Writing {os.fsdecode(path)!r} (outside the working directory)")
            elif event in ("os.remove", "os.rename", "os.mkdir", "os.rmdir", "os.chmod", "os.symlink", "os.link"):
                if args and outside(args[0]):
                    refuse(f"Changing {os.fsdecode(args[0])!r} (outside the working directory)")
        if "processes" in guarded and event in (
            "os.fork",
            "os.forkpty",
            "os.system",
            "os.exec",
            "os.posix_spawn",
            "os.spawn",
            "subprocess.Popen",
        ):
            refuse("Starting processes")

    sys.addaudithook(hook)


def _run(code: str, namespace: dict[str, Any]) -> None:
    """Execute as a notebook cell does: the statements, and the value of a last bare expression shown."""
    tree = ast.parse(code, filename="<cell>", mode="exec")
    last = tree.body[-1] if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    if last is not None:
        tree.body.pop()
    exec(compile(tree, "<cell>", "exec"), namespace)
    if last is not None:
        value = eval(compile(ast.Expression(last.value), "<cell>", "eval"), namespace)
        if value is not None:
            print(repr(value))


def _figures(io_dir: str, limit: int) -> int:
    """Save the figures the code left open (a plt.show() with no screen shows nothing) as PNGs for the
    parent; how many."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is None or limit == 0:
        return 0
    saved = 0
    try:
        for number in pyplot.get_fignums()[:limit]:
            pyplot.figure(number).savefig(os.path.join(io_dir, f"figure-{saved}.png"), format="png")
            saved += 1
    finally:
        pyplot.close("all")
    return saved


def _report(error: BaseException) -> None:
    """A traceback as a notebook shows it: without the kernel's own frames."""
    frames = [frame for frame in traceback.extract_tb(error.__traceback__) if frame.filename != __file__]
    lines = traceback.format_list(frames)
    text = "".join(traceback.format_exception_only(type(error), error))
    sys.stderr.write(("Traceback (most recent call last):\n" + "".join(lines) if lines else "") + text)


def _execute(code: str, namespace: dict[str, Any], config: dict[str, Any], number: int) -> dict[str, Any]:
    io_dir = config["io_dir"]
    for name in os.listdir(io_dir):
        if name.startswith("figure-"):
            os.unlink(os.path.join(io_dir, name))
    output = os.open(os.path.join(io_dir, "output"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    saved = os.dup(1), os.dup(2)
    os.dup2(output, 1)
    os.dup2(output, 2)
    os.close(output)
    shared = {"limit": int(config["output_bytes"]), "written": 0, "dropped": 0}
    sys.stdout = _Capped(1, shared)  # type: ignore[assignment]
    sys.stderr = _Capped(2, shared)  # type: ignore[assignment]
    used = resource.getrusage(resource.RUSAGE_SELF)
    spent = int(used.ru_utime + used.ru_stime)
    hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    soft = spent + int(config["cpu_seconds"]) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (min(soft, hard), hard))
    outcome = "ok"
    kernel = os.getpid()
    try:
        try:
            _run(code, namespace)
        finally:
            if os.getpid() != kernel:  # a child the code forked came back here: it must not act as the kernel
                os._exit(1)
    except CpuLimitExceeded:
        outcome = "cpu_limit"
    except KeyboardInterrupt:
        outcome = "interrupted"
    except SystemExit as exit_:
        outcome = "ok" if exit_.code in (None, 0) else "error"
    except BaseException as error:  # the code's own error: its traceback is its output
        outcome = "error"
        try:
            _report(error)
        except MemoryError:
            sys.stderr.write(f"{type(error).__name__}\n")
    figures = 0
    try:
        figures = _figures(io_dir, int(config["max_figures"]))
    except Exception as error:
        sys.stderr.write(f"(the figures could not be saved: {error})\n")
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os.dup2(saved[0], 1)
    os.dup2(saved[1], 2)
    for fd in saved:
        os.close(fd)
    sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    return {"number": number, "outcome": outcome, "dropped": shared["dropped"], "figures": figures}


def main() -> None:
    requests = os.fdopen(os.dup(0), "rb", buffering=0)
    replies = os.fdopen(os.dup(1), "wb", buffering=0)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    config = json.loads(requests.readline())
    if config.get("uid") is not None and os.getuid() == 0:
        _become(int(config["uid"]), int(config["gid"]))
    os.chdir(config["data_dir"])
    _set_limits(config)

    def over_cpu(signum: int, frame: Any) -> None:
        raise CpuLimitExceeded

    signal.signal(signal.SIGXCPU, over_cpu)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the file-size limit fails (EFBIG) instead
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if config.get("tie_to_parent"):
        _tie_to_parent(int(config["tie_to_parent"]))
    if config.get("guards"):
        _guard(config)

    work: queue.Queue[tuple[str, int] | None] = queue.Queue()
    interrupted: set[int] = set()  # executions a stop was asked for
    running = [0]  # the execution under way (0: none)

    def listen() -> None:  # a stop must reach code that is running, so requests are read beside it
        for line in requests:
            request = json.loads(line)
            if "interrupt" in request:
                interrupted.add(int(request["interrupt"]))
                if running[0] == int(request["interrupt"]):
                    os.kill(os.getpid(), signal.SIGINT)
            elif "execute" in request:
                work.put((request["execute"], int(request["number"])))
        work.put(None)

    threading.Thread(target=listen, daemon=True).start()
    replies.write(b'{"ready": true}\n')
    namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": __builtins__}
    while True:
        try:
            request = work.get()
        except KeyboardInterrupt:  # an interrupt that came between executions
            continue
        if request is None:
            return
        code, number = request
        _reap()
        running[0] = number
        try:
            if number in interrupted:  # stopped before it began (a stop seen after this reads `running`)
                raise KeyboardInterrupt
            reply = _execute(code, namespace, config, number)
        except KeyboardInterrupt:
            reply = {"number": number, "outcome": "interrupted", "dropped": 0, "figures": 0}
        running[0] = 0
        replies.write(json.dumps(reply).encode() + b"\n")


def _main_reporting() -> None:
    """main(), and the reason it could not start, for the parent to log, should it fail to."""
    replies = os.dup(1)
    try:
        main()
    except Exception:
        os.write(replies, json.dumps({"fatal": traceback.format_exc()}).encode() + b"\n")
        raise SystemExit(1) from None


if __name__ == "__main__":
    _main_reporting()
