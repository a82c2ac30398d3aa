"""What a registry version holds: the fitted model together with its component's ``predict``, so that MLflow's
signature and its pyfunc flavour state what the model server answers.

The model server calls the component's ``predict`` on the fitted model (one probability of the positive class per
row for ``binary``), which is none of a scikit-learn estimator's own methods: logged bare, the pyfunc flavour could
only call ``predict_proba`` (two columns) or ``predict`` (labels), and the registry's signature would disagree with
the service. Wrapped, ``mlflow.pyfunc.load_model(uri).predict(x)`` answers exactly what the server does:

- ``binary`` and ``regression``: one double per row, a Series named ``score`` (the V2 output's name);
- ``multiclass``: one double per class per row, a DataFrame whose columns are the class names in ``classes``
  order (the V2 ``scores`` tensor's columns; the server's ``label`` is the most probable of them).

The model server and the champion's rescoring take the fitted model back out (``fitted_model``), so a version
logged before this wrapper, or by hand, is served the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from contract.tasks import check_output

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from contract.model import ModelSpec, Task

SCORE = "score"
"""The name of the one output of a ``binary`` or ``regression`` model (V2 output, MLflow signature column)."""


class ServedModel:
    """A fitted model and the component's ``predict``, task and classes; pickled into the registry version
    (``predict`` by reference to its importable module, as the fitted model's own classes are)."""

    def __init__(self, component: str, model: ModelSpec, fitted: Any) -> None:
        self.component = component
        self.fitted = fitted
        self.answer: Callable[[Any, pd.DataFrame], np.ndarray] = model.predict
        self.task: Task = model.task
        self.classes: tuple[str, ...] = tuple(model.classes)

    def predict(self, x: pd.DataFrame) -> pd.Series | pd.DataFrame:
        """What the model server answers for model input ``x``, named as its signature names it."""
        return output_frame(self, self.answer(self.fitted, x), len(x), self.component)


def output_frame(model: ModelSpec | ServedModel, output: Any, rows: int, component: str) -> pd.Series | pd.DataFrame:
    """``output`` checked against the task (``OutputError`` naming the component otherwise) and named: a Series
    ``score``, or for ``multiclass`` a DataFrame with one column per class."""
    import pandas as pd

    from contract.tasks import OutputError

    try:
        array = check_output(model, output, rows)
    except OutputError as error:
        raise OutputError(f"component {component!r}: {error}") from None
    if model.task == "multiclass":
        return pd.DataFrame(array, columns=list(model.classes))
    return pd.Series(array, name=SCORE)


def fitted_model(loaded: Any) -> Any:
    """The fitted model inside what ``mlflow.sklearn.load_model`` returned (a bare one is returned as it is)."""
    return loaded.fitted if isinstance(loaded, ServedModel) else loaded
