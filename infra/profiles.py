"""Named resource profiles: requests, limits and replicas of every platform workload, laptop vs. full.

The laptop profile fits a kind cluster on a 16 GiB laptop next to an IDE: its total requests stay within
``LAPTOP.budget`` (well under what kubeflow/manifests alone asks, about 4.4 CPU and 12.3 GiB). ``python -m
infra.profiles [laptop|full]`` prints the table and exits non-zero when a profile's requests exceed its budget.

Two upstream pieces are not sized per profile, and both profiles carry the same numbers for them: Kubeflow Pipelines'
standalone manifests and the Knative Operator chart's own pods (operator and webhook). KFP's kustomizations are
applied unmodified through ``kustomize.v2.Directory``, which takes a directory and nothing else (no patches or
transformations; patching upstream kustomizations in place would fork them); the Knative Operator chart is applied
with its defaults. Their requests are *upstream sizes counted in the budget* (``set_by_upstream``, marked in the
table), so the total is the whole stack's, not only the part this project sizes. Second containers the project
sizes count too (Prometheus' configmap-reload, the Flink operator pod's webhook).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Sizing:
    """Size of one workload (a Deployment, StatefulSet or operator-managed pod set): one entry of a profile."""

    cpu: int
    """CPU request in millicores."""
    memory: int
    """Memory request in MiB."""
    cpu_limit: int
    """CPU limit in millicores."""
    memory_limit: int
    """Memory limit in MiB."""
    replicas: int = 1
    """Pod count."""
    set_by_upstream: bool = False
    """True when upstream manifests set the numbers and this profile only counts them."""

    def resources(self) -> dict[str, dict[str, str]]:
        """The Kubernetes ``resources`` block for one container of this workload."""
        return {
            "requests": {"cpu": f"{self.cpu}m", "memory": f"{self.memory}Mi"},
            "limits": {"cpu": f"{self.cpu_limit}m", "memory": f"{self.memory_limit}Mi"},
        }


@dataclass(frozen=True)
class Profile:
    """A named set of workload sizes and the request budget they must fit."""

    name: str
    """``laptop`` or ``full``."""
    workloads: Mapping[str, Sizing]
    """Workload sizes by ``<service>.<workload>``."""
    budget_cpu: int
    """Total CPU requests allowed, millicores."""
    budget_memory: int
    """Total memory requests allowed, MiB."""
    storage_gi: int
    """Size of each persistent volume (Kafka log, Postgres, object store, Prometheus), GiB."""
    kafka_replication: int
    """Replication factor of Kafka's internal topics (and the default for new topics)."""

    def __getitem__(self, key: str) -> Sizing:
        return self.workloads[key]

    def totals(self) -> tuple[int, int]:
        """Total (CPU millicores, memory MiB) requested by all workloads, replicas included."""
        cpu = sum(w.cpu * w.replicas for w in self.workloads.values())
        memory = sum(w.memory * w.replicas for w in self.workloads.values())
        return cpu, memory

    def within_budget(self) -> bool:
        cpu, memory = self.totals()
        return cpu <= self.budget_cpu and memory <= self.budget_memory


def _w(cpu: int, memory: int, cpu_limit: int, memory_limit: int, replicas: int = 1) -> Sizing:
    return Sizing(cpu, memory, cpu_limit, memory_limit, replicas)


# Requests of KFP 2.x standalone (platform-agnostic) as its manifests set them: API server, persistence agent,
# scheduled workflow, UI, viewer CRD controller, visualization server, metadata (gRPC, envoy, writer), cache server,
# MySQL, object store and Argo's workflow controller, summed (~0.67 CPU / 3.1 GiB). Upstream sizes, the same in both
# profiles: the kustomization is applied unpatched (see the module docstring); counted so the budget is honest.
_KFP_UPSTREAM = Sizing(670, 3174, 0, 0, 1, set_by_upstream=True)
# The Knative operator chart's own pods (operator and its webhook) at the chart's defaults, each counted; the chart is
# applied with its default values in both profiles (the KnativeServing it reconciles is sized per profile). Same
# requests, different limits (checked at knative/operator@knative-v1.19.0: config/charts/knative-operator/values.yaml,
# `knative_operator.knative_operator.resources` and `knative_operator.operator_webhook.resources`).
_KNATIVE_OPERATOR_UPSTREAM = Sizing(100, 100, 1000, 1000, 1, set_by_upstream=True)
_KNATIVE_OPERATOR_WEBHOOK_UPSTREAM = Sizing(100, 100, 500, 500, 1, set_by_upstream=True)

