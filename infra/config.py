"""The stack's configuration: the one place that reads Pulumi config and turns it into a typed, validated value.

Every key lives in the ``mlstack:`` namespace and is declared in ``Pulumi.yaml`` (type, default, description).
``parse`` checks all of them before the program registers a single resource: an unknown key (a typo), a wrong type
or an out-of-range value raises ``ConfigError`` naming the key and what it accepts.

Longer than 400 lines because every key's parser, default and cross-key rule is kept in this one module, so a key is
never validated in two places (splitting the GKE access rules out is the next step if it grows).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

from infra import versions
from infra.profiles import PROFILES, Profile
from monitoring.retrain_trigger import TriggerPolicy

NAMESPACE = "mlstack"
PROJECT_DIR = Path(__file__).resolve().parents[1]
"""The Pulumi project: ``Pulumi.yaml`` and one ``Pulumi.<stack>.yaml`` per stack."""
ClusterKind = Literal["kind", "gke"]
CLUSTERS: tuple[ClusterKind, ...] = ("kind", "gke")

SERVICES = (
    "cert-manager",
    "kafka",
    "flink",
    "feast",
    "mlflow",
    "kubeflow-pipelines",
    "kuberay",
    "kserve",
    "prometheus",
    "grafana",
)
"""Platform services in deploy order."""

REQUIRES: dict[str, tuple[str, ...]] = {
    "flink": ("cert-manager",),  # the operator's admission webhook gets its certificate from cert-manager
    "kserve": ("cert-manager",),  # KServe's webhooks likewise
    "grafana": ("prometheus",),  # its only data source
}

IMAGE_MODES = ("build", "prebuilt")
COMPONENT_SERVICES = ("kafka", "flink", "feast", "mlflow", "kubeflow-pipelines", "kserve")
"""Platform services every use-case component deploys onto (topics, Flink job, features, pipeline, model)."""
_COMPONENT_REF = re.compile(r"^(?P<name>[a-z][a-z0-9_]*)(@(?P<version>[1-9][0-9]*))?$")
_CRON = re.compile(r"^(@(hourly|daily|weekly|monthly)|([0-9*/,-]+ ){4,5}[0-9*/,?A-Z-]+)$")
_REGISTRY = re.compile(r"^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)*$")

_DNS_NAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$")
_GCP_PROJECT = re.compile(r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$")
PLACEHOLDER_GCP_PROJECTS = ("mlstack-demo", "your-project", "my-project")
"""Example project ids from docs and old stack files: refused, so a copied example never targets someone's project."""
TLS_ISSUERS = ("self-signed", "acme", "provided")
"""Where the gateway's certificates come from: the stack's own CA, ACME (HTTP-01), or a ClusterIssuer you made."""
LETSENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$")


@dataclass(frozen=True)
class RetrainingSettings:
    """The retraining trigger's policy (``monitoring.retrain_trigger.TriggerPolicy``, ``RunTemplate``); its
    defaults are the trigger's own."""

    on_alerts: bool = True
    """Drift, quality and performance alerts start runs; off: logged only (``mlstack retrain`` still runs)."""
    cooldown_s: int = int(TriggerPolicy.cooldown_s)
    """Alerts within this many seconds of a run's end are noted, not acted on."""
    history_s: int = 0
    """Seconds of the stream an alert-started run trains on, ending now (0: everything archived). After a change
    of the world, a run on the last hours learns the new world rather than mostly the old."""
    settle_margin_s: int = int(TriggerPolicy.settle_margin_s)
    """Seconds of labelled traffic of the changed world a run waits for, beyond the component's label delay."""


