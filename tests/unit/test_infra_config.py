"""Stack config: every wrong key, type or value fails before any resource, naming the key; the stack files parse."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from infra.config import DEFAULTS, SERVICES, ConfigError, parse
from infra.profiles import FULL, LAPTOP

ROOT = Path(__file__).resolve().parents[2]


TEST_GCP_PROJECT = "mlstack-unit-tests"
"""The GCP project the tests set on the gke stack (its file leaves it to the user: no usable default)."""
TEST_AUTHORIZED_NETWORKS = '["198.51.100.7/32"]'
"""The control-plane networks the tests set on the gke stack (likewise the user's own: no safe default)."""


def stack_file(stack: str) -> dict[str, str]:
    """A stack file's ``mlstack:`` keys as Pulumi hands them to the program (strings; lists as JSON)."""
    raw = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    out = {}
    for key, value in raw.items():
        assert key.startswith("mlstack:"), f"{stack}: key {key} outside the mlstack namespace"
        out[key.split(":", 1)[1]] = json.dumps(value) if isinstance(value, list) else str(value)
    return out


def stack_config(stack: str) -> dict[str, str]:
    """The stack file's keys as a user has set them: on gke with ``gcpProject`` (``pulumi config set``)."""
    raw = stack_file(stack)
    if raw.get("cluster") == "gke":
        raw.setdefault("gcpProject", TEST_GCP_PROJECT)
        raw.setdefault("controlPlaneAuthorizedNetworks", TEST_AUTHORIZED_NETWORKS)
    return raw


def test_defaults_are_the_kind_laptop_stack_with_every_service() -> None:
    config = parse({})
    assert config.cluster == "kind" and config.profile is LAPTOP
    assert config.services == SERVICES
    assert config.kind is not None and config.kind.http_port == 8080 and config.gke is None


def test_kind_stack_file_is_laptop_and_gke_stack_file_is_full() -> None:
    kind = parse(stack_config("kind"))
    gke = parse(stack_config("gke"))
    assert (kind.cluster, kind.profile) == ("kind", LAPTOP)
    assert (gke.cluster, gke.profile) == ("gke", FULL)
    assert gke.gke is not None and gke.gke.node_count >= 1


def test_project_schema_declares_every_key_with_the_parsers_default() -> None:
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    assert set(declared) == set(DEFAULTS)
    for key, spec in declared.items():
        assert spec.get("type") in {"string", "integer", "boolean", "array"}, key
        assert spec.get("description"), key
        # The engine refuses to run a stack missing a declared key without a default, and passes defaults as config.
        assert "default" in spec and spec["default"] == DEFAULTS[key], key


def engine_config(stack: str) -> dict[str, str]:
    """What the engine hands the program: every declared default, overridden by the stack file."""
    raw = {k: json.dumps(v) if isinstance(v, list) else str(v) for k, v in DEFAULTS.items()}
    return {**raw, **stack_config(stack)}


@pytest.mark.parametrize("stack", ["kind", "gke"])
def test_stack_files_parse_with_the_engines_defaults(stack: str) -> None:
    assert parse(engine_config(stack)) == parse(stack_config(stack))


def test_gke_without_project_fails_even_with_the_engines_empty_default() -> None:
    raw = {**engine_config("gke"), "gcpProject": ""}
    with pytest.raises(ConfigError, match=r"^mlstack:gcpProject: required for cluster gke"):
        parse(raw)


def test_gke_stack_file_alone_names_gcp_project_and_refuses_the_example() -> None:
    """The gke stack file has no project: it fails until the user sets theirs; an example id is refused by name."""
    with pytest.raises(ConfigError, match=r"^mlstack:gcpProject: required for cluster gke.*pulumi config set"):
        parse(stack_file("gke"))
    with pytest.raises(ConfigError, match=r"^mlstack:gcpProject: 'mlstack-demo' is an example, not your project"):
        parse({**stack_file("gke"), "gcpProject": "mlstack-demo"})
    config = parse(stack_config("gke"))
    assert config.gke is not None and config.gke.project == TEST_GCP_PROJECT


@pytest.mark.parametrize(
    ("raw", "key", "message"),
    [
        ({"profil": "laptop"}, "profil", "unknown key"),
        ({"profile": "huge"}, "profile", "expected one of laptop, full"),
        ({"cluster": "eks"}, "cluster", "expected one of kind, gke"),
        ({"kindHttpPort": "eighty"}, "kindHttpPort", "expected an integer"),
        ({"kindHttpPort": "80"}, "kindHttpPort", "in [1024, 65535]"),
        ({"kindNodeImage": "kindest/node:latest"}, "kindNodeImage", "pinned"),
        ({"kindNodeImage": "kindest/node"}, "kindNodeImage", "pinned"),
        ({"services": '["kafka", "spark"]'}, "services", "unknown service 'spark'"),
        ({"services": "kafka"}, "services", "list of service names"),
        ({"services": '["kserve"]'}, "services", "'kserve' needs 'cert-manager'"),
        ({"ingressDomain": "Not A Domain"}, "ingressDomain", "DNS name"),
        ({"cluster": "gke"}, "gcpProject", "required for cluster gke"),
        ({"cluster": "gke", "gcpProject": "my-project-1", "gkeNodeCount": "0"}, "gkeNodeCount", "[1, 50]"),
        ({"gcpProject": "my-project-1"}, "gcpProject", "does not apply to cluster 'kind'"),
        (
            {
                "cluster": "gke",
                "gcpProject": "my-project-1",
                "controlPlaneAuthorizedNetworks": '["10.0.0.0/8"]',
                "kindHttpPort": "9090",
            },
            "kindHttpPort",
            "does not apply",
        ),
    ],
)
def test_bad_config_fails_naming_the_key(raw: dict[str, str], key: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse(raw)
    assert error.value.key == key
    assert str(error.value).startswith(f"mlstack:{key}: ")
    assert message in str(error.value)


def test_service_subset_keeps_deploy_order() -> None:
    config = parse({"services": '["prometheus", "cert-manager", "kserve"]'})
    assert config.services == ("cert-manager", "kserve", "prometheus")
