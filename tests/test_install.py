"""A non-editable install ships the whole of chalicelib: every module and data file, and the run engine
imports from the installed copy alone.

The venv holds an editable install of this checkout, whose import hook would quietly fill in any
subpackage the installed copy lacks. So the copy is imported in a child interpreter started with
`-I -S` (no site processing, so no editable hook; no PYTHONPATH; not the checkout as cwd), given only
the install directory and the venv's site-packages (for chalice, pynamodb, boto3...), and every
chalicelib module it imported must come from the install directory.
"""

from __future__ import annotations

import json
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Generous for a busy 2-core machine; the whole file takes a few seconds.
SUBPROCESS_TIMEOUT_SECONDS = 240
pytestmark = pytest.mark.timeout(600)

CHILD = r"""
import importlib, json, pkgutil, sys

install_dir, *dependency_dirs = sys.argv[1:]
sys.path.insert(0, install_dir)
sys.path.extend(dependency_dirs)


def fail(name):
    raise ImportError(f"cannot import {name}")


import chalicelib
import chalicelib.runs.engine

for info in pkgutil.walk_packages(chalicelib.__path__, "chalicelib.", onerror=fail):
    importlib.import_module(info.name)

# request_schemas.json is package data, read from beside validation.py at the first request.
from chalicelib.domain.validation import request_schema

request_schema("CreateThreadRequest")
print(json.dumps({
    name: getattr(module, "__file__", None)
    for name, module in sys.modules.items()
    if name == "chalicelib" or name.startswith("chalicelib.")
}))
"""


def _package_files(package: Path) -> set[str]:
    return {
        path.relative_to(package).as_posix()
        for path in package.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def _module_name(relative: str) -> str:
    parts = ["chalicelib", *relative.removesuffix(".py").split("/")]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path]:
    """(the source snapshot that was built, the directory it was installed into).

    The build runs on a copy of the checkout's top-level files and chalicelib/, so that setuptools'
    build/ and *.egg-info are not written into (or stale ones read from) the checkout."""
    tmp = tmp_path_factory.mktemp("install")
    source = tmp / "source"
    source.mkdir()
    for path in ROOT.iterdir():
        if path.is_file():
            shutil.copy2(path, source / path.name)
    shutil.copytree(ROOT / "chalicelib", source / "chalicelib", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    target = tmp / "site"
    # --no-build-isolation: the build uses the venv's setuptools (offline); --isolated: no pip config.
    command = [sys.executable, "-m", "pip", "--isolated", "install", "--no-deps", "--no-build-isolation"]
    command += ["--no-index", "--no-cache-dir", "--disable-pip-version-check", "--target", str(target), str(source)]
    result = subprocess.run(command, cwd=tmp, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT_SECONDS)
    assert result.returncode == 0, result.stdout + result.stderr
    return source, target


def test_the_installed_copy_has_every_module_and_data_file(installed):
    source, target = installed
    shipped = _package_files(target / "chalicelib")
    missing = sorted(_package_files(source / "chalicelib") - shipped)
    assert not missing, f"a non-editable install leaves out {missing}: see pyproject.toml's [tool.setuptools]"
    assert "runs/engine.py" in shipped and "domain/request_schemas.json" in shipped


def test_the_engine_and_every_module_import_from_the_installed_copy(installed):
    source, target = installed
    dependency_dirs = list(site.getsitepackages())
    if site.ENABLE_USER_SITE:
        dependency_dirs.append(site.getusersitepackages())
    cwd = target.parent / "elsewhere"
    cwd.mkdir(exist_ok=True)
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", CHILD, str(target), *dependency_dirs],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT_SECONDS,
    )
    assert result.returncode == 0, result.stderr
    imported = json.loads(result.stdout.splitlines()[-1])
    assert "chalicelib.runs.engine" in imported
    expected = {
        _module_name(relative) for relative in _package_files(source / "chalicelib") if relative.endswith(".py")
    }
    assert expected <= set(imported), sorted(expected - set(imported))
    outside = {name: file for name, file in imported.items() if not (file and Path(file).is_relative_to(target))}
    assert not outside, f"imported from outside the installed copy {target}: {outside}"