DEFAULTS: dict[str, Any] = {
    "cluster": "kind",
    "profile": "laptop",
    "services": list(SERVICES),
    "ingressDomain": "mlstack.local",
    "kindClusterName": "mlstack",
    "kindNodeImage": versions.KIND_NODE_IMAGE,
    "kindHttpPort": 8080,
    "kindHttpsPort": 8443,
    "gcpProject": "",
    "gcpRegion": "europe-west4",
    "gkeMachineType": "e2-standard-8",
    "gkeNodeCount": 1,
    "kubernetesVersion": versions.GKE_KUBERNETES_VERSION,
    "controlPlaneAuthorizedNetworks": [],
    "gkePrivateNodes": True,
    "publicInference": False,
    "allowedSourceRanges": [],
    "inferenceAuth": True,
    "tlsIssuer": "self-signed",
    "tlsClusterIssuer": "",
    "acmeEmail": "",
    "acmeServer": LETSENCRYPT,
    "components": [],
    "images": "build",
    "imageRegistry": "",
    "trainingSchedule": "",
    "retrainOnAlerts": RetrainingSettings.on_alerts,
    "retrainCooldown": RetrainingSettings.cooldown_s,
    "retrainHistory": RetrainingSettings.history_s,
    "retrainSettleMargin": RetrainingSettings.settle_margin_s,
    "renderYamlToDirectory": "",
}
"""Every key and its default; Pulumi.yaml declares the same defaults (the engine passes them for unset keys)."""


def _is_default(key: str, value: str) -> bool:
    default = DEFAULTS[key]
    if isinstance(default, bool):
        return str(value).lower() == str(default).lower()
    if isinstance(default, list):
        try:
            return bool(json.loads(value) == default)
        except (TypeError, json.JSONDecodeError):
            return False
    return str(value) == str(default)


class ConfigError(ValueError):
    """A stack config value is missing, unknown, of the wrong type or out of range."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{NAMESPACE}:{key}: {problem}")
        self.key = key


@dataclass(frozen=True)
class KindSettings:
    """A local kind cluster."""

    name: str
    """kind cluster name (``kind get clusters``); also the kubeconfig context ``kind-<name>``."""
    node_image: str
    """Pinned ``kindest/node`` image, which fixes the Kubernetes version."""
    http_port: int
    """Host port mapped to the Knative (Kourier) ingress, for InferenceService traffic."""
    https_port: int
    """Host port mapped to the ingress's HTTPS port (model hosts are HTTPS; ``http_port`` keeps plain HTTP)."""

    @property
    def host_ports(self) -> dict[str, int]:
        """The ports a new cluster binds on 127.0.0.1, by the config key that sets each."""
        return {"kindHttpPort": self.http_port, "kindHttpsPort": self.https_port}


@dataclass(frozen=True)
class GkeSettings:
    """A GKE cluster."""

    project: str
    """GCP project id."""
    region: str
    """GCP region (a regional cluster)."""
    machine_type: str
    """Node machine type."""
    node_count: int
    """Nodes per zone of the node pool."""
    kubernetes_version: str
    """Minimum control-plane version (GKE picks the newest patch)."""
    authorized_networks: tuple[str, ...] = ()
    """CIDRs allowed to reach the control plane's endpoint (master authorized networks); nothing else can."""
    private_nodes: bool = True
    """Nodes get internal addresses only; the stack gives them Cloud NAT for egress (image pulls)."""
    public_inference: bool = False
    """The inference gateway gets an external load balancer; otherwise an internal one (VPC only)."""
    allowed_source_ranges: tuple[str, ...] = ()
    """CIDRs allowed to reach the inference gateway's load balancer; required when it is public."""


@dataclass(frozen=True)
class GatewaySecurity:
    """How the inference gateway serves callers: TLS certificates from cert-manager, keys checked before a model."""

    tls_issuer: str = "self-signed"
    """``self-signed``: a CA of the stack's own (its certificate in cert-manager's namespace, for callers to trust);
    ``acme``: an ACME ClusterIssuer solving HTTP-01 through the gateway; ``provided``: ``cluster_issuer``."""
    cluster_issuer: str = ""
    """An existing ClusterIssuer's name (``provided``)."""
    acme_email: str = ""
    """The ACME account's contact (``acme``)."""
    acme_server: str = LETSENCRYPT
    """The ACME directory (``acme``)."""
    auth: bool = True
    """Kourier asks the key check (``infra/services/inference_auth.py``) about every request."""


@dataclass(frozen=True)
class ComponentRef:
    """A use-case component the stack deploys (``mlstack:components`` entry ``name`` or ``name@version``)."""

    name: str
    """Component name (a package under ``components/`` or an installed ``mlstack.components`` entry point)."""
    version: str = ""
    """Registered model version the InferenceService starts on; empty: the ``champion`` alias at server start.
    After creation the rollout (``kubectl canary``) owns the served version."""


