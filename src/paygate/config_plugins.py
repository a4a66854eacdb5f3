"""The `plugins` setting (paygate/plugins, docs/plugins.md): which plugins load, with what options.

Each entry is a string or an object:

    "my_pkg.plugins:Surcharge"            # module:attribute
    "surcharge"                           # a name in the `paygate_mcp.plugins` entry-point group
    {"module": "surcharge", "options": {"tool": "search", "credits": 2}, "timeoutMs": 500}

Only plugins named here (or with `--plugin`) load: an installed package's entry point makes its
name resolvable, it never loads a plugin by itself."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

# "pkg.mod:attr.sub" or an entry-point name (letters, digits, . _ -)
_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$|^[A-Za-z0-9][\w.-]*$")
DEFAULT_TIMEOUT_MS = 1000


class PluginSpec(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    module: str = Field(max_length=300, description='"module:attribute", or an entry-point name')
    options: dict[str, Any] = Field(default_factory=dict, description="keyword arguments for the plugin's factory")
    timeout_ms: int | None = Field(default=None, ge=1, le=600_000, description="per hook call (default 1000)")

    @field_validator("module")
    @classmethod
    def _spec(cls, value: str) -> str:
        if not _SPEC.match(value):
            raise ValueError(f"plugins: {value!r} is neither module:attribute nor an entry-point name")
        return value


class PluginSettings(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    plugins: list[PluginSpec] = Field(default_factory=list, max_length=100)

    @field_validator("plugins", mode="before")
    @classmethod
    def _strings(cls, value: Any) -> Any:
        """A bare string is `{"module": string}`; a comma list (PAYGATE_PLUGINS) is several."""
        if value is None:
            return []
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list):
            return [{"module": item} if isinstance(item, str) else item for item in value]
        return value
