"""The KServe model server runtime for any component: the model from the MLflow registry, the entity's
features from Feast, the component's own ``prepare`` and ``predict``, on the V1 and V2 (Open Inference) REST
protocols. Bad requests are KServe ``InvalidInput`` errors (HTTP 400) naming the problem."""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

import numpy as np
from kserve import InferOutput, InferRequest, InferResponse, Model
from kserve.errors import InvalidInput

from contract import Component
from serving import metrics
from serving.batcher import RequestBatcher
from serving.online_features import OnlineFeatures
from serving.request_schema import BadRequest, Columns, RequestSchema


class ComponentModel(Model):  # type: ignore[misc]  # kserve.Model is untyped: the base is Any
    """Serves one registered version of a component's model under the component's name."""

    def __init__(self, component: Component, model_uri: str, version: str, store: Any) -> None:
        super().__init__(component.name)
        self.component = component
        self.model_uri = model_uri
        self.version = version
        self.store = store
        self.schema = RequestSchema.of(component)
        self.features = OnlineFeatures(component, store)
        labels = {metrics.COMPONENT: component.name, metrics.VERSION: version}
        # Each metric's child for this version, bound once: ``labels()`` is a dict lookup under a lock per call.
        histogram = metrics.PROBABILITIES if component.model.task != "regression" else metrics.ESTIMATES
        self.predictions = histogram.labels(**labels)
        self.requests = metrics.REQUESTS.labels(**labels)
        self.bad_requests = metrics.ERRORS.labels(**labels, **{metrics.KIND: metrics.BAD_REQUEST})
        self.server_errors = metrics.ERRORS.labels(**labels, **{metrics.KIND: metrics.SERVER_ERROR})
        self.latency = metrics.LATENCY.labels(**labels)
        self.estimator: Any = None
        self.columns: list[str] = []
        self.batcher = RequestBatcher(self._score_batch)

    def load(self) -> bool:
        import mlflow.sklearn
        from mlflow.models import get_model_info

        self.estimator = mlflow.sklearn.load_model(self.model_uri)
        signature = get_model_info(self.model_uri).signature
        self.columns = signature.inputs.input_names() if signature is not None else []
        self._warm_up()
        self.ready = True
        return True

    def _warm_up(self) -> None:
        """One prediction before taking traffic, so the first requests do not pay for lazy imports and
        connections (a canary that starts cold would look slow to the analysis)."""
        import pandas as pd

        if self.columns:
            try:
                row = pd.DataFrame([[0.0] * len(self.columns)], columns=self.columns)
                self.component.model.predict(self.estimator, row)
            except Exception as error:  # requests will show it, and a canary analysis will catch it
                logging.getLogger(__name__).warning("warm-up prediction failed: %s", error)
        keys = self.component.entity_keys()
        dummy = {key: ["warm-up" if self.schema.fields[key] == "string" else 0] for key in keys}
        self.features.lookup(dummy)  # an entity never seen: every feature NaN

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
        scores = await self.batcher(columns)
        for score in scores:
            self.predictions.observe(score)
        if request is None:
            return {"predictions": scores, "model_version": self.version}
        output = InferOutput(name="score", shape=[len(scores)], datatype="FP64", data=scores)
        return InferResponse(
            model_name=self.name,
            infer_outputs=[output],
            response_id=request.id or str(uuid.uuid4()),
            parameters={"model_version": self.version},
        )

    def score(self, columns: Columns) -> list[float]:
        """Features, ``prepare`` and the model for validated request columns."""
        joined = self.features.lookup(columns)
        model = self.component.model
        x = model.prepare(joined)
        if self.columns and list(x.columns) != self.columns:  # selecting copies the frame: only when it must
            x = x[self.columns]
        return [float(score) for score in model.predict(self.estimator, x)]

    def _score_batch(self, batch: list[Columns]) -> list[list[float] | Exception]:
        """One outcome per request: their rows scored together, or one by one when that fails."""
        if len(batch) > 1:
            merged = {name: [value for columns in batch for value in columns[name]] for name in batch[0]}
            try:
                scores = self.score(merged)
            except Exception:
                pass  # scored again one by one below: each request gets its own answer (a 4xx, or the error)
            else:
                outcomes: list[list[float] | Exception] = []
                for columns in batch:
                    count = len(next(iter(columns.values())))
                    outcomes.append(scores[:count])
                    scores = scores[count:]
                return outcomes
        outcomes = []
        for columns in batch:
            try:
                outcomes.append(self.score(columns))
            except Exception as error:
                outcomes.append(error)
        return outcomes