@dataclass(frozen=True)
class StackConfig:
    """The validated stack configuration."""

    cluster: ClusterKind
    """Where the platform runs."""
    profile: Profile
    """Resource profile: requests, limits and replicas."""
    services: tuple[str, ...]
    """Platform services to deploy, in deploy order."""
    ingress_domain: str
    """Domain under which Knative names InferenceService hosts."""
    kind: KindSettings | None = None
    """Set when ``cluster`` is ``kind``."""
    gke: GkeSettings | None = None
    """Set when ``cluster`` is ``gke``."""
    components: tuple[ComponentRef, ...] = ()
    """Use-case components deployed on the platform (topics, Flink job, features, pipeline, model server)."""
    images: str = "build"
    """``build``: the program builds the project's images and loads (kind) or pushes them; ``prebuilt``: it only
    references their content tags."""
    image_registry: str = ""
    """Registry the images are pushed to and pulled from; empty on kind (images are loaded into the nodes)."""
    training_schedule: str = ""
    """Cron expression of a recurring training run per component; empty: none."""
    retraining: RetrainingSettings = RetrainingSettings()
    """The retraining trigger's policy."""
    gateway: GatewaySecurity = GatewaySecurity()
    """TLS and authentication of the inference gateway."""
    render_dir: str = ""
    """Render mode: no cluster; the Kubernetes provider writes every object as YAML into this folder, and what
    cannot render offline (upstream charts and kustomizations fetched at deploy time) is left out and listed."""

    def enabled(self, service: str) -> bool:
        return service in self.services


T = TypeVar("T")


class _Reader:
    """Reads keys from the raw string map, remembering which ones were consumed."""

    def __init__(self, raw: Mapping[str, str]) -> None:
        self.raw = dict(raw)
        self.used: set[str] = set()

    def get(self, key: str, default: T, convert: Callable[[str, str], T]) -> T:
        self.used.add(key)
        if key not in self.raw:
            return default
        return convert(key, self.raw[key])

    def required(self, key: str, convert: Callable[[str, str], T], why: str) -> T:
        self.used.add(key)
        if key not in self.raw or self.raw[key] == "":
            raise ConfigError(key, f"required {why}; set it with `pulumi config set {key} <value>`")
        return convert(key, self.raw[key])


def _string(key: str, value: str) -> str:
    if not isinstance(value, str) or value.strip() == "":
        raise ConfigError(key, f"expected a non-empty string, got {value!r}")
    return value.strip()


def _choice(options: tuple[str, ...]) -> Callable[[str, str], str]:
    def convert(key: str, value: str) -> str:
        if value not in options:
            raise ConfigError(key, f"expected one of {', '.join(options)}, got {value!r}")
        return value

    return convert


def _integer(low: int, high: int) -> Callable[[str, str], int]:
    def convert(key: str, value: str) -> int:
        try:
            number = int(str(value), 10)
        except ValueError:
            raise ConfigError(key, f"expected an integer, got {value!r}") from None
        if not low <= number <= high:
            raise ConfigError(key, f"expected an integer in [{low}, {high}], got {number}")
        return number

    return convert


def _pattern(regex: re.Pattern[str], what: str) -> Callable[[str, str], str]:
    def convert(key: str, value: str) -> str:
        if not regex.match(str(value)):
            raise ConfigError(key, f"expected {what}, got {value!r}")
        return str(value)

    return convert


def _gcp_project(key: str, value: str) -> str:
    project = _pattern(_GCP_PROJECT, "a GCP project id")(key, value)
    if project in PLACEHOLDER_GCP_PROJECTS:
        raise ConfigError(
            key,
            f"{project!r} is an example, not your project; set yours with `pulumi config set --stack <stack> "
            f"{key} <your-project-id>`",
        )
    return project


def _image(key: str, value: str) -> str:
    tag = value.rsplit("/", 1)[-1]
    if "@sha256:" not in value and (":" not in tag or tag.endswith(":latest")):
        raise ConfigError(key, f"expected an image pinned by tag or digest (not latest), got {value!r}")
    return value


