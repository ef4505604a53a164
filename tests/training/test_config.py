"""Training config: interface keys, overrides, and every mistake named by its key, all at once, before any run."""

import re
import shutil
from pathlib import Path

import pytest

from cnslrisk.training import train
from cnslrisk.training.config import ConfigError, default_config_path, load_config

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


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """A folder with the bundled example cohort as cohort.csv; MLflow would write mlflow.db here."""
    shutil.copy(default_config_path().parent / "example_cohort.csv", tmp_path / "cohort.csv")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


def write(folder: Path, text: str) -> Path:
    path = folder / "train.toml"
    path.write_text(text)
    return path


def test_interface_example_loads_and_resolves_the_cohort_next_to_the_config(folder):
    config = load_config(write(folder, INTERFACE_EXAMPLE), training=True)
    assert config.data.path == (folder / "cohort.csv").resolve()
    assert config.features.binary == ("pce", "lmd", "steroids")
    assert config.validation.horizons == (3.0, 6.0, 12.0)
    assert config.feature_columns == ["pce", "lmd", "steroids", "cnsl_type", "age", "ecog", "prior_lines"]
    assert config.pattern_features == config.feature_columns  # no CNSL default: every covariate


def test_bundled_default_points_at_the_bundled_example_cohort():
    config = load_config(training=True)
    assert config.data.path.name == "example_cohort.csv"
    assert config.models.fit == ("cox", "coxnet", "rsf")
    assert config.pattern.alpha == 0.0 and config.landmark.alpha == 0.0  # the standard, unpenalised models


def test_dotted_overrides_apply_before_validation(folder):
    config = load_config(write(folder, INTERFACE_EXAMPLE), {"validation.repeats": 2, "models.fit": ["cox"]})
    assert config.validation.repeats == 2 and config.models.fit == ("cox",)
    with pytest.raises(ConfigError, match=r"`validation.folds = 1`: must be at least 2"):
        load_config(write(folder, INTERFACE_EXAMPLE), {"validation.folds": 1})


def test_numeric_cause_codes_and_omitted_event(folder):
    text = INTERFACE_EXAMPLE.replace('event = "pfs1_event"\n', "").replace('censored = "none"', "censored = 0")
    config = load_config(write(folder, text))
    assert config.data.event is None and config.data.censored == "0"


def test_a_data_table_means_what_it_says(folder):
    """Keys the user leaves out of [data] are not filled with the CNSL cohort's names."""
    text = INTERFACE_EXAMPLE.replace('event = "pfs1_event"\n', "").replace('cause = "pattern"\n', "")
    with pytest.raises(ConfigError) as info:
        load_config(write(folder, text))
    assert info.value.problems == ["`data.event`: required: the event column (true/false), or data.cause for "
                                   "competing events (then event = cause != censored)"]
    config = load_config(write(folder, text.replace('censored = "none"', 'event = "pfs1_event"')))
    assert (config.data.event, config.data.cause, config.data.censored) == ("pfs1_event", None, None)


def test_empty_string_switches_optional_columns_off(folder):
    text = INTERFACE_EXAMPLE.replace('cause = "pattern"', 'cause = ""').replace('id = "patient_id"', 'id = ""')
    config = load_config(write(folder, text))
    assert config.data.cause is None and config.data.id is None and config.data.event == "pfs1_event"


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match=r"config file .*absent.toml does not exist"):
        load_config(tmp_path / "absent.toml")


def _drop(line: str):
    return lambda text: text.replace(line + "\n", "", 1)


def _set(old: str, new: str):
    return lambda text: text.replace(old, new, 1)


