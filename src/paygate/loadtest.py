"""`paygate-mcp loadtest`: realistic mixed traffic against a running gateway, with pass/fail thresholds
(the reference ships a k6 script with these scenarios and thresholds; this needs nothing but the gateway's
own dependencies).

Scenarios, run at once for `duration` seconds:
* `mcp_traffic`: `vus` agents calling one tool in a loop (`tools/call`; every tenth request a `tools/list`);
* `admin_reads`: 2 dashboards reading `/status`, `/keys` and `/requests` (only with an admin key);
* `health_checks`: a load balancer probing `/health` 10 times a second.
An answer is an error when its HTTP status is not 2xx or it is a JSON-RPC error (a denial counts: a load
test whose key ran out of credits says so). Without `--api-key`, an admin key creates a key for the run
(`loadtest-…`, with `--credits`) and revokes it at the end.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:  # imported when a test runs: `paygate-mcp wrap` never loads httpx for this module
    import httpx

ADMIN_READS = ("/status", "/keys?limit=20", "/requests?limit=20")
HEALTH_RATE = 10.0  # probes per second
Opt = typer.Option


@dataclass(slots=True)
class Samples:
    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)

    def percentile(self, p: float) -> float:
        """Nearest-rank percentile of the latencies (0 when there are none)."""
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]

    def summary(self, seconds: float) -> dict[str, Any]:
        n = len(self.latencies_ms)
        return {
            "requests": n,
            "errors": sum(self.errors.values()),
            "errorReasons": dict(self.errors.most_common(10)),
            "rps": round(n / seconds, 1) if seconds else 0.0,
            "p50Ms": round(self.percentile(50), 2),
            "p95Ms": round(self.percentile(95), 2),
            "p99Ms": round(self.percentile(99), 2),
        }


@dataclass(slots=True)
class Thresholds:
    p95_ms: float = 200.0
    p99_ms: float = 500.0
    max_error_rate: float = 0.05
    min_rps: float = 100.0

    def failures(self, total: dict[str, Any]) -> list[str]:
        out = []
        if total["p95Ms"] >= self.p95_ms:
            out.append(f"p95 {total['p95Ms']} ms >= {self.p95_ms:g} ms")
        if total["p99Ms"] >= self.p99_ms:
            out.append(f"p99 {total['p99Ms']} ms >= {self.p99_ms:g} ms")
        rate = total["errors"] / total["requests"] if total["requests"] else 1.0
        if rate >= self.max_error_rate:
            out.append(f"error rate {rate:.1%} >= {self.max_error_rate:.0%}")
        if total["rps"] <= self.min_rps:
            out.append(f"request rate {total['rps']} req/s <= {self.min_rps:g}")
        return out


@dataclass(slots=True)
class Plan:
    url: str
    tool: str
    arguments: dict[str, Any]
    duration: float = 30.0
    vus: int = 16
    api_key: str | None = None
    admin_key: str | None = None
    credits: int = 1_000_000


async def run(plan: Plan) -> dict[str, Any]:
    """The report: per scenario and in total (requests, errors and their reasons, req/s, p50/p95/p99)."""
    import httpx

    limits = httpx.Limits(max_connections=plan.vus + 8, max_keepalive_connections=plan.vus + 8)
    async with httpx.AsyncClient(base_url=plan.url.rstrip("/"), timeout=30.0, limits=limits) as http:
        key, made = plan.api_key, False
        if key is None:
            key, made = await _make_key(http, plan), True
        samples = {"mcp_traffic": Samples(), "health_checks": Samples()}
        if plan.admin_key:
            samples["admin_reads"] = Samples()
        deadline = time.perf_counter() + plan.duration
        started = time.perf_counter()
        workers = [_agent(http, plan, key, i, deadline, samples["mcp_traffic"]) for i in range(plan.vus)]
        workers.append(_prober(http, deadline, samples["health_checks"]))
        if plan.admin_key:
            workers += [_dashboard(http, plan.admin_key, i, deadline, samples["admin_reads"]) for i in range(2)]
        await asyncio.gather(*workers)
        seconds = time.perf_counter() - started
        if made:
            await http.post("/keys/revoke", json={"key": key}, headers={"X-Admin-Key": str(plan.admin_key)})
    total = Samples()
    for s in samples.values():
        total.latencies_ms += s.latencies_ms
        total.errors += s.errors
    return {
        "seconds": round(seconds, 2),
        "scenarios": {n: s.summary(seconds) for n, s in samples.items()},
        "total": total.summary(seconds),
    }


async def _make_key(http: httpx.AsyncClient, plan: Plan) -> str:
    if not plan.admin_key:
        raise ValueError("give --api-key, or --admin-key to create a key for the run")
    name = f"loadtest-{int(time.time())}"
    resp = await http.post(
        "/keys", json={"name": name, "credits": plan.credits}, headers={"X-Admin-Key": plan.admin_key}
    )
    if resp.status_code != 201:
        raise ValueError(f"could not create a key for the run: HTTP {resp.status_code} {resp.text[:200]}")
    return str(resp.json()["key"])


async def _timed(samples: Samples, request: Any) -> httpx.Response | None:
    import httpx

    began = time.perf_counter()
    try:
        resp: httpx.Response = await request
    except httpx.HTTPError as exc:
        samples.latencies_ms.append((time.perf_counter() - began) * 1000)
        samples.errors[type(exc).__name__] += 1
        return None
    samples.latencies_ms.append((time.perf_counter() - began) * 1000)
    if resp.status_code >= 300:
        samples.errors[f"HTTP {resp.status_code}"] += 1
        return None
    return resp


async def _agent(http: httpx.AsyncClient, plan: Plan, key: str, n: int, deadline: float, samples: Samples) -> None:
    headers = {"X-API-Key": key, "Accept": "application/json, text/event-stream"}
    i = 0
    while time.perf_counter() < deadline:
        i += 1
        method = "tools/list" if i % 10 == 0 else "tools/call"
        params = {} if method == "tools/list" else {"name": plan.tool, "arguments": plan.arguments}
        body = {"jsonrpc": "2.0", "id": f"{n}-{i}", "method": method, "params": params}
        resp = await _timed(samples, http.post("/mcp", content=json.dumps(body), headers=headers))
        if resp is not None:
            error = _rpc_error(resp)
            if error is not None:
                samples.errors[error] += 1


def _rpc_error(resp: httpx.Response) -> str | None:
    try:
        answer = resp.json()
    except ValueError:
        return "not JSON"
    error = answer.get("error") if isinstance(answer, dict) else None
    if error is None:
        return None
    data = error.get("data") if isinstance(error.get("data"), dict) else {}
    return f"JSON-RPC {error.get('code')} {data.get('reason') or error.get('message', '')}".strip()


async def _prober(http: httpx.AsyncClient, deadline: float, samples: Samples) -> None:
    next_at = time.perf_counter()
    while next_at < deadline:
        await _timed(samples, http.get("/health"))
        next_at += 1 / HEALTH_RATE
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))  # a constant rate, as a balancer probes


async def _dashboard(http: httpx.AsyncClient, admin_key: str, n: int, deadline: float, samples: Samples) -> None:
    i = n
    while time.perf_counter() < deadline:
        await _timed(samples, http.get(ADMIN_READS[i % len(ADMIN_READS)], headers={"X-Admin-Key": admin_key}))
        i += 1


def render(report: dict[str, Any], failures: list[str]) -> str:
    rows = [("scenario", "requests", "errors", "req/s", "p50 ms", "p95 ms", "p99 ms")]
    for name, s in [*report["scenarios"].items(), ("total", report["total"])]:
        rows.append((name, s["requests"], s["errors"], s["rps"], s["p50Ms"], s["p95Ms"], s["p99Ms"]))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(str(c).rjust(w) if j else str(c).ljust(w) for j, (c, w) in enumerate(zip(r, widths, strict=True)))
        for r in rows
    ]
    for name, s in report["scenarios"].items():
        for reason, count in s["errorReasons"].items():
            lines.append(f"{name}: {count} x {reason}")
    lines.append("PASS" if not failures else "FAIL: " + "; ".join(failures))
    return "\n".join(lines)


def loadtest_command(
    url: Annotated[str, Opt(help="The gateway's base URL")] = "http://127.0.0.1:3402",
    tool: Annotated[str, Opt(help="The tool the agents call")] = "echo",
    arguments: Annotated[str, Opt(help="Its arguments, as JSON")] = "{}",
    api_key: Annotated[str | None, Opt(envvar="PAYGATE_LOADTEST_API_KEY", help="The agents' key")] = None,
    admin_key: Annotated[
        str | None, Opt(envvar="PAYGATE_ADMIN_KEY", help="Admin key: admin reads, and a key for the run")
    ] = None,
    duration: Annotated[float, Opt(min=1, max=3600, help="Seconds")] = 30.0,
    vus: Annotated[int, Opt(min=1, max=1000, help="Agents calling at once")] = 16,
    credits: Annotated[int, Opt(min=1, help="Credits of the key made for the run")] = 1_000_000,
    p95_ms: Annotated[float, Opt(help="Fail when p95 is at or above")] = 200.0,
    p99_ms: Annotated[float, Opt(help="Fail when p99 is at or above")] = 500.0,
    max_error_rate: Annotated[float, Opt(help="Fail when errors / requests reach")] = 0.05,
    min_rps: Annotated[float, Opt(help="Fail when requests per second are at or below")] = 100.0,
    json_output: Annotated[bool, Opt("--json", help="The report as JSON")] = False,
) -> None:
    """Load a running gateway with agents, dashboards and health probes; exit 1 if a threshold fails."""
    try:
        parsed = json.loads(arguments)
        if not isinstance(parsed, dict):
            raise ValueError("must be a JSON object")
    except ValueError as exc:
        typer.echo(f"error: --arguments: {exc}", err=True)
        raise typer.Exit(2) from exc
    import httpx

    plan = Plan(url, tool, parsed, duration, vus, api_key, admin_key, credits)
    try:
        report = asyncio.run(run(plan))
    except (ValueError, httpx.HTTPError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    failures = Thresholds(p95_ms, p99_ms, max_error_rate, min_rps).failures(report["total"])
    typer.echo(json.dumps({**report, "failures": failures}) if json_output else render(report, failures))
    raise typer.Exit(1 if failures else 0)
