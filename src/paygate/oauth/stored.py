"""What a backup restore checks of the OAuth documents before writing them (compose/doc_checks.py):
the fields the services write, of the types they write, so a backup brings only documents this server
could have written. A restored token keeps its revocation and expiry as they were."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from paygate.oauth.clients import redirect_uri_problem
from paygate.oauth.records import CLIENTS, CODES, TOKENS

Doc = dict[str, Any]
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_NUMBER = (int, float)


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def client_doc_problem(doc_id: str, doc: Doc) -> str | None:
    if doc.get("id") != doc_id or not doc_id.startswith("pgc_"):
        return "id: must equal the document id (pgc_…)"
    uris = doc.get("redirectUris")
    if not _strings(uris) or not uris:
        return "redirectUris: a list of URIs"
    for uri in uris:
        if problem := redirect_uri_problem(uri):
            return f"redirectUris: {problem}"
    for name in ("secretHash", "keyHash"):
        if doc.get(name) is not None and not (isinstance(doc[name], str) and _DIGEST.match(doc[name])):
            return f"{name}: a SHA-256 digest or null"
    if not _strings(doc.get("grantTypes")) or not isinstance(doc.get("tokenEndpointAuthMethod"), str):
        return "grantTypes, tokenEndpointAuthMethod: as registration writes them"
    return None


def _grant_doc_problem(doc_id: str, doc: Doc, fields: tuple[str, ...]) -> str | None:
    if doc.get("id") != doc_id or not _DIGEST.match(doc_id):
        return "id: must equal the document id (a SHA-256 digest)"
    if not isinstance(doc.get("keyHash"), str) or not _DIGEST.match(doc["keyHash"]):
        return "keyHash: a key's SHA-256 digest"
    if not isinstance(doc.get("expiresAt"), _NUMBER) or not _strings(doc.get("scopes")):
        return "expiresAt, scopes: a time and a list of scopes"
    missing = [name for name in fields if not isinstance(doc.get(name), str)]
    return f"{missing[0]}: required" if missing else None


def code_doc_problem(doc_id: str, doc: Doc) -> str | None:
    return _grant_doc_problem(doc_id, doc, ("clientId", "redirectUri", "challenge", "resource", "status"))


def token_doc_problem(doc_id: str, doc: Doc) -> str | None:
    problem = _grant_doc_problem(doc_id, doc, ("clientId", "type", "audience", "family"))
    if problem is None and doc["type"] not in ("access", "refresh"):
        return "type: access or refresh"
    return problem


DOC_CHECKS: dict[str, Callable[[str, Doc], str | None]] = {
    CLIENTS: client_doc_problem,
    CODES: code_doc_problem,
    TOKENS: token_doc_problem,
}
