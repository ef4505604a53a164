"""Models-from-code entry point: MLflow executes this file to build the pyfunc model."""

from mlflow.models import set_model

from cnslrisk.registry.pyfunc import CnslriskPyfunc

set_model(CnslriskPyfunc())
