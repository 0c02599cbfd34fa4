"""The local sandbox: each thread's code runs in a kernel process of its own (sandbox/kernel.py) that
keeps its variables between executions, under limits on CPU time, memory, file size, processes,
output and wall-clock time. When an execution ends, every other process of the session is killed and
the kernel stopped until the next one (sandbox/processes.py); where the machine allows, the session's
processes share a control group that bounds their memory and number together (sandbox/cgroup.py).

Two tiers of isolation, the strongest the machine offers (`SPINDLE_CODE_SANDBOX=local` picks; `bwrap`
or `process` insists on one):

- **bwrap** (bubblewrap, which `make` installs where it can): the kernel runs in new mount, PID,
  network, IPC and UTS namespaces. It sees the system's programs and libraries and the Python it runs
  on, read-only, a private /tmp, and its session's directory at /mnt/data, the one place it can write.
  It has no network but its own loopback, and cannot see other sessions, Spindle's data or anyone's
  home. Started as root, bubblewrap needs no user namespace, and the kernel becomes a user id of its
  session's own, so that its process limit holds (the kernel exempts root from it).
- **process**: a plain child process with the same resource limits, working in the session's
  directory, with audit hooks that refuse network access and writes outside it (and, as root, starting
  processes). Audit hooks are not a security boundary: code that loads a C library can get past them.
  README says this plainly.
"""

from __future__ import annotations

import errno
import hashlib
import itertools
import json
import logging
import os
import queue
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from chalicelib.config import settings
from chalicelib.sandbox import (
    WORKING_DIRECTORY,
    Execution,
    InputFiles,
    Limits,
    OutputFile,
    SandboxUnavailable,
    cgroup,
    given,
    is_figure,
    outputs_to_keep,
    processes,
    uids,
)

log = logging.getLogger("spindle.sandbox")

KERNEL = Path(__file__).with_name("kernel.py")
IO_DIRECTORY = "/run/spindle"  # the capture file and figures, inside a bwrap sandbox
START_SECONDS = 30.0  # for the kernel to say it is ready (a busy machine, a cold disk)
INTERRUPT_GRACE_SECONDS = 2.0  # after an interrupt, before the session is killed
CPU_GRACE_SECONDS = 2.0  # CPU time past an execution's limit (which it was told of), before it is killed
CPU_POLL_SECONDS = 0.25  # how often the CPU time of a running execution's processes is read
TMP_BYTES = 64 * 1024 * 1024  # the private /tmp of a bwrap sandbox (a tmpfs, so memory)
MAX_ENTRIES = 10_000  # files and directories a session may have: past that it is ended
UNCOUNTED = "files that could not all be counted"  # a directory the quota walk could not open
MAX_REPLY_BYTES = 64 * 1024  # a kernel reply is a short JSON line
OUTCOMES = frozenset({"ok", "error", "cpu_limit", "interrupted"})
_ETC = (
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "alternatives",
    "localtime",
    "fonts",
    "mime.types",
    "nsswitch.conf",
)


