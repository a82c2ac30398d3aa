"""Profiles: the laptop profile fits its stated budget (well under kubeflow/manifests' 4.4 CPU / 12.3 GiB), the
full profile is bigger everywhere it is sized, and every workload has limits at or above its requests."""

from __future__ import annotations

import pytest

from infra.profiles import FULL, LAPTOP, PROFILES, main

KUBEFLOW_MANIFESTS_CPU, KUBEFLOW_MANIFESTS_MEMORY = 4400, int(12.3 * 1024)


def test_laptop_requests_within_budget_and_well_under_kubeflow_manifests() -> None:
    cpu, memory = LAPTOP.totals()
    assert LAPTOP.within_budget()
    assert cpu <= LAPTOP.budget_cpu <= 0.6 * KUBEFLOW_MANIFESTS_CPU
    assert memory <= LAPTOP.budget_memory <= 0.7 * KUBEFLOW_MANIFESTS_MEMORY


def test_full_profile_is_larger_where_this_project_sizes_workloads() -> None:
    assert set(FULL.workloads) == set(LAPTOP.workloads)
    for name, laptop in LAPTOP.workloads.items():
        full = FULL[name]
        if laptop.set_by_upstream:
            assert full == laptop, name
            continue
        assert full.cpu * full.replicas >= laptop.cpu * laptop.replicas, name
        assert full.memory * full.replicas >= laptop.memory * laptop.replicas, name
    assert FULL["kafka.node"].replicas == 3 == FULL.kafka_replication
    assert LAPTOP["kafka.node"].replicas == 1 == LAPTOP.kafka_replication
    assert FULL.totals()[0] > 3 * LAPTOP.totals()[0]


@pytest.mark.parametrize("profile", list(PROFILES.values()), ids=list(PROFILES))
def test_limits_at_or_above_requests(profile: object) -> None:
    from infra.profiles import Profile

    assert isinstance(profile, Profile)
    for name, w in profile.workloads.items():
        if w.set_by_upstream:
            continue
        assert w.cpu_limit >= w.cpu and w.memory_limit >= w.memory, name


def test_budget_command_prints_totals_and_fails_when_over(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["laptop"]) == 0
    out = capsys.readouterr().out
    cpu, memory = LAPTOP.totals()
    assert f"{cpu / 1000:.2f} CPU / {memory / 1024:.2f} GiB, within budget" in out
    assert "kfp.upstream" in out and "upstream size, counted" in out
    assert main(["nope"]) == 2


def test_every_sized_container_counts_in_the_total() -> None:
    """Sidecars the project sizes (Prometheus' configmap-reload, the KServe controller's kube-rbac-proxy) are
    workloads of the profile, so the printed total includes them; upstream-sized pieces (KFP, the Knative Operator)
    are counted with the same numbers in both."""
    for profile in PROFILES.values():
        for sidecar in ("prometheus.configmap-reload", "kserve.rbac-proxy"):
            size = profile[sidecar]
            assert not size.set_by_upstream and size.cpu > 0 and size.memory > 0
            without = sum(w.cpu * w.replicas for n, w in profile.workloads.items() if n != sidecar)
            assert profile.totals()[0] == without + size.cpu * size.replicas
    upstream = {n for n, w in LAPTOP.workloads.items() if w.set_by_upstream}
    assert upstream == {"kfp.upstream", "knative.operator", "knative.operator-webhook"}
    assert all(FULL[n] == LAPTOP[n] for n in upstream)
