"""OAuth's own errors: an RFC 6749 `error` code and a description, raised before anything changed."""

from __future__ import annotations


class OAuthError(Exception):
    """`code` is RFC 6749's (§4.1.2.1, §5.2) or RFC 7591's (`invalid_redirect_uri`, …)."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description

    def body(self) -> dict[str, str]:
        return {"error": self.code, "error_description": self.description}


class ConsentRefused(Exception):
    """The consent form cannot go on (bad CSRF token, wrong API key): shown on the page, nothing issued."""
