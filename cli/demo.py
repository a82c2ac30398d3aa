"""``make demo``: the whole lifecycle of one component on the embedded default, each phase timed.

Services up; the component's events streamed through Kafka and Flink into Feast (a backlog, then live events at
their natural pace); the training pipeline (KFP local runner, Ray Tune, MLflow) trains a first model that becomes
``champion`` and is served behind HAProxy; a second, larger search trains a challenger; if the gate registers it,
a canary rollout under generated traffic steps it up or rolls it back on measured evidence. From the moment a model
serves, each live event is scored as it happens; at the end the monitor's model panel (live metric per version from
the labels that came back, drift against each version's training profile) joins the summary. Everything is left
running for the user to explore; the rollout report and the model panel are saved as PNG.

The phases are in ``cli.demo_steps`` and ``cli.demo_canary``; what drives only the embedded engines (the events'
timeline, the live events, the training pipeline's embedded arguments) is in ``local``.
"""

from __future__ import annotations

from cli import demo_canary, demo_monitor, demo_steps
from cli.demo_state import DemoOptions, DemoResult, Progress
from local.progress import Phases
from local.settings import EmbeddedSettings

__all__ = ["DemoOptions", "DemoResult", "run_demo"]


def run_demo(
    options: DemoOptions,
    progress: Progress,
    settings: EmbeddedSettings | None = None,
    phases: Phases | None = None,
) -> DemoResult:
    """Run the demo; leaves the services, the streaming job and the model endpoint running.

    ``progress`` gets the demo's lines; ``phases`` shows its long phases (the backlog, each search's trials, the
    canary's steps): bars on a terminal (``local.progress.bar_phases``), by default a few lines via ``progress``.
    """
    from mlflow import MlflowClient

    demo = demo_steps.prepare(options, progress, settings, phases)
    demo_steps.start_services(demo)
    streaming = demo_steps.start_streaming(demo)
    backlog, future = demo_steps.stream_backlog(demo, streaming)
    live = demo_steps.go_live(demo, streaming, backlog, future)
    client = MlflowClient(demo.settings.mlflow_url)
    demo_steps.first_model(demo, client, backlog)
    serving, rollout = demo_steps.serve_champion(demo, client)
    scorer = demo_monitor.score_live(demo, live, serving)
    demo_steps.train_challenger(demo)
    demo_steps.collect(demo, live, streaming, serving, backlog)
    if demo.result.challenger_version:
        sent = backlog + future[: live.sent]
        demo_canary.run_canary(demo, serving, rollout, sent)
    else:
        demo.step(7, "no canary: the gate kept the challenger out of the registry (see its reason above)")
    demo_monitor.model_panel(demo, live, scorer, streaming)
    demo_steps.save_summary(demo)
    return demo.result
