"""Every Spindle setting, read once from the environment. README's configuration table mirrors this."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    auth_mode: str
    table_prefix: str
    region: str
    dynamodb_endpoint: str | None
    max_body_bytes: int
    key_cache_seconds: float


def _read() -> Settings:
    auth_mode = os.environ.get("SPINDLE_AUTH", "keys")
    if auth_mode not in ("keys", "open"):
        raise RuntimeError(f"SPINDLE_AUTH must be 'keys' or 'open', not {auth_mode!r}")
    return Settings(
        auth_mode=auth_mode,
        table_prefix=os.environ.get("SPINDLE_TABLE_PREFIX", "spindle-"),
        region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        dynamodb_endpoint=os.environ.get("SPINDLE_DYNAMODB_ENDPOINT") or None,
        max_body_bytes=int(os.environ.get("SPINDLE_MAX_BODY_BYTES", str(3 * 1024 * 1024))),
        key_cache_seconds=float(os.environ.get("SPINDLE_KEY_CACHE_SECONDS", "30")),
    )


settings = _read()
