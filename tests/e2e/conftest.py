"""The end-to-end tests' browser: one headless Chromium for the Console's tests (tests/console_page.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.console_page import chromium


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    yield from chromium()
