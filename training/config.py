"""The training config: one TOML file parsed into a typed, validated :class:`TrainingConfig`.

Keys are those of the public interface (``docs/interface.md``); unknown keys are errors. The tables
are pydantic dataclasses: every mistake is found at once and reported with its key path, the value
and what is allowed (:mod:`.config_rules` words them and adds the cross-key and cohort checks).
Relative paths are resolved against the folder of the config file. Dotted overrides
(``validation.repeats=10``) are applied before validation, so they obey the same rules.

A table the user writes means exactly what it says: a key it leaves out is empty or takes the
documented default of that table (e.g. ``validation.folds = 5``), never a value of the bundled CNSL
config. Column names, the time unit and the horizons have no defaults: they belong to a cohort.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import tomllib
import typing
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, Strict, StrictBool, StrictInt, StrictStr, TypeAdapter, ValidationError
from pydantic import field_validator as _field_validator
from pydantic.dataclasses import dataclass

from cnslrisk.registry.tracking import DEFAULT_EXPERIMENT, DEFAULT_REGISTERED_MODEL, DEFAULT_TRACKING_URI

from .config_rules import cohort_problems, one_per_mistake, pydantic_problems, semantic_problems, training_problems

__all__ = [
    "ConfigError",
    "DataConfig",
    "FeaturesConfig",
    "FieldConfig",
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
    "check_for_training",
    "default_config_path",
    "MODEL_KINDS",
]

MODEL_KINDS = ("cox", "coxnet", "rsf")

_TABLE = ConfigDict(extra="forbid")
Number = Annotated[float, Strict()]  # an int or a float (TOML ``3`` and ``3.0``), never a string or a boolean
NonNegative = Annotated[float, Strict(), Field(ge=0)]
Columns = tuple[StrictStr, ...]
Count = Annotated[StrictInt, Field(ge=1)]


class ConfigError(ValueError):
    """Every mistake found in a config, each naming its key, the value and what is allowed.

    Parameters
    ----------
    problems : str or sequence of str
        One line per mistake.
    source : str, optional
        The config file (named in the message).
    """

    def __init__(self, problems: str | Sequence[str], *, source: str | None = None):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        where = f"config {source}" if source else "config"
        if len(self.problems) == 1:
            text = f"{where}: {self.problems[0]}"
        else:
            text = f"{len(self.problems)} problems in {where}:\n  " + "\n  ".join(self.problems)
        super().__init__(text)


def _blank_is_none(value: Any) -> Any:
    """An empty string switches an optional column off: ``id = ""`` (no identifier), ``cause = ""``."""
    return None if value == "" else value


@dataclass(frozen=True, config=_TABLE)
class DataConfig:
    """``[data]``: where the cohort is and which columns hold the outcome (no defaults: they are the cohort's).

    ``event`` may be left out when ``cause`` is given (event = cause != censored); ``censored`` is
    then required. ``dictionary``: absent, the bundled CNSL data dictionary's rules apply to columns
    with its names; a JSON file of the same format replaces it; ``""`` uses none.
    """

    path: Path
    time: StrictStr
    time_unit: StrictStr
    id: StrictStr | None = None
    event: StrictStr | None = None
    cause: StrictStr | None = None
    censored: StrictStr | None = None
    dictionary: StrictStr | None = None

    @_field_validator("id", "event", "cause", mode="before")
    @classmethod
    def _optional_column(cls, value: Any) -> Any:
        return _blank_is_none(value)

    @_field_validator("censored", mode="before")
    @classmethod
    def _numeric_code(cls, value: Any) -> Any:
        # numeric cause codes, e.g. censored = 0, compared as text like every cause value
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


@dataclass(frozen=True, config=_TABLE)
class FeaturesConfig:
    """``[features]``: covariates by kind; ``impute = "median"`` declares imputation (absent: refuse gaps).

    A kind the table leaves out has no covariates: the bundled CNSL config's choice is in its own file,
    never a default here.
    """

    binary: Columns = ()
    categorical: Columns = ()
    numeric: Columns = ()
    impute: Literal["median"] | None = None


@dataclass(frozen=True, config=_TABLE)
class FieldConfig:
    """``[fields.<column>]``: the rules of one cohort column, declared by the modeller.

    What the table says is the whole rule (nothing is inherited from the CNSL dictionary): ``type``
    (default: the kind the config gives the column), ``levels`` of a category, ``min``/``max`` of a
    number (``min_exclusive``), ``required`` (default true), and the ``label``, ``unit`` and
    ``description`` shown beside the column in forms, cards and errors.
    """

    type: Literal["boolean", "category", "number", "integer", "string"] | None = None
    levels: Columns = ()
    min: Number | None = None
    max: Number | None = None
    min_exclusive: StrictBool = False
    required: StrictBool = True
    label: StrictStr | None = None
    unit: StrictStr | None = None
    description: StrictStr = ""


@dataclass(frozen=True, config=_TABLE)
class ModelsConfig:
    """``[models]``: which model types to fit and their fixed settings (``cox_alpha``: a ridge penalty
    on the Cox model, 0 = none)."""

    fit: tuple[Literal["cox", "coxnet", "rsf"], ...] = MODEL_KINDS
    cox_alpha: NonNegative = 0.0
    rsf_trees: Count = 200
    coxnet_l1_ratio: Annotated[float, Strict(), Field(gt=0, le=1)] = 0.5
    inner_folds: Annotated[StrictInt, Field(ge=2)] = 3


@dataclass(frozen=True, config=_TABLE)
class PatternConfig:
    """``[pattern]``: the relapse-pattern (competing risks) model, fitted when ``data.cause`` is given.

    ``features`` must be among the configured covariates (default: all of them). ``alpha = 0`` (the
    default) is the standard cause-specific Cox model, with Firth's penalty only for a cause whose
    partial likelihood is monotone (separation); ``alpha > 0`` is an explicit ridge penalty instead.
    ``incidence`` says how the shown incidences are made: ``"split"`` (the default) shares the survival
    model's risk between the causes by the pattern model's hazards, so they add up to one minus the
    survival beside them; ``"cause_specific"`` shows the pattern model's own product-limit incidences,
    which do not (the card records by how much), but do not inherit the all-cause model's misfit where
    the causes' effects differ (better tertile-group calibration in large cohorts, BENCHMARKS.md).
    """

    features: Columns = ()
    alpha: NonNegative = 0.0
    repeats: Count = 2
    incidence: Literal["split", "cause_specific"] = "split"


@dataclass(frozen=True, config=_TABLE)
class LandmarkConfig:
    """``[landmark]``: the post-response model, fitted when ``time`` is given.

    At ``time`` (from the time origin, in ``data.time_unit``; the first response assessment) the
    patients still event-free with a known ``response`` are refitted on the time left, with the
    response as a covariate beside ``features`` (default: the pattern model's covariates). ``alpha``
    as in ``[pattern]``: 0 is the standard Cox model (Firth's penalty only under separation, e.g. a
    response level without events), ``> 0`` an explicit ridge penalty.
    """

    time: Annotated[float, Strict(), Field(gt=0)] | None = None
    response: StrictStr | None = None
    features: Columns = ()
    alpha: NonNegative = 0.0


@dataclass(frozen=True, config=_TABLE)
class ValidationConfig:
    """``[validation]``: repeated CV, bootstrap optimism and prediction horizons (in ``data.time_unit``).

    ``horizons`` has no default: it is in the cohort's time unit (a training config must give it).
    """

    folds: Annotated[StrictInt, Field(ge=2)] = 5
    repeats: Count = 10
    bootstrap: Annotated[StrictInt, Field(ge=0)] = 200
    horizons: tuple[Annotated[float, Strict(), Field(gt=0)], ...] = ()
    calibration_groups: Annotated[StrictInt, Field(ge=2)] = 4
    band_resamples: Annotated[StrictInt, Field(ge=20)] = 50
    # a forest's 95 % band: "jackknife" (infinitesimal jackknife over its own trees) or "refits"
    forest_band: Literal["jackknife", "refits"] = "jackknife"


@dataclass(frozen=True, config=_TABLE)
class MlflowConfig:
    """``[mlflow]``: tracking store and registry names (``MLFLOW_TRACKING_URI`` wins over ``tracking_uri``)."""

    tracking_uri: StrictStr = DEFAULT_TRACKING_URI
    experiment: StrictStr = DEFAULT_EXPERIMENT
    registered_model: StrictStr = DEFAULT_REGISTERED_MODEL


@dataclass(frozen=True, config=_TABLE)
class PromotionConfig:
    """``[promotion]``: the gate ``cnslrisk promote`` applies before moving ``champion``."""

    c_index_margin: NonNegative = 0.02
    slope_lower: Number = 0.7
    slope_upper: Number = 1.3


@dataclass(frozen=True, config=_TABLE)
class SelectionConfig:
    """``[selection]``: how the model to register is chosen from the out-of-fold comparison.

    ``rule`` is ``"ibs"`` (lowest out-of-fold integrated Brier score among candidates whose
    out-of-fold calibration slope lies in ``[promotion]``'s band) or ``"c_index"`` (highest Harrell's
    C, same band); differences within ``margin`` go to the simpler model (default 0.005 for ``ibs``,
    0.01 for ``c_index``). See :mod:`cnslrisk.training.selection`. ``nested = true`` validates the
    whole selection in an outer 5 x 2 loop (:mod:`cnslrisk.training.nested`; about ten times the
    comparison's cost) and reports what the procedure achieves on held-out patients. ``recalibrate =
    true`` rescales a chosen Cox model by its out-of-fold calibration slope (coefficients times the
    slope, baseline re-estimated) and validates that in the same outer loop, which it turns on.
    """

    rule: Literal["ibs", "c_index"] = "ibs"
    margin: NonNegative | None = None
    nested: StrictBool = False
    recalibrate: StrictBool = False


@dataclass(frozen=True, config=_TABLE)
class ComputeConfig:
    """``[compute]``: where the resampling runs.

    ``backend = "local"`` (joblib processes on this machine, ``n_jobs`` of them) or ``"dask"`` (a Dask
    cluster: the scheduler at ``address``, e.g. ``tcp://host:8786`` or ``tls://host:8786``; omitted, a
    local cluster on this machine). A ``tls://`` address takes the certificate files named here.
    Results are identical on every backend.
    """

    backend: Literal["local", "dask"] = "local"
    address: StrictStr | None = None
    tls_ca_file: StrictStr | None = None
    tls_cert_file: StrictStr | None = None
    tls_key_file: StrictStr | None = None


@dataclass(frozen=True, config=_TABLE)
class TrainingConfig:
    """A whole, validated training config."""

    data: DataConfig
    features: FeaturesConfig = dataclasses.field(default_factory=FeaturesConfig)
    fields: dict[StrictStr, FieldConfig] = dataclasses.field(default_factory=dict)
    models: ModelsConfig = dataclasses.field(default_factory=ModelsConfig)
    validation: ValidationConfig = dataclasses.field(default_factory=ValidationConfig)
    mlflow: MlflowConfig = dataclasses.field(default_factory=MlflowConfig)
    promotion: PromotionConfig = dataclasses.field(default_factory=PromotionConfig)
    pattern: PatternConfig = dataclasses.field(default_factory=PatternConfig)
    landmark: LandmarkConfig = dataclasses.field(default_factory=LandmarkConfig)
    selection: SelectionConfig = dataclasses.field(default_factory=SelectionConfig)
    compute: ComputeConfig = dataclasses.field(default_factory=ComputeConfig)
    seed: Annotated[StrictInt, Field(ge=0)] = 0
    n_jobs: StrictInt = 1
    source: str = "<defaults>"

    @property
    def feature_columns(self) -> list[str]:
        """All covariate columns, binary then categorical then numeric."""
        f = self.features
        return [*f.binary, *f.categorical, *f.numeric]

    @property
    def pattern_features(self) -> list[str]:
        """Covariates of the relapse-pattern model (``pattern.features``, default: every covariate)."""
        return list(self.pattern.features) or self.feature_columns

    @property
    def landmark_features(self) -> list[str]:
        """Covariates of the post-response model beside the response (see :class:`LandmarkConfig`)."""
        return list(self.landmark.features) or self.pattern_features

    def to_dict(self) -> dict[str, Any]:
        """Plain, TOML/JSON-safe form (paths as strings, tuples as lists, unset keys left out)."""

        def plain(value: Any) -> Any:
            if isinstance(value, Path):
                return str(value)
            if isinstance(value, (tuple, list)):
                return [plain(v) for v in value]
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items() if v is not None}
            return value

        return plain(dataclasses.asdict(self))


_ADAPTER = TypeAdapter(TrainingConfig)


def _keys(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if f.name != "source"]


# the keys each table takes ("" the top level, "fields.*" every [fields.<column>]): the closest one to a misspelt key
TABLE_KEYS = {"": _keys(TrainingConfig), "fields.*": _keys(FieldConfig),
              **{name: _keys(kind) for name, kind in typing.get_type_hints(TrainingConfig).items()
                 if dataclasses.is_dataclass(kind)}}


def default_config_path() -> Path:
    """The bundled config that trains on the bundled synthetic example cohort."""
    return Path(str(resources.files("cnslrisk.data").joinpath("default_config.toml")))


def _set_dotted(raw: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = raw
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {key}: {part} is not a table")
    node[parts[-1]] = value


def _resolve_paths(raw: dict[str, Any], folder: Path) -> None:
    """Relative cohort and dictionary paths are read from the config file's folder."""
    data = raw.get("data")
    if not isinstance(data, dict):
        return
    for key in ("path", "dictionary"):
        value = data.get(key)
        if isinstance(value, str) and value and not Path(value).is_absolute():
            data[key] = str((folder / value).resolve())


def require_features(config: TrainingConfig) -> None:
    """Training needs covariates (``evaluate`` and ``promote`` take them from the model instead)."""
    if not config.feature_columns:
        raise ConfigError("`features`: at least one covariate is needed in binary, categorical or numeric",
                          source=config.source)


def check_for_training(config: TrainingConfig) -> None:
    """What training needs beyond a valid config: covariates, and a cohort file whose columns and follow-up
    match the config (names checked against the file's header, with close matches suggested).

    Raises
    ------
    ConfigError
        With every problem found.
    """
    raw = config.to_dict()
    problems = training_problems(raw) + cohort_problems(raw)
    if problems:
        raise ConfigError(problems, source=config.source)


def load_config(
    path: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | Sequence[tuple[str, Any]] = (),
    *,
    training: bool = False,
) -> TrainingConfig:
    """Read, override and validate a training config.

    Parameters
    ----------
    path : path-like, optional
        A TOML file; default: the bundled config on the bundled example cohort.
    overrides : mapping or sequence of (dotted key, value), optional
        E.g. ``{"validation.repeats": 2}``; applied before validation.
    training : bool, default=False
        Also check what training needs (:func:`check_for_training`): covariates, the cohort file, its
        column names and follow-up. ``evaluate`` and ``promote`` read a config for its outcome
        columns and registry names only.

    Returns
    -------
    TrainingConfig

    Raises
    ------
    ConfigError
        With every problem at once: a missing file, invalid TOML, an unknown or misspelt key (with
        the closest allowed key), a missing required key, a wrong type, an invalid value, and with
        ``training`` a column the cohort lacks (with the closest column name). Each names its key.
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
    _resolve_paths(raw, path.parent)
    problems: list[str] = []
    config = None
    try:
        if "source" in raw:  # set by the loader, never by a file
            problems.append("`source`: unknown config key source")
            raw.pop("source")
        config = _ADAPTER.validate_python({**raw, "source": str(path)})
    except ValidationError as exc:
        problems += pydantic_problems(exc, TABLE_KEYS)
    problems += semantic_problems(raw)
    if training:
        problems += training_problems(raw) + cohort_problems(raw)
    if problems or config is None:
        raise ConfigError(one_per_mistake(problems), source=str(path))
    return config
