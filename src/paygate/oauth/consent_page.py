"""The consent page: plain server-rendered HTML, no script, no style sheet, no external asset (the
gateway's `Content-Security-Policy: default-src 'none'` applies), every value escaped."""

from __future__ import annotations

from html import escape

from paygate.oauth.authorization import AuthRequest

_HEAD = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width, initial-scale=1">'
    '<meta name="referrer" content="no-referrer"><title>{title}</title></head><body><main>'
)
_TAIL = "</main></body></html>"


def _scope_line(scope: str) -> str:
    if scope in ("tools:*", "tools:write"):
        return f"<li><code>{escape(scope)}</code>: call any tool your key may call</li>"
    if scope == "tools:read":
        return "<li><code>tools:read</code>: list the tools (call none)</li>"
    return f"<li><code>{escape(scope)}</code>: call the tool <code>{escape(scope.removeprefix('tools:'))}</code></li>"


def consent_page(request: AuthRequest, csrf: str, error: str | None = None) -> str:
    client = request.client
    name = escape(str(client.get("clientName") or client["id"]))
    hidden = "".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in sorted(request.params.items())
    )
    key_field = (
        '<p><label for="api_key">API key to bill</label><br>'
        '<input id="api_key" name="api_key" type="password" autocomplete="off" size="60"'
        f"{' required' if request.needs_key else ''}></p>"
    )
    if not request.needs_key:
        key_field = "<p>This client is bound to an API key: its calls are billed to that key.</p>"
    parts = [
        _HEAD.format(title="Authorize " + name),
        f"<h1>Authorize {name}</h1>",
        f'<p role="alert"><strong>{escape(error)}</strong></p>' if error else "",
        f"<p><strong>{name}</strong> asks to call tools through this gateway on your behalf, billed to an API key:</p>",
        "<ul>" + "".join(_scope_line(s) for s in request.scopes) + "</ul>",
        f"<p>Afterwards you are sent to <code>{escape(request.redirect_uri)}</code>.</p>",
        '<form method="post" action="authorize">',
        hidden,
        f'<input type="hidden" name="csrf_token" value="{escape(csrf)}">',
        key_field,
        '<p><button type="submit" name="decision" value="approve">Approve</button> ',
        '<button type="submit" name="decision" value="deny" formnovalidate>Deny</button></p>',
        "</form>",
        _TAIL,
    ]
    return "".join(parts)


def error_page(message: str) -> str:
    return (
        _HEAD.format(title="Authorization error")
        + f"<h1>Authorization error</h1><p>{escape(message)}</p><p>Nothing was authorized.</p>"
        + _TAIL
    )