def _bwrap_works(privileged: bool) -> bool:
    binary = shutil.which("bwrap")
    if binary is None:
        return False
    namespaces = ["--unshare-net", "--unshare-pid"] + ([] if privileged else ["--unshare-user"])
    try:
        probe = subprocess.run(
            [binary, *namespaces, "--ro-bind", "/", "/", "--", "/bin/true"], capture_output=True, timeout=20
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return probe.returncode == 0


@dataclass(frozen=True)
class _Layout:
    """Where a session's directories are, on the host and as its code sees them."""

    host_data: Path
    host_io: Path
    data: str
    io: str


class LocalSession:
    def __init__(
        self, key: str, directory: Path, limits: Limits, isolation: str, user: uids.Claim | None = None
    ) -> None:
        self.key = key
        self.directory = directory
        self.limits = limits
        self.isolation = isolation
        self._user = user  # the user id its kernel runs as (bwrap as root), its own among live sessions
        self.uid = user.uid if user is not None else None
        inside = isolation == "bwrap"
        self.layout = _Layout(
            directory / "data",
            directory / "io",
            WORKING_DIRECTORY if inside else str(directory / "data"),
            IO_DIRECTORY if inside else str(directory / "io"),
        )
        self._make_directories()
        self.last_used = time.monotonic()
        self._inputs: set[str] = set()
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._kernel = 0  # the kernel's process id
        self._outer: frozenset[int] = frozenset()  # bubblewrap's two processes, above it (in bwrap)
        self._group: cgroup.ControlGroup | None = None  # made as its first kernel starts, where it can be
        self._replies: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._executions = 0  # numbers each execution: a reply must carry its execution's

    # --- what the run sees ---

    @property
    def input_ids(self) -> frozenset[str]:
        return frozenset(self._inputs)

    @property
    def busy(self) -> bool:
        return self._lock.locked()

    def put_files(self, files: Mapping[str, tuple[str, bytes]]) -> list[str]:
        """Put files in the working directory; notes on those that could not be put there."""
        return self._put({file_id: (name, given(content)) for file_id, (name, content) in files.items()})

    def execute(self, code: str, stop: threading.Event, inputs: InputFiles | None = None) -> Execution:
        with self._lock:
            self.last_used = time.monotonic()
            notes = self._put({k: v for k, v in (inputs or {}).items() if k not in self._inputs})
            if self._process is not None and self._process.poll() is not None:
                notes.append("[The session had ended; a new one started: its variables are gone, its files are kept.]")
                self._process = None
            if self._process is None:
                self._start()
            before, _, _ = self._usage()
            outcome, ended = self._await(code, stop)
            if outcome is not None:
                self._settle()
            logs = self._read_output()
            reply_notes = self._notes(outcome, ended)
            figures = self._figures() if outcome is not None else ()
            files, skipped = self._written(before)
            self.last_used = time.monotonic()
            text = "\n".join(part for part in (logs, *notes, *reply_notes, *skipped) if part)
            return Execution(
                logs=text,
                failed=outcome is None or outcome["outcome"] != "ok",
                figures=figures,
                files=files,
                skipped_files=tuple(skipped),
            )

    def _put(self, files: InputFiles) -> list[str]:
        """Write each file into the working directory, never through anything the code left there (a
        link, a pipe): what is in the way is removed first, each name opened beneath the directory."""
        notes: list[str] = []
        if not files:
            return notes
        directory = os.open(self.layout.host_data, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for file_id, (name, load) in files.items():
                content = load()
                if content is None:
                    continue  # deleted or expired meanwhile
                try:
                    self._put_one(directory, name, content)
                except OSError as error:
                    notes.append(f"[{name} could not be put in the working directory: {error.strerror}.]")
                    continue
                self._inputs.add(file_id)
        finally:
            os.close(directory)
        return notes

    def _put_one(self, directory: int, name: str, content: bytes) -> None:
        for _ in range(3):  # the code may put something back in the way; a few tries, then give up
            try:
                found = os.stat(name, dir_fd=directory, follow_symlinks=False)
            except FileNotFoundError:
                found = None
            if found is not None:
                if stat.S_ISDIR(found.st_mode):
                    raise IsADirectoryError(errno.EISDIR, "a directory of that name is in the way")
                os.unlink(name, dir_fd=directory)
            try:
                fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=directory)
            except FileExistsError:
                continue
            with os.fdopen(fd, "wb") as out:
                if self.uid is not None:
                    os.fchown(fd, self.uid, self.uid)
                out.write(content)
            return
        raise FileExistsError(errno.EEXIST, "something kept taking its place")

    def terminate(self) -> None:
        """Kill the kernel now, whatever it runs (an execution under way ends, its session with it)."""
        self._kill()

    def close(self) -> None:
        self.terminate()
        with self._lock:
            self._kill()
            _remove_tree(self.directory)
            if self._group is not None:
                self._group.remove()
            if self._user is not None:
                self._user.release()

    # --- the kernel process ---

    def _make_directories(self) -> None:
        """The session's working directory, and its kernel's (the capture file, figures, its /tmp in
        the process tier), made before any of its code runs, so made safely by path."""
        for path in (self.layout.host_data, self.layout.host_io, self.layout.host_io / "tmp"):
            path.mkdir(parents=True, exist_ok=True)
            self._own(path)

    def _own(self, path: Path) -> None:
        if self.uid is not None:
            os.chown(path, self.uid, self.uid)

    def _environment(self) -> dict[str, str]:
        tmp = "/tmp" if self.isolation == "bwrap" else str(self.layout.host_io / "tmp")
        return {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": tmp,
            "TMPDIR": tmp,
            "USER": "sandbox",
            "LANG": "C.UTF-8",
            "MPLBACKEND": "Agg",
            "MPLCONFIGDIR": f"{tmp}/matplotlib",
            "XDG_CACHE_HOME": f"{tmp}/.cache",
            "OPENBLAS_NUM_THREADS": "1",  # each thread counts against the process limit
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
        }

    def _command(self) -> list[str]:
        python = sys.executable
        if self.isolation != "bwrap":
            return [python, "-I", str(KERNEL)]
        command = ["bwrap", "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-net"]
        command += ["--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox"]
        if self.uid is None:
            command.append("--unshare-user")
        else:  # root without a user namespace: the kernel may change to its session's user, then nothing
            command += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        # bwrap makes the parents of what it mounts readable by root alone: the kernel's user must pass.
        # Those under /tmp are made once the private /tmp is mounted (which would hide them), and
        # what is bound there (a Python installed under /tmp) after it.
        python_dirs = list(
            dict.fromkeys(p for p in (sys.base_prefix, sys.prefix, sys.exec_prefix) if not p.startswith("/usr/"))
        )
        parents = _parents(WORKING_DIRECTORY, IO_DIRECTORY, "/opt/spindle/kernel.py", "/etc/x", *python_dirs)
        early = [parent for parent in parents if not _under(parent, "/tmp")]
        late = [parent for parent in parents if _under(parent, "/tmp")]
        for parent in early:
            command += ["--perms", "0755", "--dir", parent]
        command += ["--ro-bind", "/usr", "/usr"]
        for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64"):
            if os.path.islink(top):
                command += ["--symlink", os.readlink(top), top]
            elif os.path.isdir(top):
                command += ["--ro-bind", top, top]
        for name in _ETC:
            command += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
        command += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size", str(TMP_BYTES), "--tmpfs", "/tmp"]
        for parent in late:
            command += ["--perms", "0755", "--dir", parent]
        for prefix in python_dirs:
            command += ["--ro-bind", prefix, prefix]
        command += ["--ro-bind", str(KERNEL), "/opt/spindle/kernel.py"]
        command += ["--bind", str(self.layout.host_data), WORKING_DIRECTORY]
        command += ["--bind", str(self.layout.host_io), IO_DIRECTORY, "--chdir", WORKING_DIRECTORY]
        return [*command, "--", python, "-I", "/opt/spindle/kernel.py"]

    def _configuration(self) -> dict[str, Any]:
        limits = self.limits
        config: dict[str, Any] = {
            "data_dir": self.layout.data,
            "io_dir": self.layout.io,
            "cpu_seconds": limits.cpu_seconds,
            "session_cpu_seconds": limits.session_cpu_seconds,
            "memory_mb": limits.memory_mb,
            "file_mb": limits.file_mb,
            "output_bytes": limits.output_bytes,
            "max_processes": limits.max_processes,
            "max_figures": limits.max_figures,
        }
        if self.isolation == "bwrap":
            if self.uid is not None:
                config.update(uid=self.uid, gid=self.uid)
            return config
        # the process tier: the process limit counts every process of this user, so it is raised by
        # as many as the user has; as root it holds nothing, so the kernel refuses to start processes
        config["max_processes"] = limits.max_processes + _tasks_of(os.getuid())
        config["guards"] = ["network", "writes"] + (["processes"] if os.getuid() == 0 else [])
        config["tie_to_parent"] = os.getpid()  # what bubblewrap does in the bwrap tier (see kernel.py)
        config["writable"] = [str(self.layout.host_data), str(self.layout.host_io)]
        return config

    def _start(self) -> None:
        self._replies = queue.Queue()
        self._executions = 0
        if self._group is None:  # all the session's processes together: memory, and their number
            limits = self.limits
            self._group = cgroup.ControlGroup.make(
                self.directory.name, limits.memory_mb * 1024 * 1024, limits.max_processes + 2
            )
        process = _launch(
            self._command(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=self.layout.host_data,
            env=self._environment(),
            start_new_session=True,
            preexec_fn=self._group.enter if self._group is not None else None,
        )
        self._process = process
        assert process.stdin is not None and process.stdout is not None
        threading.Thread(target=self._listen, args=(process.stdout,), daemon=True, name="sandbox-replies").start()
        self._send({**self._configuration()})
        try:
            ready = self._replies.get(timeout=START_SECONDS)
        except queue.Empty:
            ready = None
        if not ready or not ready.get("ready") or not self._find_kernel():
            log.error("sandbox %s: the kernel did not start: %s", self.key, (ready or {}).get("fatal", "no reply"))
            self._kill()
            raise SandboxUnavailable(f"the sandbox did not start (isolation {self.isolation})")

    def _find_kernel(self) -> bool:
        """Which process is the kernel: the one started, or in bwrap, the one its PID namespace numbers
        2, beneath bubblewrap's init (1) and bubblewrap itself (the one started)."""
        assert self._process is not None
        self._kernel, self._outer = self._process.pid, frozenset()
        if self.isolation != "bwrap":
            return True
        numbered = {processes.namespace_pid(pid): pid for pid in processes.descendants(self._process.pid)[1:]}
        if 1 not in numbered or 2 not in numbered:
            return False
        self._kernel, self._outer = numbered[2], frozenset({self._process.pid, numbered[1]})
        return True

    def _members(self) -> list[int]:
        """Every process of the session: its control group's, where it has one (no process leaves
        it), else the one started and all beneath it (none once that one has been waited for: its id
        may have been given to another process since)."""
        if self._group is not None:
            return self._group.pids()
        return self._tree()

    def _tree(self) -> list[int]:
        """The process started and all beneath it, zombies included (what they used counts until
        their parent collects it)."""
        process = self._process
        if process is None or process.returncode is not None:
            return []
        return processes.descendants(process.pid)

    def _settle(self) -> None:
        """At the end of an execution, nothing it started goes on running: every process but the
        kernel is killed, and the kernel, threads and all, is stopped (SIGSTOP) until the next
        execution (_resume), so that a thread the code left cannot write, or spend CPU, in between.
        bubblewrap's own processes are left alone (they run none of the code)."""
        processes.stop_and_kill(lambda: [pid for pid in self._members() if pid not in self._outer], keep={self._kernel})

    def _resume(self) -> None:
        processes.signal_each([self._kernel], signal.SIGCONT)

    def _listen(self, stream: IO[bytes]) -> None:
        """The kernel's replies, one JSON line each. The code shares the kernel's process and can write
        to this pipe too: a line past MAX_REPLY_BYTES is a broken protocol (the session is ended),
        never a line kept growing in this process."""
        replies = self._replies
        try:
            while line := stream.readline(MAX_REPLY_BYTES):
                if not line.endswith(b"\n"):
                    replies.put({"broken": "a reply line too long"})
                    return
                try:
                    replies.put(json.loads(line))
                except ValueError:
                    replies.put({"broken": "a reply that is not JSON"})
                    return
        except (OSError, ValueError):
            pass
        finally:
            stream.close()
            replies.put(None)

    def _send(self, message: dict[str, Any]) -> None:
        assert self._process is not None and self._process.stdin is not None
        try:
            self._process.stdin.write(json.dumps(message).encode() + b"\n")
            self._process.stdin.flush()
        except (OSError, ValueError):  # the kernel is gone (or killed); its reader reports that
            pass

    def _await(self, code: str, stop: threading.Event) -> tuple[dict[str, Any] | None, str | None]:
        """The kernel's reply, or None and why there is none: `stopped`, `wall` (interrupted, then
        killed if it did not stop in time: `...+killed`), `ended` (the process died) or `broken` (what
        came back was no reply of this execution's: the session is ended)."""
        self._executions += 1
        number = self._executions
        baseline = processes.cpu_seconds(self._tree())
        self._resume()
        self._send({"execute": code, "number": number})
        deadline = time.monotonic() + self.limits.wall_seconds
        reason: str | None = None
        interrupted_at = 0.0
        measured_at = time.monotonic()
        while True:
            try:
                reply = self._replies.get(timeout=0.05)
            except queue.Empty:
                pass
            else:
                if reply is None:
                    self._kill()
                    return None, (reason + "+ended") if reason else "ended"
                if isinstance(reply, dict) and isinstance(reply.get("number"), int) and reply["number"] < number:
                    continue  # a reply to an execution that was given up on
                if not _is_reply(reply, number):
                    self._kill()
                    return None, "broken"
                return reply, reason
            now = time.monotonic()
            if reason is None and now - measured_at >= CPU_POLL_SECONDS:
                # the kernel is told at its CPU limit (SIGXCPU); code that ignores it, or whose
                # processes share the time, is killed a little past it
                measured_at = now
                if processes.cpu_seconds(self._tree()) - baseline > self.limits.cpu_seconds + CPU_GRACE_SECONDS:
                    self._kill()
                    return None, "cpu+killed"
            if reason is None and (stop.is_set() or now >= deadline):
                reason = "stopped" if stop.is_set() else "wall"
                interrupted_at = now
                self._send({"interrupt": number})
            elif reason is not None and now - interrupted_at >= INTERRUPT_GRACE_SECONDS:
                self._kill()
                return None, reason + "+killed"

    def _notes(self, reply: dict[str, Any] | None, reason: str | None) -> list[str]:
        limits = self.limits
        notes = []
        if reply is not None and reply.get("dropped"):
            notes.append(f"[{reply['dropped']} more bytes of output were dropped: the limit is {limits.output_bytes}.]")
        if (reply is not None and reply["outcome"] == "cpu_limit") or (reason and reason.startswith("cpu")):
            notes.append(f"[Stopped: the execution used its {limits.cpu_seconds} s of CPU time.]")
        if reason and reason.startswith("stopped"):
            notes.append("[Stopped: the run was cancelled.]")
        elif reason and reason.startswith("wall"):
            notes.append(f"[Stopped: the execution ran for {limits.wall_seconds:g} s, its time limit.]")
        if reply is None:
            code = self._process.returncode if self._process is not None else None
            how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
            cause = "killed" if reason and reason.endswith("killed") else f"ended ({how})"
            if reason == "broken":
                cause = "ended: the kernel's replies were tampered with"
            notes.append(f"[The session was {cause}: the next execution starts a new one, without its variables.]")
            self._process = None
        return notes

    def _kill(self) -> None:
        """Kill the session's every process (the kernel loses its variables; the files stay)."""
        process = self._process
        if process is None:
            return
        processes.stop_and_kill(self._members)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            log.warning("sandbox %s: the kernel did not die", self.key)
        if process.stdin is not None:  # its stdout is the listener's to close, at the end it reads
            try:
                process.stdin.close()
            except OSError:
                pass

    # --- what the execution left ---

    def _read_output(self) -> str:
        limit = self.limits.output_bytes
        data = _read_beneath(self.layout.host_io, "output", limit + 1)
        if data is None:
            return ""
        text = data[:limit].decode("utf-8", "replace")
        if len(data) > limit:
            text += f"\n[Output past {limit} bytes was dropped.]"
        return text.rstrip("\n")

    def _figures(self) -> tuple[bytes, ...]:
        shown = []
        for number in range(self.limits.max_figures):
            data = _read_beneath(self.layout.host_io, f"figure-{number}.png", settings.max_file_bytes + 1)
            if data is None:
                break
            if is_figure(data):
                shown.append(data)
        return tuple(shown)

    def _usage(self) -> tuple[dict[str, tuple[int, int]], int, str | None]:
        """The working directory's visible regular files (size, mtime) by path, what the session takes
        on disk (both its directories, hidden files too), and why that could not all be counted (too
        many entries, a directory that could not be opened), if it could not."""
        files, used, problem = _walk(self.layout.host_data, MAX_ENTRIES)
        _, io_used, io_problem = _walk(self.layout.host_io, MAX_ENTRIES)
        return files, used + io_used, problem or io_problem

    def _written(self, before: Mapping[str, tuple[int, int]]) -> tuple[tuple[OutputFile, ...], list[str]]:
        after, used, problem = self._usage()
        if problem or used > self.limits.disk_mb * 1024 * 1024:
            what = problem or f"more than {self.limits.disk_mb} MB of disk"
            self._kill()
            self._process = None
            for directory in (self.layout.host_data, self.layout.host_io):
                _remove_tree(directory)
            self._make_directories()
            self._inputs.clear()
            return (), [f"[The session used {what}: it was ended and its files removed.]"]
        wanted, skipped = outputs_to_keep({path: mark[0] for path, mark in after.items() if before.get(path) != mark})
        files = []
        for path in wanted:
            content = _read_beneath(self.layout.host_data, path, settings.max_file_bytes + 1)
            if content is not None and len(content) <= settings.max_file_bytes:
                files.append(OutputFile(path, content))
        return tuple(files), skipped


_launches: queue.Queue[tuple[list[str], dict[str, Any], Future[subprocess.Popen[bytes]]]] = queue.Queue()
_launcher: threading.Thread | None = None
_launcher_lock = threading.Lock()


def _launch(command: list[str], **options: Any) -> subprocess.Popen[bytes]:
    """Popen, from one thread that lives as long as the process. bubblewrap's --die-with-parent (the
    kernel's parent-death signal) fires when the *thread* that started it ends, and requests and run
    workers are threads that end: a session must outlive them."""
    global _launcher
    with _launcher_lock:
        if _launcher is None:

            def serve() -> None:
                while True:
                    args, kwargs, started = _launches.get()
                    try:
                        started.set_result(subprocess.Popen(args, **kwargs))
                    except BaseException as error:
                        started.set_exception(error)

            _launcher = threading.Thread(target=serve, daemon=True, name="sandbox-launcher")
            _launcher.start()
    started: Future[subprocess.Popen[bytes]] = Future()
    _launches.put((command, options, started))
    return started.result()


def _is_reply(reply: Any, number: int) -> bool:
    return (
        isinstance(reply, dict)
        and reply.get("number") == number
        and reply.get("outcome") in OUTCOMES
        and isinstance(reply.get("dropped"), int)
        and isinstance(reply.get("figures"), int)
    )


def _read_beneath(root: Path, relative: str, limit: int) -> bytes | None:
    """Up to `limit` bytes of a regular file the sandbox wrote under `root`: each directory on the
    way opened beneath the one before, and no link followed, so that code swapping a directory for a
    link meanwhile cannot make this process read anything outside (nor a pipe block it)."""
    parts = relative.split("/")
    try:
        directory = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        for part in parts[:-1]:
            inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=directory)
            os.close(directory)
            directory = inner
        fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=directory)
    except OSError:
        return None
    finally:
        os.close(directory)
    with os.fdopen(fd, "rb") as stream:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return stream.read(limit)


