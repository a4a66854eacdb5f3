"""What `paygate-mcp wrap` prints once it serves: the banner, or with `--json` one `ready` line."""

from __future__ import annotations

import json

from paygate import __version__
from paygate.admin.auth import ROTATED_NOTE
from paygate.core.keys import mask_key
from paygate.core.urls import redact_url
from paygate.runtime import Runtime


def print_ready(rt: Runtime, port: int, as_json: bool) -> None:
    s = rt.settings
    host = "127.0.0.1" if s.host in ("0.0.0.0", "::") else s.host
    base = f"http://{host}:{port}"
    admin = rt.admin.generated
    if as_json:
        print(
            json.dumps(
                {
                    "event": "ready",
                    "port": port,
                    "url": base,
                    "adminKey": admin,
                    "transport": rt.transport,
                    "tools": len(rt.backend.tools),
                    "stateFile": None if s.redis_url else s.state_file,
                    "redis": redact_url(s.redis_url) if s.redis_url else None,
                }
            ),
            flush=True,
        )
        return
    shown = admin or (ROTATED_NOTE if rt.admin.rotated else f"(the key you configured, {mask_key(s.admin_key or '')})")
    print(
        f"\nPayGate MCP {__version__} — gating {len(rt.backend.tools)} tool(s) over {rt.transport}\n"
        f"  MCP endpoint : {base}/mcp\n"
        f"  State        : {f'Redis {redact_url(s.redis_url)}' if s.redis_url else s.state_file}\n"
        f"  Admin key    : {shown}\n\n"
        f"Create an API key with 100 credits:\n"
        f"  curl -s -X POST {base}/keys -H 'Content-Type: application/json' "
        f'-H \'X-Admin-Key: {admin or "<admin key>"}\' -d \'{{"name": "my-client", "credits": 100}}\'\n',
        flush=True,
    )
