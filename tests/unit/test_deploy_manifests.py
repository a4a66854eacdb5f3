"""The deployment files under deploy/ and the Dockerfile's build context, checked without a cluster or a
container runtime: the Kubernetes manifests against the API's own schemas (strict: a misspelt field is an
error), the compose file's wiring, nginx's routing of sessions."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES_VERSION = "1.30.0"


def _manifests() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((DEPLOY / "kubernetes" / "paygate.yaml").read_text()) if d]


def test_every_kubernetes_manifest_is_valid_for_the_api() -> None:
    kinds = []
    for doc in _manifests():
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        kinds.append(doc["kind"])
    assert sorted(kinds) == ["Deployment", "Ingress", "Service", "Service", "StatefulSet"]


def test_the_schema_check_would_catch_a_misspelt_field() -> None:
    deployment = next(d for d in _manifests() if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_the_pods_run_unprivileged_with_the_admin_key_from_a_secret() -> None:
    deployment = next(d for d in _manifests() if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    container = pod["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    env = {e["name"]: e for e in container["env"]}
    assert "secretKeyRef" in env["PAYGATE_ADMIN_KEY"]["valueFrom"]  # never a literal in the manifest
    assert deployment["spec"]["replicas"] >= 2 and "secretKeyRef" in env["PAYGATE_REDIS_URL"]["valueFrom"]


def test_compose_runs_two_gateways_on_one_durable_redis_behind_the_proxy() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    gateways = [s for name, s in services.items() if name.startswith("gateway-")]
    assert len(gateways) == 2
    for gateway in gateways:
        assert gateway["environment"]["PAYGATE_REDIS_URL"].startswith("redis://redis:")
        assert "?" in gateway["environment"]["PAYGATE_ADMIN_KEY"]  # compose refuses to start without it
        assert gateway["build"]["context"] == ".." and (DEPLOY / gateway["build"]["context"] / "Dockerfile").exists()
    assert "--appendonly" in services["redis"]["command"]
    mount = services["proxy"]["volumes"][0].split(":")[0]
    assert (DEPLOY / mount).exists()


def test_nginx_keeps_a_session_on_one_instance_and_does_not_buffer_streams() -> None:
    conf = (DEPLOY / "nginx.conf").read_text()
    assert re.search(r"hash \$http_mcp_session_id", conf)
    assert "proxy_buffering off;" in conf
    assert re.search(r"server gateway-1:3402;\s*server gateway-2:3402;", conf)


def test_the_docker_build_context_holds_what_the_dockerfile_copies() -> None:
    """.dockerignore excludes everything but what COPY names: check each COPY source survives it."""
    rules = [
        r.strip() for r in (ROOT / ".dockerignore").read_text().splitlines() if r.strip() and not r.startswith("#")
    ]

    def included(path: str) -> bool:
        keep = True
        for rule in rules:
            negated = rule.startswith("!")
            pattern = rule.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(path, pattern) or path.startswith(pattern + "/"):
                keep = negated
        return keep

    sources = []
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            sources += line.split()[1:-1]
    assert sources == ["pyproject.toml", "README.md", "src"]
    for source in sources:
        assert (ROOT / source).exists() and included(source), source
    assert not included("tests") and not included(".venv")
