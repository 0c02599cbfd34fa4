"""List queries: `limit`, `order`, `after`, `before`, and the list object the official API returns.

Ids sort by creation time, so a page is a key range read in one direction: `after` continues the list
past a cursor, `before` returns the items just ahead of a cursor (still in the requested order).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.domain.errors import InvalidRequest
from chalicelib.domain.ids import is_valid_id

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


@dataclass(frozen=True)
class ListQuery:
    limit: int = DEFAULT_LIMIT
    order: str = "desc"
    after: str | None = None
    before: str | None = None

    @property
    def newest_first(self) -> bool:
        return self.order == "desc"


@dataclass(frozen=True)
class Page:
    items: list[Any]
    has_more: bool


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
    try:
        limit = int(raw)
    except ValueError:
        raise InvalidRequest(
            f"Invalid 'limit': expected an integer, but got '{raw}' instead.", param="limit", code="invalid_type"
        ) from None
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
