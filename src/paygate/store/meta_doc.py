"""One JSON document kept whole in the store's meta: an admin-set table of rules or settings (tool aliases,
dependencies, approvals, IP rules, signing secrets, schemas, transforms …) that a restart keeps and a
Redis fleet's peers re-read on a ticker. Re-reading is cheap: the document is parsed again only when its
text changed since this instance last read or wrote it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import orjson

from paygate.store.roles import Meta

log = logging.getLogger("paygate.store")
T = TypeVar("T")
# what parsing a hand-edited document may raise
MALFORMED: tuple[type[Exception], ...] = (KeyError, TypeError, ValueError, AttributeError)


class MetaDoc:
    def __init__(self, meta: Meta, name: str, max_bytes: int | None = None) -> None:
        self.meta = meta
        self.name = name
        self.max_bytes = max_bytes
        self._raw: str | None = None

    def encode(self, doc: Any) -> str:
        """The stored text of `doc` (keys sorted, so an unchanged document is an unchanged text)."""
        return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS).decode()

    def write(self, doc: Any) -> None:
        """Store `doc`; the caller installs it only after this returns (a failed write changes nothing)."""
        raw = self.encode(doc)
        self.meta.set_meta(self.name, raw)
        self._raw = raw

    def changed(self) -> Any | None:
        """The stored document if its text changed since the last read or write ({} when there is none),
        else None. Raises ValueError (orjson.JSONDecodeError) when the text is not JSON."""
        raw = self.meta.get_meta(self.name)
        if raw == self._raw:
            return None
        self._raw = raw
        return orjson.loads(raw) if raw else {}

    def read(self, parse: Callable[[Any], T], what: str, also: tuple[type[Exception], ...] = ()) -> T | None:
        """`parse` of the stored document if it changed since the last read or write, else None. A
        malformed document is logged and ignored (None): the rules in force stay as they are."""
        try:
            doc = self.changed()
            return None if doc is None else parse(doc)
        except MALFORMED + also:
            log.error("the stored %s (%s) are malformed: ignored", what, self.name)
            return None