def _walk(root: Path, limit: int) -> tuple[dict[str, tuple[int, int]], int, str | None]:
    """The regular files under `root`, walked beneath it (no link followed): the visible ones (no
    hidden part in their path) by path with their size and mtime, the bytes all of them take, and why
    the walk could not count everything, if it could not: more than `limit` entries (it stops there),
    or a directory it could not open (out of descriptors, or refused), which counts as over quota,
    never as empty. Descriptors are held only for the directories on the current path: each listing
    is read whole and closed before its subdirectories are opened."""
    found: dict[str, tuple[int, int]] = {}
    used = 0
    entries = 0
    try:
        top = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        return found, used, None  # no files yet
    except OSError:
        return found, used, UNCOUNTED  # the code made its own directory unreadable
    # the directories on the current path: descriptor, path, hidden, the subdirectories left to walk
    path: list[tuple[int, str, bool, list[str]]] = [(top, "", False, [])]
    try:
        while True:
            directory, prefix, hidden, subdirectories = path[-1]
            try:
                listing = os.scandir(directory)  # a descriptor of its own, for as long as it reads
            except OSError:
                return found, used, UNCOUNTED
            with listing:
                for entry in listing:
                    entries += 1
                    if entries > limit:
                        return found, used, f"more than {limit} files"
                    try:
                        status = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue  # removed meanwhile
                    except OSError:
                        return found, used, UNCOUNTED  # a directory listed but not searchable
                    if stat.S_ISDIR(status.st_mode):
                        subdirectories.append(entry.name)
                    elif stat.S_ISREG(status.st_mode):
                        used += status.st_blocks * 512
                        if not (hidden or entry.name.startswith(".")):
                            found[prefix + entry.name] = (status.st_size, status.st_mtime_ns)
            while True:  # the next subdirectory to list, the deepest first
                while path and not path[-1][3]:
                    os.close(path.pop()[0])
                if not path:
                    return found, used, None
                parent, prefix, hidden, subdirectories = path[-1]
                name = subdirectories.pop()
                try:
                    inner = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
                except (FileNotFoundError, NotADirectoryError):
                    continue  # removed, or swapped for a file, meanwhile (counted next time)
                except OSError as error:
                    if error.errno == errno.ELOOP:
                        continue  # swapped for a link: never followed
                    return found, used, UNCOUNTED
                path.append((inner, f"{prefix}{name}/", hidden or name.startswith("."), []))
                break
    finally:
        for directory, _, _, _ in path:
            os.close(directory)


