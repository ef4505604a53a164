"""The MLflow pyfunc face of a :class:`~cnslrisk.model.predictor.RiskModel`.

Logged as "models from code" (``cnslrisk/registry/pyfunc_entry.py``), so nothing is cloudpickled: the model's
parameters travel as plain artifact files and ``load_context`` reads them once.
"""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import pandas as pd

from cnslrisk.model.predictor import ARTIFACT_KEY, RiskModel

__all__ = ["CnslriskPyfunc"]


class CnslriskPyfunc(mlflow.pyfunc.PythonModel):
    """Scores a DataFrame of patients; output columns as ``cnslrisk score --json``.

    ``params={"horizons": [..]}`` overrides the model's horizons.
    """

    def load_context(self, context: Any) -> None:
        self.model = RiskModel.load(context.artifacts[ARTIFACT_KEY])

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        checked, _ = self.model.check_frame(pd.DataFrame(model_input))  # extra columns ignored, as in files
        horizons = tuple(float(h) for h in (params or {}).get("horizons") or ()) or None
        return self.model.predict(checked, horizons=horizons)
