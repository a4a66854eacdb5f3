"""GET /config: the running configuration, camelCase, with every secret masked."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from paygate.admin.config_view import mask_url, mask_value
from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_SERVER, PYTHON, write_config

ADMIN = "admin_config_view_secret_0123456789"
IMPORTED = "pg_imported_key_that_must_not_leak_9f3e"
SECRETS = {
    "webhookSecret": "whsec_very_secret_value",
    "stripeSecret": "sk_test_stripe_secret_value",
    "webhookUrl": "https://hooks.example.com/T0KEN/in/path?sig=abc",
}


@pytest.fixture(scope="module")
def configured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessGateway]:
    config = write_config(
        tmp_path_factory.mktemp("cfg"),
        {
            "serverCommand": PYTHON,
            "serverArgs": [ECHO_SERVER],
            "defaultCreditsPerCall": 3,
            "toolPricing": {"echo": {"creditsPerCall": 5}},
            "importKeys": {IMPORTED: 40},
            **SECRETS,
        },
    )
    with running_inprocess_gateway("--config", config, "--admin-key", ADMIN) as gateway:
        gateway.admin_key_override = ADMIN
        yield gateway


def get_config(gw: InProcessGateway) -> dict[str, Any]:
    resp = gw.client.get("/config", headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def test_config_shows_the_running_settings_in_camel_case(configured: InProcessGateway) -> None:
    config = get_config(configured)
    assert config["defaultCreditsPerCall"] == 3
    assert config["toolPricing"]["echo"]["creditsPerCall"] == 5
    assert config["port"] == configured.port or config["port"] == 0
    assert "globalRateLimitPerMin" in config and "freeMethods" in config


def test_config_never_contains_a_secret(configured: InProcessGateway) -> None:
    resp = configured.client.get("/config", headers=configured.admin())
    text = resp.text
    for secret in (
        ADMIN,
        IMPORTED,
        "whsec_very_secret_value",
        "sk_test_stripe_secret_value",
        "T0KEN",
        "sig=abc",
        ECHO_SERVER,
    ):
        assert secret not in text, secret
    config = resp.json()
    assert config["adminKey"] == "***"
    assert config["webhookSecret"] == "***" and config["stripeSecret"] == "***"
    assert config["webhookUrl"] == "https://hooks.example.com/***"
    assert config["serverCommand"] == "***" and config["serverArgs"] == ["***"]
    assert config["importKeys"] == {f"{IMPORTED[:7]}…{IMPORTED[-4:]}": 40}


def test_each_config_export_publishes_an_event(configured: InProcessGateway) -> None:
    before = len(configured.events("config.export"))
    get_config(configured)
    events = configured.events("config.export")
    assert len(events) == before + 1 and events[-1]["actor"] == "admin"
    assert ADMIN not in json.dumps(events)


def test_config_needs_an_admin_key_and_a_viewer_may_read_it(configured: InProcessGateway) -> None:
    assert configured.client.get("/config").status_code == 401
    assert configured.client.get("/config", headers={"X-Admin-Key": "admin_wrong_wrong_wrong"}).status_code == 401
    viewer = configured.client.post(
        "/admin/keys", headers=configured.admin(), json={"name": "reader", "role": "viewer"}
    ).json()["key"]
    assert configured.client.get("/config", headers={"X-Admin-Key": viewer}).status_code == 200


def test_unknown_query_parameters_do_not_change_the_answer(configured: InProcessGateway) -> None:
    plain = get_config(configured)
    resp = configured.client.get("/config", params={"reveal": "true"}, headers=configured.admin())
    assert resp.status_code == 200 and resp.json() == plain


def test_multi_server_commands_are_masked_too(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        {"servers": [{"prefix": "echo", "serverCommand": PYTHON, "serverArgs": [ECHO_SERVER, "--token=hunter2"]}]},
    )
    with running_inprocess_gateway("--config", config, "--admin-key", ADMIN) as gw:
        gw.admin_key_override = ADMIN
        resp = gw.client.get("/config", headers=gw.admin())
        assert resp.status_code == 200 and "hunter2" not in resp.text
        assert resp.json()["servers"][0] == {
            "prefix": "echo",
            "serverCommand": "***",
            "serverArgs": ["***"],
            "remoteUrl": None,
        }


def test_default_config_with_nothing_secret_set_shows_nulls(gw: InProcessGateway) -> None:
    config = get_config(gw)
    assert config["webhookSecret"] is None and config["redisUrl"] is None
    assert config["adminKey"] is None  # generated, not configured: nothing to show
    assert gw.admin_key not in json.dumps(config) and ECHO_SERVER not in json.dumps(config)


@pytest.mark.parametrize(
    ("name", "url", "shown"),
    [
        ("webhookUrl", "https://user:pw@hooks.example.com:8443/a/b", "https://hooks.example.com:8443/***"),
        ("remoteUrl", "https://api.example.com/mcp?token=t", "https://api.example.com/mcp?token=***"),
        ("remoteUrl", "https://api.example.com/mcp?sk-live-0123456789", "https://api.example.com/mcp?***"),
        ("remoteUrl", "http://u:p@[::1]:9000/mcp", "http://***@[::1]:9000/mcp"),
        # a token given as the user name, or as a path segment, is a credential too
        ("redisUrl", "redis://ghp_T0KEN1234@cache:6379", "redis://***@cache:6379"),
        ("remoteUrl", "https://mcp.example.com/api/v1/s/sk-T0KEN123/sse", "https://mcp.example.com/api/v1/s/***/sse"),
        ("remoteUrl", "https://mcp.example.com/mcp;session=T0KEN", "https://mcp.example.com/***"),
        ("remoteUrl", "https://mcp.example.com/abcdefghijklmnopqrstuvwxyzABCDEF", "https://mcp.example.com/***"),
        ("remoteUrl", "https://mcp.example.com/HqJLcKAjXGrBou/mcp", "https://mcp.example.com/***/mcp"),
        ("redisUrl", "not a url", "***"),
    ],
)
def test_urls_lose_their_credentials(name: str, url: str, shown: str) -> None:
    assert mask_url(name, url) == shown


def test_short_import_keys_are_not_mostly_revealed_and_none_is_lost() -> None:
    shown = mask_value("importKeys", {"secretsecret": 5, "abcdefgh": 1, "abcdefgi": 2, IMPORTED: 40})
    assert sorted(shown.values()) == [1, 2, 5, 40]  # two keys that mask alike are both listed
    assert f"{IMPORTED[:7]}…{IMPORTED[-4:]}" in shown
    text = json.dumps(shown, ensure_ascii=False)
    assert "secrets" not in text and "cret" not in text and "abcd" not in text


def test_any_field_named_like_a_secret_is_masked() -> None:
    assert mask_value("oauthClientSecret", "abc") == "***"
    assert mask_value("nested", {"apiToken": "abc", "count": 2}) == {"apiToken": "***", "count": 2}
    assert mask_value("maxTokens", 5) == 5
    # a URL is masked whatever its setting is called
    assert mask_value("upstreamEndpoint", "https://bot:hunter2@api.example.com/v1") == "https://***@api.example.com/v1"
    assert mask_value("name", "PayGate (https://example.com)") == "PayGate (https://example.com)"
    # tool names are not setting names: a tool called get_token keeps its pricing visible
    assert mask_value("toolPricing", {"get_token": {"creditsPerCall": 5}}) == {"get_token": {"creditsPerCall": 5}}
    for name in ("signingKey", "licenseKey", "sentryDsn", "sessionCookie", "Authorization"):
        assert mask_value(name, "s3cr3t") == "***", name
    assert mask_value("remoteHeaders", {"Authorization": "Bearer t", "Accept": "json"}) == {
        "Authorization": "***",
        "Accept": "json",
    }


def test_webhook_filter_urls_show_scheme_and_host_only_and_their_secrets_are_masked() -> None:
    filters = [
        {
            "name": "alerts",
            "events": ["alert.fired"],
            "url": "https://hooks.example.com/ops/alerts?k=1",
            "secret": "whsec_filter_secret",
            "keyPrefixes": ["pg_prod"],
            "active": True,
        }
    ]
    (shown,) = mask_value("webhookFilters", filters)
    assert shown["url"] == "https://hooks.example.com/***" and shown["secret"] == "***"
    assert shown["name"] == "alerts" and shown["keyPrefixes"] == ["pg_prod"] and shown["events"] == ["alert.fired"]