# one mistake each: (edit of INTERFACE_EXAMPLE, the one message expected, as a regular expression)
MISTAKES = {
    "missing [data] table": (
        lambda text: text[:text.index("[data]")] + text[text.index("[features]"):],
        r"^`data`: required: the cohort table \[data\]"),
    "misspelt key": (_set("time = ", "tme = "),
                     r"^`data.tme = 'pfs1_months'`: unknown config key data.tme; did you mean `data.time`\?"),
    "misspelt table": (_set("[validation]", "[validaton]"),
                       r"^`validaton = \{.*\}`: unknown config key validaton; did you mean `validation`\?"),
    "wrong type": (_set("folds = 5", 'folds = "five"'), r"^`validation.folds = 'five'`: must be a whole number$"),
    "wrong type in a list": (_set("horizons = [3, 6, 12]", 'horizons = [3, "6", 12]'),
                             r"^`validation.horizons\[1\] = '6'`: must be a number$"),
    "unknown covariate column": (_set('"lmd"', '"LMD"'),
                                 r"^`features.binary\[1\] = 'LMD'`: no such column in cohort.csv; "
                                 r"did you mean 'lmd'\?"),
    "unknown outcome column": (_set('time = "pfs1_months"', 'time = "pfs1_month"'),
                               r"^`data.time = 'pfs1_month'`: no such column in cohort.csv; did you mean "
                               r"'pfs1_months'\?"),
    "empty feature list": (lambda text: text.replace('["pce", "lmd", "steroids"]', "[]")
                           .replace('["cnsl_type"]', "[]").replace('["age", "ecog", "prior_lines"]', "[]"),
                           r"^`features`: at least one covariate is needed"),
    "horizon beyond follow-up": (_set("horizons = [3, 6, 12]", "horizons = [3, 6, 120]"),
                                 r"^`validation.horizons = \[3, 6, 120\]`: \[120\] not within the cohort's follow-up "
                                 r"\(the longest time is [\d.]+ months\)"),
    "missing time column key": (_drop('time = "pfs1_months"'), r"^`data.time`: required: the column of follow-up"),
    "missing time unit": (_drop('time_unit = "months"'), r"^`data.time_unit`: required: the unit of data.time"),
    "missing horizons": (_drop("horizons = [3, 6, 12]"), r"^`validation.horizons`: required: prediction horizons"),
    "decreasing horizons": (_set("horizons = [3, 6, 12]", "horizons = [6, 3]"),
                            r"^`validation.horizons = \[6, 3\]`: must be increasing"),
    "unknown model type": (_set('fit = ["cox", "coxnet", "rsf"]', 'fit = ["cox", "xgboost"]'),
                           r"^`models.fit\[1\] = 'xgboost'`: must be one of 'cox', 'coxnet' or 'rsf'$"),
    "cause without censored value": (_drop('censored = "none"'), r"^`data.censored`: required with data.cause"),
    "covariate listed twice": (_set('["pce", "lmd", "steroids"]', '["pce", "lmd", "pce"]'),
                               r"^`features.binary = \['pce', 'lmd', 'pce'\]`: column pce is listed more than once"),
    "outcome as covariate": (_set('["pce", "lmd", "steroids"]', '["pce", "pfs1_event"]'),
                             r"^`features.binary`: pfs1_event is data.event, an id or outcome column"),
    "pattern covariate not configured": (lambda text: text + '[pattern]\nfeatures = ["bridging"]\n',
                                         r"^`pattern.features = \['bridging'\]`: bridging is not one of the "
                                         r"configured covariates"),
    "landmark after the last horizon": (lambda text: text + '[landmark]\ntime = 24\nresponse = "best_response"\n',
                                        r"^`landmark.time = 24`: must be after the time origin and before the last "
                                        r"horizon \(12\)"),
    "landmark without response": (lambda text: text + "[landmark]\ntime = 1\n",
                                  r"^`landmark.response`: required with landmark.time"),
    "negative penalty": (lambda text: text + "[pattern]\nalpha = -1\n", r"^`pattern.alpha = -1`: must be at least 0$"),
    "unknown incidence": (lambda text: text + '[pattern]\nincidence = "product_limit"\n',
                          r"^`pattern.incidence = 'product_limit'`: must be one of 'split' or 'cause_specific'$"),
    "missing cohort file": (_set('path = "cohort.csv"', 'path = "nope.csv"'),
                            r"^`data.path = '.*nope.csv'`: no such file$"),
    "rules for an unused column": (lambda text: text + "[fields.bridging]\nlevels = [\"none\"]\n",
                                   r"^`\[fields.bridging\]`: bridging is not a column this config uses"),
    "rule of the wrong type": (lambda text: text + '[fields.age]\ntype = "boolean"\n',
                               r"^`fields.age.type = 'boolean'`: age is used as number or integer"),
    "unknown selection rule": (lambda text: text + '[selection]\nrule = "auc"\n',
                               r"^`selection.rule = 'auc'`: must be one of 'ibs' or 'c_index'$"),
    "fractional seed": (_set("seed = 0", "seed = 1.5"), r"^`seed = 1.5`: must be a whole number$"),
    "missing dictionary file": (_set('time_unit = "months"', 'time_unit = "months"\ndictionary = "mine.json"'),
                                r"^`data.dictionary = '.*mine.json'`: no such file$"),
}


