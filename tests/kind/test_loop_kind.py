"""The kind tier's closed loop: ``pulumi up`` of the kind stack with the ``fraud`` component, a champion trained
through the KFP API and served by the InferenceService, then a world that changes while nobody acts:

- a Job of the pipeline image produces the generator's events at their own pace in wall-clock time (event times are
  now), the world changing ``CHANGE_AFTER_S`` in (the generator's ``change_at_ms``), and scores each transaction as
  it happens through the InferenceService's cluster-local address with a consumer key of its own (Kourier asks the
  key check about in-cluster calls too), so the inference log (``fraud.predictions``) and the labels (the
  resolutions, through the feature job onto ``fraud.labels``) flow and the monitor computes live metrics;
- the cluster's Prometheus rules fire, Alertmanager posts them to the retraining trigger's Deployment, which starts a
  KFP run and canaries what the gate registers;
- the trigger's ``GET /decisions`` shows a run started by an alert whose condition began after the change, then the
  run finished with a version, promoted; the InferenceService ends serving that version on all traffic.

The cluster's rules and routing are the shipped ones (``infra/services/prometheus.py`` renders
``monitoring.alert_rules.rules`` with ``SHIPPED_TIMING`` and ``SHIPPED_ROUTING``; the stack has no setting to shorten
them), so the waits allow for the longest retrainable sustain time; the trigger's run and canary have their
Deployment's own limits (``ClusterRetrainer``). The first model is made champion here, as embedded mode's first
model is (``cli.demo_steps.first_model``): on the cluster the gate registers a ``challenger`` only, and the
InferenceService, created serving the ``champion`` alias, starts once there is one.

Needs Docker, kind, kubectl and the Pulumi CLI; skips in one line naming what is missing.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.request
from datetime import UTC, datetime
from typing import Any

import pytest

from cli.demo_state import CHANGE_AFTER_S
from infra.services.platform import NAMESPACES
from infra.services.prometheus import TRIGGER, TRIGGER_PORT
from infra.use_cases.cluster_retraining import ClusterRetrainer
from tests.kind.cluster_helpers import (
    COMPONENT,
    NAMESPACE,
    TIMEOUT_S,
    component,
    flink_running,
    job_log,
    job_outcome,
    missing,
    online_features,
    pipeline_package,
    pipeline_params,
    port_forward,
    read_isvc,
    ready,
    rollout_books,
    run_in_cluster,
    served_version,
    split,
    start_job,
    wait,
)

SEED = 11
"""The loop drill's seed (``components/fraud/events.py``: the champion falls from 0.96-0.98 to 0.88-0.91)."""
ALERT_TIMEOUT_S = 2 * 3600.0
"""From the change to a run started by an alert: the monitor's window filling with the changed world (the
exporter's default ten minutes: its Deployment passes none), the longest retrainable sustain time shipped
(performance, 30 minutes; drift 15, quality 10), Prometheus' evaluation and Alertmanager's group wait, with room for
a loaded kind node."""
RUN_TIMEOUT_S = ClusterRetrainer.run_timeout_s + ClusterRetrainer.canary_timeout_s + 1800.0
"""From the run's start to its end: the trigger's wait for labels, its KFP run's and its canary's own limits."""
LIVE_S = CHANGE_AFTER_S + ALERT_TIMEOUT_S + RUN_TIMEOUT_S + 1800.0
"""How long the world's live events flow: past every wait of the test (the canary needs their traffic)."""
MINUTE_MS = 60_000
SCORER = "loop-scorer"
"""The consumer whose key the live scoring presents (``mlstack keys create loop-scorer``, done here)."""
KEY_SECRET = f"{COMPONENT}-{SCORER}-key"
TRIGGER_NAMESPACE = NAMESPACES["prometheus"]
"""The trigger runs beside Prometheus (``infra.use_cases.retrain_trigger``)."""

