"""The training config: one TOML file parsed into a typed, validated :class:`TrainingConfig`.

Keys are those of the public interface (``shared/interface.md``); unknown keys are errors. Relative
cohort paths are resolved against the folder of the config file. Dotted overrides
(``validation.repeats=10``) are applied before validation, so they obey the same rules.
"""

from __future__ import annotations

import copy
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

from cnslrisk.registry.tracking import DEFAULT_EXPERIMENT, DEFAULT_REGISTERED_MODEL, DEFAULT_TRACKING_URI

__all__ = [
    "ConfigError",
    "DataConfig",
    "FeaturesConfig",
    "ModelsConfig",
    "ValidationConfig",
    "MlflowConfig",
    "PromotionConfig",
    "PatternConfig",
    "LandmarkConfig",
    "SelectionConfig",
    "ComputeConfig",
    "TrainingConfig",
    "load_config",
    "require_features",
    "default_config_path",
    "MODEL_KINDS",
]

MODEL_KINDS = ("cox", "coxnet", "rsf")


class ConfigError(ValueError):
    """A config key is unknown, missing or has a value of the wrong kind."""


@dataclass(frozen=True)
class DataConfig:
    """``[data]``: where the cohort is and which columns hold the outcome."""

    path: Path
    id: str | None = "patient_id"
    time: str = "pfs1_months"
    event: str | None = "pfs1_event"
    cause: str | None = "pattern"
    censored: str = "none"
    time_unit: str = "months"


@dataclass(frozen=True)
class FeaturesConfig:
    """``[features]``: covariates by kind; ``impute`` declares imputation (default: refuse gaps).

    A kind the table leaves out has no covariates: the bundled CNSL config's choice is in its own file,
    never a default here.
    """

    binary: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    numeric: tuple[str, ...] = ()
    impute: str | None = None


@dataclass(frozen=True)
class ModelsConfig:
    """``[models]``: which model types to fit and their fixed settings (``cox_alpha``: a ridge penalty
    on the Cox model, 0 = none)."""

    fit: tuple[str, ...] = MODEL_KINDS
    cox_alpha: float = 0.0
    rsf_trees: int = 200
    coxnet_l1_ratio: float = 0.5
    inner_folds: int = 3


@dataclass(frozen=True)
class PatternConfig:
    """``[pattern]``: the relapse-pattern (competing risks) model, fitted when ``data.cause`` is given.

    ``features`` must be among the configured covariates (default: pce and lmd, the study's
    radiological risk factors, when configured, else every covariate); ``alpha`` is a small ridge
    penalty per cause-specific Cox model (10-14 events per pattern cannot support an unpenalised fit).
    """

    features: tuple[str, ...] = ()
    alpha: float = 0.1
    repeats: int = 2


@dataclass(frozen=True)
class LandmarkConfig:
    """``[landmark]``: the post-response model, fitted when ``time`` is given.

    At ``time`` (from infusion, in ``data.time_unit``; the first response assessment) the patients
    still progression-free with a known ``response`` are refitted on the time left, with the response
    as a covariate beside ``features`` (default: the pattern model's covariates). ``alpha`` is a ridge
    penalty on its Cox model: a response level held by a few patients cannot support an unpenalised fit.
    """

    time: float | None = None
    response: str = "best_response"
    features: tuple[str, ...] = ()
    alpha: float = 0.1


@dataclass(frozen=True)
class ValidationConfig:
    """``[validation]``: repeated CV, bootstrap optimism and prediction horizons (in ``time_unit``)."""

    folds: int = 5
    repeats: int = 10
    bootstrap: int = 200
    horizons: tuple[float, ...] = (3.0, 6.0, 12.0)
    calibration_groups: int = 4
    band_resamples: int = 50
    # a forest's 95 % band: "jackknife" (infinitesimal jackknife over its own trees) or "refits"
    forest_band: str = "jackknife"


@dataclass(frozen=True)
class MlflowConfig:
    """``[mlflow]``: tracking store and registry names (``MLFLOW_TRACKING_URI`` wins over ``tracking_uri``)."""

    tracking_uri: str = DEFAULT_TRACKING_URI
    experiment: str = DEFAULT_EXPERIMENT
    registered_model: str = DEFAULT_REGISTERED_MODEL


