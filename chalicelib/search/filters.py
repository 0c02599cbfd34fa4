"""Attribute filters, the official ComparisonFilter and CompoundFilter, applied to a file's attributes.

A comparison of a key the file does not have is false, except `ne` and `nin`, which hold (the file's
value, having none, is not the one named). Order comparisons (gt, gte, lt, lte) hold between two
numbers or two strings only; a boolean is compared as itself, never as 0 or 1.

The official schema lets any operator take one value or an array, and so does Spindle: `in` and `nin`
with one value mean a list of that value, and `eq` with an array holds for no file (an attribute is
never an array), `ne` with one for every file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _same_kind(left: Any, right: Any) -> bool:
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool)
    numbers = (int, float)
    return (isinstance(left, numbers) and isinstance(right, numbers)) or (
        isinstance(left, str) and isinstance(right, str)
    )


def _equal(left: Any, right: Any) -> bool:
    return _same_kind(left, right) and left == right


def matches(filter_: Mapping[str, Any] | None, attributes: Mapping[str, Any] | None) -> bool:
    if filter_ is None:
        return True
    kind = filter_["type"]
    if kind == "and":
        return all(matches(inner, attributes) for inner in filter_["filters"])
    if kind == "or":
        return any(matches(inner, attributes) for inner in filter_["filters"])
    key, value = filter_["key"], filter_["value"]
    if attributes is None or key not in attributes:
        return kind in ("ne", "nin")
    actual = attributes[key]
    if kind == "eq":
        return _equal(actual, value)
    if kind == "ne":
        return not _equal(actual, value)
    if kind in ("in", "nin"):
        found = any(_equal(actual, item) for item in (value if isinstance(value, list) else [value]))
        return found if kind == "in" else not found
    if not _same_kind(actual, value) or isinstance(actual, bool):
        return False
    if kind == "gt":
        return bool(actual > value)
    if kind == "gte":
        return bool(actual >= value)
    if kind == "lt":
        return bool(actual < value)
    return bool(actual <= value)  # lte