# The world, run in the pipeline image (contract, pipelines and requests; no ``local``): the generator's events in
# (after_ms, until_ms], each sent when its event time comes; with ``score`` each one of a request kind from the
# job's start on is also scored through the InferenceService, as ``local.live_scoring.LiveScorer`` does in embedded
# mode. A backlog (no after_ms) ends with a watermark marker, so its last windows close.
WORLD_SCRIPT = r"""
import json, os, queue, threading, time, uuid
import requests
from contract.registry import load
from pipelines.streaming.producer import advance_watermark, produce

p = json.loads(os.environ["LOOP_WORLD"])
c = load(p["component"])
at, bootstrap = c.streaming.events.event_time, os.environ["KAFKA_BOOTSTRAP"]
live_from = time.time() * 1000
counts = {"produced": 0, "sent": 0, "ok": 0, "failed": 0, "dropped": 0}
lock, work = threading.Lock(), queue.Queue(2000)

def count(**more):
    with lock:
        for name, value in more.items():
            counts[name] += value

def send():
    session = requests.Session()
    key = {"Authorization": "Bearer " + os.environ.get("INFERENCE_KEY", "")}
    while (row := work.get()) is not None:
        try:
            reply = session.post(os.environ["MODEL_URL"], json={"instances": [row]},
                                 headers={**key, "x-request-id": uuid.uuid4().hex}, timeout=10)
            ok = reply.status_code == 200
            if not ok and counts["failed"] < 5:
                print("refused", reply.status_code, reply.text[:300], flush=True)
        except requests.RequestException as error:
            ok = False
            if counts["failed"] < 5:
                print("unreachable", error, flush=True)
        count(sent=1, ok=int(ok), failed=int(not ok))

def due():
    shown = time.monotonic()
    for event in c.generate(p["n"], p["start_ms"], p["seed"], change_at_ms=p["change_at_ms"]):
        t = event[at]
        if p["after_ms"] is not None and t <= p["after_ms"]:
            continue
        if t > p["until_ms"]:
            return
        while t > time.time() * 1000:
            time.sleep(max(0.0, min(0.2, t / 1000 - time.time())))
        wanted = not p["request_kinds"] or event.get(p["kind_field"]) in p["request_kinds"]
        if p["score"] and t >= live_from and wanted:
            try:
                work.put_nowait({name: event[name] for name in p["fields"]})
            except queue.Full:
                count(dropped=1)
        count(produced=1)
        if time.monotonic() - shown > 60:
            shown = time.monotonic()
            print("counts", json.dumps(counts), flush=True)
        yield event

workers = [threading.Thread(target=send, daemon=True) for _ in range(2 if p["score"] else 0)]
for worker in workers:
    worker.start()
produce(c, bootstrap, due())
if p["after_ms"] is None:
    advance_watermark(c, bootstrap, p["until_ms"])
for worker in workers:
    work.put(None)
for worker in workers:
    worker.join(timeout=60)
print("counts", json.dumps(counts), flush=True)
"""

pytestmark = pytest.mark.skipif(missing() is not None, reason=str(missing()))


STACK = ("loop", {"components": json.dumps([COMPONENT])})
"""A throw-away kind stack with the fraud component (``tests/kind/conftest.py``)."""


def _events_per_s(c: Any) -> float:
    """The generator's pace in event time (measured on a sample, as ``cli.demo_steps.events_within``)."""
    sample = list(c.generate(2_000, 0, SEED))
    field_name = c.streaming.events.event_time
    return float(len(sample) / max((sample[-1][field_name] - sample[0][field_name]) / 1000, 1e-3))


def _world(
    c: Any, start_ms: int, until_ms: int, *, after_ms: int | None, change_at_ms: int | None, score: bool
) -> list[dict[str, Any]]:
    """The world Job's environment: the generator's arguments and what to send of it. Every run of the generator
    from ``start_ms`` with ``SEED`` yields the same events up to ``change_at_ms`` (the stream before the change is
    the stationary one), so the backlog and the live world are one stream cut at ``after_ms``."""
    from local.traffic import request_kinds

    n = int(_events_per_s(c) * (until_ms - start_ms) / 1000 * 1.1) + 1
    spec = {
        "component": COMPONENT,
        "n": n,
        "start_ms": start_ms,
        "seed": SEED,
        "change_at_ms": change_at_ms,
        "after_ms": after_ms,
        "until_ms": until_ms,
        "score": score,
        "fields": [*c.entity_keys(), *c.model.request_fields],
        "kind_field": c.streaming.events.kind or "",
        "request_kinds": list(request_kinds(c)),
    }
    return [{"name": "LOOP_WORLD", "value": json.dumps(spec)}]


