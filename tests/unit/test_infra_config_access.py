"""Who reaches a GKE stack (issue 22 items 1 and 4): the control plane only from listed networks, the inference
gateway internal unless opted public, and public only with the source ranges it admits."""

from __future__ import annotations

import pytest

from infra.config import ConfigError, parse
from tests.unit.test_infra_config import stack_config, stack_file


def gke(**overrides: str) -> dict[str, str]:
    return {**stack_config("gke"), **overrides}


def test_gke_defaults_are_private() -> None:
    settings = parse(gke()).gke
    assert settings is not None
    assert settings.authorized_networks == ("198.51.100.7/32",)
    assert settings.private_nodes is True
    assert (settings.public_inference, settings.allowed_source_ranges) == (False, ())


def test_gke_stack_file_alone_names_the_authorized_networks() -> None:
    """No safe default: the stack file runs only once the operator lists the networks that reach the API server."""
    raw = {**stack_file("gke"), "gcpProject": "mlstack-unit-tests"}
    with pytest.raises(ConfigError, match=r"^mlstack:controlPlaneAuthorizedNetworks: required for cluster gke"):
        parse(raw)
    with pytest.raises(ConfigError, match=r"^mlstack:controlPlaneAuthorizedNetworks: required"):
        parse({**raw, "controlPlaneAuthorizedNetworks": "[]"})


def test_public_inference_without_ranges_is_refused_naming_both_keys() -> None:
    for raw in (gke(publicInference="true"), gke(publicInference="true", allowedSourceRanges="[]")):
        with pytest.raises(ConfigError) as error:
            parse(raw)
        assert error.value.key == "allowedSourceRanges"
        assert "mlstack:allowedSourceRanges" in str(error.value) and "mlstack:publicInference" in str(error.value)


def test_public_inference_with_ranges() -> None:
    ranges = '["203.0.113.0/24", "2001:db8::/32"]'
    # A public gateway also needs certificates its callers can verify (tests/manifests/test_gateway_security.py).
    settings = parse(
        gke(publicInference="true", allowedSourceRanges=ranges, tlsIssuer="provided", tlsClusterIssuer="corp")
    ).gke
    assert settings is not None and settings.public_inference
    assert settings.allowed_source_ranges == ("203.0.113.0/24", "2001:db8::/32")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("controlPlaneAuthorizedNetworks", '["not-a-cidr"]', "'not-a-cidr' is not a CIDR"),
        ("controlPlaneAuthorizedNetworks", '["10.0.0.1/8"]', "is not a CIDR"),  # host bits set: a typo
        ("controlPlaneAuthorizedNetworks", '["0.0.0.0/0"]', "admits every address"),
        ("controlPlaneAuthorizedNetworks", "10.0.0.0/8", "expected a list of CIDRs"),
        ("allowedSourceRanges", '["::/0"]', "admits every address"),
        ("allowedSourceRanges", '["300.1.1.1/32"]', "is not a CIDR"),
        ("publicInference", "yes", "expected true or false"),
        ("gkePrivateNodes", "1", "expected true or false"),
    ],
)
def test_bad_access_values_fail_naming_the_key(key: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse(gke(**{key: value}))
    assert error.value.key == key and message in str(error.value)


@pytest.mark.parametrize(
    ("key", "value"),
    [("publicInference", "true"), ("allowedSourceRanges", '["10.0.0.0/8"]'), ("gkePrivateNodes", "false")],
)
def test_gke_access_keys_do_not_apply_to_kind(key: str, value: str) -> None:
    with pytest.raises(ConfigError, match=rf"^mlstack:{key}: does not apply to cluster 'kind'"):
        parse({key: value})


def test_engine_defaults_for_the_new_keys_pass_on_kind() -> None:
    """The engine passes every declared default; its spelling of booleans is lower-case."""
    config = parse({"publicInference": "false", "gkePrivateNodes": "true", "allowedSourceRanges": "[]"})
    assert config.gke is None
