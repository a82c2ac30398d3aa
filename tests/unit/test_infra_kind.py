"""The kind cluster's dynamic provider and the preflight checks, against a stand-in ``kind`` CLI on PATH (a script
that records its arguments), so create/diff/delete run for real without Docker; and the deploy command's messages."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest
import yaml

from cli import stack as deploy
from infra import config as stack_config
from infra.cluster import kind, preflight
from infra.profiles import FULL, LAPTOP, Profile
from infra.services import kserve

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


PROPS = {
    "name": "mlstack",
    "node_image": "kindest/node:v1.34.0",
    "http_port": 8080,
    "https_port": 8443,
    "profile": "laptop",
    "kubeconfig": None,
}


def _no_problems(ports: dict[str, int], profile: Profile = LAPTOP, cluster_exists: bool = False) -> list[str]:
    return []


def test_create_runs_kind_with_pinned_image_and_port_mapping(fake_kind: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(preflight, "problems", _no_problems)
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
        preflight,
        "problems",
        lambda ports, profile=LAPTOP, cluster_exists=False: ["docker: the Docker daemon is not reachable"],
    )
    with pytest.raises(RuntimeError, match="preflight failed:\n  docker: the Docker daemon"):
        kind.KindProvider().create(dict(PROPS))
    assert not fake_kind.exists() or "create" not in fake_kind.read_text()


def test_kind_config_maps_the_ingress_http_and_https_node_ports_to_the_host_ports() -> None:
    (node,) = yaml.safe_load(kind.kind_config(18080, 18443))["nodes"]
    assert node["extraPortMappings"] == [
        {"containerPort": port, "hostPort": host, "listenAddress": "127.0.0.1", "protocol": "TCP"}
        for port, host in ((kind.INGRESS_NODE_PORT, 18080), (kind.INGRESS_HTTPS_NODE_PORT, 18443))
    ]
    # The node ports are the ones the KnativeServing pins Kourier's gateway Service to.
    assert (kserve.KOURIER_NODE_PORT, kserve.KOURIER_HTTPS_NODE_PORT) == (31080, 31443)


def test_diff_replaces_on_name_image_or_ports_only() -> None:
    provider = kind.KindProvider()
    assert not provider.diff("x", dict(PROPS), dict(PROPS)).changes
    changed = provider.diff("x", dict(PROPS), {**PROPS, "node_image": "kindest/node:v1.35.0"})
    assert changed.changes and changed.replaces == ["node_image"] and changed.delete_before_replace
    assert provider.diff("x", dict(PROPS), {**PROPS, "https_port": 9443}).replaces == ["https_port"]
    # A cluster created before the HTTPS mapping existed has no https_port: replaced, so it gets the mapping.
    before = {k: v for k, v in PROPS.items() if k != "https_port"}
    assert provider.diff("x", before, dict(PROPS)).replaces == ["https_port"]


def test_port_check_names_the_taken_port_and_the_key_that_sets_it(monkeypatch: pytest.MonkeyPatch) -> None:
    for check in ("architecture", "docker", "kind_cli", "inotify", "memory", "cpu"):
        monkeypatch.setattr(preflight, check, lambda *_: None)
    with socket.socket() as sock, socket.socket() as free:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        busy = sock.getsockname()[1]
        free.bind(("127.0.0.1", 0))
        unused = free.getsockname()[1]
        free.close()
        found = preflight.problems({"kindHttpPort": unused, "kindHttpsPort": busy})
    assert found == [
        f"port {busy}: port {busy} is taken (see `ss -ltnp 'sport = :{busy}'`): free it or choose another with "
        "`pulumi config set kindHttpsPort <port>`"
    ]


def test_https_port_is_configured_and_differs_from_the_http_port() -> None:
    config = stack_config.parse({"cluster": "kind", "kindHttpsPort": "9443"})
    assert config.kind is not None and config.kind.host_ports == {"kindHttpPort": 8080, "kindHttpsPort": 9443}
    default = stack_config.parse({"cluster": "kind"}).kind
    assert default is not None and default.https_port == 8443
    with pytest.raises(stack_config.ConfigError, match="mlstack:kindHttpsPort: must differ from mlstack:kindHttpPort"):
        stack_config.parse({"cluster": "kind", "kindHttpPort": "9000", "kindHttpsPort": "9000"})


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


def _machine_full(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine whose memory, CPU and port checks fail (as they do once the stack's own cluster runs) and whose
    other checks pass."""
    for check in ("architecture", "docker", "kind_cli", "inotify"):
        monkeypatch.setattr(preflight, check, lambda: None)
    monkeypatch.setattr(preflight, "memory", lambda profile=LAPTOP: "100 MiB of memory available")
    monkeypatch.setattr(preflight, "cpu", lambda profile=LAPTOP: "1 CPU cores")
    monkeypatch.setattr(preflight, "port_free", lambda port, key: lambda: f"port {port} is taken")