def _deployment_ready(cluster: dict[str, Any], namespace: str, name: str) -> bool:
    status = cluster["apps"].read_namespaced_deployment(name, namespace).status
    return bool((status.ready_replicas or 0) >= 1)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat()


def _champion(cluster: dict[str, Any]) -> str:
    from mlflow import MlflowClient

    from pipelines.training.registration import CHAMPION

    with port_forward(cluster["kubeconfig"], NAMESPACES["mlflow"], "mlflow", 5000) as mlflow:
        return str(MlflowClient(mlflow).get_model_version_by_alias(COMPONENT, CHAMPION).version)


def _scorer_key(cluster: dict[str, Any]) -> list[dict[str, Any]]:
    """A key of ``SCORER`` in the key check's namespace (its hash, as ``mlstack keys create`` writes it) and in a
    Secret of the workloads namespace, which the world Job reads it from."""
    from cli.keys_cli import NAMESPACE as KEYS_NAMESPACE
    from cli.keys_cli import key_secret
    from serving.auth_gateway import new_key

    key = new_key()
    cluster["core"].create_namespaced_secret(KEYS_NAMESPACE, key_secret(SCORER, key))
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": KEY_SECRET, "namespace": NAMESPACE},
        "type": "Opaque",
        "data": {"key": base64.b64encode(key.encode()).decode()},
    }
    cluster["core"].create_namespaced_secret(NAMESPACE, secret)
    return [{"name": "INFERENCE_KEY", "valueFrom": {"secretKeyRef": {"name": KEY_SECRET, "key": "key"}}}]


def _model_url(cluster: dict[str, Any]) -> str:
    """The V1 predict URL at the InferenceService's cluster-local address, ``status.address.url``: with
    ``disableIstioVirtualHost`` (``infra/services/kserve.py``) the predictor's Knative service host, whose route
    splits a canary's traffic (checked at kserve/kserve@v0.16.0: pkg/controller/v1beta1/inferenceservice/
    reconcilers/ingress/ingress_reconciler.go, ``Reconcile`` and ``getHostPrefix``)."""
    address = read_isvc(cluster).get("status", {}).get("address", {}).get("url")
    assert address, f"InferenceService {NAMESPACE}/{COMPONENT} reports no status.address.url"
    return f"{address}/v1/models/{COMPONENT}:predict"


def _counts(log: str) -> dict[str, int]:
    """The world Job's last ``counts`` line (produced, sent, ok, failed, dropped)."""
    lines = [line for line in log.splitlines() if line.startswith("counts ")]
    return dict(json.loads(lines[-1].removeprefix("counts "))) if lines else {}


def _decisions(cluster: dict[str, Any]) -> list[dict[str, Any]]:
    """The trigger's decision log for the component, through a port-forward to its Service (``kubectl
    port-forward`` is not pod traffic: the trigger's NetworkPolicy admits only Alertmanager and Prometheus)."""
    with port_forward(cluster["kubeconfig"], TRIGGER_NAMESPACE, TRIGGER, TRIGGER_PORT) as trigger:
        url = f"{trigger}/decisions?component={COMPONENT}"
        with urllib.request.urlopen(url, timeout=30) as response:
            found: list[dict[str, Any]] = json.loads(response.read())
    return found


def _epoch(text: str) -> float:
    from monitoring.retrain_trigger import alert_time

    at = alert_time(text)
    assert at is not None, f"not a time: {text!r}"
    return at