def _remove_tree(directory: Path | str, regained: set[str] | None = None) -> None:
    """Remove a session's files, including those its code made unreadable or unsearchable (chmod):
    Spindle owns them (as root, or as the user the session runs as), so it gives itself the rights back
    once and tries again. Never follows a link."""
    regained = set() if regained is None else regained

    def regain(function: Any, path: str, _: Any) -> None:
        if path in regained:
            return  # the rights came back and it still failed: the next close or start tries again
        regained.add(path)
        try:
            parent = os.path.dirname(path)
            if parent and not os.path.islink(parent):
                os.chmod(parent, 0o700)
            if os.path.islink(path) or not os.path.isdir(path):
                function(path)  # a file or link: unlink it again, now that its directory is writable
                return
            os.chmod(path, 0o700)
        except OSError:
            return  # gone meanwhile, or truly not removable
        _remove_tree(path, regained)  # a directory it could not open or empty: all of it, again

    shutil.rmtree(directory, onerror=regain)  # (onexc from Python 3.12; the project supports 3.11)


def _tasks_of(uid: int) -> int:
    """How many processes and threads the user has now (what RLIMIT_NPROC counts)."""
    count = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid == uid:
                count += len(os.listdir(f"/proc/{entry.name}/task"))
        except OSError:
            continue
    return count


