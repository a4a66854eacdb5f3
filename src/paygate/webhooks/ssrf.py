"""Which webhook URLs may be called (SSRF protection).

A webhook URL is chosen by an admin, but a gateway usually runs next to things an admin of the
gateway should not reach through it: cloud metadata endpoints, databases on the loopback or the
private network. So, unless `webhookAllowPrivate` is set:

- at configuration time (`check_url`): only http/https; a host that is a literal non-public address
  (loopback, private, link-local, unique-local, multicast, unspecified, reserved, shared/CGNAT,
  metadata; IPv4-mapped IPv6 and legacy numeric forms like `2130706433` included) or a local name
  (`localhost`, `*.localhost`, metadata names) is refused with a clear message;
- at delivery time (`resolve`): the same `check_url` first, then every address the host resolves to
  must be public, and the request is pinned to the vetted address (Host header and TLS SNI keep the
  name), so DNS cannot point the connection elsewhere between the check and the connect.

Both read the host through `canonical_host`, the one spelling a resolver would use: IDNA (so
full-width digits, ideographic full stops and full-width letters spelling `127.0.0.1` or `localhost`
are `127.0.0.1` and `localhost`, as getaddrinfo reads them), lower case, no trailing dot. The static
check judges exactly the name the delivery resolves, so the two can never disagree about a URL.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

from paygate.core.netaddr import Address, parse_ip

MAX_URL_LENGTH = 2048
_LOCAL_NAMES = frozenset(
    {
        "localhost",
        "localhost.localdomain",
        "ip6-localhost",
        "ip6-loopback",
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
    }
)
_METADATA = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),
        ipaddress.ip_address("fd00:ec2::254"),
        ipaddress.ip_address("100.100.100.200"),
        ipaddress.ip_address("169.254.170.2"),
    }
)
_LEGACY_NUMERIC = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}$", re.IGNORECASE)

Resolver = Callable[[str, int], Awaitable[list[str]]]


class UnsafeUrl(ValueError):
    """A webhook URL that may not be called; the message says why (never echoes credentials)."""


def blocked_reason(addr: Address) -> str | None:
    """Why an address is not a public one (None when it is)."""
    if addr in _METADATA:
        return "a cloud metadata address"
    checks = (
        ("loopback", addr.is_loopback),
        ("unspecified", addr.is_unspecified),
        ("link-local", addr.is_link_local),
        ("multicast", addr.is_multicast),
        ("private", addr.is_private),
        ("reserved", addr.is_reserved),
    )
    for name, hit in checks:
        if hit:
            return f"a {name} address"
    if not addr.is_global:  # shared address space (100.64/10), documentation ranges, …
        return "not a public address"
    return None


def _literal_address(host: str) -> Address | None:
    addr = parse_ip(host)
    if addr is not None:
        return addr
    if _LEGACY_NUMERIC.match(host):  # 2130706433, 0x7f.1, 127.1: resolvers read these as IPv4
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def canonical_host(hostname: str, what: str = "webhook URL") -> str:
    """The host as a resolver reads it: an IP literal as is, a name IDNA-encoded (NFKC: full-width
    digits and dots become ASCII), lower case, without a trailing dot. UnsafeUrl when it cannot be."""
    host = hostname.rstrip(".").lower()
    if parse_ip(host) is not None:
        return host
    try:
        return host.encode("idna").decode("ascii").rstrip(".").lower()
    except UnicodeError as exc:
        raise UnsafeUrl(f"{what} has a host name that is not a valid DNS name") from exc


def shown(url: str) -> str:
    """A URL as messages, logs and stats show it: scheme and host only (no credentials, path or query)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "***"
    if not parts.scheme or not host:
        return "***"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{port}/***"


def check_url(url: str, allow_private: bool, what: str = "webhook URL") -> SplitResult:
    """The parsed URL, or UnsafeUrl naming the problem (static checks; see module docstring)."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeUrl(f"{what} is longer than {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise UnsafeUrl(f"{what} must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl(f"{what} is not a valid URL ({exc})") from exc
    if parts.scheme not in ("http", "https"):
        raise UnsafeUrl(f"{what} must start with http:// or https://")
    host = canonical_host(parts.hostname or "", what)
    if not host:
        raise UnsafeUrl(f"{what} has no host")
    if port == 0:
        raise UnsafeUrl(f"{what} has port 0")
    if allow_private:
        return parts
    hint = " (set webhookAllowPrivate / --webhook-allow-private to allow it)"
    if host in _LOCAL_NAMES or host.endswith((".localhost", ".internal")):
        raise UnsafeUrl(f"{what} {shown(url)} names a local host{hint}")
    addr = _literal_address(host)
    if addr is not None:
        reason = blocked_reason(addr)
        if reason is not None:
            raise UnsafeUrl(f"{what} {shown(url)} is {reason}{hint}")
    return parts


def configured_url_problems(webhook_url: str | None, filter_urls: list[str], allow_private: bool) -> list[str]:
    """What `check_url` says of the configured webhook URLs (webhookUrl, webhookFilters[i].url)."""
    named = ([("webhookUrl", webhook_url)] if webhook_url else []) + [
        (f"webhookFilters.{i}.url", url) for i, url in enumerate(filter_urls)
    ]
    problems = []
    for what, url in named:
        try:
            check_url(url, allow_private, what)
        except UnsafeUrl as exc:
            problems.append(str(exc))
    return problems


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True, slots=True)
class Target:
    """Where to send a request: the URL without credentials, the vetted address to connect to (None:
    the URL's own host, when private addresses are allowed), and the headers the URL implies (Basic
    auth from credentials in it). The Host header and TLS server name always stay the URL's host."""

    url: str
    address: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def _split_credentials(parts: SplitResult) -> tuple[str, dict[str, str]]:
    """The URL without user:password, and those credentials as a Basic auth header, as a client would."""
    if parts.username is None:
        return urlunsplit(parts), {}
    host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else str(parts.hostname)
    netloc = f"{host}:{parts.port}" if parts.port else host
    user = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
    return urlunsplit(parts._replace(netloc=netloc)), {"Authorization": "Basic " + base64.b64encode(user).decode()}


async def resolve(url: str, allow_private: bool, resolver: Resolver = system_resolver) -> Target:
    """The vetted target for `url`, or UnsafeUrl. With `allow_private` the URL's host is used as it is."""
    parts = check_url(url, allow_private)
    clean, headers = _split_credentials(parts)
    if allow_private:
        return Target(clean, None, headers)
    host = canonical_host(parts.hostname or "")  # the very name check_url judged
    port = parts.port or (443 if parts.scheme == "https" else 80)
    literal = _literal_address(host)
    if literal is not None:
        addresses: list[str] = [str(literal)]
    else:
        try:
            addresses = await resolver(host, port)
        except OSError as exc:
            raise UnsafeUrl(f"cannot resolve {shown(url)}: {exc}") from exc
    if not addresses:
        raise UnsafeUrl(f"{shown(url)} resolves to no address")
    vetted: Address | None = None
    for text in addresses:
        addr = parse_ip(text)
        if addr is None:
            raise UnsafeUrl(f"{shown(url)} resolves to an unreadable address")
        reason = blocked_reason(addr)
        if reason is not None:  # one bad answer is enough: a resolver may rotate through them
            raise UnsafeUrl(
                f"{shown(url)} resolves to {reason} ({addr}); refused (set webhookAllowPrivate to allow it)"
            )
        vetted = vetted or addr
    assert vetted is not None
    return Target(clean, str(vetted), headers)
