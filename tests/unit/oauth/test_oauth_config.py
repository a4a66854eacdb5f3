"""`oauth {...}` is enforced now: checked at start, and no longer reported as "not enforced"."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from paygate.config import Settings
from paygate.validation import ignored_settings


def test_defaults_and_the_references_keys() -> None:
    settings = Settings.model_validate({"oauth": {"accessTokenTtl": 600, "scopes": ["tools:*"]}})
    assert settings.oauth is not None
    assert settings.oauth.access_token_ttl == 600 and settings.oauth.refresh_token_ttl == 2_592_000
    assert settings.oauth.scopes == ["tools:*"] and settings.oauth.issuer is None
    assert Settings.model_validate({}).oauth is None  # absent: OAuth off


@pytest.mark.parametrize(
    "block",
    [
        {"issuer": "gw.example.com"},
        {"issuer": "https://gw.example.com/?x=1"},
        {"resource": "ftp://gw.example.com/mcp"},
        {"accessTokenTtl": 0},
        {"refreshTokenTtl": 10},
        {"scopes": []},
        {"scopes": ["admin"]},
        {"clientSecret": "x"},  # not a key of the block
    ],
)
def test_bad_values_are_refused(block: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Settings.model_validate({"oauth": block})


def test_validate_no_longer_calls_it_not_enforced() -> None:
    assert not [d for d in ignored_settings({"oauth": {"accessTokenTtl": 3600}}) if d.field == "oauth"]