LAPTOP = Profile(
    name="laptop",
    workloads={
        "cert-manager.controller": _w(10, 64, 200, 256),
        "cert-manager.webhook": _w(10, 32, 100, 128),
        "cert-manager.cainjector": _w(10, 64, 200, 256),
        "kafka.operator": _w(100, 320, 1000, 512),
        "kafka.node": _w(250, 1024, 1000, 1536),
        "kafka.topic-operator": _w(50, 192, 500, 384),
        "kafka.user-operator": _w(50, 192, 500, 384),
        "flink.operator": _w(100, 384, 1000, 768),
        # The operator pod's second container (a JVM too; see infra/services/flink.py).
        "flink.webhook": _w(25, 192, 500, 512),
        "kuberay.operator": _w(50, 128, 500, 256),
        # The search cluster (infra/services/kuberay.py): on a laptop its head alone, running the job's driver and
        # the trials (2 CPUs by its limit: the pipeline's default concurrency); no worker pods.
        "kuberay.head": _w(200, 768, 2000, 3072),
        "kuberay.worker": _w(500, 1024, 2000, 3072, replicas=0),
        "knative.operator": _KNATIVE_OPERATOR_UPSTREAM,
        "knative.operator-webhook": _KNATIVE_OPERATOR_WEBHOOK_UPSTREAM,
        # Knative Serving's pods are sized through the KnativeServing's spec.workloads (infra/services/kserve.py).
        # The activator, webhook and Kourier gateway have upstream HPAs (at most 20, 5 and 10 pods, scaling at 100%
        # of the CPU request; checked at knative/operator@knative-v1.19.0:cmd/operator/kodata/knative-serving/
        # 1.19.0/2-serving-core.yaml and ingress/1.19/kourier/kourier.yaml). The operator offers no cap: a
        # workload's replicas only raise its HPA's minimum, and the maximum by as much (pkg/reconciler/common/
        # hpa.go, workload_override.go). So their replicas here are the idle pod count, and under load those three
        # can grow past it (to 20, 5 and 10 pods plus replicas - 1) beyond this profile's totals.
        "knative.activator": _w(25, 64, 500, 256),
        "knative.autoscaler": _w(25, 64, 500, 256),
        # autoscaler-hpa is installed with Serving (3-serving-hpa.yaml) and idles: KServe gives its revisions the
        # KPA class (kserve/kserve@v0.16.0:pkg/controller/v1alpha1/utils/utils.go, SetAutoScalingAnnotations). So
        # 40 Mi, upstream's own request there (not 64: the room went to Alertmanager and the alert receiver).
        "knative.autoscaler-hpa": _w(25, 40, 300, 256),
        "knative.controller": _w(25, 64, 500, 256),
        "knative.webhook": _w(25, 64, 500, 256),
        "knative.kourier-gateway": _w(25, 64, 500, 256),
        "knative.kourier-controller": _w(25, 64, 500, 256),
        "kserve.controller": _w(50, 128, 500, 384),
        # The controller pod's kube-rbac-proxy sidecar: 20 Mi, what kube-prometheus requests for the same proxy (the
        # room went to the inference key check).
        "kserve.rbac-proxy": _w(10, 20, 100, 128),
        # The inference key check (serving/auth_gateway.py, standard library only): 23 MiB RSS measured idle with its
        # Kubernetes client (ssl, urllib) loaded; the request is what the laptop budget leaves, the limit its room.
        "kserve.key-check": _w(5, 14, 50, 64),
        "prometheus.server": _w(100, 256, 1000, 768),
        "prometheus.configmap-reload": _w(5, 16, 50, 64),  # the server pod's sidecar
        # Measured in embedded mode: Alertmanager idles at 32 MiB RSS; the receiver (a standard-library HTTP
        # server) at ~13 MiB.
        "prometheus.alertmanager": _w(10, 32, 100, 128),
        "prometheus.alert-receiver": _w(5, 16, 50, 64),
        # Grafana idles near 100 MiB; the request is the floor the budget leaves, the limit its working room. The
        # dashboards sidecar (a Python watcher of ConfigMaps) is its pod's second container.
        "grafana.server": _w(20, 96, 500, 384),
        "grafana.sidecar": _w(5, 24, 100, 128),
        "feast.postgres": _w(50, 128, 500, 384),
        # 32 Mi, not 64: a Redis of a streaming test held 1 MiB of data in 12 MiB RSS, and the demo's online store
        # (fraud and demand) dumps to 89 KB; the 256 Mi limit still bounds growth.
        "feast.redis": _w(25, 32, 250, 256),
        "feast.server": _w(100, 256, 1000, 768),
        "mlflow.server": _w(100, 384, 1000, 1024),
        "mlflow.postgres": _w(50, 128, 500, 384),
        "mlflow.s3": _w(50, 128, 500, 512),
        "kfp.upstream": _KFP_UPSTREAM,
    },
    budget_cpu=2500,
    budget_memory=8816,  # 8.6 GiB since Grafana counts (8.5 GiB since the Ray search cluster's head, 8 before)
    storage_gi=2,
    kafka_replication=1,
)

