"""The gate and the registry: the best configuration is refit, judged on the holdout against the current
``champion``, and registered as ``challenger`` only when it is better by at least the required gain. The first
version of a model without a champion is registered as ``champion``: nothing serves yet to canary it against.

Nothing is logged for a model whose holdout predictions do not have its task's shape (``contract.tasks``): the
server would refuse to load it. What is logged is a ``contract.served.ServedModel``, the fitted model with the
component's ``predict``, so the MLflow signature's outputs and the pyfunc flavour are exactly what the model
server answers: one double per row named ``score`` (binary: the positive class's probability; regression: the
estimate), or for multiclass one double per class per row, in columns named by the classes.

With the model, the run stores the version's reference profile (``contract.profile``): the training rows' request
fields and raw features, and the holdout's predictions, as ``profile/profile.json`` among the run's artifacts, what
drift is measured against (``contract.drift``). ``load_profile`` reads it back by component and version. The
holdout score and its bootstrap standard error are tagged on the version (``holdout_<metric>``,
``holdout_<metric>_stderr``): the monitor compares the live metric with them."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from contract import Component
from contract.live_evaluation import estimate
from contract.profile import ARTIFACT_PATH, Profile, ProfileError, build_profile
from contract.served import ServedModel, fitted_model
from contract.tasks import OutputError, check_output, encode_target

CHAMPION = "champion"
CHALLENGER = "challenger"


@dataclass
class Decision:
    passed: bool
    reason: str
    metric: str
    holdout_score: float
    champion_version: str | None = None
    champion_score: float | None = None
    baseline_score: float | None = None
    version: str | None = None
    """The registered version, when the model passed."""
    model_uri: str | None = None
    alias: str | None = None
    """The alias the registered version got: ``challenger``, or ``champion`` for the first of a model that had none
    (nothing serves yet to canary it against)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def holdout_stderr_name(metric: str) -> str:
    """The run metric and version tag holding the holdout score's bootstrap standard error."""
    return f"holdout_{metric}_stderr"


def registered_name(component: Component) -> str:
    return component.name


def champion_version(client: Any, name: str) -> Any | None:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:  # no such model yet, or no champion alias on it
        return None


def score_champion(component: Component, name: str, x: pd.DataFrame, y: np.ndarray) -> float:
    """The champion's score on the same holdout (it reads the columns its signature names)."""
    import mlflow.sklearn

    model_uri = f"models:/{name}@{CHAMPION}"
    champion = fitted_model(mlflow.sklearn.load_model(model_uri))
    signature = mlflow.models.get_model_info(model_uri).signature
    columns = signature.inputs.input_names() if signature is not None else list(x.columns)
    missing = [c for c in columns if c not in x]
    if missing:
        raise ValueError(f"the champion reads {', '.join(missing)}, which the current model inputs lack")
    return component.model.metric.score(y, component.model.predict(champion, x[columns]))


MODEL_PACKAGES = ("scikit-learn", "numpy", "pandas", "scipy", "cloudpickle")


def model_requirements() -> list[str]:
    """The packages a logged model needs to load, pinned to this environment's versions."""
    from importlib.metadata import version

    return [f"{package}=={version(package)}" for package in MODEL_PACKAGES]


def gate(
    component: Component,
    score: float,
    champion_score: float | None,
    min_gain: float,
    baseline_score: float | None = None,
    accept_ties: bool = False,
) -> tuple[bool, str]:
    """Whether a model may become challenger, and why. It must beat the naive baseline, if the component has one,
    and the champion, by more than 0 and by at least ``min_gain``; with ``accept_ties`` a model within the
    metric's tolerance of the champion passes too (retrained on fresher data, as good as far as the holdout can
    tell: its canary decides)."""
    metric = component.model.metric
    if baseline_score is not None and not metric.better(score, baseline_score):
        # A model that cannot beat the naive forecast it is compared with is not worth serving.
        return False, f"holdout {metric.name} {score:.4f} does not beat the naive baseline's {baseline_score:.4f}"
    if champion_score is None:
        return True, f"no champion yet; holdout {metric.name} {score:.4f}"
    gain = metric.gain(score, champion_score)
    verdict = (
        f"holdout {metric.name} {score:.4f} vs champion {champion_score:.4f} "
        f"(gain {gain:+.4f}, required more than 0 and at least {min_gain:.4f})"
    )
    # Strictly better, by at least the required margin: an equal model is no reason to roll anything out...
    if gain > 0 and gain >= min_gain:
        return True, verdict
    # ...unless the policy is to keep models fresh: then a tie within the holdout's noise goes to its canary.
    if accept_ties and metric.equivalent(score, champion_score):
        return True, f"{verdict}; within the metric's tolerance {metric.tolerance:g}: accepted as a tie"
    return False, verdict


