"""Hypothesis throws arbitrary JSON (and junk bytes) at /mcp: never a 5xx, never a charge without a call."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.inprocess import InProcessGateway

finite = st.floats(allow_nan=False, allow_infinity=False)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63), finite, st.text(max_size=20))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=12,
)
methods = st.sampled_from(["tools/call", "tools/list", "initialize", "ping", "resources/read", "x/y", ""])
messages = st.fixed_dictionaries(
    {"jsonrpc": st.sampled_from(["2.0", "1.0", 2]), "method": st.one_of(methods, values)},
    optional={"id": st.one_of(st.integers(), st.text(max_size=8), st.none(), values), "params": values},
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(messages, st.lists(messages, max_size=3), values))
def test_arbitrary_json_never_breaks_the_endpoint(gw: InProcessGateway, payload: Any) -> None:
    resp = gw.client.post("/mcp", content=json.dumps(payload).encode(), headers={"content-type": "application/json"})
    assert resp.status_code in (200, 202, 400, 404), resp.text


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=200))
def test_junk_bytes_are_parse_errors(gw: InProcessGateway, body: bytes) -> None:
    resp = gw.client.post("/mcp", content=body, headers={"content-type": "application/json"})
    try:
        json.loads(body.decode("utf-8"), parse_constant=_refuse)  # strict JSON: no NaN / Infinity
    except ValueError:  # not JSON (UnicodeDecodeError is a ValueError too): a JSON-RPC parse error
        assert resp.status_code == 400
        assert resp.json() == {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error"}}
        return
    assert resp.status_code in (200, 202, 400)  # JSON, just not a request: answered, never a crash


def _refuse(constant: str) -> None:
    raise ValueError(f"{constant} is not JSON")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(scalars, st.lists(scalars, max_size=3)))
def test_malformed_tool_arguments_are_refused_before_any_charge(gw: InProcessGateway, arguments: Any) -> None:
    raw = gw.create_key(10)
    payload = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "add", "arguments": arguments}}
    resp = gw.client.post("/mcp", json=payload, headers={"X-API-Key": raw})
    assert resp.json()["error"]["code"] == -32602
    assert gw.balance(raw) == 10
