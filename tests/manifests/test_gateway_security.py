"""The inference gateway's TLS and keys (issue 22 items 2 and 3) on both stacks: HTTPS hosts with certificates from a
ClusterIssuer of the config, and every request checked by the key check before a model server; the key check itself
runs the repository's script with the least privilege; the config refuses what a security review would."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from infra.config import ConfigError, parse
from infra.services import cert_manager, inference_auth, kserve
from serving import auth_gateway
from tests.support import pulumi_mocks as mocks
from tests.unit.test_infra_config import stack_config

PUBLIC = {"publicInference": "true", "allowedSourceRanges": json.dumps(["203.0.113.0/24"])}
ACME = {**PUBLIC, "tlsIssuer": "acme", "acmeEmail": "ops@example.org"}
PROVIDED = {"tlsIssuer": "provided", "tlsClusterIssuer": "corp-ca"}
CASES: dict[str, dict[str, str]] = {
    "kind": {},
    "kind-provided": PROVIDED,
    "gke": {},
    "gke-public-acme": ACME,
    "gke-public-provided": {**PUBLIC, **PROVIDED},
}
KNATIVE_SERVING = "kubernetes:operator.knative.dev/v1beta1:KnativeServing"


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> tuple[str, mocks.Run]:
    stack = request.param.split("-")[0]
    return request.param, mocks.run({**stack_config(stack), **CASES[request.param]}, stack_name=stack)


def serving_config(run: mocks.Run) -> dict[str, Any]:
    (serving,) = run.of_type(KNATIVE_SERVING)
    config: dict[str, Any] = serving.inputs["spec"]["config"]
    return config


def of_kind(run: mocks.Run, kind: str) -> list[dict[str, Any]]:
    return [r.inputs for r in run.registrations if r.typ.endswith(f":{kind}") and "metadata" in r.inputs]


def test_model_endpoints_are_https_with_certificates_of_the_configured_issuer(case: tuple[str, mocks.Run]) -> None:
    name, run = case
    config = serving_config(run)
    network = config["network"]
    assert network["external-domain-tls"] == "Enabled"
    assert network["certificate-class"] == kserve.CERTIFICATE_CLASS
    assert network["ingress-class"] == "kourier.ingress.networking.knative.dev"
    # GKE answers plain HTTP with a redirect; kind keeps it on its 127.0.0.1 port beside HTTPS.
    assert network["http-protocol"] == ("Enabled" if name.startswith("kind") else "Redirected")
    issuer_ref = yaml.safe_load(config["certmanager"]["issuerRef"])
    assert issuer_ref["kind"] == "ClusterIssuer"
    issuers = {i["metadata"]["name"]: i["spec"] for i in of_kind(run, "ClusterIssuer")}
    if "provided" in name:
        assert issuer_ref["name"] == "corp-ca" and issuers == {}  # the operator's own issuer, not created here
    elif "acme" in name:
        acme = issuers[issuer_ref["name"]]["acme"]
        assert acme["email"] == "ops@example.org" and acme["server"].startswith("https://")
        assert acme["solvers"] == [{"http01": {"ingress": {}}}]
    else:  # the stack's own CA: a self-signed root signs the CA whose issuer Knative asks
        assert issuers[issuer_ref["name"]] == {"ca": {"secretName": cert_manager.GATEWAY_CA}}
        (ca,) = of_kind(run, "Certificate")
        assert ca["spec"]["isCA"] is True and ca["spec"]["secretName"] == cert_manager.GATEWAY_CA
        assert ca["metadata"]["namespace"] == "cert-manager"  # cert-manager's cluster resource namespace
        assert issuers[ca["spec"]["issuerRef"]["name"]] == {"selfSigned": {}}


def test_every_request_is_checked_before_a_model_and_refused_when_the_check_is_down(
    case: tuple[str, mocks.Run],
) -> None:
    _, run = case
    kourier = serving_config(run)["kourier"]
    assert kourier["extauthz-protocol"] == "http"
    assert kourier["extauthz-failure-mode-allow"] == "false"
    host, port = kourier["extauthz-host"].rsplit(":", 1)
    service = run.named("kserve-auth-service").inputs
    assert host == f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc.cluster.local"
    assert [p["port"] for p in service["spec"]["ports"]] == [int(port)]


def test_the_key_check_runs_the_repository_script_with_read_access_to_key_secrets_only(
    case: tuple[str, mocks.Run],
) -> None:
    _, run = case
    ns = inference_auth.NAMESPACE
    script = run.named("kserve-auth-script").inputs
    assert script["data"] == {"auth_gateway.py": inference_auth.SCRIPT.read_text()}
    pod = run.named("kserve-auth").inputs["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["python", "-I", "/app/auth_gateway.py"]
    assert container["args"][container["args"].index("--namespace") + 1] == ns
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["serviceAccountName"] == inference_auth.NAME and pod["securityContext"]["runAsNonRoot"] is True
    # Its only grant: read Secrets of its own namespace, where nothing but consumer keys lives.
    roles = [r for r in of_kind(run, "Role") if r["metadata"]["namespace"] == ns]
    assert [r["rules"] for r in roles] == [
        [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"]}]
    ]
    bindings = [b for b in of_kind(run, "RoleBinding") if b["metadata"]["namespace"] == ns]
    assert [b["subjects"] for b in bindings] == [
        [{"kind": "ServiceAccount", "name": inference_auth.NAME, "namespace": ns}]
    ]
    cluster_wide = of_kind(run, "ClusterRoleBinding")
    assert not any(s.get("name") == inference_auth.NAME for b in cluster_wide for s in b.get("subjects", []))
    assert not [s for s in of_kind(run, "Secret") if s["metadata"].get("namespace") == ns]  # keys come from `mlstack`


def test_only_the_gateway_reaches_the_key_check(case: tuple[str, mocks.Run]) -> None:
    _, run = case
    ns = inference_auth.NAMESPACE
    policies = {
        p["metadata"]["name"]: p["spec"] for p in of_kind(run, "NetworkPolicy") if p["metadata"]["namespace"] == ns
    }
    assert policies["default-deny-ingress"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    (rule,) = policies["allow-kourier-gateway"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": inference_auth.PORT}]
    (peer,) = rule["from"]  # no same-namespace peer: nothing else runs there
    assert peer["namespaceSelector"]["matchExpressions"][0]["values"] == sorted(kserve.KNATIVE_INGRESS_NAMESPACES)


def test_keys_are_off_only_where_asked_and_never_on_a_public_gateway() -> None:
    run = mocks.run({**stack_config("kind"), "inferenceAuth": "false"}, stack_name="kind")
    assert "kourier" not in serving_config(run)
    assert not [r for r in run.registrations if r.name.startswith("kserve-auth")]
    with pytest.raises(ConfigError, match="inferenceAuth: a public gateway always checks keys"):
        parse({**stack_config("gke"), **ACME, "inferenceAuth": "false"})


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({**PUBLIC}, "tlsIssuer: a public gateway needs certificates its callers can verify"),
        ({"tlsIssuer": "acme", "acmeEmail": "ops@example.org"}, "tlsIssuer: acme solves HTTP-01 through the gateway"),
        ({**PUBLIC, "tlsIssuer": "acme"}, "acmeEmail: required when tlsIssuer is acme"),
        ({"tlsIssuer": "provided"}, "tlsClusterIssuer: required when tlsIssuer is provided"),
        ({"tlsClusterIssuer": "corp-ca"}, "tlsClusterIssuer: only used with tlsIssuer provided"),
        ({"acmeEmail": "ops@example.org"}, "acmeEmail: only used with tlsIssuer acme"),
        ({**ACME, "acmeEmail": "not-an-address"}, "acmeEmail: expected an e-mail address"),
        ({"tlsIssuer": "letsencrypt"}, "tlsIssuer: expected one of self-signed, acme, provided"),
    ],
)
def test_the_config_refuses_gateways_a_caller_could_not_trust(raw: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse({**stack_config("gke"), **raw})


def test_stored_key_hashes_are_what_both_checks_compute() -> None:
    """The Secret's hash and the map file's are the key's SHA-256 in lower-case hex (HAProxy: sha2(256),hex,lower)."""
    key = auth_gateway.new_key()
    assert key.startswith(auth_gateway.KEY_PREFIX) and len(key) > 40
    digest = auth_gateway.key_hash(key)
    assert len(digest) == 64 and digest == digest.lower()
    assert auth_gateway.decide(f"Bearer {key}", {digest: "team-a"}) == (200, "team-a")
    assert auth_gateway.decide(None, {digest: "team-a"})[0] == 401
    assert auth_gateway.decide("Basic abc", {digest: "team-a"})[0] == 401
    assert auth_gateway.decide("Bearer mlsk_wrong", {digest: "team-a"})[0] == 403


def test_a_key_secret_from_mlstack_keys_is_what_the_key_check_reads() -> None:
    """``mlstack keys create`` writes the Secret the cluster's key check watches: labelled, in its namespace, the
    key's hash only; the check maps that hash to the consumer and admits the key."""
    from cli import keys_cli

    key = auth_gateway.new_key()
    secret = keys_cli.key_secret("checkout", key)
    assert secret["metadata"]["namespace"] == inference_auth.NAMESPACE == keys_cli.NAMESPACE
    assert secret["metadata"]["labels"][auth_gateway.KEY_LABEL] == "true"
    assert key not in json.dumps(secret)
    hashes = auth_gateway.secret_hashes([secret])
    assert hashes == {auth_gateway.key_hash(key): "checkout"}
    assert auth_gateway.decide(f"Bearer {key}", hashes) == (200, "checkout")