def evaluate_and_register(
    component: Component,
    fitted: Any,
    holdout: pd.DataFrame,
    min_gain: float,
    mlflow_uri: str,
    run_id: str,
    lineage: dict[str, str],
    accept_ties: bool = False,
    training: pd.DataFrame | None = None,
) -> Decision:
    """Score on the holdout, compare with the champion, log the model and its profile in the run, and register it
    as ``challenger`` when it passes. Nothing touches the registry before the decision. ``training`` is the rows
    the model was fit on, which the profile describes (None: the holdout's rows, for callers without them)."""
    import mlflow
    import mlflow.sklearn
    from mlflow import MlflowClient
    from mlflow.models import infer_signature

    mlflow.set_tracking_uri(mlflow_uri)
    client = MlflowClient(mlflow_uri)
    model = component.model
    name = registered_name(component)
    x = model.prepare(holdout)
    y = encode_target(model, holdout[model.target])
    try:
        predictions = check_output(model, model.predict(fitted, x), len(x))
    except OutputError as error:
        raise OutputError(
            f"component {component.name!r}: the trained model's holdout predictions do not fit its task, so no "
            f"version is logged: {error}"
        ) from None
    score = model.metric.score(y, predictions)
    # The holdout score is a sample too (fraud's holdout of ~1,000 rows holds ~30 frauds: ROC AUC +- 0.02-0.03);
    # the performance alert compares the live metric with it, so it needs both noises.
    holdout_stderr = estimate(model.metric, np.asarray(y), np.asarray(predictions, dtype="float64")).stderr
    profile = (
        build_profile(component, holdout, predictions)
        if training is None
        else build_profile(component, training, predictions, holdout=holdout)
    )
    decision = Decision(passed=False, reason="", metric=model.metric.name, holdout_score=score)
    if model.baseline is not None:
        # A baseline is a naive forecast, never a peek at the answer: it gets the holdout without its target.
        decision.baseline_score = model.metric.score(y, model.baseline(holdout.drop(columns=[model.target])))

    current = champion_version(client, name)
    if current is not None:
        decision.champion_version = str(current.version)
        try:
            decision.champion_score = score_champion(component, name, x, y)
        except Exception as error:  # an unreadable champion cannot block a model that works
            decision.reason = f"champion v{current.version} could not be scored ({error}); "
    decision.passed, verdict = gate(
        component, score, decision.champion_score, min_gain, decision.baseline_score, accept_ties
    )
    decision.reason += verdict

    served = ServedModel(component.name, model, fitted)
    example = x.head(5)
    with mlflow.start_run(run_id=run_id):
        metrics = {f"holdout_{model.metric.name}": score}
        if math.isfinite(holdout_stderr):
            metrics[holdout_stderr_name(model.metric.name)] = holdout_stderr
        if decision.champion_score is not None:
            metrics[f"champion_holdout_{model.metric.name}"] = decision.champion_score
        if decision.baseline_score is not None:
            metrics[f"baseline_holdout_{model.metric.name}"] = decision.baseline_score
        mlflow.log_metrics(metrics)
        mlflow.log_text(profile.to_json(), ARTIFACT_PATH)
        info = mlflow.sklearn.log_model(
            served,
            name="model",
            signature=infer_signature(example, served.predict(example)),
            input_example=example,
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
            pyfunc_predict_fn="predict",  # ServedModel.predict: the component's predict, named as served
            # Stated, not inferred: inference loads the model in a subprocess to watch its imports (~15 s).
            pip_requirements=model_requirements(),
        )
        mlflow.set_tags(
            {"mlstack.gate": "passed" if decision.passed else "rejected", "mlstack.gate_reason": decision.reason}
        )
    decision.model_uri = info.model_uri
    if not decision.passed:
        return decision

    # The first version of a model with no champion serves as champion: there is no stable version to canary it
    # against, and a cluster's InferenceService starts on the champion alias.
    decision.alias = CHALLENGER if current is not None else CHAMPION
    if current is None:
        decision.reason += "; registered as champion: nothing serves yet to canary it against"
    version = mlflow.register_model(info.model_uri, name, tags={**lineage, "mlstack.run_id": run_id})
    client.set_model_version_tag(name, version.version, f"holdout_{model.metric.name}", f"{score:.6f}")
    if math.isfinite(holdout_stderr):
        client.set_model_version_tag(
            name, version.version, holdout_stderr_name(model.metric.name), f"{holdout_stderr:.6f}"
        )
    client.set_registered_model_alias(name, decision.alias, version.version)
    client.update_registered_model(name, description=component.description)
    decision.version = str(version.version)
    return decision


def load_profile(mlflow_uri: str, component: str, version: str) -> Profile:
    """The profile stored with registered ``version`` of ``component`` (from the run the version points to)."""
    import tempfile
    from pathlib import Path

    import mlflow.artifacts
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    found = MlflowClient(mlflow_uri).get_model_version(component, version)
    run_id = found.run_id or found.tags.get("mlstack.run_id")
    if not run_id:
        raise ProfileError(f"{component} v{version} points to no training run, so it has no profile")
    with tempfile.TemporaryDirectory() as directory:
        try:
            path = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=ARTIFACT_PATH, dst_path=directory, tracking_uri=mlflow_uri
            )
        except (MlflowException, OSError) as error:
            raise ProfileError(
                f"{component} v{version}: run {run_id} has no {ARTIFACT_PATH} (registered before profiles were "
                f"stored?): {error}"
            ) from None
        return Profile.from_json(Path(path).read_text())