@dataclass(frozen=True)
class PromotionConfig:
    """``[promotion]``: the gate ``cnslrisk promote`` applies before moving ``champion``."""

    c_index_margin: float = 0.02
    slope_lower: float = 0.7
    slope_upper: float = 1.3


@dataclass(frozen=True)
class SelectionConfig:
    """``[selection]``: how the model to register is chosen from the out-of-fold comparison.

    ``rule`` is ``"ibs"`` (lowest out-of-fold integrated Brier score among candidates whose
    out-of-fold calibration slope lies in ``[promotion]``'s band) or ``"c_index"`` (highest Harrell's
    C, same band); differences within ``margin`` go to the simpler model (default 0.005 for ``ibs``,
    0.01 for ``c_index``). See :mod:`cnslrisk.training.selection`.
    """

    rule: str = "ibs"
    margin: float | None = None


@dataclass(frozen=True)
class ComputeConfig:
    """``[compute]``: where the resampling runs.

    ``backend = "local"`` (joblib processes on this machine, ``n_jobs`` of them) or ``"dask"`` (a Dask
    cluster: the scheduler at ``address``, e.g. ``tcp://host:8786`` or ``tls://host:8786``; omitted, a
    local cluster on this machine). A ``tls://`` address takes the certificate files named here.
    Results are identical on every backend.
    """

    backend: str = "local"
    address: str | None = None
    tls_ca_file: str | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None


@dataclass(frozen=True)
class TrainingConfig:
    """A whole, validated training config."""

    data: DataConfig
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    models: ModelsConfig = field(default_factory=ModelsConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    mlflow: MlflowConfig = field(default_factory=MlflowConfig)
    promotion: PromotionConfig = field(default_factory=PromotionConfig)
    pattern: PatternConfig = field(default_factory=PatternConfig)
    landmark: LandmarkConfig = field(default_factory=LandmarkConfig)
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    compute: ComputeConfig = field(default_factory=ComputeConfig)
    seed: int = 0
    n_jobs: int = 1
    source: str = "<defaults>"

    @property
    def feature_columns(self) -> list[str]:
        """All covariate columns, binary then categorical then numeric."""
        f = self.features
        return [*f.binary, *f.categorical, *f.numeric]

    @property
    def pattern_features(self) -> list[str]:
        """Covariates of the relapse-pattern model (see :class:`PatternConfig`)."""
        columns = self.feature_columns
        return list(self.pattern.features) or [c for c in ("pce", "lmd") if c in columns] or columns

    @property
    def landmark_features(self) -> list[str]:
        """Covariates of the post-response model beside the response (see :class:`LandmarkConfig`)."""
        return list(self.landmark.features) or self.pattern_features

    def to_dict(self) -> dict[str, Any]:
        """Plain, TOML/JSON-safe form (paths as strings, tuples as lists)."""

        def plain(value: Any) -> Any:
            if isinstance(value, Path):
                return str(value)
            if isinstance(value, (tuple, list)):
                return [plain(v) for v in value]
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items() if v is not None}
            return value

        return plain(asdict(self))


_SECTIONS = {
    "data": DataConfig,
    "features": FeaturesConfig,
    "models": ModelsConfig,
    "validation": ValidationConfig,
    "mlflow": MlflowConfig,
    "promotion": PromotionConfig,
    "pattern": PatternConfig,
    "landmark": LandmarkConfig,
    "selection": SelectionConfig,
    "compute": ComputeConfig,
}
_TOP = {"seed": "int", "n_jobs": "int"}


def default_config_path() -> Path:
    """The bundled config that trains on the bundled synthetic example cohort."""
    return Path(str(resources.files("cnslrisk.data").joinpath("default_config.toml")))


