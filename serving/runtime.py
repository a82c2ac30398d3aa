"""The KServe model server runtime for any component: the model from the MLflow registry, the entity's
features from Feast, the component's own ``prepare`` and ``predict``, on the V1 and V2 (Open Inference) REST
protocols. Bad requests are KServe ``InvalidInput`` errors (HTTP 400) naming the problem.

What a response carries follows the component's task (``contract.tasks``; every answer is checked by
``check_output``, so a model answering in another shape is a server error naming the task and both shapes):

- ``binary`` and ``regression``: V1 ``{"predictions": [score per row], "model_version"}``; V2 one FP64 output
  ``score`` of shape [rows].
- ``multiclass``: V1 ``{"predictions": [{"label": class, "scores": {class: p, ...}} per row], "classes",
  "model_version"}``; V2 (Open Inference Protocol) an FP64 output ``scores`` of shape [rows, classes] (row-major,
  its ``parameters.classes`` the column order as a JSON list) and a BYTES output ``label`` of shape [rows] (the
  most probable class).

Both protocols say whether the answer is degraded (V1 body ``"degraded"``, V2 response parameter ``degraded``):
answered without online features because the store was unreachable or slower than its budget
(``serving.online_features``), every feature missing as for an entity never seen; counted in
``mlstack_degraded_predictions_total``. With an ``InferenceLog`` every scored row is recorded on
``<component>.predictions`` off the request's path, keyed by the request id (V2: the request's ``id``, which the
response echoes; else the ``x-request-id`` header; else a new one).

``load`` answers one request through this whole path (features, ``prepare``, ``predict``, the check, both
protocols' encoding) before the server reports ready: a version that cannot answer is never served."""

from __future__ import annotations

import json
import math
import time
import uuid
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from kserve import InferInput, InferOutput, InferRequest, InferResponse, Model
from kserve.errors import InvalidInput

from contract import Component
from contract.served import fitted_model
from contract.tasks import check_output
from serving import metrics
from serving.batcher import RequestBatcher
from serving.inference_log import InferenceLog, Served, now_ms
from serving.online_features import DEFAULT_TIMEOUT_S, OnlineFeatures
from serving.request_schema import BadRequest, Columns, RequestSchema

SCORE, SCORES, LABEL = "score", "scores", "label"
"""V2 output names: the one score per row (binary, regression); per-class scores and the label (multiclass)."""
V2_TYPES = {str: "BYTES", bool: "BOOL", int: "INT64", float: "FP64"}


class ModelNotServable(RuntimeError):
    """The version cannot answer a request (its warm-up failed); the message says why."""


class Scored(NamedTuple):
    """One request's outcome: the checked output, the columns it was scored on (request fields and features as
    served) and whether the features were absent because the store was unavailable."""

    output: np.ndarray
    joined: dict[str, Any]
    degraded: bool