FULL = Profile(
    name="full",
    workloads={
        "cert-manager.controller": _w(50, 128, 500, 512, replicas=2),
        "cert-manager.webhook": _w(50, 64, 250, 256, replicas=2),
        "cert-manager.cainjector": _w(50, 128, 500, 512),
        "kafka.operator": _w(200, 384, 1000, 768),
        "kafka.node": _w(1000, 4096, 2000, 6144, replicas=3),
        "kafka.topic-operator": _w(100, 256, 500, 512),
        "kafka.user-operator": _w(100, 256, 500, 512),
        "flink.operator": _w(200, 768, 1000, 1536),
        "flink.webhook": _w(50, 256, 1000, 1024),
        "kuberay.operator": _w(100, 256, 1000, 512),
        # Head: GCS, dashboard (Jobs API), the job's driver; no trials (num-cpus 0). Workers: 2 trial slots each.
        "kuberay.head": _w(500, 2048, 2000, 4096),
        "kuberay.worker": _w(1000, 2048, 2000, 4096, replicas=2),
        "knative.operator": _KNATIVE_OPERATOR_UPSTREAM,
        "knative.operator-webhook": _KNATIVE_OPERATOR_WEBHOOK_UPSTREAM,
        "knative.activator": _w(300, 256, 1000, 1024, replicas=2),  # HPA: see the note in LAPTOP
        "knative.autoscaler": _w(100, 128, 1000, 512, replicas=2),
        "knative.autoscaler-hpa": _w(30, 64, 300, 512),
        "knative.controller": _w(100, 128, 1000, 512, replicas=2),
        "knative.webhook": _w(100, 128, 1000, 512, replicas=2),
        "knative.kourier-gateway": _w(250, 256, 2000, 1024, replicas=2),
        "knative.kourier-controller": _w(100, 128, 1000, 512, replicas=2),
        "kserve.controller": _w(100, 256, 1000, 1024),
        "kserve.rbac-proxy": _w(100, 300, 100, 300),  # the chart's own size for the sidecar
        "kserve.key-check": _w(20, 32, 200, 128, replicas=2),  # every model request waits on it
        "prometheus.server": _w(500, 2048, 2000, 4096),
        "prometheus.configmap-reload": _w(10, 32, 100, 128),  # the server pod's sidecar
        "prometheus.alertmanager": _w(50, 128, 500, 256),
        "prometheus.alert-receiver": _w(10, 32, 100, 128),
        "grafana.server": _w(100, 256, 1000, 1024),
        "grafana.sidecar": _w(10, 64, 200, 256),
        "feast.postgres": _w(250, 512, 1000, 2048),
        "feast.redis": _w(250, 1024, 1000, 2048),
        "feast.server": _w(500, 1024, 2000, 2048, replicas=2),
        "mlflow.server": _w(500, 1024, 2000, 2048, replicas=2),
        "mlflow.postgres": _w(250, 512, 1000, 2048),
        "mlflow.s3": _w(250, 512, 1000, 2048),
        "kfp.upstream": _KFP_UPSTREAM,
    },
    budget_cpu=16000,
    budget_memory=40960,
    storage_gi=50,
    kafka_replication=3,
)

PROFILES: dict[str, Profile] = {p.name: p for p in (LAPTOP, FULL)}


def table(profile: Profile) -> str:
    """A printable table of the profile's workloads and its totals against its budget."""
    lines = [f"profile {profile.name}", f"{'workload':28} {'replicas':>8} {'cpu req':>8} {'mem req':>9}"]
    for name, w in sorted(profile.workloads.items()):
        note = "  (upstream size, counted; same in every profile)" if w.set_by_upstream else ""
        lines.append(f"{name:28} {w.replicas:>8} {w.cpu * w.replicas:>7}m {w.memory * w.replicas:>7}Mi{note}")
    cpu, memory = profile.totals()
    verdict = "within" if profile.within_budget() else "OVER"
    lines.append(
        f"{'total':28} {'':>8} {cpu:>7}m {memory:>7}Mi  = {cpu / 1000:.2f} CPU / {memory / 1024:.2f} GiB, "
        f"{verdict} budget {profile.budget_cpu / 1000:.2f} CPU / {profile.budget_memory / 1024:.2f} GiB"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the named profiles (default: laptop); non-zero exit when one is over its budget."""
    names = (argv if argv is not None else sys.argv[1:]) or ["laptop"]
    unknown = [n for n in names if n not in PROFILES]
    if unknown:
        print(f"unknown profile {unknown[0]!r}; choose from {', '.join(PROFILES)}", file=sys.stderr)
        return 2
    for name in names:
        print(table(PROFILES[name]))
    return 0 if all(PROFILES[n].within_budget() for n in names) else 1


def as_values(sizing: Sizing) -> dict[str, Any]:
    """``{"replicas": n, "resources": {...}}``, the shape most charts take for a workload."""
    return {"replicas": sizing.replicas, "resources": sizing.resources()}


if __name__ == "__main__":
    raise SystemExit(main())