def _check_type(where: str, value: Any, annotation: str) -> Any:
    """Coerce ``value`` to the annotated type (annotations are strings here) or raise naming the key."""
    def is_number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    number = is_number(value)
    if annotation.startswith("tuple[float"):
        if not isinstance(value, list) or not all(is_number(v) for v in value):
            raise ConfigError(f"config key {where} must be a list of numbers; got {value!r}")
        return tuple(float(v) for v in value)
    if annotation.startswith("tuple[str"):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"config key {where} must be a list of column names; got {value!r}")
        return tuple(value)
    if annotation == "int":
        if not number or int(value) != value or isinstance(value, float):
            raise ConfigError(f"config key {where} must be a whole number; got {value!r}")
        return value
    if annotation in ("float", "float | None"):
        if not number:
            raise ConfigError(f"config key {where} must be a number; got {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise ConfigError(f"config key {where} must be a string; got {value!r}")
    return value


def _build_section(name: str, cls: type, values: Any) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"config key {name} must be a table ([{name}]); got {values!r}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"unknown config key {name}.{unknown[0]}; expected one of {', '.join(known)}")
    if name == "data" and isinstance(values.get("censored"), int):
        values = {**values, "censored": str(values["censored"])}  # numeric cause codes, e.g. censored = 0
    kwargs = {key: _check_type(f"{name}.{key}", value, known[key].type) for key, value in values.items()}
    try:
        return cls(**kwargs)
    except TypeError:
        missing = [f for f in known if f not in kwargs]
        raise ConfigError(f"config key {name}.{missing[0]} is required") from None


def _set_dotted(raw: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = raw
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {key}: {part} is not a table")
    node[parts[-1]] = value


def _validate(config: TrainingConfig) -> None:
    v, m, d, f = config.validation, config.models, config.data, config.features
    horizons = list(v.horizons)
    checks = [
        (v.folds >= 2, f"validation.folds must be at least 2; got {v.folds}"),
        (v.repeats >= 1, f"validation.repeats must be at least 1; got {v.repeats}"),
        (v.bootstrap >= 0, f"validation.bootstrap must be 0 or more; got {v.bootstrap}"),
        (len(horizons) > 0 and min(horizons) > 0, f"validation.horizons must be positive; got {horizons}"),
        (horizons == sorted(set(horizons)), f"validation.horizons must be increasing; got {horizons}"),
        (v.calibration_groups >= 2, f"validation.calibration_groups must be at least 2; got {v.calibration_groups}"),
        (v.band_resamples >= 20, f"validation.band_resamples must be at least 20; got {v.band_resamples}"),
        (v.forest_band in ("jackknife", "refits"),
         f"validation.forest_band must be \"jackknife\" or \"refits\"; got {v.forest_band!r}"),
        (len(m.fit) > 0, "models.fit must name at least one of cox, coxnet, rsf"),
        (m.cox_alpha >= 0, f"models.cox_alpha must be 0 or more; got {m.cox_alpha}"),
        (config.landmark.alpha >= 0, f"landmark.alpha must be 0 or more; got {config.landmark.alpha}"),
        (m.rsf_trees >= 1, f"models.rsf_trees must be at least 1; got {m.rsf_trees}"),
        (0.0 < m.coxnet_l1_ratio <= 1.0, f"models.coxnet_l1_ratio must be in (0, 1]; got {m.coxnet_l1_ratio}"),
        (m.inner_folds >= 2, f"models.inner_folds must be at least 2; got {m.inner_folds}"),
        (config.n_jobs >= 1 or config.n_jobs == -1, f"n_jobs must be a whole number >= 1 or -1; got {config.n_jobs}"),
        (f.impute in (None, "median"), f"features.impute must be \"median\" or absent; got {f.impute!r}"),
        (config.selection.rule in ("ibs", "c_index"),
         f"selection.rule must be \"ibs\" or \"c_index\"; got {config.selection.rule!r}"),
        (config.compute.backend in ("local", "dask"),
         f"compute.backend must be \"local\" or \"dask\"; got {config.compute.backend!r}"),
        (config.selection.margin is None or config.selection.margin >= 0,
         f"selection.margin must be 0 or more; got {config.selection.margin}"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    for kind in m.fit:
        if kind not in MODEL_KINDS:
            raise ConfigError(f"models.fit: {kind!r} is not one of {{{', '.join(MODEL_KINDS)}}}")
    columns = config.feature_columns
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise ConfigError(f"features: column {repeated[0]} is listed more than once")
    unknown_pattern = [c for c in config.pattern.features if c not in columns]
    if unknown_pattern:
        raise ConfigError(f"pattern.features: {unknown_pattern[0]} is not one of the configured covariates")
    if config.pattern.alpha < 0 or config.pattern.repeats < 1:
        raise ConfigError("pattern.alpha must be >= 0 and pattern.repeats >= 1")
    outcome = {d.id, d.time, d.event, d.cause} - {None}
    clash = sorted(outcome & set(columns))
    if clash:
        raise ConfigError(f"features: column {clash[0]} is an id or outcome column and cannot be a covariate")
    _validate_landmark(config, outcome)


def _validate_landmark(config: TrainingConfig, outcome: set[str]) -> None:
    lm, columns, horizons = config.landmark, config.feature_columns, config.validation.horizons
    if lm.time is None:
        return
    if not 0 < lm.time < max(horizons):
        raise ConfigError(f"landmark.time must be after infusion and before the last horizon ({max(horizons):g}); "
                          f"got {lm.time:g}")
    if lm.response in columns or lm.response in outcome:
        raise ConfigError(f"landmark.response: {lm.response} is a covariate or an outcome column; it must be the "
                          "best-response column (known only after infusion)")
    unknown = [c for c in lm.features if c not in columns]
    if unknown:
        raise ConfigError(f"landmark.features: {unknown[0]} is not one of the configured covariates")


def require_features(config: TrainingConfig) -> None:
    """Training needs covariates (``evaluate`` and ``promote`` take them from the model instead)."""
    if not config.feature_columns:
        raise ConfigError("features: at least one covariate is needed in binary, categorical or numeric "
                          f"(config {config.source})")


def load_config(
    path: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | Sequence[tuple[str, Any]] = (),
) -> TrainingConfig:
    """Read, override and validate a training config.

    Parameters
    ----------
    path : path-like, optional
        A TOML file; default: the bundled config on the bundled example cohort.
    overrides : mapping or sequence of (dotted key, value), optional
        E.g. ``{"validation.repeats": 2}``; applied before validation.

    Returns
    -------
    TrainingConfig

    Raises
    ------
    ConfigError
        For a missing file, invalid TOML, an unknown key, a wrong type or an invalid value; the
        message names the key.
    """
    path = Path(path) if path is not None else default_config_path()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    raw = copy.deepcopy(raw)
    items = overrides.items() if isinstance(overrides, Mapping) else overrides
    for key, value in items:
        _set_dotted(raw, key, value)
    unknown = sorted(set(raw) - set(_SECTIONS) - set(_TOP))
    if unknown:
        expected = ", ".join([*_TOP, *_SECTIONS])
        raise ConfigError(f"unknown config key {unknown[0]}; expected one of {expected}")
    if "data" not in raw or "path" not in raw.get("data", {}):
        raise ConfigError("config key data.path is required (the cohort file, CSV or Parquet)")
    sections = {name: _build_section(name, cls, raw[name]) for name, cls in _SECTIONS.items() if name in raw}
    if "cause" in raw["data"] and "event" not in raw["data"]:
        sections["data"] = replace(sections["data"], event=None)  # event = (cause != censored)
    # an empty string switches an optional column off: id = "" (no identifier), cause = "" (no pattern model)
    sections["data"] = replace(sections["data"], **{k: None for k in ("id", "event", "cause")
                                                     if getattr(sections["data"], k) == ""})
    if sections["data"].event is None and sections["data"].cause is None:
        raise ConfigError("data.event is required when data.cause is empty")
    cohort = Path(sections["data"].path)
    if not cohort.is_absolute():
        cohort = (path.parent / cohort).resolve()
    sections["data"] = replace(sections["data"], path=cohort)
    top = {key: _check_type(key, raw[key], kind) for key, kind in _TOP.items() if key in raw}
    config = TrainingConfig(**sections, **top, source=str(path))
    _validate(config)
    return config