class ComponentModel(Model):  # type: ignore[misc]  # kserve.Model is untyped: the base is Any
    """Serves one registered version of a component's model under the component's name."""

    def __init__(
        self,
        component: Component,
        model_uri: str,
        version: str,
        store: Any,
        feature_timeout_s: float = DEFAULT_TIMEOUT_S,
        inference_log: InferenceLog | None = None,
    ) -> None:
        super().__init__(component.name)
        self.component = component
        self.model_uri = model_uri
        self.version = version
        self.store = store
        self.schema = RequestSchema.of(component)
        self.features = OnlineFeatures(component, store, feature_timeout_s)
        self.inference_log = inference_log
        labels = {metrics.COMPONENT: component.name, metrics.VERSION: version}
        # Each metric's child for this version, bound once: ``labels()`` is a dict lookup under a lock per call.
        task = component.model.task
        self.classes = tuple(component.model.classes) if task == "multiclass" else ()
        # A multiclass version counts its predicted classes; the others observe their scores in a histogram.
        self.class_counters = [
            metrics.PREDICTED_CLASSES.labels(**labels, **{metrics.CLASS: name}) for name in self.classes
        ]
        histogram = metrics.ESTIMATES if task == "regression" else metrics.PROBABILITIES
        self.predictions = histogram.labels(**labels) if task != "multiclass" else None
        self.requests = metrics.REQUESTS.labels(**labels)
        self.bad_requests = metrics.ERRORS.labels(**labels, **{metrics.KIND: metrics.BAD_REQUEST})
        self.server_errors = metrics.ERRORS.labels(**labels, **{metrics.KIND: metrics.SERVER_ERROR})
        self.latency = metrics.LATENCY.labels(**labels)
        self.degraded = metrics.DEGRADED.labels(**labels)
        self.estimator: Any = None
        self.columns: list[str] = []
        self.batcher = RequestBatcher(self._score_batch)

    def load(self) -> bool:
        import mlflow.sklearn
        from mlflow.models import get_model_info

        self.estimator = fitted_model(mlflow.sklearn.load_model(self.model_uri))
        signature = get_model_info(self.model_uri).signature
        self.columns = signature.inputs.input_names() if signature is not None else []
        try:
            self._warm_up()
        except Exception as error:
            raise ModelNotServable(
                f"{self.component.name} v{self.version} cannot answer a request, so it is not served: "
                f"{type(error).__name__}: {error}"
            ) from error
        self.ready = True
        return True

    def warm_up_instance(self) -> dict[str, Any]:
        """One request row the schema accepts: each field's first allowed value, else a neutral one."""
        neutral: dict[str, Any] = {"string": "warm-up", "long": 0, "double": 0.0, "boolean": False}
        row = {}
        for name, kind in self.schema.fields.items():
            value, domain = neutral[kind], self.schema.domains.get(name)
            if domain is not None and domain.values:
                value = domain.values[0]
            elif domain is not None and kind in {"long", "double"}:
                if domain.minimum is not None:
                    value = max(value, domain.minimum)
                if domain.maximum is not None:
                    value = min(value, domain.maximum)
                value = math.ceil(value) if kind == "long" else float(value)
            row[name] = value
        return row

    def _warm_up(self) -> None:
        """One request through the whole response path before taking traffic: validation of both protocols'
        requests, the feature lookup, ``prepare``, ``predict``, the task's output check and both protocols'
        encoding. A failure anywhere fails ``load``, so the server never reports ready for a version whose every
        request would fail (an (n, 3) answer where one score per row was due once passed a predict-only warm-up
        and then failed every request). It also pays lazy imports and connections before the first request (a
        canary that starts cold would look slow to the analysis). No metric counts it."""
        row = self.warm_up_instance()
        _, columns = self.preprocess({"instances": [row]})
        v2 = InferRequest(
            model_name=self.name,
            infer_inputs=[InferInput(name, [1], V2_TYPES[type(value)], [value]) for name, value in row.items()],
            request_id="warm-up",
        )
        request, _ = self.preprocess(v2)
        # The warm-up entity is one the store never saw: the lookup answers "no recent activity" (every feature
        # NaN), which the model must answer as it does in training.
        output = self.answer(self.features.lookup(columns))
        json.dumps(self.v1_body(output), allow_nan=False)
        self.v2_response(output, request).to_rest()

    async def __call__(self, body: Any, headers: dict[str, str] | None = None, verb: Any = None) -> Any:
        began = time.perf_counter()
        self.requests.inc()
        try:
            if verb is None:
                return await super().__call__(body, headers)
            return await super().__call__(body, headers, verb)
        except InvalidInput:
            self.bad_requests.inc()
            raise
        except Exception:
            self.server_errors.inc()
            raise
        finally:
            self.latency.observe(time.perf_counter() - began)

    def preprocess(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        """Validated request columns, with the V2 request kept for its response (``None`` for V1)."""
        try:
            if isinstance(payload, InferRequest):
                inputs = {i.name: list(np.asarray(i.data, dtype=object).ravel()) for i in payload.inputs}
                return payload, self.schema.columns(inputs)
            if isinstance(payload, bytes | str):  # a body sent without a JSON content type
                try:
                    payload = json.loads(payload)
                except ValueError as error:
                    raise BadRequest(f"the request body is not valid JSON: {error}") from None
            if not isinstance(payload, dict) or "instances" not in payload:
                raise BadRequest('a V1 request is a JSON object with "instances": [{...}, ...]')
            return None, self.schema.rows(payload["instances"])
        except BadRequest as error:
            raise InvalidInput(str(error)) from None

    async def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        request, columns = payload
        output, joined, degraded = await self.batcher(columns)
        request_id = (request.id if request is not None else None) or (headers or {}).get("x-request-id")
        request_id = request_id or uuid.uuid4().hex
        if degraded:
            self.degraded.inc()
        if self.inference_log is not None:
            self.inference_log.record(Served(request_id, now_ms(), joined, output, degraded))
        if self.predictions is not None:
            for score in output:
                self.predictions.observe(score)
        else:
            for index in output.argmax(axis=1):
                self.class_counters[index].inc()
        return self.respond(output, request, degraded, request_id)

    def respond(
        self, output: np.ndarray, request: InferRequest | None, degraded: bool = False, request_id: str = ""
    ) -> dict[str, Any] | InferResponse:
        """The V1 body (``request`` None) or the V2 response for checked model output (see the module's doc)."""
        if request is None:
            return self.v1_body(output, degraded)
        return self.v2_response(output, request, degraded, request_id)

    def labels(self, output: np.ndarray) -> list[str]:
        """A multiclass answer's most probable class per row."""
        return [self.classes[index] for index in output.argmax(axis=1)]

    def v1_body(self, output: np.ndarray, degraded: bool = False) -> dict[str, Any]:
        if not self.classes:
            return {"predictions": output.tolist(), "model_version": self.version, "degraded": degraded}
        return {
            "predictions": [
                {"label": label, "scores": dict(zip(self.classes, row, strict=True))}
                for label, row in zip(self.labels(output), output.tolist(), strict=True)
            ],
            "classes": list(self.classes),
            "model_version": self.version,
            "degraded": degraded,
        }

    def v2_response(
        self, output: np.ndarray, request: InferRequest, degraded: bool = False, request_id: str = ""
    ) -> InferResponse:
        rows = len(output)
        if not self.classes:
            outputs = [InferOutput(name=SCORE, shape=[rows], datatype="FP64", data=output.tolist())]
        else:
            outputs = [
                InferOutput(
                    name=SCORES,
                    shape=[rows, len(self.classes)],
                    datatype="FP64",
                    data=output.ravel().tolist(),  # row-major, as the protocol lays out tensors
                    parameters={"classes": json.dumps(list(self.classes))},
                ),
                InferOutput(name=LABEL, shape=[rows], datatype="BYTES", data=self.labels(output)),
            ]
        return InferResponse(
            model_name=self.name,
            infer_outputs=outputs,
            response_id=request_id or request.id or str(uuid.uuid4()),
            model_version=self.version,
            parameters={"model_version": self.version, "degraded": degraded},
        )

    def score(self, columns: Columns) -> Scored:
        """Features (within their budget, else absent and degraded), ``prepare`` and the model for validated
        request columns."""
        joined, degraded = self.features.read(columns)
        return Scored(self.answer(pd.DataFrame(joined, copy=False)), joined, degraded)

    def answer(self, joined: pd.DataFrame) -> np.ndarray:
        """``prepare`` and the model on request columns joined with their features, checked against the task:
        float64 of shape (rows,), or (rows, classes) for ``multiclass`` (``OutputError`` otherwise)."""
        model = self.component.model
        x = model.prepare(joined)
        if self.columns and list(x.columns) != self.columns:  # selecting copies the frame: only when it must
            x = x[self.columns]
        return check_output(model, model.predict(self.estimator, x), len(joined))

    def _score_batch(self, batch: list[Columns]) -> list[Scored | Exception]:
        """One outcome per request: their rows scored together, or one by one when that fails."""
        if len(batch) > 1:
            merged = {name: [value for columns in batch for value in columns[name]] for name in batch[0]}
            try:
                scored = self.score(merged)
            except Exception:
                pass  # scored again one by one below: each request gets its own answer (a 4xx, or the error)
            else:
                outcomes: list[Scored | Exception] = []
                start = 0
                for columns in batch:
                    end = start + len(next(iter(columns.values())))
                    joined = {name: column[start:end] for name, column in scored.joined.items()}
                    outcomes.append(Scored(scored.output[start:end], joined, scored.degraded))
                    start = end
                return outcomes
        outcomes = []
        for columns in batch:
            try:
                outcomes.append(self.score(columns))
            except Exception as error:
                outcomes.append(error)
        return outcomes