def _boolean(key: str, value: str) -> bool:
    # The engine passes "true"/"false"; a stack file read with YAML gives Python's "True"/"False".
    text = str(value).strip().lower()
    if text not in ("true", "false"):
        raise ConfigError(key, f"expected true or false, got {value!r}")
    return text == "true"


def _string_list(key: str, value: str, expected: str) -> list[str]:
    """A list of strings, given as JSON text (the engine) or a list (a stack file read with YAML)."""
    try:
        items = json.loads(value) if isinstance(value, str) else value
    except json.JSONDecodeError:
        raise ConfigError(key, f"expected {expected}, got {value!r}") from None
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise ConfigError(key, f"expected {expected}, got {value!r}")
    return items


def _cidrs(key: str, value: str) -> tuple[str, ...]:
    items = _string_list(key, value, "a list of CIDRs (e.g. [203.0.113.7/32])")
    cidrs: list[str] = []
    for item in items:
        try:
            network = ipaddress.ip_network(item.strip(), strict=True)
        except ValueError as err:
            raise ConfigError(key, f"{item!r} is not a CIDR ({err})") from None
        if network.prefixlen == 0:
            # 0.0.0.0/0 is "everyone": the default this key exists to avoid.
            raise ConfigError(key, f"{item!r} admits every address; list the networks that need access")
        cidrs.append(str(network))
    return tuple(cidrs)


def _services(key: str, value: str) -> tuple[str, ...]:
    items = _string_list(key, value, "a list of service names")
    unknown = sorted(set(items) - set(SERVICES))
    if unknown:
        raise ConfigError(key, f"unknown service {unknown[0]!r}; known: {', '.join(SERVICES)}")
    for service in items:
        missing = [r for r in REQUIRES.get(service, ()) if r not in items]
        if missing:
            raise ConfigError(key, f"{service!r} needs {missing[0]!r} in the list too")
    return tuple(s for s in SERVICES if s in items)


def _components(key: str, value: str) -> tuple[ComponentRef, ...]:
    try:
        items = json.loads(value) if isinstance(value, str) else value
    except json.JSONDecodeError:
        raise ConfigError(key, f"expected a list of component names, got {value!r}") from None
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise ConfigError(key, f"expected a list of component names, got {value!r}")
    from contract.registry import available

    known = available()
    refs: list[ComponentRef] = []
    for item in items:
        match = _COMPONENT_REF.match(item)
        if not match:
            raise ConfigError(key, f"expected <name> or <name>@<version>, got {item!r}")
        if match["name"] not in known:
            raise ConfigError(key, f"unknown component {match['name']!r}; available: {', '.join(known)}")
        if any(r.name == match["name"] for r in refs):
            raise ConfigError(key, f"component {match['name']!r} is listed twice")
        refs.append(ComponentRef(match["name"], match["version"] or ""))
    return tuple(refs)


def _gke_access(reader: _Reader) -> dict[str, Any]:
    """Who reaches the GKE cluster: the control plane from listed networks only; the inference gateway internal
    unless opted public, and public only with the source ranges it admits."""
    networks: tuple[str, ...] = reader.get("controlPlaneAuthorizedNetworks", (), _cidrs)
    if not networks:
        # No safe default exists: the operator running `make up` must reach the API server, and only they know
        # from where. Refusing beats opening the endpoint to the internet.
        raise ConfigError(
            "controlPlaneAuthorizedNetworks",
            "required for cluster gke: the networks allowed to reach the control plane (at least your own address, "
            "e.g. `pulumi config set --path 'controlPlaneAuthorizedNetworks[0]' <your-ip>/32`)",
        )
    public = reader.get("publicInference", False, _boolean)
    ranges: tuple[str, ...] = reader.get("allowedSourceRanges", (), _cidrs)
    if public and not ranges:
        raise ConfigError(
            "allowedSourceRanges",
            f"required when {NAMESPACE}:publicInference is true: a public inference gateway admits only the listed "
            "source ranges",
        )
    return {
        "authorized_networks": networks,
        "private_nodes": reader.get("gkePrivateNodes", True, _boolean),
        "public_inference": public,
        "allowed_source_ranges": ranges,
    }


