"""The OAuth server's state as store documents (the `Documents` role: mirrored in memory, durable, shared
by a Redis fleet): clients, authorization codes and tokens, each token and secret stored as its digest.

`oauth_token` documents (access and refresh alike) are keyed by the token's digest, so resolving a bearer
token on /mcp is one dict lookup in the store's mirror (`doc_peek`), kept true by the store itself
(another instance's writes arrive through the Redis listener). Single use (codes, rotated refresh tokens)
is a claim (`doc_put_if` on `status`): of two instances racing, exactly one wins.
"""

from __future__ import annotations

from typing import Any

from paygate.store.roles import Documents

CLIENTS = "oauth_client"
CODES = "oauth_code"
TOKENS = "oauth_token"
KINDS = (CLIENTS, CODES, TOKENS)
# Expired tokens and codes are kept this long before they are swept: a late caller is told "expired"
# rather than "unknown", and a used code or rotated refresh token replayed late still revokes its family.
KEEP_AFTER_EXPIRY = 86_400.0

Doc = dict[str, Any]  # every document carries its own id as "id" (scans need no copies)


class OAuthRecords:
    def __init__(self, docs: Documents) -> None:
        self.docs = docs

    # clients -----------------------------------------------------------------
    def client(self, client_id: str) -> Doc | None:
        return self.docs.doc_peek(CLIENTS, client_id)

    def clients(self) -> list[Doc]:
        return self.docs.doc_list(CLIENTS)

    def client_count(self) -> int:
        return len(self.docs.doc_scan(CLIENTS))

    def put_client(self, client_id: str, doc: Doc) -> None:
        self.docs.doc_put(CLIENTS, client_id, doc)

    # codes -------------------------------------------------------------------
    def code(self, code_hash: str) -> Doc | None:
        return self.docs.doc_peek(CODES, code_hash)

    def put_code(self, code_hash: str, doc: Doc) -> None:
        self.docs.doc_put(CODES, code_hash, doc)

    def claim(self, kind: str, doc_id: str, doc: Doc, status: str) -> bool:
        """Move a fresh code (or active refresh token) to `status`; False if someone else already did."""
        current = self.docs.doc_peek(kind, doc_id)
        if current is None:
            return False
        expected = current.get("status", "")
        if expected not in ("fresh", "active"):
            return False
        return self.docs.doc_put_if(kind, doc_id, {**doc, "status": status}, "status", expected)

    # tokens ------------------------------------------------------------------
    def token(self, token_hash: str) -> Doc | None:
        return self.docs.doc_peek(TOKENS, token_hash)

    def put_token(self, token_hash: str, doc: Doc) -> None:
        self.docs.doc_put(TOKENS, token_hash, doc)

    def revoke_token(self, token_hash: str) -> bool:
        doc = self.docs.doc_get(TOKENS, token_hash)
        if doc is None or doc.get("revoked"):
            return False
        doc["revoked"] = True
        self.docs.doc_put(TOKENS, token_hash, doc)
        return True

    def revoke_family(self, family: str) -> int:
        """Revoke every token of one grant (a code's tokens and all their refreshes); how many were live."""
        live = [d["id"] for d in self.docs.doc_scan(TOKENS) if d.get("family") == family and not d.get("revoked")]
        return sum(self.revoke_token(token_hash) for token_hash in live)

    def sweep(self, now: float) -> int:
        """Delete codes and tokens expired more than KEEP_AFTER_EXPIRY ago; how many."""
        gone = 0
        for kind in (CODES, TOKENS):
            old = [d["id"] for d in self.docs.doc_scan(kind) if float(d.get("expiresAt", 0)) + KEEP_AFTER_EXPIRY < now]
            gone += sum(self.docs.doc_delete(kind, doc_id) for doc_id in old)
        return gone
