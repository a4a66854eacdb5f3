"""Conformance result sets: read the suite's output, normalize it, compare two runs.

The suite (`conformance server -o DIR`) writes one folder per scenario,
`server-<scenario>-<timestamp>/checks.json`, each an array of checks with an `id`, a `status`
(SUCCESS, FAILURE, WARNING or INFO), an optional `errorMessage` and run-specific `details`. A
normalized result set keeps what is stable from run to run — scenario, check id, status, error
message with ports masked — so that it can be committed and diffed:

    {"suite": "@modelcontextprotocol/conformance@0.1.12", "target": "own", "via": "direct",
     "totals": {"SUCCESS": 40, "FAILURE": 0, "WARNING": 0, "INFO": 0},
     "scenarios": {"tools-call-simple-text": {"tools-call-simple-text": {"status": "SUCCESS"}}, …}}
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

STATUSES = ("SUCCESS", "FAILURE", "WARNING", "INFO")
_SCENARIO_DIR = re.compile(r"^server-(?P<scenario>.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$")
_PORT = re.compile(r"(127\.0\.0\.1|localhost|\[::1\]):\d+")

Checks = dict[str, dict[str, dict[str, str]]]  # scenario -> check id -> {"status", "error"?}


def read_suite_output(output_dir: Path) -> Checks:
    """The checks of every scenario the suite wrote under `output_dir`."""
    scenarios: Checks = {}
    for folder in sorted(output_dir.iterdir()):
        match = _SCENARIO_DIR.match(folder.name)
        if match is None or not (folder / "checks.json").is_file():
            continue
        checks: dict[str, dict[str, str]] = {}
        for check in json.loads((folder / "checks.json").read_text()):
            entry = {"status": str(check["status"])}
            if check.get("errorMessage"):
                entry["error"] = _PORT.sub(r"\1:PORT", str(check["errorMessage"]))
            check_id = str(check["id"])
            numbered, n = check_id, 1
            while numbered in checks:  # the same id twice in one scenario: keep both, in order
                n += 1
                numbered = f"{check_id}#{n}"
            checks[numbered] = entry
        scenarios[match["scenario"]] = checks
    if not scenarios:
        raise RuntimeError(f"the conformance suite wrote no results under {output_dir}")
    return scenarios


def result_set(suite: str, target: str, via: str, scenarios: Checks) -> dict[str, Any]:
    totals = dict.fromkeys(STATUSES, 0)
    for checks in scenarios.values():
        for entry in checks.values():
            totals[entry["status"]] = totals.get(entry["status"], 0) + 1
    return {"suite": suite, "target": target, "via": via, "totals": totals, "scenarios": scenarios}


def statuses(result: dict[str, Any]) -> dict[str, str]:
    """`{"scenario/check": status}` of a result set (what a drift check compares)."""
    return {
        f"{scenario}/{check}": entry["status"]
        for scenario, checks in result["scenarios"].items()
        for check, entry in checks.items()
    }


def gateway_only_failures(direct: dict[str, Any], gateway: dict[str, Any]) -> list[dict[str, str]]:
    """Every check that passes directly but not through the gateway: failed, downgraded to a
    warning or "not applicable" (INFO), or missing (the scenario stopped before reaching it)."""
    out = []
    for scenario, checks in direct["scenarios"].items():
        through = gateway["scenarios"].get(scenario, {})
        for check, entry in checks.items():
            if entry["status"] != "SUCCESS":
                continue
            seen = through.get(check)
            if seen is not None and seen["status"] == "SUCCESS":
                continue
            item = {"scenario": scenario, "check": check, "status": seen["status"] if seen else "MISSING"}
            error = seen.get("error") if seen else _scenario_errors(through)
            if error:
                item["error"] = error
            out.append(item)
    return out


def _scenario_errors(checks: dict[str, dict[str, str]]) -> str:
    """Why a scenario produced other checks than expected: the errors of the checks it did produce."""
    return "; ".join(f"{check}: {entry['error']}" for check, entry in checks.items() if entry.get("error"))


def comparison(target: str, direct: dict[str, Any], gateway: dict[str, Any]) -> dict[str, Any]:
    return {
        "suite": direct["suite"],
        "target": target,
        "direct": direct["totals"],
        "gateway": gateway["totals"],
        "passDirectlyButNotThroughGateway": gateway_only_failures(direct, gateway),
    }


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")


def summary(comp: dict[str, Any]) -> str:
    """A few lines for people: totals both ways, then every gateway-only failure."""

    def counts(totals: dict[str, int]) -> str:
        return ", ".join(f"{n} {status.lower()}" for status, n in totals.items() if n)

    lines = [f"{comp['target']}: direct {counts(comp['direct'])}; through the gateway {counts(comp['gateway'])}"]
    diffs = comp["passDirectlyButNotThroughGateway"]
    lines.append(f"  {len(diffs)} check(s) pass directly but not through the gateway" + (":" if diffs else ""))
    for item in diffs:
        error = f" — {item['error']}" if "error" in item else ""
        lines.append(f"    {item['scenario']}/{item['check']}: {item['status']}{error}")
    return "\n".join(lines)
