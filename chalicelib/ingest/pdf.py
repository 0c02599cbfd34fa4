"""A PDF's text, read in a child process (ingest/pdf_child.py) under the limits one file may take:
`SPINDLE_INGEST_FILE_SECONDS` (the child is killed when it is up) and `SPINDLE_INGEST_MAX_PAGES`.
Either ends the file `failed` (`invalid_file`) with a `last_error` that names the limit, and the worker
goes on to the next file at once: a small hostile PDF (pages that draw a form thousands of times) no
longer holds a worker for minutes, and its work can be stopped, which a deadline checked between pages
could not do to a page that takes longer than the limit on its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from chalicelib.config import settings
from chalicelib.ingest.unreadable import InvalidFile

# The most text one PDF yields (2M tokens or so), so that chunking and indexing it stay short too.
MAX_TEXT_CHARS = 8_000_000


def pdf_text(data: bytes) -> str:
    limits = settings.ingest_limits
    # The child finds chalicelib and pypdf where this process does (the Lambda package, the venv).
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path for path in sys.path if path)}
    command = [sys.executable, "-m", "chalicelib.ingest.pdf_child", str(limits.max_pages), str(MAX_TEXT_CHARS)]
    try:
        done = subprocess.run(command, input=data, capture_output=True, timeout=limits.file_seconds, env=env)
    except subprocess.TimeoutExpired:  # run() has killed the child
        raise InvalidFile(
            f"The PDF took longer than {limits.file_seconds:g} s to read, the most Spindle gives one file "
            "(SPINDLE_INGEST_FILE_SECONDS)."
        ) from None
    try:
        answer = json.loads(done.stdout)
    except ValueError:  # the child died (out of memory, a crash of the parser)
        raise InvalidFile(f"The PDF could not be read (the reader ended with status {done.returncode}).") from None
    if "invalid" in answer:
        raise InvalidFile(answer["invalid"])
    text: str = answer["text"]
    return text
