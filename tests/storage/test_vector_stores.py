"""Vector stores in-process: expiry as the official API reckons it."""

from __future__ import annotations

from chalicelib.domain import vector_stores
from chalicelib.storage import vector_stores as store

PROJECT = "proj_vector_stores"
DAY = 86400


def test_a_store_expires_days_after_it_was_last_active(aws):
    created = vector_stores.create_vector_store(PROJECT, {"expires_after": {"anchor": "last_active_at", "days": 3}})
    stored = store.get(PROJECT, created["id"])
    assert stored is not None
    ends = stored.last_active_at + 3 * DAY
    assert vector_stores.render(stored, now=ends - 1)["status"] == "completed"
    assert vector_stores.render(stored, now=ends)["status"] == "expired"
    assert vector_stores.render(stored, now=ends)["expires_at"] == ends


def test_activity_moves_the_expiry_and_removing_the_policy_ends_it(aws):
    created = vector_stores.create_vector_store(PROJECT, {"expires_after": {"anchor": "last_active_at", "days": 1}})
    later = created["last_active_at"] + 5 * DAY
    touched = store.modify(PROJECT, created["id"], {"last_active_at": later})
    assert touched is not None and vector_stores.render(touched, now=later + DAY - 1)["status"] == "completed"
    assert vector_stores.render(touched, now=later + DAY)["status"] == "expired"
    kept = vector_stores.modify_vector_store(PROJECT, created["id"], {"expires_after": None})
    assert (kept["expires_at"], kept["status"]) == (None, "completed")
    assert "expires_after" not in kept