class LocalSandbox:
    """The sessions of this process, by key; each ends after `idle_seconds` unused (its files too)."""

    def __init__(self, root: Path, limits: Limits, isolation: str, idle_seconds: float, max_sessions: int = 16) -> None:
        self.root = root
        self.limits = limits
        self.isolation = isolation
        self.idle_seconds = idle_seconds
        self.max_sessions = max_sessions
        self._sessions: dict[str, LocalSession] = {}
        self._lock = threading.Lock()
        self._numbers = itertools.count()
        self._reaper: threading.Thread | None = None
        root.mkdir(parents=True, exist_ok=True)

    @classmethod
    def configured(cls) -> LocalSandbox:
        privileged = os.getuid() == 0
        wanted = settings.code_sandbox
        if wanted == "process":
            isolation = "process"
        elif _bwrap_works(privileged):
            isolation = "bwrap"
        elif wanted == "bwrap":
            raise SandboxUnavailable("SPINDLE_CODE_SANDBOX=bwrap, but bubblewrap (bwrap) is missing or cannot run here")
        else:
            log.warning("bubblewrap is not available: code runs in the weaker process sandbox (see README)")
            isolation = "process"
        base = Path(settings.code_sandbox_dir)
        _forget_dead(base)
        cgroup.forget_dead()
        return cls(base / str(os.getpid()), settings.code_limits, isolation, settings.code_session_idle_seconds)

    @property
    def working_directory(self) -> str:
        return WORKING_DIRECTORY if self.isolation == "bwrap" else "the current directory"

    def session(self, key: str) -> LocalSession:
        with self._lock:
            self._start_reaper()
            for session in self._expired(time.monotonic()):
                session.close()  # before a new session of the same key takes its directory
            current = self._sessions.get(key)
            if current is None:
                idle = [session for session in self._sessions.values() if not session.busy]
                if len(self._sessions) >= self.max_sessions and idle:  # the longest idle makes room
                    oldest = min(idle, key=lambda session: session.last_used)
                    self._sessions.pop(oldest.key).close()
                current = self._sessions[key] = self._new_session(key)
        return current

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            session.close()

    def _new_session(self, key: str) -> LocalSession:
        number = next(self._numbers)
        # a directory of its own: one that ended (its directory removed as it closes) is not resumed
        directory = self.root / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}-{number}"
        if self.isolation != "bwrap" or os.getuid() != 0:
            return LocalSession(key, directory, self.limits, self.isolation)
        user = uids.claim()  # unique among the machine's live sessions
        try:
            return LocalSession(key, directory, self.limits, self.isolation, user)
        except BaseException:
            user.release()
            raise

    def _expired(self, now: float) -> list[LocalSession]:
        idle = [
            key
            for key, session in self._sessions.items()
            if now - session.last_used > self.idle_seconds and not session.busy
        ]
        return [self._sessions.pop(key) for key in idle]

    def _start_reaper(self) -> None:
        if self._reaper is not None:
            return

        def reap() -> None:
            while True:
                time.sleep(min(60.0, self.idle_seconds / 2))
                with self._lock:
                    for session in self._expired(time.monotonic()):
                        session.close()

        self._reaper = threading.Thread(target=reap, daemon=True, name="sandbox-reaper")
        self._reaper.start()


def _under(path: str, top: str) -> bool:
    return path == top or path.startswith(top + "/")


def _parents(*paths: str) -> list[str]:
    """Every directory above `paths`, outermost first, once each."""
    found: dict[str, None] = {}
    for path in paths:
        parts = Path(path).parts[1:-1]
        for depth in range(1, len(parts) + 1):
            found["/" + "/".join(parts[:depth])] = None
    return list(found)


def _forget_dead(base: Path) -> None:
    """Remove the session directories of API processes that have died (a reload, a crash)."""
    if not base.is_dir():
        return
    for entry in base.iterdir():
        if entry.name.isdigit() and not Path(f"/proc/{entry.name}").exists():
            _remove_tree(entry)