def test_the_loop_closes_on_kind(cluster: dict[str, Any]) -> None:
    from cli.demo_loop import TRAINING_S
    from infra.use_cases.monitoring import exporter_name
    from monitoring.alert_rules import REASON
    from monitoring.retrain_trigger import RETRAINABLE
    from pipelines.training.runner import run_cluster

    c = component()
    assert cluster["outputs"][f"{COMPONENT}InferenceService"] == f"{NAMESPACE}/{COMPONENT}"

    # The loop's parts run: the feature job, the monitor job and exporter, the retraining trigger.
    wait("the feature job RUNNING", lambda: flink_running(cluster, "features"))
    wait("the monitor job RUNNING", lambda: flink_running(cluster, "monitor"))
    wait("the monitor exporter ready", lambda: _deployment_ready(cluster, NAMESPACE, exporter_name(c)))
    wait("the retraining trigger ready", lambda: _deployment_ready(cluster, TRIGGER_NAMESPACE, TRIGGER))
    assert not [d for d in _decisions(cluster) if d["action"] == "started"], "a fresh trigger has run nothing"

    # The backlog: the longest window filled, then TRAINING_S of the world before its change, ending now.
    cut_ms = int(time.time() * 1000)
    start_ms = cut_ms - (c.streaming.warm_up_s + TRAINING_S) * 1000
    start_ms -= start_ms % MINUTE_MS
    backlog = _world(c, start_ms, cut_ms, after_ms=None, change_at_ms=None, score=False)
    assert _counts(run_in_cluster(cluster, "backlog", WORLD_SCRIPT, backlog, retries=False))["produced"] > 0
    wait("online features in Feast", lambda: online_features(cluster), 900, 30)

    # The champion: trained through the KFP API on the backlog after its longest window filled, then served.
    steady = _iso(start_ms + c.streaming.warm_up_s * 1000)
    with port_forward(cluster["kubeconfig"], NAMESPACES["kubeflow-pipelines"], "ml-pipeline", 8888) as kfp:
        params = pipeline_params(cluster, window_start=steady, seed=SEED)
        assert run_cluster(kfp, params, pipeline_package(cluster), timeout_s=TIMEOUT_S)["state"] == "SUCCEEDED"
    champion = _champion(cluster)  # the first version of a model without a champion is registered as champion
    wait("the InferenceService Ready on the champion", lambda: ready(read_isvc(cluster)))

    # The world from the backlog's end on: caught up at once, then live, each transaction scored as it happens.
    env = [*_scorer_key(cluster), {"name": "MODEL_URL", "value": _model_url(cluster)}]
    live_ms = int(time.time() * 1000)
    change_ms = live_ms + int(CHANGE_AFTER_S * 1000)
    env += _world(c, start_ms, live_ms + int(LIVE_S * 1000), after_ms=cut_ms, change_at_ms=change_ms, score=True)
    world = start_job(cluster, "world", WORLD_SCRIPT, env, retries=False)

    def world_flows() -> None:
        outcome = job_outcome(cluster, world)
        assert outcome is None, f"the world's live events ended ({outcome}) before the loop closed:\n" + job_log(
            cluster, world
        )

    def answered() -> bool:
        world_flows()
        return _counts(job_log(cluster, world)).get("ok", 0) > 0

    wait("live transactions answered by the InferenceService", answered, 900, 30)

    # Nobody acts: an alert about the changed world starts a run.
    def started() -> dict[str, Any] | None:
        world_flows()
        return next((d for d in _decisions(cluster) if d["action"] == "started"), None)

    run = wait("a retraining run started", started, CHANGE_AFTER_S + ALERT_TIMEOUT_S, 30)
    assert run["cause"] == "alert", run
    assert run["alert"].get(REASON) in RETRAINABLE, run
    assert _epoch(run["alert"]["startsAt"]) >= change_ms / 1000, f"an alert from before the change: {run}"

    # The run ends with a version the gate registered, promoted by its canary.
    def finished() -> dict[str, Any] | None:
        world_flows()
        return next((d for d in _decisions(cluster) if d["action"] == "finished"), None)

    ended = wait("the run's end", finished, RUN_TIMEOUT_S, 60)
    assert ended["cause"] == "alert" and ended["alert"] == run["alert"], ended
    assert _epoch(ended["at"]) >= _epoch(run["at"]), (run, ended)
    assert ended["version"] and ended["version"] != champion, ended
    assert ended["detail"] == "promoted", ended
    started_runs = [d for d in _decisions(cluster) if d["action"] == "started"]
    assert [d["cause"] for d in started_runs] == ["alert"], f"nobody acted, one run: {started_runs}"

    # The InferenceService serves the promoted version on all traffic; the registry names it champion.
    version = ended["version"]
    wait("the promoted version served", lambda: served_version(read_isvc(cluster)) == version, 600)
    wait("the promoted revision on all traffic", lambda: split(cluster) == [100], 600)
    assert rollout_books(cluster)["stable-version"] == version
    assert "canaryTrafficPercent" not in read_isvc(cluster)["spec"]["predictor"]
    assert _champion(cluster) == version
