"""What went wrong, in the domain's words. Services raise these; the HTTP layer maps each kind to a
status and the `{"error": …, "requestId": …}` body in exactly one place (`api/common.py`).

    DomainError              message, plus any extra fields the answer carries
     ├── Invalid             the request is well-formed but not acceptable        (400)
     ├── Unauthenticated     no credential, or a wrong one                        (401)
     ├── PaymentRequired     not enough credits for this                          (402)
     ├── Forbidden           the caller may not do this                           (403)
     ├── NotFound            what the request names does not exist                (404)
     ├── Conflict            it clashes with the current state                    (409)
     ├── TooLarge            over a size or count limit                           (413)
     ├── TooMany             too many at once (streams, requests)                 (429)
     └── Unavailable         cannot be done now; nothing changed                  (503)

A service's own errors subclass one of these (`KeyNotFound(NotFound)`), so callers may catch at
whatever depth they need. Raising one means nothing was changed.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra


class Invalid(DomainError):
    pass


class Unauthenticated(DomainError):
    pass


class PaymentRequired(DomainError):
    pass


class Forbidden(DomainError):
    pass


class NotFound(DomainError):
    pass


class Conflict(DomainError):
    pass


class TooLarge(DomainError):
    pass


class TooMany(DomainError):
    pass


class Unavailable(DomainError):
    pass
