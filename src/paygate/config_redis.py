"""The Redis store's settings (store/redis_backend/, docs/redis.md): `Settings` inherits these fields."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel


class RedisSettings(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    # the shared store of a fleet; None: the embedded SQLite store
    redis_url: str | None = None
    redis_prefix: str = Field(default="paygate", pattern=r"^[A-Za-z0-9_.-]{1,64}$")  # one Redis, several fleets
    redis_usage_max_events: int = Field(default=1_000_000, ge=10_000, le=100_000_000)  # the shared usage stream

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value or None
