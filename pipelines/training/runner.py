"""Running the training pipeline: compile to IR YAML, run through the KFP local runner (subprocesses, no
Docker), or upload and run on a Kubeflow Pipelines API."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from contract.resources import WorkloadHint
from pipelines.training.pipeline import DEFAULT_IMAGE, PIPELINE_NAME, build_pipeline

Progress = Callable[[str], None]


class PipelineFailed(RuntimeError):
    """A pipeline run ended without success; the message names the step and its error."""


class RunOptions(TypedDict, total=False):
    """The run's own choices among ``PipelineParams`` (the rest says where the services are)."""

    window_start: str
    window_end: str
    trials: int
    concurrency: int
    min_gain: float
    accept_ties: bool
    seed: int
    reason: str


@dataclass(frozen=True)
class PipelineParams:
    """The pipeline's arguments (one per pipeline parameter)."""

    component: str
    mlflow_uri: str
    feast_repo: str
    offline_root: str
    window_start: str = ""
    window_end: str = ""
    trials: int = 8
    concurrency: int = 2
    min_gain: float = 0.0
    accept_ties: bool = False
    """Register a challenger within the metric's tolerance of the champion (fresher data; the canary decides)."""
    seed: int = 0
    ray_address: str = ""
    reason: str = ""
    """Why this run (the retraining trigger's cause, JSON): tagged ``mlstack.reason`` on the run and its version."""

    def arguments(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PipelineRun:
    decision: dict[str, Any]
    wall_s: float
    step_s: dict[str, float] = field(default_factory=dict)
    """Seconds inside each step (from the runner's own log), to show what the orchestration costs."""


def compile_pipeline(out_dir: Path, image: str = DEFAULT_IMAGE, training: WorkloadHint | None = None) -> Path:
    """Write the IR YAML that the KFP API accepts, its search step sized by ``training`` (a component's hint)."""
    from kfp import compiler

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{PIPELINE_NAME}.yaml"
    compiler.Compiler().compile(build_pipeline(image, training), package_path=str(path))
    return path


def preflight(params: PipelineParams) -> None:
    """Fail before any task starts when the component is unknown or MLflow or Feast cannot be reached."""
    from contract.registry import load
    from pipelines.training.steps import feature_store, mlflow_client

    load(params.component)
    mlflow_client(params.mlflow_uri)
    feature_store(params.feast_repo)


def run_local(
    params: PipelineParams, pipeline_root: Path, progress: Progress = print, on_output: Progress | None = None
) -> PipelineRun:
    """Run every step as a local subprocess of this environment (the KFP local runner). Progress shows the
    steps, trials and verdict; ``on_output`` (the demo's trial bar) gets every line of the runner's output; the
    runner's full log is kept beside the run's artifacts."""
    from kfp import local

    preflight(params)
    pipeline_root.mkdir(parents=True, exist_ok=True)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(pipeline_root), raise_on_error=True)
    pipeline = build_pipeline()
    log_path = pipeline_root / f"{PIPELINE_NAME}-{time.strftime('%Y%m%d-%H%M%S')}.log"
    progress(f"running {PIPELINE_NAME} for {params.component} with the KFP local runner (log: {log_path})")
    began = time.monotonic()
    log = _Tee(progress, on_output)
    try:
        with warnings.catch_warnings():
            # The local runner warns that images and resource settings only matter in the cluster: we know.
            warnings.filterwarnings("ignore", module=r"kfp\.local\..*")
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log), _unbuffered_steps():
                task = pipeline(**params.arguments())
    except RuntimeError as error:
        log.flush()
        raise PipelineFailed(f"{_failure(str(error), log.text())} (log: {log_path})") from None
    finally:
        log.flush()
        log_path.write_text(ANSI.sub("", log.text()))
    wall = time.monotonic() - began
    return PipelineRun(decision=json.loads(task.output), wall_s=wall, step_s=step_durations(log.text()))


LOCAL_STEP_NICENESS = 10
"""How far the local runner's steps lower their CPU priority (``steps.STEP_NICENESS``), so that on one machine
training yields to what streams and serves: at full priority a search's trials starved the feature job, whose
windows then reached the online store in up to 30 s at p99 while a model trained (the alert for it fired in a
world without change). The cluster gives each its own pod and never sets it."""


