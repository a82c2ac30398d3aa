"""The kind cluster's dynamic provider and the preflight checks, against a stand-in ``kind`` CLI on PATH (a script
that records its arguments), so create/diff/delete run for real without Docker; and the deploy command's messages."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from infra import deploy
from infra.cluster import kind, preflight
from infra.profiles import LAPTOP

FAKE_KIND = """#!/bin/sh
echo "$@" >> "{log}"
case "$1 $2" in
  "get clusters") cat "{clusters}" 2>/dev/null || true ;;
  "get kubeconfig") printf 'apiVersion: v1\\nkind: Config\\n' ;;
  "create cluster") echo "$4" >> "{clusters}" ;;
  "delete cluster") : > "{clusters}" ;;
esac
"""


@pytest.fixture
def fake_kind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    log = tmp_path / "calls.log"
    script = tmp_path / "bin" / "kind"
    script.parent.mkdir()
    script.write_text(FAKE_KIND.format(log=log, clusters=tmp_path / "clusters"))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}{os.environ['PATH']}")
    return log


PROPS = {"name": "mlstack", "node_image": "kindest/node:v1.34.0", "http_port": 8080, "kubeconfig": None}


def test_create_runs_kind_with_pinned_image_and_port_mapping(fake_kind: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(preflight, "problems", lambda port, profile=LAPTOP: [])
    result = kind.KindProvider().create(dict(PROPS))
    assert result.id == "mlstack"
    assert result.outs["kubeconfig"].startswith("apiVersion: v1")
    calls = fake_kind.read_text().splitlines()
    create = next(c for c in calls if c.startswith("create cluster"))
    assert "--name mlstack" in create and "--image kindest/node:v1.34.0" in create
    # A second create (e.g. after a failed up) reuses the existing cluster instead of failing.
    kind.KindProvider().create(dict(PROPS))
    assert sum(c.startswith("create cluster") for c in fake_kind.read_text().splitlines()) == 1
    kind.KindProvider().delete("mlstack", dict(PROPS))
    assert fake_kind.read_text().splitlines()[-1] == "delete cluster --name mlstack"


def test_create_refuses_when_preflight_fails(fake_kind: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        preflight, "problems", lambda port, profile=LAPTOP: ["docker: the Docker daemon is not reachable"]
    )
    with pytest.raises(RuntimeError, match="preflight failed:\n  docker: the Docker daemon"):
        kind.KindProvider().create(dict(PROPS))
    assert not fake_kind.exists() or "create" not in fake_kind.read_text()


def test_kind_config_maps_the_ingress_node_port_to_the_host_port() -> None:
    config = kind.kind_config(18080)
    assert f"containerPort: {kind.INGRESS_NODE_PORT}" in config and "hostPort: 18080" in config
    assert "listenAddress: 127.0.0.1" in config


def test_diff_replaces_on_name_image_or_port_only() -> None:
    provider = kind.KindProvider()
    assert not provider.diff("x", dict(PROPS), dict(PROPS)).changes
    changed = provider.diff("x", dict(PROPS), {**PROPS, "node_image": "kindest/node:v1.35.0"})
    assert changed.changes and changed.replaces == ["node_image"] and changed.delete_before_replace


def test_port_check_names_the_taken_port_and_the_fix() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        problem = preflight.port_free(port)()
    assert problem is not None and f"port {port} is taken" in problem and "kindHttpPort" in problem


def test_memory_cpu_and_inotify_checks_say_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(preflight, "_meminfo_mib", lambda field: 2048)
    problem = preflight.memory(LAPTOP)
    assert problem is not None and "2048 MiB" in problem and "give Docker more memory" in problem
    monkeypatch.setattr(preflight.os, "cpu_count", lambda: 1)
    cpu = preflight.cpu(LAPTOP)
    assert cpu is not None and "1 CPU cores" in cpu
    monkeypatch.setattr(preflight.platform, "machine", lambda: "riscv64")
    arch = preflight.architecture()
    assert arch is not None and "riscv64" in arch


def test_docker_and_kind_missing_say_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(preflight.shutil, "which", lambda name: None)
    assert "install Docker" in str(preflight.docker())
    assert "go install sigs.k8s.io/kind@" in str(preflight.kind_cli())


def test_deploy_says_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deploy, "pulumi_cli", lambda: None)
    monkeypatch.setattr(preflight, "docker", lambda: "docker not found: install Docker Engine")
    monkeypatch.setattr(preflight, "kind_cli", lambda: None)
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE", raising=False)
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE_FILE", raising=False)
    found = deploy.problems("up", "kind")
    assert found[0].startswith("pulumi CLI not found: install it")
    assert any(line.startswith("docker not found") for line in found)
    assert found[-1].startswith("PULUMI_CONFIG_PASSPHRASE is not set")
    # preview needs neither Docker nor kind; an unknown stack is named with the known ones
    assert not any("docker" in line for line in deploy.problems("preview", "kind"))
    assert "choose one of gke, kind" in deploy.problems("preview", "eks")[-1]
    assert deploy.main(["up", "--stack", "kind"]) == 2