@pytest.mark.parametrize("name", list(MISTAKES))
def test_each_mistake_gets_one_message_naming_its_key_before_any_run(folder, name):
    edit, expected = MISTAKES[name]
    path = write(folder, edit(INTERFACE_EXAMPLE))
    with pytest.raises(ConfigError) as info:
        train(path)
    assert len(info.value.problems) == 1, info.value.problems
    assert re.search(expected, info.value.problems[0]), info.value.problems[0]
    assert not (folder / "mlflow.db").exists() and not (folder / "mlruns").exists()


def test_every_mistake_is_reported_at_once(folder):
    text = INTERFACE_EXAMPLE
    for name in ("misspelt key", "wrong type", "unknown covariate column", "decreasing horizons", "missing time unit"):
        text = MISTAKES[name][0](text)
    with pytest.raises(ConfigError) as info:
        load_config(write(folder, text), training=True)
    keys = [problem.split("`")[1].split(" ")[0] for problem in info.value.problems]
    assert sorted(keys) == sorted(["data.tme", "validation.folds", "features.binary[1]", "validation.horizons",
                                   "data.time_unit"])
    assert str(info.value).startswith(f"5 problems in config {folder / 'train.toml'}:\n  `")


def test_overrides_obey_the_same_rules(folder):
    with pytest.raises(ConfigError, match=r"`models.trees = 5`: unknown config key models.trees; did you mean "
                                          r"`models.rsf_trees`\?"):
        load_config(write(folder, INTERFACE_EXAMPLE), {"models.trees": 5})
    with pytest.raises(ConfigError, match=r"`features.numeric\[0\] = 'Age'`: no such column in cohort.csv; did you "
                                          r"mean 'age'\?"):
        load_config(write(folder, INTERFACE_EXAMPLE), {"features.numeric": ["Age"]}, training=True)


def test_field_rules_and_dictionary_file_load(folder):
    (folder / "mine.json").write_text('{"fields": [{"name": "age", "type": "number", "min": 0, "max": 120, '
                                      '"label": "Age at transplant", "unit": "years"}]}')
    text = INTERFACE_EXAMPLE.replace('time_unit = "months"', 'time_unit = "months"\ndictionary = "mine.json"')
    text += '[fields.ecog]\ntype = "integer"\nmin = 0\nmax = 5\nlabel = "ECOG"\n'
    config = load_config(write(folder, text), training=True)
    assert config.data.dictionary == str((folder / "mine.json").resolve())
    assert config.fields["ecog"].max == 5.0 and config.fields["ecog"].label == "ECOG"
    (folder / "mine.json").write_text('{"fields": [{"name": "age", "type": "years"}]}')
    with pytest.raises(ConfigError, match=r"`data.dictionary = '.*mine.json'`: field age: type 'years' is not one of"):
        load_config(write(folder, text))