@contextlib.contextmanager
def _unbuffered_steps() -> Iterator[None]:
    """The runner's step subprocesses write to a pipe, which Python block-buffers: a step's trials would arrive
    in one burst when it ends. Unbuffered, each line shows as it happens. The steps also run at a lower CPU
    priority (``LOCAL_STEP_NICENESS``); both reach them through the environment they inherit."""
    from pipelines.training.steps import STEP_NICENESS

    wanted = {"PYTHONUNBUFFERED": "1", STEP_NICENESS: str(LOCAL_STEP_NICENESS)}
    before = {name: os.environ.get(name) for name in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                del os.environ[name]
            else:
                os.environ[name] = value


ANSI = re.compile(r"\x1b\[[0-9;]*m")
SHOWN = re.compile(
    r"Executing task|finished with status|^Trial \S+ (completed|errored)|^Ray Tune:|^training set of|"
    r"^registered |^not registered|^\d+ trials \("
)


class _Tee(io.TextIOBase):
    """Keeps the runner's output for the log and passes on the lines a person follows (steps, trials, verdict)."""

    def __init__(self, progress: Progress, on_output: Progress | None = None) -> None:
        self._progress = progress
        self._on_output = on_output
        self.original = sys.stdout
        self.lines: list[str] = []
        self.partial = ""

    def write(self, text: str) -> int:
        self.partial += text
        *complete, self.partial = self.partial.split("\n")
        for line in complete:
            self._keep(line)
        return len(text)

    def flush(self) -> None:
        if self.partial:
            self._keep(self.partial)
            self.partial = ""

    def _keep(self, line: str) -> None:
        self.lines.append(line)
        clean = ANSI.sub("", line).strip()
        with contextlib.redirect_stdout(self.original):  # progress may print: not back into this tee
            if SHOWN.search(clean):
                self._progress(f"  {clean}")
            if self._on_output is not None:
                self._on_output(clean)

    def text(self) -> str:
        return "\n".join([*self.lines, self.partial])


def _failure(message: str, log: str) -> str:
    """The failing task and the last error line its subprocess printed."""
    clean = ANSI.sub("", log)
    task = re.search(r"Task '([^']+)' finished with status FAILURE", clean) or re.search(r"'([^']+)'", message)
    errors = [
        line.strip() for line in clean.splitlines() if re.match(r"\s*[\w.]+(Error|Exception|Unreachable)\b:", line)
    ]
    step = task.group(1) if task else "?"
    return f"training pipeline failed at step {step}: {errors[-1] if errors else ANSI.sub('', message)}"


def step_durations(log: str) -> dict[str, float]:
    """Seconds per task, from the runner's timestamps on ``Executing task 'x'`` and ``Task 'x' finished``."""
    clean = ANSI.sub("", log)
    stamp = r"(\d\d):(\d\d):(\d\d\.\d+) - INFO - "
    starts: dict[str, float] = {}
    durations: dict[str, float] = {}
    for match in re.finditer(stamp + r"(?:Executing task '([^']+)'|Task '([^']+)' finished)", clean):
        seconds = int(match.group(1)) * 3600 + int(match.group(2)) * 60 + float(match.group(3))
        if match.group(4):
            starts[match.group(4)] = seconds
        elif match.group(5) in starts:
            durations[match.group(5)] = (seconds - starts[match.group(5)]) % 86400
    return durations


def run_cluster(
    host: str,
    params: PipelineParams,
    package: Path,
    experiment: str = "mlstack",
    timeout_s: float = 3600,
    progress: Progress = print,
) -> dict[str, Any]:
    """Upload the compiled pipeline (a new version when it exists), start a run, wait, and report its state."""
    import kfp

    client = kfp.Client(host=host)
    name = f"{PIPELINE_NAME}-{params.component}"
    existing = client.get_pipeline_id(name)
    if existing:
        client.upload_pipeline_version(
            str(package), pipeline_version_name=f"{name}-{int(time.time())}", pipeline_id=existing
        )
    else:
        client.upload_pipeline(str(package), pipeline_name=name)
    run = client.create_run_from_pipeline_package(
        str(package),
        arguments=params.arguments(),
        run_name=f"{name}-{time.strftime('%Y%m%d-%H%M%S')}",
        experiment_name=experiment,
        enable_caching=False,
    )
    progress(f"started run {run.run_id} on {host}")
    detail = client.wait_for_run_completion(run.run_id, timeout=timeout_s)
    state = str(getattr(detail, "state", "UNKNOWN"))
    if state != "SUCCEEDED":
        raise PipelineFailed(f"run {run.run_id} on {host} ended {state}")
    return {"run_id": run.run_id, "state": state}
