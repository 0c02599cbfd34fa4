"""One Query per page: cursors become key conditions on time-sortable ids."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pynamodb.attributes import UnicodeAttribute
from pynamodb.expressions.condition import Condition

from chalicelib.storage.records import ListQuery, Page


def read_page(run_query: Callable[..., Any], sort_key: UnicodeAttribute, query: ListQuery, **options: Any) -> Page:
    """Read `query.limit` items, and one more to learn `has_more`, in a single DynamoDB Query.

    `after` and `before` are filters on the list's order: the page holds the first `limit` items that
    come after `after` and before `before`. BETWEEN is inclusive, so with both cursors the two bounds
    are fetched too and dropped; crossed cursors name an empty range and cost no read at all.
    """
    ascending = not query.newest_first
    condition: Condition | None = None
    extra = 1
    if query.after is not None and query.before is not None:
        low, high = (query.after, query.before) if ascending else (query.before, query.after)
        if low >= high:
            return Page(items=[], has_more=False)
        condition = sort_key.between(low, high)
        extra += 2
    elif query.after is not None:
        condition = sort_key > query.after if ascending else sort_key < query.after
    elif query.before is not None:
        condition = sort_key < query.before if ascending else sort_key > query.before

    fetch = query.limit + extra
    items = list(
        run_query(range_key_condition=condition, scan_index_forward=ascending, limit=fetch, page_size=fetch, **options)
    )
    if extra > 1:
        bounds = {query.after, query.before}
        items = [item for item in items if getattr(item, sort_key.attr_name) not in bounds]
    return Page(items=items[: query.limit], has_more=len(items) > query.limit)
