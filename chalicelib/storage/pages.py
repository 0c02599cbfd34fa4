"""One Query per page: cursors become key conditions on time-sortable ids."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pynamodb.attributes import UnicodeAttribute
from pynamodb.expressions.condition import Condition

from chalicelib.domain.pagination import ListQuery, Page


def read_page(
    run_query: Callable[..., Any],
    sort_key: UnicodeAttribute,
    query: ListQuery,
    **query_options: Any,
) -> Page:
    """Read `query.limit` items (and one more to learn `has_more`) in a single DynamoDB Query.

    `after` continues past a cursor in the list's order. `before` alone reads backwards from the
    cursor, so the page is the `limit` items just ahead of it, then flips them into the list's order.
    With both, the range between them is read forwards; BETWEEN is inclusive, so the two bounds are
    fetched too and dropped.
    """
    ascending = not query.newest_first
    condition: Condition | None = None
    extra = 1
    backwards = query.before is not None and query.after is None
    if query.after is not None and query.before is not None:
        low, high = (query.after, query.before) if ascending else (query.before, query.after)
        condition = sort_key.between(low, high)
        extra += 2
    elif query.after is not None:
        condition = sort_key > query.after if ascending else sort_key < query.after
    elif query.before is not None:
        condition = sort_key < query.before if ascending else sort_key > query.before

    fetch = query.limit + extra
    items = list(
        run_query(
            range_key_condition=condition,
            scan_index_forward=ascending != backwards,
            limit=fetch,
            page_size=fetch,
            **query_options,
        )
    )
    sort_attribute = sort_key.attr_name
    if extra > 1:
        bounds = {query.after, query.before}
        items = [item for item in items if getattr(item, sort_attribute) not in bounds]
    has_more = len(items) > query.limit
    items = items[: query.limit]
    if backwards:
        items.reverse()
    return Page(items=items, has_more=has_more)
