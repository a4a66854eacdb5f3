"""POST /config/reload refusing: an invalid file (bad JSON, a wrong type, an unknown key, an unsafe webhook
URL, a bad alert rule) changes nothing and says why without quoting the file; `configPath` must name a
regular, readable, small JSON file; only an admin role may reload. And a property: reloads between calls
never change what was already charged (docs/reload.md)."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paygate.admin.reload_file import MAX_CONFIG_BYTES
from tests.api.reload_support import BASE, charged_by, reload, reload_ok, reloadable_gateway
from tests.api.test_admin_roles import make_admin_key
from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND

SECRET = "whsec_do-not-echo-me-0123456789"


def refused(gw: InProcessGateway, body: Any = None) -> dict[str, Any]:
    resp = reload(gw, body)
    assert resp.status_code == 400, resp.text
    answer = dict(resp.json())
    assert answer["ok"] is False and answer["changed"] == [] and answer["error"] == answer["message"]
    assert answer["error"].startswith("Invalid config: ") or answer["error"].startswith("no config file")
    return answer


def test_an_invalid_file_changes_nothing_and_says_where(tmp_path: Path) -> None:
    with reloadable_gateway(tmp_path, {"defaultCreditsPerCall": 2}) as (gw, file):
        key = gw.create_key(100)
        broken = {**file.config, "defaultCreditsPerCall": 9, "webhookSecret": SECRET}
        cases: list[tuple[str, str]] = [
            (json.dumps(broken)[:-1], "is not valid JSON"),  # a truncated file
            (json.dumps({**broken, "globalRateLimitPerMin": "lots"}), "globalRateLimitPerMin: Input should be"),
            (json.dumps({**broken, "defaultCreditPerCall": 3}), "defaultCreditPerCall: unknown key"),
            (json.dumps({**broken, "toolPricing": {"echo": {"credits": 1}}}), "toolPricing.echo.credits"),
            (json.dumps({**broken, "webhookUrl": "http://169.254.169.254/latest"}), "webhookUrl"),
            (json.dumps({**broken, "alertRules": [{"type": "nonsense", "threshold": 1}]}), "alertRules"),
            (json.dumps({**broken, "importKeys": {"pg_secretkey-abcdef": -5}}), "importKeys: invalid value"),
            (json.dumps({**broken, "importKeys": {"pg_secretkey-abcdef": "x"}}), "importKeys: Input should be"),
            (json.dumps({k: v for k, v in broken.items() if not k.startswith("server")}), "no backend"),
            ("[1, 2]", "must hold a JSON object"),
        ]
        for text, expected in cases:
            file.path.write_text(text)
            answer = refused(gw)
            assert expected in answer["error"], (expected, answer)
            assert SECRET not in json.dumps(answer) and "secretkey" not in json.dumps(answer)
            assert charged_by(gw, key) == 2  # the valid price change beside the error was not applied
        assert gw.client.get("/config", headers=gw.admin()).json()["webhookSecret"] is None
        failures = gw.events("config.reload_failed")
        assert len(failures) == len(cases) and failures[0]["data"]["source"] == "api"
        assert SECRET not in json.dumps(failures) and not gw.events("config.reloaded")


def test_config_path_reloads_once_from_another_file(tmp_path: Path) -> None:
    with reloadable_gateway(tmp_path, {"defaultCreditsPerCall": 2}) as (gw, file):
        key = gw.create_key(100)
        other = tmp_path / "other.json"
        other.write_text(json.dumps({**file.config, "defaultCreditsPerCall": 6}))
        assert reload_ok(gw, {"configPath": str(other)})["changed"] == ["defaultCreditsPerCall"]
        assert charged_by(gw, key) == 6
        assert gw.events("config.reloaded")[-1]["data"]["path"] == str(other)
        assert reload_ok(gw)["changed"] == ["defaultCreditsPerCall"]  # no body: the startup file again
        assert charged_by(gw, key) == 2


def test_config_path_must_be_a_small_regular_json_file(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    big.write_text(json.dumps({**BASE, "name": "x" * MAX_CONFIG_BYTES}))
    text = tmp_path / "secrets.txt"
    text.write_text(f"password={SECRET}\n")
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)  # opening it for reading must not wait for a writer
    unreadable = tmp_path / "locked.json"
    unreadable.write_text("{}")
    unreadable.chmod(0)
    cases = {
        str(tmp_path / "missing.json"): "config file not found",
        str(tmp_path): "not a regular file",
        str(big): f"larger than {MAX_CONFIG_BYTES} bytes",
        str(text): "is not valid JSON: Expecting value (line 1 column 1)",
        str(fifo): "not a regular file",
        "a\u0000b": "file path",
    }
    if os.geteuid() != 0:  # root reads it anyway
        cases[str(unreadable)] = "not readable"
    with reloadable_gateway(tmp_path, {}) as (gw, _):
        for path, expected in cases.items():
            answer = refused(gw, {"configPath": path})
            assert expected in answer["error"], (path, answer)
            assert SECRET not in json.dumps(answer)
        for body in ({"configPath": 5}, {"configPath": ""}, {"path": "x"}):
            assert reload(gw, body).status_code == 400


def test_only_an_admin_role_may_reload(tmp_path: Path) -> None:
    with reloadable_gateway(tmp_path, {}) as (gw, file):
        viewer = make_admin_key(gw, "viewer")["key"]
        admin = make_admin_key(gw, "admin")["key"]
        file.update(defaultCreditsPerCall=4)
        assert reload(gw, headers={"X-Admin-Key": viewer}).status_code == 403
        assert reload(gw, headers={}).status_code == 401
        key = gw.create_key(10)
        assert charged_by(gw, key) == 1  # neither applied anything
        resp = reload(gw, headers={"X-Admin-Key": admin})
        assert resp.status_code == 200 and resp.json()["changed"] == ["defaultCreditsPerCall"]
        assert charged_by(gw, key) == 4


def test_without_a_startup_config_file_only_config_path_reloads(tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"defaultCreditsPerCall": 3}))
    with running_inprocess_gateway("--server", ECHO_COMMAND) as gw:
        assert "started without --config" in refused(gw)["error"]
        answer = reload_ok(gw, {"configPath": str(other)})  # the flag's backend still counts
        assert answer["changed"] == ["defaultCreditsPerCall"]


PRICES = st.integers(min_value=0, max_value=9)
STEPS = st.lists(st.one_of(st.just(("call", 0)), st.tuples(st.just("reload"), PRICES)), min_size=1, max_size=12)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start=st.integers(min_value=0, max_value=30), steps=STEPS)
def test_reloads_between_calls_conserve_credits(tmp_path: Path, start: int, steps: list[tuple[str, int]]) -> None:
    """Each call is charged the price in force when it arrives (or refused, uncharged, when the balance is
    short); what was charged is never changed by a later reload: charges sum to start - balance."""
    with reloadable_gateway(tmp_path, {"defaultCreditsPerCall": 1}) as (gw, file):
        key = gw.create_key(start)
        price, charged = 1, []
        for action, value in steps:
            if action == "reload":
                file.update(defaultCreditsPerCall=value)
                reload_ok(gw)
                price = value
                continue
            before = gw.balance(key)
            reply = gw.call_tool("echo", {"text": "x"}, key)
            taken = before - gw.balance(key)
            assert taken == (price if "result" in reply else 0)
            assert ("result" in reply) == (before >= price)
            charged.append(taken)
        assert sum(charged) == start - gw.balance(key)


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prices=st.lists(PRICES, min_size=1, max_size=6))
def test_calls_racing_reloads_are_each_charged_one_price_in_force(tmp_path: Path, prices: list[int]) -> None:
    """Calls from three threads while reloads change the price: every charge is one whole price that was in
    force (never a mix), and the charges in the usage log sum to what left the balance."""
    with reloadable_gateway(tmp_path, {"defaultCreditsPerCall": 1}) as (gw, file):
        key = gw.create_key(1000)
        replies: list[dict[str, Any]] = []

        def caller() -> None:
            replies.extend(gw.call_tool("echo", {"text": "x"}, key, msg_id=i) for i in range(8))

        callers = [threading.Thread(target=caller) for _ in range(3)]
        for thread in callers:
            thread.start()
        for price in prices:
            file.update(defaultCreditsPerCall=price)
            reload_ok(gw)
        for thread in callers:
            thread.join(30)
        assert len(replies) == 24 and all("result" in r for r in replies)
        events = gw.client.get("/usage", headers=gw.admin()).json()["events"]
        charges = [e["creditsCharged"] for e in events if e["allowed"]]
        assert len(charges) == 24 and set(charges) <= {1, *prices}
        assert sum(charges) == 1000 - gw.balance(key)