def _gateway_security(reader: _Reader, public: bool) -> GatewaySecurity:
    """TLS and keys of the inference gateway; what a caller on a network it does not control could not trust or
    would reach unchecked is refused."""
    issuer = reader.get("tlsIssuer", DEFAULTS["tlsIssuer"], _choice(TLS_ISSUERS))
    provided = reader.get("tlsClusterIssuer", "", lambda k, v: v if v == "" else _pattern(_DNS_NAME, "a name")(k, v))
    email = reader.get("acmeEmail", "", lambda k, v: v if v == "" else _pattern(_EMAIL, "an e-mail address")(k, v))
    server = reader.get(
        "acmeServer", LETSENCRYPT, _pattern(re.compile(r"^https://[^\s/]+(/\S*)?$"), "an https:// ACME directory")
    )
    auth = reader.get("inferenceAuth", True, _boolean)
    if issuer == "provided" and not provided:
        raise ConfigError("tlsClusterIssuer", "required when tlsIssuer is provided: the name of your ClusterIssuer")
    if provided and issuer != "provided":
        raise ConfigError("tlsClusterIssuer", f"only used with tlsIssuer provided (it is {issuer!r})")
    if issuer == "acme":
        if not email:
            raise ConfigError("acmeEmail", "required when tlsIssuer is acme: the ACME account's contact address")
        if not public:
            # HTTP-01: the ACME server fetches a token from the gateway, which must be reachable from the internet.
            raise ConfigError(
                "tlsIssuer",
                "acme solves HTTP-01 through the gateway, which needs a public gateway (gke with publicInference "
                "true); for an internal one use a ClusterIssuer of your own (DNS-01 or your CA) with tlsIssuer "
                "provided",
            )
    elif email or server != LETSENCRYPT:
        raise ConfigError("acmeEmail" if email else "acmeServer", f"only used with tlsIssuer acme (it is {issuer!r})")
    if public and issuer == "self-signed":
        raise ConfigError(
            "tlsIssuer",
            "a public gateway needs certificates its callers can verify without the stack's own CA: acme or provided",
        )
    if public and not auth:
        raise ConfigError("inferenceAuth", "a public gateway always checks keys; it cannot be turned off")
    return GatewaySecurity(issuer, provided, email, server, auth)


