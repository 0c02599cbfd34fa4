"""The CRUD path stays lean: importing the Lambda app never imports the `openai` SDK (only runs do), nor
the ingestion of vector store files and its PDF reader (only the ingestion worker does), nor search
and its numpy (only searches do)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_importing_the_app_does_not_import_openai_or_jsonschema():
    heavy = ("openai", "jsonschema", "yaml", "pypdf", "numpy", "chalicelib.ingest", "chalicelib.search.retrieval")
    probe = f"import sys, app; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
