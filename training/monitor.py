"""Case mix of a new cohort against the training cohort, and periods of a registry extract.

The training cohort's rows are not stored with a model, only aggregates: the encoder's numeric
means, standard deviations and central 98 % ranges, its category levels, the linear Cox models'
covariate means (``x_mean_``: the training proportion of each binary covariate and category
indicator) and the tertiles of the training risk score. :func:`case_mix` compares the new cohort
with exactly those.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from cnslrisk.model.predictor import RISK_GROUPS, RiskModel

from .performance import point_figures

__all__ = ["case_mix", "period_labels", "flag_periods", "period_table", "CASE_MIX_COLUMNS"]

CASE_MIX_COLUMNS = ["covariate", "term", "kind", "training", "cohort", "training_sd", "cohort_sd",
                    "standardized_difference", "note"]


def _smd(train: float, new: float, sd_train: float, sd_new: float) -> float:
    pooled = np.sqrt((sd_train**2 + sd_new**2) / 2.0)
    return float((new - train) / pooled) if pooled > 0 else float("nan")


def _proportion_row(covariate: str, term: str, kind: str, train: float, new: float, note: str = "") -> tuple:
    sd_t, sd_n = np.sqrt(train * (1 - train)), np.sqrt(new * (1 - new))
    return (covariate, term, kind, train, new, sd_t, sd_n, _smd(train, new, sd_t, sd_n), note)


def case_mix(model: RiskModel, X: pd.DataFrame) -> pd.DataFrame:
    """Per-covariate comparison of a cohort with the aggregates the model stores of its training cohort.

    Numeric covariates: mean and standard deviation against the encoder's training ``mean_`` and
    ``sd_`` (population sd), with the fraction of the cohort outside the training central 98 % range
    in ``note``. Binary covariates and category levels: proportions against the training proportions
    (the linear model's ``x_mean_``; the reference level's is one minus the others'); a level unseen
    in training has training proportion 0. The standardised difference is (cohort - training) /
    sqrt((sd_training^2 + sd_cohort^2) / 2), with sd = sqrt(p (1 - p)) for proportions (|d| > 0.1 is
    the usual sign of a relevant imbalance). Two model-level rows follow: ``linear_predictor`` (the
    cohort's mean and sd of the risk score; the training mean is 0 for linear models, which centre it
    at the training covariate means) and ``risk_group_<g>`` (the fraction in each risk group, which
    is 1/3 in training by construction of the tertile cut points).

    Parameters
    ----------
    model : RiskModel
    X : DataFrame
        The cohort's checked covariates.

    Returns
    -------
    table : DataFrame
        Columns covariate, term, kind, training, cohort, training_sd, cohort_sd,
        standardized_difference, note.

    References
    ----------
    .. [1] Austin PC. Balance diagnostics for comparing the distribution of baseline covariates between
           treatment groups in propensity-score matched samples. Stat Med 2009;28:3083-3107.
    .. [2] Debray TPA, Vergouwe Y, Koffijberg H, et al. A new framework to enhance the interpretation of
           external validation studies of clinical prediction models. J Clin Epidemiol 2015;68:279-289.
    """
    encoder = model.pipeline.named_steps["encode"]
    estimator = model.pipeline[-1]
    means: dict[str, float] = {}
    if hasattr(estimator, "x_mean_") and hasattr(estimator, "feature_names_in_"):
        means = dict(zip((str(n) for n in estimator.feature_names_in_), map(float, estimator.x_mean_), strict=True))
    missing_note = "training proportion not stored for this model type"
    rows: list[tuple[Any, ...]] = []
    for name in model.features["binary"]:
        new = float(X[name].astype(float).mean())
        rows.append(_proportion_row(name, name, "binary", means.get(name, np.nan), new,
                                    "" if name in means else missing_note))
    for name in model.features["categorical"]:
        levels = list(encoder.levels_[name])
        others = [means.get(f"{name}_{lv}", np.nan) for lv in levels[1:]]
        train = dict(zip(levels, [1.0 - float(np.sum(others)), *others], strict=True))
        observed = X[name].astype(str)
        for level in [*levels, *sorted(set(observed) - {str(lv) for lv in levels})]:
            seen = level in train
            note = "" if seen and np.isfinite(train[level]) else ("not seen in training" if not seen else missing_note)
            rows.append(_proportion_row(name, f"{name}_{level}", "categorical", train.get(level, 0.0),
                                        float((observed == str(level)).mean()), note))
    for name in model.features["numeric"]:
        values = X[name].to_numpy(dtype=float)
        outside = float(((values < encoder.low_[name]) | (values > encoder.high_[name])).mean())
        mean_t, sd_t, mean_n, sd_n = encoder.mean_[name], encoder.sd_[name], float(values.mean()), float(values.std())
        rows.append((name, name, "numeric", mean_t, mean_n, sd_t, sd_n, _smd(mean_t, mean_n, sd_t, sd_n),
                     f"{outside:.0%} outside the training central 98% range"))
    risk = np.asarray(model.pipeline.predict(X[model.feature_columns]), dtype=float)
    linear = model.kind in ("cox", "coxnet")
    rows.append(("linear_predictor" if linear else "risk_score", "", "model", 0.0 if linear else np.nan,
                 float(risk.mean()), np.nan, float(risk.std()), np.nan,
                 "training sd not stored with the model" if linear else "training mean not stored"))
    groups = model.risk_group(risk)
    # a model with a few distinct risk scores cannot split the training cohort in thirds: its card says how it did
    shares = model.metadata.get("card", {}).get("risk_groups", {}).get("training_shares", {})
    for group in RISK_GROUPS:
        rows.append(_proportion_row("risk_group", f"risk_group_{group}", "model", shares.get(group, 1 / 3),
                                    float((groups == group).mean()), "training tertiles"))
    return pd.DataFrame(rows, columns=CASE_MIX_COLUMNS)


def period_labels(values: pd.Series) -> np.ndarray:
    """Period of each row: the value itself for whole numbers (a year), else the calendar year of a date.

    Parameters
    ----------
    values : Series
        The period column as read (text from CSV).

    Returns
    -------
    labels : ndarray of str, shape (n_samples,)

    Raises
    ------
    ValueError
        When a value is missing or neither a whole number nor a date.
    """
    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.notna().all() and (numbers == numbers.round()).all():
        return numbers.astype(int).astype(str).to_numpy()
    dates = pd.to_datetime(values, errors="coerce", format="mixed")
    bad = np.flatnonzero(dates.isna().to_numpy())
    if bad.size:
        raise ValueError(f"row {bad[0] + 1}, period column {values.name}: not a year or a date "
                         f"({bad.size} such row(s))")
    return dates.dt.year.astype(str).to_numpy()


def flag_periods(table: pd.DataFrame, horizons: Sequence[str], *, citl_band: float,
                 slope_band: tuple[float, float]) -> pd.Series:
    """Why each period leaves the band ('' when it does not): slope outside ``slope_band`` or |CITL| > ``citl_band``.

    Parameters
    ----------
    table : DataFrame
        One row per period with ``calibration_slope`` and ``citl_<h>`` columns.
    horizons : sequence of str
        Horizon labels of the ``citl_<h>`` columns.
    citl_band : float
        Largest acceptable absolute calibration-in-the-large (survival scale).
    slope_band : (float, float)
        Acceptable calibration slopes.

    Returns
    -------
    flags : Series of str
    """
    lo, hi = slope_band
    out = []
    for _, row in table.iterrows():
        reasons = []
        slope = row["calibration_slope"]
        if np.isfinite(slope) and not lo <= slope <= hi:
            reasons.append(f"calibration slope {slope:.2f} outside [{lo:g}, {hi:g}]")
        for h in horizons:
            value = row[f"citl_{h}"]
            if np.isfinite(value) and abs(value) > citl_band:
                reasons.append(f"calibration-in-the-large at {h} is {value:+.3f} (band ±{citl_band:g})")
        out.append("; ".join(reasons))
    return pd.Series(out, index=table.index, name="flag")


def period_table(model: RiskModel, X: pd.DataFrame, y: np.ndarray, periods: np.ndarray, *, groups: int = 4,
                 citl_band: float = 0.1, slope_band: tuple[float, float] = (0.7, 1.3)) -> pd.DataFrame:
    """Point figures per period (:func:`~cnslrisk.training.performance.point_figures`) with :func:`flag_periods`.

    Parameters
    ----------
    model : RiskModel
    X : DataFrame
        Checked covariates.
    y : structured array, shape (n_samples,)
    periods : ndarray of str, shape (n_samples,)
        Period label of each row (:func:`period_labels`).
    groups, citl_band, slope_band
        As in :func:`~cnslrisk.training.evaluate.evaluate_model`.

    Returns
    -------
    table : DataFrame
        One row per period: period, n, events, c_index, calibration_slope, citl_<h>, flag.
    """
    rows = []
    periods = np.asarray(periods)
    for period in sorted(set(periods)):
        m = periods == period
        p = point_figures(model, X[m], y[m], groups=groups)["summary"]
        rows.append({"period": period, "n": int(m.sum()), "events": int(y["event"][m].sum()),
                     "c_index": p["c_index"], "calibration_slope": p["calibration_slope"],
                     **{f"citl_{h}": v["calibration_in_the_large"] for h, v in p["horizons"].items()}})
    table = pd.DataFrame(rows)
    labels = [c[len("citl_"):] for c in table.columns if c.startswith("citl_")]
    table["flag"] = flag_periods(table, labels, citl_band=citl_band, slope_band=slope_band)
    return table
