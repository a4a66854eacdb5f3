"""Reading stored documents for a listing without letting one malformed document (an edited state
file, a document an older restore let through) turn the whole answer into a 500."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

log = logging.getLogger("paygate.documents")

R = TypeVar("R")
# What reading a malformed document raises: a missing field, a wrong type, a bad value.
MALFORMED = (KeyError, TypeError, ValueError, AttributeError, ArithmeticError)


def readable(kind: str, docs: Iterable[dict[str, Any]], view: Callable[[dict[str, Any]], R]) -> list[R]:
    """`view` of every document; a document `view` cannot read is left out and logged (kind and id)."""
    out: list[R] = []
    for doc in docs:
        try:
            out.append(view(doc))
        except MALFORMED as exc:
            log.error("a malformed %s document (id %r) is left out of a listing: %r", kind, doc.get("id"), exc)
    return out


def sort_number(value: Any) -> float:
    """A stored number as a sort key; anything else sorts last (a malformed document never breaks a sort)."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else float("inf")
