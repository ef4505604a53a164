"""Training config: interface keys, defaults, overrides and errors that name the key."""

from pathlib import Path

import pytest

from cnslrisk.training.config import ConfigError, load_config

INTERFACE_EXAMPLE = """
seed = 0
n_jobs = 2

[data]
path = "cohort.csv"
id = "patient_id"
time = "pfs1_months"
event = "pfs1_event"
cause = "pattern"
censored = "none"
time_unit = "months"

[features]
binary = ["pce", "lmd", "steroids"]
categorical = ["cnsl_type"]
numeric = ["age", "ecog", "prior_lines"]

[models]
fit = ["cox", "coxnet", "rsf"]

[validation]
folds = 5
repeats = 10
bootstrap = 200
horizons = [3, 6, 12]

[mlflow]
tracking_uri = "sqlite:///mlflow.db"
experiment = "cnslrisk"
registered_model = "cnslrisk-pfs1"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "train.toml"
    path.write_text(text)
    return path


def test_interface_example_loads_and_resolves_the_cohort_next_to_the_config(tmp_path):
    config = load_config(write(tmp_path, INTERFACE_EXAMPLE))
    assert config.data.path == (tmp_path / "cohort.csv").resolve()
    assert config.features.binary == ("pce", "lmd", "steroids")
    assert config.validation.horizons == (3.0, 6.0, 12.0)
    assert config.feature_columns == ["pce", "lmd", "steroids", "cnsl_type", "age", "ecog", "prior_lines"]


def test_bundled_default_points_at_the_bundled_example_cohort():
    config = load_config()
    assert config.data.path.name == "example_cohort.csv"
    assert config.models.fit == ("cox", "coxnet", "rsf")


def test_dotted_overrides_apply_before_validation(tmp_path):
    config = load_config(write(tmp_path, INTERFACE_EXAMPLE), {"validation.repeats": 2, "models.fit": ["cox"]})
    assert config.validation.repeats == 2 and config.models.fit == ("cox",)
    with pytest.raises(ConfigError, match=r"validation.folds must be at least 2; got 1"):
        load_config(write(tmp_path, INTERFACE_EXAMPLE), {"validation.folds": 1})


def test_numeric_cause_codes_and_omitted_event(tmp_path):
    text = INTERFACE_EXAMPLE.replace('event = "pfs1_event"\n', "").replace('censored = "none"', "censored = 0")
    config = load_config(write(tmp_path, text))
    assert config.data.event is None and config.data.censored == "0"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("[models]", "[models]\nlearning_rate = 3"), r"unknown config key models.learning_rate; expected one of fit"),
        (("seed = 0", "seed = 0\ncolour = 1"), r"unknown config key colour; expected one of seed, n_jobs, data"),
        (("folds = 5", 'folds = "five"'), r"config key validation.folds must be a whole number; got 'five'"),
        (("horizons = [3, 6, 12]", "horizons = [6, 3]"), r"validation.horizons must be increasing; got \[6.0, 3.0\]"),
        (("horizons = [3, 6, 12]", "horizons = [0, 3]"), r"validation.horizons must be positive"),
        (('fit = ["cox", "coxnet", "rsf"]', 'fit = ["cox", "xgboost"]'), r"models.fit: 'xgboost' is not one of"),
        (('binary = ["pce", "lmd", "steroids"]', 'binary = ["pce", "pce"]'), r"column pce is listed more than once"),
        (('binary = ["pce", "lmd", "steroids"]', 'binary = ["pce", "pfs1_event"]'), r"pfs1_event is an id or outcome"),
        (('path = "cohort.csv"\n', ""), r"config key data.path is required"),
        (("[data]", "[data"), r"is not valid TOML"),
        (('event = "pfs1_event"\n', 'event = "pfs1_event"\ncause = "pattern"\n'), r"is not valid TOML"),
    ],
)
def test_bad_configs_name_the_key(tmp_path, edit, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, INTERFACE_EXAMPLE.replace(*edit, 1)))


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match=r"config file .*absent.toml does not exist"):
        load_config(tmp_path / "absent.toml")


def test_omitted_outcome_keys_default_to_the_dictionary_names(tmp_path):
    text = INTERFACE_EXAMPLE.replace('event = "pfs1_event"\n', "").replace('cause = "pattern"\n', "")
    config = load_config(write(tmp_path, text))
    assert (config.data.event, config.data.cause) == ("pfs1_event", "pattern")


def test_empty_string_switches_optional_columns_off(tmp_path):
    text = INTERFACE_EXAMPLE.replace('cause = "pattern"', 'cause = ""').replace('id = "patient_id"', 'id = ""')
    config = load_config(write(tmp_path, text))
    assert config.data.cause is None and config.data.id is None and config.data.event == "pfs1_event"
    no_event = text.replace('event = "pfs1_event"\n', 'event = ""\n')
    with pytest.raises(ConfigError, match="data.event is required when data.cause is empty"):
        load_config(write(tmp_path, no_event))
