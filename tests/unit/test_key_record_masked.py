"""KeyRecord.masked: built once, rebuilt when prefix or last4 is set anew, invisible as a field."""

from __future__ import annotations

import copy
import dataclasses

from paygate.core.records import KeyRecord


def record() -> KeyRecord:
    return KeyRecord("h" * 64, "pg_abcd", "wxyz", "name", 10, 0.0)


def test_masked_is_prefix_ellipsis_last4_and_built_once() -> None:
    key = record()
    first = key.masked
    assert first == "pg_abcd…wxyz"
    assert key.masked is first


def test_a_copy_given_a_new_prefix_and_last4_masks_as_the_new_key() -> None:
    """What rotation does (keys/lifecycle.rotate): a deep copy of a record whose masked was read, then
    a new prefix and last4 on the copy."""
    old = record()
    assert old.masked == "pg_abcd…wxyz"
    new = copy.deepcopy(old)
    new.prefix, new.last4 = "pg_efgh", "0123"
    assert new.masked == "pg_efgh…0123" and old.masked == "pg_abcd…wxyz"
    new.last4 = "4567"  # one part alone
    assert new.masked == "pg_efgh…4567"
    new.prefix = "".join(["pg_", "efgh"])  # an equal string, another object
    assert new.masked == "pg_efgh…4567"


def test_the_cache_is_no_field() -> None:
    key = record()
    plain = record()
    _ = key.masked
    assert "_masked" not in {f.name for f in dataclasses.fields(KeyRecord)}
    assert dataclasses.asdict(key) == dataclasses.asdict(plain) and key == plain and repr(key) == repr(plain)
    assert dataclasses.replace(key, last4="9999").masked == "pg_abcd…9999"
