"""List queries: `limit`, `order`, `after`, `before`, and the list object the official API returns.

Ids sort by creation time, so a page is a key range read in one direction: `after` and `before` keep
the items that come after / before a cursor in the requested order, and the page is the first `limit`
of them. (So the SDK's auto-pagination, which adds `after` and keeps `before`, walks the whole range.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from chalicelib.domain.errors import InvalidRequest
from chalicelib.domain.ids import is_valid_id
from chalicelib.storage.records import ListQuery, Page

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


def parse_list_query(params: Mapping[str, str] | None, id_kind: str) -> ListQuery:
    params = params or {}
    limit = _parse_limit(params.get("limit"))
    order = params.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidRequest(
            f"Invalid value: '{order}'. Supported values are: 'asc' and 'desc'.", param="order", code="invalid_value"
        )
    after = _parse_cursor(params, "after", id_kind)
    before = _parse_cursor(params, "before", id_kind)
    return ListQuery(limit=limit, order=order, after=after, before=before)


def _parse_limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not (raw.isascii() and raw.lstrip("-").isdigit()):
        raise InvalidRequest(
            f"Invalid 'limit': expected an integer, but got '{raw}' instead.", param="limit", code="invalid_type"
        )
    limit = int(raw)
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(
            f"Invalid 'limit': integer out of range. Expected a value between 1 and {MAX_LIMIT}, but got {limit}.",
            param="limit",
            code="invalid_value",
        )
    return limit


def _parse_cursor(params: Mapping[str, str], name: str, id_kind: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    if not is_valid_id(id_kind, value):
        raise InvalidRequest(
            f"Invalid '{name}': '{value}' is not a valid {id_kind} id.", param=name, code="invalid_cursor"
        )
    return value


def render_list(page: Page, render: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    data = [render(item) for item in page.items]
    return {
        "object": "list",
        "data": data,
        # The spec makes these non-null strings; an empty page has no ids to name.
        "first_id": data[0]["id"] if data else "",
        "last_id": data[-1]["id"] if data else "",
        "has_more": page.has_more,
    }
