"""code_interpreter's local sandbox: how long a session takes to start, and what one execution costs
beyond the code itself. Used by `python bench/run.py code_interpreter`; the section's docstring
(`section_code_interpreter`) says how each figure is measured.

Everything runs in this process through chalicelib/sandbox/local.py, the code a run calls, on each tier
this machine has (bubblewrap, and the process fallback, which every machine has).

This module does not import bench/run.py: run.py imports it (see bench/stream_latency.py).
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

STARTS = 10  # fresh sessions per tier
EXECUTIONS = 200  # warm executions per figure
FILES = (10, 1_000)  # files in the working directory, for the scan each execution makes


def _summary(samples: list[float], scale: float = 1000.0) -> dict[str, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]
    return {"median": round(statistics.median(ordered) * scale, 3), "p99": round(p99 * scale, 3), "n": len(ordered)}


def _tier(isolation: str, root: Path) -> dict[str, Any]:
    from chalicelib.config import CodeLimits
    from chalicelib.sandbox.local import LocalSandbox

    sandbox = LocalSandbox(root, CodeLimits(), isolation, idle_seconds=3600, max_sessions=STARTS + 4)
    stop = threading.Event()
    try:
        starts, imports = [], []
        for number in range(STARTS):
            began = time.perf_counter()
            session = sandbox.session(f"bench/start-{number}")
            assert not session.execute("pass", stop).failed
            starts.append(time.perf_counter() - began)
            began = time.perf_counter()
            heavy = session.execute("import numpy, pandas, matplotlib.pyplot", stop)
            assert not heavy.failed, heavy.logs
            imports.append(time.perf_counter() - began)
        figures: dict[str, Any] = {
            "session_start": _summary(starts),
            "first_import_numpy_pandas_matplotlib": _summary(imports),
        }
        for count in FILES:
            session = sandbox.session(f"bench/files-{count}")
            session.put_files({f"file-{n}": (f"f{n}.txt", b"x") for n in range(count)})
            session.execute("pass", stop)
            samples = []
            for _ in range(EXECUTIONS):
                began = time.perf_counter()
                session.execute("pass", stop)
                samples.append(time.perf_counter() - began)
            figures[f"execution_pass_{count}_files"] = _summary(samples)
        session = sandbox.session("bench/work")
        work = "total = sum(i * i for i in range(200_000))"
        session.execute(work, stop)
        remote = []
        for _ in range(EXECUTIONS // 4):
            began = time.perf_counter()
            session.execute(work, stop)
            remote.append(time.perf_counter() - began)
        local = []
        for _ in range(EXECUTIONS // 4):
            began = time.perf_counter()
            exec(work, {})  # the same work in this process: the floor
            local.append(time.perf_counter() - began)
        figures["sum_of_squares_200k"] = {
            "sandbox": _summary(remote),
            "in_process": _summary(local),
            "overhead_ms": round((statistics.median(remote) - statistics.median(local)) * 1000, 3),
        }
        many = figures[f"execution_pass_{FILES[-1]}_files"]["median"]
        few = figures[f"execution_pass_{FILES[0]}_files"]["median"]
        figures["scan_ratio_1000_vs_10_files"] = round(many / few, 2)
        return figures
    finally:
        sandbox.close()


def section_code_interpreter() -> dict[str, Any]:
    """code_interpreter's local sandbox (bench/code_interpreter.py), on each tier this machine has:
    `bwrap` (bubblewrap namespaces) and `process` (the fallback), milliseconds, median / p99.

    - `session_start`: a new session (its directory, the kernel process, inside bubblewrap for
      `bwrap`) until its first execution (`pass`) has answered; 10 sessions.
    - `first_import_numpy_pandas_matplotlib`: then, the first import of the data libraries in it (what
      the first data-analysis execution of a session pays once).
    - `execution_pass_N_files`: one execution of `pass` in a warm session whose working directory
      holds N files: the round trip to the kernel, the output file read back, and the scan for files
      the code wrote (200 executions); `scan_ratio_1000_vs_10_files` compares the two.
    - `sum_of_squares_200k`: a small computation in the sandbox and, the floor, in this process: the
      difference is the per-execution overhead (50 each)."""
    from chalicelib.sandbox.local import _bwrap_works

    root = Path(tempfile.mkdtemp(prefix="spindle-bench-sandbox-"))
    results: dict[str, Any] = {"cores": os.cpu_count()}
    try:
        tiers = (["bwrap"] if _bwrap_works(os.getuid() == 0) else []) + ["process"]
        for isolation in tiers:
            results[isolation] = _tier(isolation, root / isolation)
        if "bwrap" in results:
            results["start_ratio_bwrap_vs_process"] = round(
                results["bwrap"]["session_start"]["median"] / results["process"]["session_start"]["median"], 2
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return results
