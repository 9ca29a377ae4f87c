"""The deployment files are checked by tools, not by eye: Kubernetes manifests against the Kubernetes schemas
(kubernetes-validate, offline), every ``bwc`` command they run against the program's own options, and the
properties production depends on (stateless API replicas, one shared signing key, fixity on a schedule,
probes, resources, non-root)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from typer.testing import CliRunner

from api.cli.main import app

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
MANIFESTS = sorted((DEPLOY / "kubernetes").glob("*.yaml"))
K8S_VERSION = "1.30.0"  # the oldest Kubernetes the manifests promise to work on


def _documents() -> list[dict[str, Any]]:
    return [d for path in MANIFESTS for d in yaml.safe_load_all(path.read_text()) if d]


def _pod_specs(doc: dict[str, Any]) -> list[dict[str, Any]]:
    if doc["kind"] == "Deployment":
        return [doc["spec"]["template"]["spec"]]
    if doc["kind"] == "CronJob":
        return [doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]]
    return []


def _by_kind(kind: str) -> list[dict[str, Any]]:
    return [d for d in _documents() if d["kind"] == kind]


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_every_manifest_validates_against_the_kubernetes_schemas(path: Path) -> None:
    for doc in yaml.safe_load_all(path.read_text()):
        if doc:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_a_manifest_with_a_mistake_is_refused_by_the_validator() -> None:
    (deployment,) = _by_kind("Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["resourcess"] = {}  # a typo strict mode must catch
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def _containers() -> list[dict[str, Any]]:
    return [
        c for d in _documents() for spec in _pod_specs(d) for c in spec.get("initContainers", []) + spec["containers"]
    ]


def test_every_bwc_command_in_the_manifests_exists_with_its_options() -> None:
    runner = CliRunner()
    commands = [c["command"] for c in _containers() if c["command"][0] == "bwc"]
    assert commands
    for command in commands:
        words = [w for w in command[1:] if not w.startswith("-")]
        sub = words[:1]
        result = runner.invoke(app, [*sub, "--help"])
        assert result.exit_code == 0, (command, result.output)
        for option in (w.split("=")[0] for w in command if w.startswith("--")):
            assert option in result.output, f"{' '.join(command)}: bwc {sub[0]} has no {option}"


def test_api_replicas_are_stateless_and_probed_and_share_one_signing_key() -> None:
    (deployment,) = _by_kind("Deployment")
    spec = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] >= 2
    (api,) = spec["containers"]
    assert "--no-watch" in api["command"]
    assert api["readinessProbe"]["httpGet"]["path"] == "/api/v1/healthz"
    assert api["livenessProbe"]["httpGet"]["path"] == "/api/v1/healthz"
    key_volume = next(v for v in spec["volumes"] if v["name"] == "signing-key")
    assert key_volume["secret"]["secretName"] == "bwc-signing-key"  # one Secret for all replicas
    (config,) = _by_kind("ConfigMap")
    key_path = Path(config["data"]["BWC_SIGNING_KEY_PATH"])
    mount = next(m for m in api["volumeMounts"] if m["name"] == "signing-key")
    assert key_path.parent == Path(mount["mountPath"]) and mount["readOnly"] is True


def test_fixity_runs_on_a_schedule_and_a_failure_is_not_retried_away() -> None:
    (cron,) = _by_kind("CronJob")
    job = cron["spec"]["jobTemplate"]["spec"]
    (container,) = job["template"]["spec"]["containers"]
    assert container["command"][:3] == ["bwc", "fixity", "--sample"]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid" and job["backoffLimit"] == 0


def test_every_container_runs_as_non_root_with_resource_requests() -> None:
    for doc in _documents():
        for spec in _pod_specs(doc):
            assert spec["securityContext"]["runAsNonRoot"] is True, doc["metadata"]["name"]
            for c in spec.get("initContainers", []) + spec["containers"]:
                assert c["resources"]["requests"]["memory"] and c["resources"]["requests"]["cpu"], c["name"]
                assert c["securityContext"]["allowPrivilegeEscalation"] is False, c["name"]


def test_the_image_runs_as_the_uid_the_manifests_expect_and_carries_ffmpeg() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "ffmpeg" in dockerfile
    assert "useradd --system --uid 10001" in dockerfile and "\nUSER bwc" in dockerfile
    uids = {d["spec"]["template"]["spec"]["securityContext"]["runAsUser"] for d in _by_kind("Deployment")}
    assert uids == {10001}


def _compose_command() -> list[str]:
    """Docker's compose plugin where there is one, else Debian's docker-compose (make deploy-tools installs it)."""
    docker = shutil.which("docker")
    if docker is not None and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    found = shutil.which("docker-compose")
    if found is not None:
        return [found]
    if os.environ.get("CI") == "true":
        pytest.fail("docker-compose is required under CI=true to validate deploy/compose.yaml (make deploy-tools)")
    pytest.skip("neither docker compose nor docker-compose is installed here (make deploy-tools installs it)")


def _compose_config(path: Path) -> subprocess.CompletedProcess[str]:
    env = {"POSTGRES_PASSWORD": "x", "MINIO_ROOT_USER": "x", "MINIO_ROOT_PASSWORD": "x", "BWC_STATION_TOKEN": "x"}
    env["PATH"] = "/usr/bin:/bin"
    argv = [*_compose_command(), "-f", str(path), "config", "-q"]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)


def test_compose_file_runs_the_service_and_a_station_with_options_bwc_knows() -> None:
    doc = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert {"db", "bwc", "station"} <= set(doc["services"])
    assert "--no-watch" in doc["services"]["bwc"]["command"]  # the station watches the folder, not the service
    station = doc["services"]["station"]
    argv = station["command"]
    assert argv[:2] == ["bwc", "watch"] and "--server" in argv and "--token" not in argv
    assert "BWC_TOKEN" in station["environment"] and not any(
        k.startswith("BWC_DATABASE") for k in station["environment"]
    )
    help_text = CliRunner().invoke(app, ["watch", "--help"], env={"COLUMNS": "200"}).output
    assert all(option in help_text for option in argv if option.startswith("--"))


def test_compose_file_is_valid_for_docker_compose_and_a_mistake_is_refused(tmp_path: Path) -> None:
    compose = DEPLOY / "compose.yaml"
    result = _compose_config(compose)
    assert result.returncode == 0, result.stderr
    broken = tmp_path / "compose.yaml"
    broken.write_text(compose.read_text().replace("\n    image:", "\n    imagee:", 1))
    refused = _compose_config(broken)
    assert refused.returncode != 0 and "imagee" in refused.stderr, refused.stderr
