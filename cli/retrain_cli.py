"""``mlstack retrain <component> --reason ...`` and ``mlstack trigger serve|decisions``: the retraining trigger.

``retrain`` asks the running trigger for a run (training, then the canary of what the gate registers), so a person's
request obeys the same one-run-per-component rule as the alerts' and is logged beside them. ``trigger serve`` is the
trigger itself (``monitoring.retrain_trigger``), with embedded mode's runs (``local.retraining``): the supervisor
starts it as the ``retrain`` service. ``trigger decisions`` prints its log.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from local.errors import EmbeddedError
from local.settings import EmbeddedSettings

console = Console(soft_wrap=True)
app = typer.Typer(no_args_is_help=True, help="The retraining trigger: Alertmanager's webhook that starts retraining.")
ComponentArg = Annotated[str, typer.Argument(help="The component to retrain.")]
TriggerUrl = Annotated[
    str, typer.Option("--url", envvar="MLSTACK_RETRAIN_URL", help="The trigger's URL (default: embedded mode's).")
]


def _call(url: str, body: Any | None = None) -> Any:
    request = urllib.request.Request(url, method="POST" if body is not None else "GET")
    data = None if body is None else json.dumps(body).encode()
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, data, timeout=30) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        detail = json.loads(error.read() or b"{}").get("error", error.reason)
        raise EmbeddedError(f"the retraining trigger refused: {detail}") from None
    except OSError as error:
        raise EmbeddedError(
            f"the retraining trigger at {url} is not answering ({error}): start it with `mlstack services up`"
        ) from None


def retrain(
    component: ComponentArg,
    reason: Annotated[str, typer.Option("--reason", help="Why: recorded on the pipeline run and the version.")],
    url: TriggerUrl = "",
) -> None:
    """Retrain COMPONENT now (no cooldown; never beside a run already under way), then canary what it registers."""
    from contract.registry import load

    load(component)  # an unknown component fails here, naming the ones there are
    base = url or EmbeddedSettings.from_env().retrain_url
    (decision,) = _call(f"{base}/retrain", {"component": component, "reason": reason})
    console.print(f"{component}: {decision['action']}: {decision['detail']}", highlight=False)
    if decision["action"] != "started":
        raise typer.Exit(1)
    console.print(f"follow it with `mlstack trigger decisions {component}` (the run's end and outcome are logged)")


@app.command("decisions")
def decisions(
    component: Annotated[str, typer.Argument(help="Only this component's.")] = "",
    url: TriggerUrl = "",
) -> None:
    """The trigger's decisions, oldest first: what started a run, what was held back and why, how each run ended."""
    from monitoring.retrain_trigger import Decision, summaries

    base = url or EmbeddedSettings.from_env().retrain_url
    query = f"?component={component}" if component else ""
    found = [Decision(**d) for d in _call(f"{base}/decisions{query}")]
    for line in summaries(found) or ["no decisions yet"]:
        console.print(line, highlight=False)


