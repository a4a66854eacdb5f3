"""What a gateway that uses none of the optional features never imports: each costs every start memory and
time (x402 and its models ~12 MiB, Stripe ~0.45 s, PyJWT with cryptography, Redis, httpx, jsonschema with its
referencing stack, the OpenTelemetry SDK)."""

from __future__ import annotations

import subprocess
import sys

import pytest

OPTIONAL = ("httpx", "redis", "x402", "jwt", "cryptography", "stripe", "jsonschema", "opentelemetry.sdk")
PROBE = f"""
import sys
import paygate.cli  # what `paygate-mcp wrap` imports (its other commands load their own needs lazily)
from paygate.app import create_app
from paygate.config import Settings
app, rt = create_app(Settings(state_file=":memory:", server_command="true"))
rt.store.close()
print(sorted(m for m in {OPTIONAL!r} if m in sys.modules))
"""


@pytest.mark.e2e  # a fresh interpreter: this one has imported them all for other tests
def test_a_gateway_built_without_optional_features_imports_none_of_their_packages() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr
