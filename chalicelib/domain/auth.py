"""Who is calling: a Bearer API key names a project, and every object belongs to one project."""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time

from chalicelib.config import settings
from chalicelib.domain.errors import Unauthorized
from chalicelib.storage import keys as key_store

KEY_PREFIX = "sk-spindle-"
# Project ids are parts of DynamoDB keys joined with '#': they must never contain one.
PROJECT_ID = re.compile(r"^proj_[0-9A-Za-z]{1,64}$")

_cache: dict[str, tuple[str, float]] = {}
_cache_lock = threading.Lock()


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode("utf-8", "surrogatepass")).hexdigest()


def _bearer_token(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized(
            "You didn't provide an API key. You need to provide your API key in an Authorization header using "
            "Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        )
    return token


def _masked(token: str) -> str:
    return f"{token[:8]}{'*' * 10}{token[-4:]}" if len(token) > 12 else "*" * len(token)


def project_for(authorization: str | None) -> str:
    """The caller's project. In `open` mode every distinct token is a project of its own."""
    token = _bearer_token(authorization)
    digest = hash_key(token)
    if settings.auth_mode == "open":
        return "proj_" + digest[:32]
    now = time.monotonic()
    with _cache_lock:
        cached = _cache.get(digest)
    if cached is not None and cached[1] > now:
        return cached[0]
    project_id = key_store.project_for_key_hash(digest)
    if project_id is None:
        raise Unauthorized(f"Incorrect API key provided: {_masked(token)}.", code="invalid_api_key")
    with _cache_lock:
        _cache[digest] = (project_id, now + settings.key_cache_seconds)
    return project_id


def create_key(project_id: str | None = None, name: str | None = None) -> tuple[str, str]:
    """Mint a key (shown once, stored hashed). Returns (api_key, project_id)."""
    api_key = KEY_PREFIX + secrets.token_urlsafe(32)
    project_id = project_id or "proj_" + secrets.token_hex(12)
    if not PROJECT_ID.match(project_id):
        raise ValueError(f"a project id is 'proj_' and 1-64 letters or digits, not {project_id!r}")
    key_store.save_key(hash_key(api_key), project_id, name, int(time.time()))
    return api_key, project_id


def revoke_key(api_key: str) -> bool:
    return key_store.delete_key(hash_key(api_key))
