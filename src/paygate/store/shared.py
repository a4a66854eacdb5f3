"""Whether a store is the Redis store a fleet shares, without importing Redis: a gateway on its embedded SQLite
store never loads the Redis client (~0.2 s of every start on a small machine)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, cast

from paygate.store.base import Store

if TYPE_CHECKING:
    from paygate.store.redis_backend.store import RedisStore

REDIS_MODULE = "paygate.store.redis_backend.store"


def redis_store(store: Store) -> RedisStore | None:
    """`store` when it is the Redis store, else None (if its module was never imported, it cannot be)."""
    module = sys.modules.get(REDIS_MODULE)
    if module is None or not isinstance(store, module.RedisStore):
        return None
    return cast("RedisStore", store)
