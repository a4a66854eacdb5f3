"""Checking a stored document (e.g. one a backup brings) against the request model of the route that
writes it; used by the composition root's restore checks (compose/doc_checks.py)."""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ValidationError


def error_text(exc: ValidationError, prefix: str = "") -> str:
    """`field.path: message` of the first error (the field named as the stored document names it)."""
    err = exc.errors()[0]
    where = ".".join(str(p) for p in (prefix, *err["loc"]) if p != "")
    return f"{where}: {err['msg']}" if where else str(err["msg"])


def model_problem(model: type[BaseModel], values: dict[str, Any], prefix: str = "") -> str | None:
    """Why `values` would not pass `model` (a route's request body), or None."""
    try:
        model.model_validate(values)
    except ValidationError as exc:
        return error_text(exc, prefix)
    return None


def times_problem(doc: dict[str, Any], *names: str, optional: tuple[str, ...] = ()) -> str | None:
    """Why one of the document's timestamps (epoch seconds) is missing or not a finite number, or None."""
    for name in (*names, *(n for n in optional if doc.get(n) is not None)):
        value = doc.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            return f"{name}: must be a time in epoch seconds"
    return None