def parse(raw: Mapping[str, str]) -> StackConfig:
    """Validate raw Pulumi config (keys without the ``mlstack:`` prefix, values as Pulumi passes them: strings,
    JSON for lists) into a ``StackConfig``.

    Raises:
        ConfigError: naming the first key that is unknown, missing, mistyped or out of range.
    """
    reader = _Reader(raw)
    cluster = cast(ClusterKind, reader.get("cluster", DEFAULTS["cluster"], _choice(CLUSTERS)))
    profile_name = reader.get("profile", DEFAULTS["profile"], _choice(tuple(PROFILES)))
    services: tuple[str, ...] = reader.get("services", tuple(SERVICES), _services)
    domain = reader.get("ingressDomain", DEFAULTS["ingressDomain"], _pattern(_DNS_NAME, "a lower-case DNS name"))
    components: tuple[ComponentRef, ...] = reader.get("components", (), _components)
    images = reader.get("images", DEFAULTS["images"], _choice(IMAGE_MODES))
    registry = reader.get("imageRegistry", "", lambda k, v: v if v == "" else _pattern(_REGISTRY, "a registry")(k, v))
    schedule = reader.get(
        "trainingSchedule", "", lambda k, v: v if v == "" else _pattern(_CRON, "a cron expression")(k, v)
    )
    render_dir = reader.get("renderYamlToDirectory", "", lambda k, v: v.strip())
    retraining = RetrainingSettings(
        on_alerts=reader.get("retrainOnAlerts", DEFAULTS["retrainOnAlerts"], _boolean),
        cooldown_s=reader.get("retrainCooldown", DEFAULTS["retrainCooldown"], _integer(0, 7 * 86_400)),
        history_s=reader.get("retrainHistory", DEFAULTS["retrainHistory"], _integer(0, 365 * 86_400)),
        settle_margin_s=reader.get("retrainSettleMargin", DEFAULTS["retrainSettleMargin"], _integer(0, 86_400)),
    )
    if components:
        missing = [s for s in COMPONENT_SERVICES if s not in services]
        if missing:
            raise ConfigError("components", f"components need the {missing[0]!r} service in mlstack:services")
        if cluster != "kind" and images == "build" and not registry:
            raise ConfigError("imageRegistry", f"required to push the project's images on cluster {cluster!r}")
    kind = gke = None
    if cluster == "kind":
        kind = KindSettings(
            name=reader.get(
                "kindClusterName", DEFAULTS["kindClusterName"], _pattern(_DNS_NAME, "a lower-case DNS label")
            ),
            node_image=reader.get("kindNodeImage", DEFAULTS["kindNodeImage"], _image),
            http_port=reader.get("kindHttpPort", DEFAULTS["kindHttpPort"], _integer(1024, 65535)),
            https_port=reader.get("kindHttpsPort", DEFAULTS["kindHttpsPort"], _integer(1024, 65535)),
        )
        if kind.https_port == kind.http_port:
            # kind refuses two mappings of one host port (pkg/internal/apis/config/validate.go, validatePortMappings).
            raise ConfigError("kindHttpsPort", f"must differ from mlstack:kindHttpPort ({kind.http_port})")
    else:
        gke = GkeSettings(
            project=reader.required("gcpProject", _gcp_project, "for cluster gke"),
            region=reader.get(
                "gcpRegion", DEFAULTS["gcpRegion"], _pattern(re.compile(r"^[a-z]+-[a-z]+\d$"), "a region")
            ),
            machine_type=reader.get("gkeMachineType", DEFAULTS["gkeMachineType"], _string),
            node_count=reader.get("gkeNodeCount", DEFAULTS["gkeNodeCount"], _integer(1, 50)),
            kubernetes_version=reader.get("kubernetesVersion", DEFAULTS["kubernetesVersion"], _string),
            **_gke_access(reader),
        )
    gateway = _gateway_security(reader, gke is not None and gke.public_inference)
    for key in sorted(raw):
        if key not in DEFAULTS:
            raise ConfigError(key, f"unknown key; known keys: {', '.join(sorted(DEFAULTS))}")
    for key in sorted(set(raw) - reader.used):
        # The engine passes every declared key's default; only a value set for the other cluster kind is a mistake.
        if not _is_default(key, raw[key]):
            raise ConfigError(key, f"does not apply to cluster {cluster!r}")
    return StackConfig(
        cluster=cluster,
        profile=PROFILES[profile_name],
        services=services,
        ingress_domain=domain,
        kind=kind,
        gke=gke,
        components=components,
        images=images,
        image_registry=registry,
        training_schedule=schedule,
        retraining=retraining,
        gateway=gateway,
        render_dir=render_dir,
    )


_ALL_KEYS = tuple(DEFAULTS)


def raw_config() -> dict[str, str]:
    """This project's keys from the running Pulumi program's config, without the namespace prefix."""
    from pulumi.runtime import config as runtime_config

    merged: dict[str, Any] = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    prefix = f"{NAMESPACE}:"
    return {k[len(prefix) :]: str(v) for k, v in merged.items() if k.startswith(prefix)}


def load() -> StackConfig:
    """The running stack's validated config (call before registering any resource)."""
    return parse(raw_config())


def known_stacks() -> list[str]:
    """The stacks with a ``Pulumi.<stack>.yaml`` in the project."""
    return sorted(p.name.split(".")[1] for p in PROJECT_DIR.glob("Pulumi.*.yaml"))


def stack_settings(stack: str) -> dict[str, str]:
    """This project's keys from ``Pulumi.<stack>.yaml``, read without the engine (for checks before it runs); lists
    as JSON, as the engine passes them to the program."""
    import yaml

    path = PROJECT_DIR / f"Pulumi.{stack}.yaml"
    if not path.exists():
        raise FileNotFoundError(f"no stack file {path.name}: choose one of {', '.join(known_stacks())}")
    raw = (yaml.safe_load(path.read_text()) or {}).get("config", {})
    prefix = f"{NAMESPACE}:"
    return {
        key[len(prefix) :]: json.dumps(value) if isinstance(value, list) else str(value)
        for key, value in raw.items()
        if key.startswith(prefix)
    }
