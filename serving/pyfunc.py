"""The MLflow pyfunc face of a :class:`~cnslrisk.model.predictor.RiskModel`.

Logged as "models from code" (``pyfunc_entry.py``), so nothing is cloudpickled: the model's
parameters travel as plain artifact files and ``load_context`` reads them once.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import mlflow.pyfunc
import pandas as pd

from cnslrisk.model import Schema, data_dictionary
from cnslrisk.model.predictor import ARTIFACT_KEY, RiskModel

__all__ = ["CnslriskPyfunc", "input_schema"]


def input_schema(model: RiskModel) -> Schema:
    """The validator for scoring input: the model's covariates (required) and its id column.

    Other data-dictionary fields may be present (a full cohort row); they are passed over
    unchecked, since the model does not use them. Any other column is unknown.
    """
    f = model.features
    schema = Schema.for_columns(binary=f["binary"], categorical=f["categorical"], numeric=f["numeric"], id=f.get("id"))
    used = set(schema.names)
    return replace(schema, passthrough=tuple(name for name in data_dictionary().names if name not in used))


class CnslriskPyfunc(mlflow.pyfunc.PythonModel):
    """Scores a DataFrame of patients; output columns as ``cnslrisk score --json``.

    ``params={"horizons": [..]}`` overrides the model's horizons.
    """

    def load_context(self, context: Any) -> None:
        self.model = RiskModel.load(context.artifacts[ARTIFACT_KEY])
        self.schema = input_schema(self.model)

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        checked = self.schema.check(pd.DataFrame(model_input), require_outcome=False, allow_unknown=True)
        horizons = tuple(float(h) for h in (params or {}).get("horizons") or ()) or None
        return self.model.predict(checked, horizons=horizons)
