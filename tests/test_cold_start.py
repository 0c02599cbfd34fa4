"""The CRUD path stays lean: importing the Lambda app never imports the `openai` SDK (only runs do)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_importing_the_app_does_not_import_openai_or_jsonschema():
    probe = "import sys, app; print(sorted(m for m in ('openai', 'jsonschema', 'yaml') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
