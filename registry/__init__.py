"""The registry layer: every MLflow read and write of cnslrisk (tracking, runs, registered models, pyfunc).

``training`` logs and registers through it, ``serving`` loads through it; neither calls MLflow itself.
"""

from .models import (
    ModelRef,
    alias_version,
    load_risk_model,
    log_risk_model,
    model_card,
    record_evaluation,
    runtime_requirements,
    set_alias,
    set_version_tags,
    tag_version,
    version_tags,
)
from .runs import Run, start_run
from .tracking import (
    CHALLENGER,
    CHAMPION,
    DEFAULT_EXPERIMENT,
    DEFAULT_REGISTERED_MODEL,
    DEFAULT_TRACKING_URI,
    resolve_model_uri,
    tracking_uri,
    use_tracking,
)

__all__ = [
    "CHALLENGER", "CHAMPION", "DEFAULT_EXPERIMENT", "DEFAULT_REGISTERED_MODEL", "DEFAULT_TRACKING_URI",
    "ModelRef", "Run", "alias_version", "load_risk_model", "log_risk_model", "model_card", "record_evaluation",
    "resolve_model_uri", "runtime_requirements", "set_alias", "set_version_tags", "start_run", "tag_version",
    "tracking_uri", "use_tracking", "version_tags",
]