@app.command("serve")
def serve(
    port: Annotated[int, typer.Option(help="Port to listen on (default: the settings' retrain port).")] = 0,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    on_alerts: Annotated[
        bool, typer.Option("--on-alerts/--no-on-alerts", help="Alerts start runs (off: logged only).")
    ] = True,
    cooldown: Annotated[float, typer.Option(help="Seconds after a run's end during which alerts start none.")] = 0.0,
    window: Annotated[float, typer.Option(help="The canary's analysis window, seconds.")] = 30.0,
    trials: Annotated[int, typer.Option(help="Search trials of each run (embedded mode).")] = 6,
    schedule: Annotated[str, typer.Option(help="The canary's shares in percent, rising to 100.")] = "10,25,50,100",
    min_requests: Annotated[int, typer.Option(help="Requests per version before a canary window is judged.")] = 100,
    live_evidence: Annotated[
        str, typer.Option(help="What the canary must show on live labels before 100%: off, 'not worse' or better.")
    ] = "not worse",
    live_min_labels: Annotated[int, typer.Option(help="Labelled predictions per version before that is judged.")] = 200,
    history: Annotated[
        float, typer.Option(help="Seconds of the stream before a run's start it trains on (0: all of it).")
    ] = 0.0,
    settle_margin: Annotated[
        float,
        typer.Option(help="Seconds of labelled traffic a run an alert started waits for, beyond the label delay."),
    ] = 60.0,
    cluster: Annotated[
        bool, typer.Option("--cluster", help="Runs through the cluster's KFP API and InferenceServices.")
    ] = False,
    kfp_host: Annotated[str, typer.Option(envvar="MLSTACK_KFP_HOST", help="--cluster: the KFP API's URL.")] = "",
    mlflow_uri: Annotated[str, typer.Option(envvar="MLFLOW_TRACKING_URI", help="--cluster: MLflow's URL.")] = "",
    prometheus: Annotated[
        str, typer.Option(envvar="MLSTACK_PROMETHEUS_URL", help="--cluster: Prometheus' URL (canary counters).")
    ] = "",
    namespace: Annotated[str, typer.Option(help="--cluster: the components' namespace.")] = "mlstack",
    offline_root: Annotated[
        str, typer.Option(help="--cluster: the feature history, {component} for the component (default: the stack's).")
    ] = "",
    ray_address: Annotated[str, typer.Option(help="--cluster: the search cluster's Jobs API (KubeRay).")] = "",
    log: Annotated[str, typer.Option(help="--cluster: the decision log (default: under the state dir).")] = "",
) -> None:
    """Run the trigger: with embedded mode's runs (the supervisor's ``retrain`` service), or ``--cluster``'s (the
    trigger's Deployment runs the same code; this runs it from a workstation, e.g. through port-forwards)."""
    from monitoring.retrain_trigger import DEFAULT_COOLDOWN_S, Trigger, TriggerPolicy
    from monitoring.retrain_trigger import serve as serve_http

    settings = EmbeddedSettings.from_env()
    if cluster:
        _serve_cluster(
            settings, host, port or settings.retrain_port, on_alerts, cooldown or DEFAULT_COOLDOWN_S, window,
            kfp_host, mlflow_uri, prometheus, namespace, offline_root, ray_address, log, history, settle_margin,
        )  # fmt: skip
        return
    from cli.rollout_options import rollout_config
    from local.retraining import EmbeddedRetrainer

    rollout = rollout_config(schedule, min_requests, live_evidence, live_min_labels)
    policy = TriggerPolicy(
        cooldown_s=cooldown or DEFAULT_COOLDOWN_S, automatic=on_alerts, settle_margin_s=settle_margin
    )
    log_path = settings.state_dir / "retrain" / "decisions.jsonl"
    retrainer = EmbeddedRetrainer(settings, trials=trials, window_s=window, history_s=history, rollout=rollout)
    trigger = Trigger(retrainer, log_path, policy, progress=print)
    server = serve_http(trigger, host, port or settings.retrain_port)
    automatic = "alerts start runs" if on_alerts else "alerts are logged only (--no-on-alerts)"
    print(
        f"retraining trigger on http://{host}:{port or settings.retrain_port} ({automatic}); log {log_path}", flush=True
    )
    server.serve_forever()


def _serve_cluster(
    settings: EmbeddedSettings,
    host: str,
    port: int,
    on_alerts: bool,
    cooldown_s: float,
    window_s: float,
    kfp_host: str,
    mlflow_uri: str,
    prometheus: str,
    namespace: str,
    offline_root: str,
    ray_address: str,
    log: str,
    history_s: float,
    settle_margin_s: float,
) -> None:
    from infra.services.mlflow import FEATURES_BUCKET
    from infra.use_cases.cluster_retraining import (
        COMPONENT,
        ClusterOptions,
        RunTemplate,
        cluster_retrainer,
        serve_cluster,
    )
    from infra.use_cases.manifests import FEAST_DIR

    missing = [
        n for n, v in (("--kfp-host", kfp_host), ("--mlflow-uri", mlflow_uri), ("--prometheus", prometheus)) if not v
    ]
    if missing:
        raise EmbeddedError(f"trigger serve --cluster needs {', '.join(missing)} (or their environment variables)")
    template = RunTemplate(
        mlflow_uri, FEAST_DIR, offline_root or f"s3://{FEATURES_BUCKET}/{COMPONENT}", ray_address, history_s
    )
    log_path = Path(log) if log else settings.state_dir / "retrain" / "cluster-decisions.jsonl"
    try:
        options = ClusterOptions(
            kfp_host, mlflow_uri, prometheus, namespace, template, log_path, host, port, on_alerts, cooldown_s,
            window_s, settle_margin_s,
        )  # fmt: skip
        retrainer = cluster_retrainer(options)
    except ValueError as error:
        raise EmbeddedError(str(error)) from None
    serve_cluster(options, retrainer)
