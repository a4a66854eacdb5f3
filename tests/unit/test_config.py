"""Settings: flags > env > file > defaults, one model, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from paygate.config import ConfigError, load_settings, parse_pairs, split_command


def write(tmp_path: Path, data: dict[str, object]) -> str:
    path = tmp_path / "paygate.json"
    path.write_text(json.dumps(data))
    return str(path)


def test_defaults() -> None:
    s = load_settings({}, None, environ={})
    assert (s.port, s.default_credits_per_call, s.global_rate_limit_per_min) == (3402, 1, 60)
    assert s.state_file == "~/.paygate/paygate.db" and not s.shadow_mode and not s.refund_on_failure
    assert "tools/list" in s.free_methods and "tools/call" not in s.free_methods


def test_flags_beat_env_beat_file(tmp_path: Path) -> None:
    path = write(tmp_path, {"port": 1111, "defaultCreditsPerCall": 2, "globalRateLimitPerMin": 5, "name": "file"})
    env = {"PAYGATE_PORT": "2222", "PAYGATE_PRICE": "3"}
    s = load_settings({"port": 3333}, path, environ=env)
    assert s.port == 3333  # flag
    assert s.default_credits_per_call == 3  # env
    assert s.global_rate_limit_per_min == 5  # file
    assert s.name == "file"


def test_paygate_config_env_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, {"serverCommand": "node", "serverArgs": ["s.js"], "shadowMode": True})
    s = load_settings({}, None, environ={"PAYGATE_CONFIG": path})
    assert (s.server_command, s.server_args, s.shadow_mode) == ("node", ["s.js"], True)


def test_server_flag_is_split_like_a_shell() -> None:
    s = load_settings({"server": "python 'my server.py' --flag \"a b\""}, None, environ={})
    assert s.server_command == "python"
    assert s.server_args == ["my server.py", "--flag", "a b"]


def test_tool_price_from_flag_merges_with_file_pricing(tmp_path: Path) -> None:
    path = write(tmp_path, {"toolPricing": {"search": {"creditsPerCall": 1, "creditsPerKbInput": 5}}})
    s = load_settings({"toolPrice": "search:9,fs:read:3"}, path, environ={})
    assert s.tool_pricing["search"].credits_per_call == 9
    assert s.tool_pricing["search"].credits_per_kb_input == 5  # kept from the file
    assert s.tool_pricing["fs:read"].credits_per_call == 3  # prefixed names split on the last colon


def test_import_keys_from_flag_env_and_file(tmp_path: Path) -> None:
    path = write(tmp_path, {"importKeys": {"pg_fromfile123": 5}})
    s = load_settings({"importKey": ["pg_fromflag123:7"]}, path, environ={"PAYGATE_IMPORT_KEY": "pg_fromenv1234:9"})
    assert s.import_keys == {"pg_fromfile123": 5, "pg_fromenv1234": 9, "pg_fromflag123": 7}


def test_env_booleans() -> None:
    assert load_settings({}, None, environ={"PAYGATE_SHADOW": "true"}).shadow_mode
    assert not load_settings({}, None, environ={"PAYGATE_REFUND_ON_FAILURE": "0"}).refund_on_failure
    with pytest.raises(ConfigError):
        load_settings({}, None, environ={"PAYGATE_SHADOW": "maybe"})


@pytest.mark.parametrize(
    "bad",
    [
        {"port": 99999},
        {"defaultCreditsPerCall": -1},
        {"globalRateLimitPerMin": -5},
        {"remoteUrl": "ftp://x"},
        {"serverCommand": "a", "remoteUrl": "http://x"},
        {"servers": [{"prefix": "a", "serverCommand": "x"}, {"prefix": "a", "remoteUrl": "http://y"}]},
        {"servers": [{"prefix": "a"}]},
        {"toolPricing": {"t": {"creditsPerCall": -1}}},
        {"importKeys": {"pg_abcdefgh": -1}},
        {"adminKey": "short"},
    ],
)
def test_invalid_values_are_rejected(bad: dict[str, object], tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        load_settings({}, write(tmp_path, bad), environ={})


def test_pairs_and_commands_reject_garbage() -> None:
    assert parse_pairs("a:1, b=2", "x") == {"a": 1, "b": 2}
    with pytest.raises(ConfigError):
        parse_pairs("a:x", "x")
    with pytest.raises(ConfigError):
        split_command("python 'unterminated")
    with pytest.raises(ConfigError):
        load_settings({}, "/nonexistent/paygate.json", environ={})


def test_discovery_is_static_unless_a_flag_env_var_or_config_key_says_dynamic(tmp_path: Path) -> None:
    assert load_settings({}, None, environ={}).discovery == "static"
    path = write(tmp_path, {"discovery": "dynamic"})
    assert load_settings({}, path, environ={}).discovery == "dynamic"
    assert load_settings({}, None, environ={"PAYGATE_DISCOVERY": "dynamic"}).discovery == "dynamic"
    assert load_settings({"discovery": "static"}, path, environ={}).discovery == "static"  # the flag wins
    with pytest.raises(ValidationError, match="'static' or 'dynamic'"):
        load_settings({"discovery": "lazy"}, None, environ={})


def test_sqlite_sync_comes_from_env_or_config_any_case_and_rejects_anything_else(tmp_path: Path) -> None:
    assert load_settings({}, None, environ={}).sqlite_sync == "NORMAL"
    assert load_settings({}, None, environ={"PAYGATE_SQLITE_SYNC": "full"}).sqlite_sync == "FULL"
    assert load_settings({}, write(tmp_path, {"sqliteSync": "Full"}), environ={}).sqlite_sync == "FULL"
    with pytest.raises(ValidationError, match="sqliteSync"):
        load_settings({}, None, environ={"PAYGATE_SQLITE_SYNC": "OFF"})
