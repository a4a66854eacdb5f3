"""A stand-in x402 facilitator on 127.0.0.1: `GET /supported`, `POST /verify`, `POST /settle` of the
facilitator HTTP API, deterministic. The one stand-in of the x402 tests: a real facilitator checks
EIP-3009 signatures and sends transactions on a chain, which no machine here reaches.

Rules: a payment is valid when its signature is not "0xbad" and its authorization pays `to` the
requirement's payee at least its amount; settling fails for signature "0xsettle-fails" or a nonce
already settled (as the chain refuses a used nonce); `fail_settle` fails every settlement."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
from typing import Any

from tests.json_server import JsonServer

NETWORK = "eip155:84532"
ASSET = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
PAY_TO = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"
PAYER = "0x857b06519E91e3A54538791bDbb0E22373e36b66"


class Facilitator:
    def __init__(self) -> None:
        self.verified: list[dict[str, Any]] = []
        self.settled: list[dict[str, Any]] = []  # successful settlements
        self.settle_calls = 0
        self.fail_settle = False
        self._nonces: set[str] = set()
        self._lock = threading.Lock()
        supported = {"kinds": [{"x402Version": 2, "scheme": "exact", "network": NETWORK}], "extensions": []}
        self.http = JsonServer({"/supported": supported}, posts={"/verify": self.verify, "/settle": self.settle})
        self.url = self.http.url

    def verify(self, body: dict[str, Any]) -> dict[str, Any]:
        payload, req = body["paymentPayload"]["payload"], body["paymentRequirements"]
        auth = payload.get("authorization", {})
        with self._lock:
            self.verified.append(body)
        if payload.get("signature") == "0xbad":
            return {"isValid": False, "invalidReason": "invalid_exact_evm_payload_signature", "payer": auth.get("from")}
        if auth.get("to", "").lower() != req["payTo"].lower() or int(auth.get("value", 0)) < int(req["amount"]):
            return {"isValid": False, "invalidReason": "invalid_exact_evm_payload_authorization_value"}
        return {"isValid": True, "payer": auth.get("from")}

    def settle(self, body: dict[str, Any]) -> dict[str, Any]:
        payload, req = body["paymentPayload"]["payload"], body["paymentRequirements"]
        auth = payload.get("authorization", {})
        nonce = str(auth.get("nonce"))
        with self._lock:
            self.settle_calls += 1
            if self.fail_settle or payload.get("signature") == "0xsettle-fails" or nonce in self._nonces:
                return {"success": False, "errorReason": "transaction_failed", "transaction": "", "network": NETWORK}
            self._nonces.add(nonce)
            self.settled.append(body)
        tx = "0x" + hashlib.sha256(nonce.encode()).hexdigest()
        return {
            "success": True,
            "transaction": tx,
            "network": NETWORK,
            "payer": auth.get("from"),
            "amount": req["amount"],
        }

    def stop(self) -> None:
        self.http.stop()


def payment(accepted: dict[str, Any], signature: str = "0xsigned", nonce: str | None = None) -> dict[str, Any]:
    """A v2 PaymentPayload for `accepted` (one of a PaymentRequired's `accepts`), as a wallet would sign it;
    the stand-in reads only `signature` and `authorization`."""
    return {
        "x402Version": 2,
        "accepted": accepted,
        "resource": None,
        "payload": {
            "signature": signature,
            "authorization": {
                "from": PAYER,
                "to": accepted["payTo"],
                "value": accepted["amount"],
                "validAfter": "0",
                "validBefore": "9999999999",
                "nonce": nonce or "0x" + os.urandom(32).hex(),
            },
        },
    }


def header(payload: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps({k: v for k, v in payload.items() if v is not None}).encode()).decode()
