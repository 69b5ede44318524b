"""deploy/: the manifests validated with their own tools where they run here, and checked for
what the operations spec asks (replicas, HPA, single beat, migration Job, probes, non-root).

- Kubernetes: every object against the official OpenAPI schemas, strictly (unknown fields
  fail), with kubernetes-validate (bundled schemas, no cluster needed); `kubectl kustomize`
  renders the kustomization when kubectl is installed.
- Compose: `docker compose config` (or docker-compose) when installed; the structure always.
- The image: shell syntax of the entry point; the Dockerfile's stages and user.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
K8S = DEPLOY / "k8s"


def k8s_objects() -> list[dict[str, Any]]:
    objects = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        objects.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return objects


def by_kind(kind: str, name: str) -> dict[str, Any]:
    matches = [o for o in k8s_objects() if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}"
    return matches[0]


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["template"]["spec"]


@pytest.mark.parametrize("obj", k8s_objects(), ids=lambda o: f"{o['kind']}/{o['metadata']['name']}")
def test_every_kubernetes_object_matches_the_official_schema(obj):
    kubernetes_validate.validate(obj, kubernetes_validate.utils.latest_version(), strict=True)


def test_the_kustomization_lists_every_manifest_and_renders():
    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed: the kustomization's rendering is not checked here")
    rendered = subprocess.run(["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60, check=True).stdout
    assert len([doc for doc in yaml.safe_load_all(rendered) if doc]) == len(k8s_objects())


def test_web_has_three_replicas_an_hpa_probes_and_time_to_drain():
    web = by_kind("Deployment", "one-api-web")
    assert web["spec"]["replicas"] == 3
    hpa = by_kind("HorizontalPodAutoscaler", "one-api-web")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "one-api-web"}
    assert hpa["spec"]["minReplicas"] >= 3 and hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
    container = pod_spec(web)["containers"][0]
    assert container["args"] == ["web"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    config = by_kind("ConfigMap", "one-api-config")["data"]
    assert pod_spec(web)["terminationGracePeriodSeconds"] > int(config["SHUTDOWN_TIMEOUT_SEC"]) + 5


def test_beat_runs_alone_and_migrations_run_as_a_job():
    beat = by_kind("Deployment", "one-api-beat")
    assert beat["spec"]["replicas"] == 1 and beat["spec"]["strategy"]["type"] == "Recreate"
    assert pod_spec(beat)["containers"][0]["args"] == ["beat"]
    assert pod_spec(by_kind("Deployment", "one-api-worker"))["containers"][0]["args"] == ["worker"]
    job = by_kind("Job", "one-api-migrate")
    assert pod_spec(job)["containers"][0]["args"] == ["migrate"] and pod_spec(job)["restartPolicy"] == "Never"


def test_every_pod_is_non_root_and_reads_the_config_and_secret():
    secret_keys = set(by_kind("Secret", "one-api-secrets")["stringData"])
    assert {"SESSION_SECRET", "SQL_DSN", "REDIS_CONN_STRING", "METRICS_TOKEN"} <= secret_keys
    for obj in k8s_objects():
        if obj["kind"] not in {"Deployment", "Job"}:
            continue
        spec = pod_spec(obj)
        assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] != 0
        for container in spec["containers"]:
            sources = {next(iter(ref.values()))["name"] for ref in container["envFrom"]}
            assert sources == {"one-api-config", "one-api-secrets"}
            assert container["securityContext"]["allowPrivilegeEscalation"] is False


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_compose_has_the_production_layout():
    services = compose()["services"]
    assert {"postgres", "redis", "migrate", "web-1", "web-2", "worker", "beat", "proxy"} <= set(services)
    for name in ("web-1", "web-2"):
        web = services[name]
        assert web["command"] == ["web"]
        assert "/healthz" in " ".join(web["healthcheck"]["test"])
        assert web["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert web["environment"]["SQL_DSN"].startswith("postgres://") and web["environment"]["REDIS_CONN_STRING"]
    assert services["beat"]["command"] == ["beat"] and "deploy" not in services["beat"]
    upstreams = re.findall(r"server (web-\d):3000;", (DEPLOY / "nginx.conf").read_text())
    assert upstreams == ["web-1", "web-2"]


def test_compose_config_validates_with_docker_compose():
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        command = ["docker", "compose"]
    elif shutil.which("docker-compose"):
        command = ["docker-compose"]
    else:
        pytest.skip("neither `docker compose` nor docker-compose is installed")
    env = {**os.environ, "SESSION_SECRET": "x" * 32}
    result = subprocess.run(
        [*command, "-f", str(DEPLOY / "compose.yaml"), "config", "-q"], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    missing = subprocess.run(
        [*command, "-f", str(DEPLOY / "compose.yaml"), "config", "-q"], capture_output=True, text=True,
        env={k: v for k, v in env.items() if k != "SESSION_SECRET"}, timeout=60,
    )
    assert missing.returncode != 0 and "SESSION_SECRET" in missing.stderr


def test_the_image_is_multi_stage_non_root_and_runs_each_process():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", dockerfile, re.M)) >= 2
    user = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert user and user[-1].split(":")[0] not in {"0", "root"}
    assert 'ENTRYPOINT ["/app/deploy/entrypoint.sh"]' in dockerfile
    entrypoint = DEPLOY / "entrypoint.sh"
    assert subprocess.run(["sh", "-n", str(entrypoint)], capture_output=True).returncode == 0
    text = entrypoint.read_text()
    for process in ("web)", "worker)", "beat)", "migrate)"):
        assert process in text
    assert "--timeout-graceful-shutdown" in text and "PROMETHEUS_MULTIPROC_DIR" in text
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    assert {".git", ".venv", "data", ".env"} <= set(ignored)
