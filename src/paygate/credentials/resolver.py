"""What a caller's credential stands for: the key that pays, and how far the credential narrows it.

A plain API key stands for itself. A token kind (scoped tokens, OAuth access tokens) claims the raw
credentials that start with its prefix and turns each into a `Credential` (the key billed, the tools it
may call) or a `Rejected` (expired, revoked, forged …). The hot path asks `kind_of(raw)` first: for a plain
key that is a few `startswith` calls and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Credential:
    key_hash: str  # the key billed (whose ACL, limits and balance apply)
    tools: frozenset[str] | None = None  # only these tools, within the key's own ACL (None: no narrowing)
    kind: str = "api_key"  # "api_key", "scoped_token" or "oauth"
    owner: str = ""  # what a session opened with it is bound to ("": the credential's own hash)

    @property
    def scope_reason(self) -> str:
        """The deny reason for a tool outside `tools`: OAuth's own word for it, else the ACL's."""
        return "insufficient_scope" if self.kind == "oauth" else "tool_not_allowed"


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: str  # a deny reason of core/errors.py: "invalid_token", "token_expired", "token_revoked"
    detail: str = ""
    bearer: bool = False  # an OAuth bearer token: /mcp answers 401 with a WWW-Authenticate challenge


class TokenKind(Protocol):
    """One kind of token: the raw credentials starting with `prefix` are its to judge."""

    prefix: str

    def resolve(self, raw: str, now: float) -> Credential | Rejected: ...


class Credentials:
    """The token kinds this gateway accepts besides plain keys (registered by the composition root)."""

    def __init__(self) -> None:
        self.kinds: list[TokenKind] = []

    def add(self, kind: TokenKind) -> None:
        self.kinds.append(kind)

    def kind_of(self, raw: str) -> TokenKind | None:
        for kind in self.kinds:
            if raw.startswith(kind.prefix):
                return kind
        return None

    def resolve(self, raw: str, now: float) -> Credential | Rejected | None:
        """A token's `Credential` or `Rejected`; None for a plain key (the caller hashes and looks it up)."""
        kind = self.kind_of(raw)
        return None if kind is None else kind.resolve(raw, now)