def test_existing_cluster_skips_the_creation_only_checks(fake_kind: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A retried create on the stack's running cluster: its port mapping holds the port and it uses the memory, so
    only the checks of what a new cluster needs are skipped, and the cluster is adopted, not created again."""
    _machine_full(monkeypatch)
    with pytest.raises(RuntimeError, match="preflight failed:\n  memory: 100 MiB") as refused:
        kind.KindProvider().create(dict(PROPS))
    assert "port 8080: port 8080 is taken" in str(refused.value) and "port 8443: port 8443 is taken" in str(
        refused.value
    )
    assert "create cluster" not in fake_kind.read_text()
    (fake_kind.parent / "clusters").write_text("other\nmlstack\n")
    assert preflight.kind_cluster_exists("mlstack") and not preflight.kind_cluster_exists("absent")
    result = kind.KindProvider().create(dict(PROPS))
    assert result.outs["kubeconfig"].startswith("apiVersion: v1")
    assert "create cluster" not in fake_kind.read_text()
    ports = {"kindHttpPort": 8080, "kindHttpsPort": 8443}
    assert preflight.problems(ports, LAPTOP, cluster_exists=True) == []
    names = [c.name for c in preflight.checks(ports, LAPTOP, cluster_exists=True)]
    assert names == ["architecture", "docker", "kind", "inotify"]


def test_provider_checks_the_stacks_profile(fake_kind: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[dict[str, int], str, bool]] = []

    def record(ports: dict[str, int], profile: Profile = LAPTOP, cluster_exists: bool = False) -> list[str]:
        seen.append((ports, profile.name, cluster_exists))
        return []

    monkeypatch.setattr(preflight, "problems", record)
    kind.KindProvider().create({**PROPS, "http_port": 18080, "https_port": 18443, "profile": "full"})
    assert seen == [({"kindHttpPort": 18080, "kindHttpsPort": 18443}, "full", False)]
    # The profile is an input of the cluster resource (set from the stack), but changing it replaces nothing.
    assert not kind.KindProvider().diff("x", dict(PROPS), {**PROPS, "profile": "full"}).changes


def _stack_files(monkeypatch: pytest.MonkeyPatch, settings: dict[str, str]) -> None:
    """What ``Pulumi.<stack>.yaml`` says, for ``make up`` (cli.stack) and ``make preflight`` (read in infra.config)."""
    for module in (deploy, stack_config):
        monkeypatch.setattr(module, "stack_settings", lambda stack: settings)


def _kind_stack(monkeypatch: pytest.MonkeyPatch, settings: dict[str, str]) -> None:
    _stack_files(monkeypatch, settings)
    monkeypatch.setattr(deploy, "pulumi_cli", lambda: Path("/usr/bin/pulumi"))
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "test")


def test_second_up_on_a_running_cluster_passes_its_preflight(monkeypatch: pytest.MonkeyPatch) -> None:
    _kind_stack(monkeypatch, {"cluster": "kind", "kindClusterName": "mlstack"})
    _machine_full(monkeypatch)
    monkeypatch.setattr(preflight, "kind_cluster_exists", lambda name: False)
    first = deploy.problems("up", "kind")
    assert [line.split(":")[0] for line in first] == ["memory", "cpu", "port 8080", "port 8443"]
    monkeypatch.setattr(preflight, "kind_cluster_exists", lambda name: name == "mlstack")
    assert deploy.problems("up", "kind") == []


def test_up_and_make_preflight_check_the_stacks_port_and_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    _kind_stack(monkeypatch, {"cluster": "kind", "profile": "full", "kindHttpPort": "18080", "kindHttpsPort": "18443"})
    monkeypatch.setattr(preflight, "docker", lambda: None)
    monkeypatch.setattr(preflight, "kind_cli", lambda: None)
    monkeypatch.setattr(preflight, "kind_cluster_exists", lambda name: False)
    seen: list[tuple[dict[str, int], Profile, bool]] = []

    def record(ports: dict[str, int], profile: Profile = LAPTOP, cluster_exists: bool = False) -> list[str]:
        seen.append((ports, profile, cluster_exists))
        return []

    monkeypatch.setattr(preflight, "problems", record)
    assert deploy.problems("up", "kind") == []
    assert preflight.main(["--stack", "kind"]) == 0  # `make preflight`
    assert preflight.main(["--stack", "kind", "9999"]) == 0  # an explicit port still overrides the HTTP one
    stack_ports = {"kindHttpPort": 18080, "kindHttpsPort": 18443}
    assert seen == [
        (stack_ports, FULL, False),
        (stack_ports, FULL, False),
        ({**stack_ports, "kindHttpPort": 9999}, FULL, False),
    ]
    _stack_files(
        monkeypatch,
        {"cluster": "gke", "gcpProject": "my-project-1", "controlPlaneAuthorizedNetworks": '["10.0.0.0/8"]'},
    )
    assert preflight.main(["--stack", "gke"]) == 0 and len(seen) == 3  # nothing to check off kind


def test_make_preflight_reads_the_kind_stack_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without arguments `make preflight` checks the kind stack as Pulumi.kind.yaml configures it."""
    seen: list[tuple[dict[str, int], str]] = []

    def record(ports: dict[str, int], profile: Profile = LAPTOP, cluster_exists: bool = False) -> list[str]:
        seen.append((ports, profile.name))
        return []

    monkeypatch.delenv("STACK", raising=False)
    monkeypatch.setattr(preflight, "kind_cluster_exists", lambda name: False)
    monkeypatch.setattr(preflight, "problems", record)
    assert preflight.main([]) == 0
    settings = deploy.stack_settings("kind")
    ports = {"kindHttpPort": int(settings["kindHttpPort"]), "kindHttpsPort": int(settings["kindHttpsPort"])}
    assert seen == [(ports, settings["profile"])]


def test_gke_stack_needs_gcloud_and_its_auth_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    _kind_stack(
        monkeypatch,
        {
            "cluster": "gke",
            "profile": "full",
            "gcpProject": "my-project-1",
            "controlPlaneAuthorizedNetworks": '["10.0.0.0/8"]',
        },
    )
    monkeypatch.setattr(preflight.shutil, "which", lambda name: None)
    found = deploy.problems("up", "gke")
    assert found[0].startswith("gcloud not found: install the Google Cloud CLI")
    assert found[1].startswith("gke-gcloud-auth-plugin not found: install it (`gcloud components install")
    assert len(found) == 2
    monkeypatch.setattr(preflight.shutil, "which", lambda name: f"/usr/bin/{name}")
    assert deploy.problems("preview", "gke") == []


def test_gke_stack_file_without_project_names_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deploy, "pulumi_cli", lambda: Path("/usr/bin/pulumi"))
    found = deploy.problems("preview", "gke")
    assert found == [found[0]] and found[0].startswith("mlstack:gcpProject: required for cluster gke")
