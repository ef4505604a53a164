"""Cross-validated calibration and concordance of a competing-risks (relapse pattern) model.

:func:`validate_pattern_model` refits the model on the training folds of repeated stratified
K-fold cross-validation and collects each patient's out-of-fold cumulative incidences. These are
compared with the Aalen-Johansen estimate (:func:`aalen_johansen`) overall and by tertile of
predicted risk, and ranked against the observed outcomes with Wolbers' competing-risks
concordance (:func:`wolbers_c`). The result is the model card's ``pattern_validation`` section;
it states how few events each cause has and what that means for the figures.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from cnslrisk.model.outputs import json_safe
from cnslrisk.model.pattern import cause_text, competing_outcome

from .calibration import risk_groups
from .concordance import wolbers_counts
from .crossval import Factory, Progress, fold_splits, run_chunked
from .metrics import horizon_label
from .pattern_brier import pattern_brier

__all__ = ["aalen_johansen", "wolbers_c", "validate_pattern_model", "FEW_EVENTS"]

FEW_EVENTS = 20  # below this many events a cause's figures get an explicit imprecision statement
_TERTILES = 3


def aalen_johansen(time: np.ndarray, cause: np.ndarray, causes: Sequence[str], times: Sequence[float]) -> np.ndarray:
    """Aalen-Johansen estimate of the cumulative incidence of each cause.

    ``F_k(t) = sum_{u <= t} S(u-) d_k(u) / n(u)`` over the distinct event times ``u``, with
    ``n(u)`` the number at risk, ``d_k(u)`` the events of cause k and ``S`` the all-cause
    Kaplan-Meier estimate. Rows whose cause is not in ``causes`` are censored.

    Parameters
    ----------
    time : ndarray, shape (n_samples,)
        Event or censoring times.
    cause : ndarray of str, shape (n_samples,)
        Cause of each row (anything not in ``causes`` is censoring).
    causes : sequence of str
        The competing causes.
    times : sequence of float
        Where to evaluate.

    Returns
    -------
    ndarray, shape (n_causes, n_times)
        ``nan`` at a time beyond the last observation when that observation is censored (not identified).

    References
    ----------
    .. [1] Aalen OO, Johansen S. An empirical transition matrix for non-homogeneous Markov chains based on
       censored observations. Scand J Statist 1978;5:141-150.
    """
    time = np.asarray(time, dtype=float)
    cause = np.asarray(cause)
    times = np.asarray(times, dtype=float)
    events = np.column_stack([cause == c for c in causes])  # (n, K)
    u, inverse = np.unique(time, return_inverse=True)
    d = np.zeros((u.size, len(causes)))
    np.add.at(d, inverse, events)
    at_risk = time.size - np.searchsorted(np.sort(time), u, side="left")
    hazard = d / at_risk[:, None]
    surv = np.cumprod(1.0 - hazard.sum(axis=1))
    before = np.r_[1.0, surv[:-1]]
    cif = np.cumsum(before[:, None] * hazard, axis=0)
    index = np.searchsorted(u, times, side="right")
    out = np.where(index[None, :] > 0, np.vstack([np.zeros((1, len(causes))), cif])[index].T, 0.0)
    last_censored = not events[time == time.max()].any()
    return np.where((times > time.max()) & last_censored, np.nan, out)


def wolbers_c(time: np.ndarray, cause: np.ndarray, marker: np.ndarray, of: str, horizon: float,
              censored: str) -> float:
    """Wolbers' concordance index for one cause of competing risks, truncated at ``horizon``.

    A pair (i, j) is usable when i has an event of cause ``of`` at ``T_i <= horizon`` and j is
    known to be event-free of that cause at ``T_i``: ``T_j > T_i``, or ``T_j = T_i`` with j
    censored, or j had a competing event (another cause) at ``T_j <= T_i``, who then can never
    have cause ``of``. The pair is concordant when ``marker_i > marker_j`` (ties count 1/2). The
    marker is the predicted cumulative incidence of the cause at the horizon. No censoring
    weights are used (the 2009 estimator, Harrell-type); with a single cause and an infinite
    horizon it is Harrell's C.

    Parameters
    ----------
    time : ndarray, shape (n_samples,)
    cause : ndarray of str, shape (n_samples,)
    marker : ndarray, shape (n_samples,)
        Higher = more likely to have the cause early.
    of : str
        The cause evaluated.
    horizon : float
        Only events of the cause up to this time are cases.
    censored : str
        The censored value of ``cause``.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        When there is no case or no usable pair.

    References
    ----------
    .. [1] Wolbers M, Koller MT, Witteman JCM, Steyerberg EW. Prognostic models with competing risks:
       methods and application to coronary risk prediction. Epidemiology 2009;20(4):555-561.
    """
    time = np.asarray(time, dtype=float)
    cause = np.asarray(cause)
    marker = np.asarray(marker, dtype=float)
    if not np.isfinite(marker).all():
        raise ValueError("marker must be finite")
    case = (cause == of) & (time <= horizon)
    if not case.any():
        raise ValueError(f"no event of cause {of!r} by horizon {horizon:g}")
    # the usable pairs counted in O(n log n), not formed (a registry has 10^4 cases x 10^5 patients)
    concordant, tied, usable = wolbers_counts(time, case, cause == censored, (cause != of) & (cause != censored),
                                              marker)
    if not usable:
        raise ValueError(f"no usable pair for cause {of!r} by horizon {horizon:g}")
    return (concordant + 0.5 * tied) / usable


def _incidence(est: Any, X: pd.DataFrame, horizons: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Causes and cumulative incidences (n, K, H) of a fitted estimator or pipeline ending in one."""
    final = est
    if not hasattr(est, "predict_cumulative_incidence") and hasattr(est, "steps"):
        final, X = est[-1], est[:-1].transform(X)
    return [str(c) for c in final.causes_], final.predict_cumulative_incidence(X, horizons)


def _fold_chunk(factory: Factory, horizons: np.ndarray, X: pd.DataFrame, y: np.ndarray,
                splits: Sequence[tuple[int, int, np.ndarray, np.ndarray]], tasks: list[int]) -> list[Any]:
    out = []
    for split in tasks:
        _, _, train, test = splits[split]
        try:
            out.append(_incidence(factory().fit(X.iloc[train], y[train]), X.iloc[test], horizons))
        except Exception as exc:  # noqa: BLE001 - a failed refit is recorded with its reason, not raised
            out.append(f"{type(exc).__name__}: {exc}")
    return out


def _observed_reason(h: float) -> str:
    return f"not identified: the group's last observation before horizon {h:g} is censored"


def _bootstrap_ci(time, cause, causes, horizons, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Percentile 95 % interval (2, K, H) of the Aalen-Johansen CIF over patient resamples."""
    n = time.size
    draws = np.stack([aalen_johansen(time[i], cause[i], causes, horizons)
                      for i in (rng.integers(0, n, n) for _ in range(resamples))])
    with warnings.catch_warnings():  # a horizon no resample identifies gives nan, reported with its reason
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanpercentile(draws, [2.5, 97.5], axis=0)


def _calibration(oof, time, cause, causes, horizons, ci) -> list[dict[str, Any]]:
    rows = []
    observed_all = aalen_johansen(time, cause, causes, horizons)
    for k, c in enumerate(causes):
        for j, h in enumerate(horizons):
            pred = oof[:, :, k, j]
            obs = observed_all[k, j]
            mean_pred = float(pred[np.isfinite(pred)].mean()) if np.isfinite(pred).any() else None
            rows.append({"cause": c, "horizon": float(h), "group": "all", "n": int(time.size),
                         "events": int(np.sum((cause == c) & (time <= h))),
                         "predicted": mean_pred, "observed": json_safe(obs),
                         "observed_lower": json_safe(ci[0, k, j]), "observed_upper": json_safe(ci[1, k, j]),
                         "reason": "; ".join(filter(None, [
                             "" if np.isfinite(obs) else _observed_reason(h),
                             "" if mean_pred is not None else "no out-of-fold prediction: every refit failed"]))})
            per_group: dict[int, list[tuple[float, float, int, int]]] = {}
            for r in range(pred.shape[0]):
                ok = np.isfinite(pred[r])
                if not ok.any():
                    continue
                groups = risk_groups(pred[r][ok], _TERTILES)
                for g in np.unique(groups):
                    member = np.flatnonzero(ok)[groups == g]
                    o = aalen_johansen(time[member], cause[member], [c], [h])[0, 0]
                    per_group.setdefault(int(g), []).append(
                        (float(pred[r][member].mean()), o, member.size, int(np.sum((cause[member] == c)
                                                                                    & (time[member] <= h)))))
            for g, values in sorted(per_group.items()):
                p, o, n, e = (np.asarray(v, dtype=float) for v in zip(*values, strict=True))
                defined = np.isfinite(o)
                reason = "" if defined.all() else (
                    f"{_observed_reason(h)} in {int((~defined).sum())} of {defined.size} repeat(s)")
                if len(per_group) < _TERTILES:
                    reason = "; ".join(filter(None, [reason, f"ties in predicted risk left {len(per_group)} group(s)"]))
                rows.append({"cause": c, "horizon": float(h), "group": g, "n": float(n.mean()),
                             "events": float(e.mean()), "predicted": float(p.mean()),
                             "observed": json_safe(o[defined].mean()) if defined.any() else None,
                             "observed_lower": None, "observed_upper": None, "reason": reason})
    return rows


def _concordance(oof, time, cause, causes, horizons, censored) -> list[dict[str, Any]]:
    rows = []
    for k, c in enumerate(causes):
        for j, h in enumerate(horizons):
            values, reasons = [], []
            for r in range(oof.shape[0]):
                marker = oof[r, :, k, j]
                ok = np.isfinite(marker)
                try:
                    values.append(wolbers_c(time[ok], cause[ok], marker[ok], c, h, censored))
                except ValueError as exc:
                    reasons.append(str(exc))
            v = np.asarray(values)
            rows.append({"cause": c, "horizon": float(h), "mean": json_safe(v.mean()) if v.size else None,
                         "sd": json_safe(v.std(ddof=1)) if v.size > 1 else None,
                         "n_defined": int(v.size), "n_undefined": len(reasons),
                         "reason": "; ".join(sorted(set(reasons)))})
    return rows


def _statement(events: dict[str, int], calibration: list[dict[str, Any]], horizons: np.ndarray) -> dict[str, Any]:
    few = [c for c, e in events.items() if e < FEW_EVENTS]
    lines = []
    for c in few:
        cis = [r for r in calibration if r["cause"] == c and r["group"] == "all"]
        parts = [f"{horizon_label(r['horizon'])}: {r['observed']:.2f} (95 % CI {r['observed_lower']:.2f}-"
                 f"{r['observed_upper']:.2f})" for r in cis
                 if None not in (r["observed"], r["observed_lower"], r["observed_upper"])]
        lines.append(
            f"Pattern '{c}' rests on only {events[c]} events (fewer than {FEW_EVENTS}): its cumulative incidence "
            f"in the cohort is known only roughly (by horizon {', '.join(parts) or 'not identified'}; bootstrap "
            "over patients), and its per-patient predictions, calibration and concordance are imprecise and "
            "should be read as exploratory."
        )
    return {"events": dict(events), "few_events_threshold": FEW_EVENTS, "causes_with_few_events": few,
            "statement": " ".join(lines) if lines else
            f"Every pattern has at least {FEW_EVENTS} events."}


def validate_pattern_model(
    factory: Factory,
    X: pd.DataFrame,
    time: Any,
    cause: Any,
    *,
    horizons: Sequence[float],
    censored: Any = "none",
    folds: int = 5,
    repeats: int = 2,
    bootstrap: int = 200,
    seed: int = 0,
    n_jobs: int = 1,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Cross-validated calibration and concordance of a competing-risks model, with its uncertainty.

    Repeated K-fold cross-validation stratified on the cause: in each repeat every patient gets
    cumulative incidences ``F_k(h|x)`` from a model fitted without them (the factory is refitted
    on each training set). Calibration compares, per cause and horizon, the mean out-of-fold
    prediction with the Aalen-Johansen estimate, overall (with a percentile bootstrap 95 % CI
    over ``bootstrap`` patient resamples) and in tertiles of predicted risk formed in each repeat
    (values averaged over repeats). Concordance is Wolbers' C (:func:`wolbers_c`) of the pooled
    out-of-fold ``F_k(h|x)`` of each repeat, summarised as mean and sd (ddof=1) over repeats.
    Undefined values are ``None`` with a reason; a failed refit is listed with its error.

    Parameters
    ----------
    factory : callable
        Returns a new unfitted :class:`~cnslrisk.model.pattern.CauseSpecificCox`, or a pipeline ending in one,
        fitted as ``fit(X, competing_outcome(cause, time))``.
    X : DataFrame, shape (n_samples, n_features)
        Covariates as the factory's estimator takes them.
    time : array-like, shape (n_samples,)
        Event or censoring times.
    cause : array-like, shape (n_samples,)
        Event type including the censored value.
    horizons : sequence of float
        Prediction horizons, in the unit of ``time``.
    censored : str or int, default="none"
        The value of ``cause`` meaning no event.
    folds, repeats : int, default=5, 2
        Cross-validation design.
    bootstrap : int, default=200
        Resamples of the observed cumulative incidence's confidence interval.
    seed : int, default=0
        Seed of the fold shuffles (as :func:`~cnslrisk.training.crossval.fold_splits`) and the bootstrap.
    n_jobs : int, default=1
        Parallel jobs; results do not depend on it.
    progress : callable, optional
        Called with the number of folds finished.

    Returns
    -------
    dict
        JSON-safe: ``n``, ``causes``, ``censored``, ``horizons``, ``design``, ``failed_folds``,
        ``calibration`` (rows: cause, horizon, group ``"all"`` or 1-3, n, events, predicted,
        observed, observed_lower, observed_upper, reason), ``concordance`` (rows: cause, horizon,
        mean, sd, n_defined, n_undefined, reason), ``uncertainty`` (events per cause and a
        plain-language ``statement`` for the model card) and ``method`` (definitions).

    References
    ----------
    .. [1] Wolbers M, Koller MT, Witteman JCM, Steyerberg EW. Prognostic models with competing risks.
       Epidemiology 2009;20:555-561.
    .. [2] van Geloven N, Giardiello D, Bonneville EF, et al. Validation of prediction models in the
       presence of competing risks: a guide through modern methods. BMJ 2022;377:e069249.
    """
    for name, value, low in (("folds", folds, 2), ("repeats", repeats, 1), ("bootstrap", bootstrap, 1)):
        if not isinstance(value, int | np.integer) or value < low:
            raise ValueError(f"parameter {name} of validate_pattern_model must be an int >= {low}; got {value!r}")
    y = competing_outcome(cause, time)
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X, time and cause must have the same number of rows; got {X.shape[0]} and {y.shape[0]}")
    h = np.asarray(horizons, dtype=float)
    if h.size == 0 or not np.isfinite(h).all() or (h <= 0).any():
        raise ValueError(f"parameter horizons must be positive finite times; got {list(horizons)}")
    censored_text = str(cause_text([censored])[0])
    t, c = y["time"], y["cause"].astype(str)
    causes = sorted({str(v) for v in c} - {censored_text})
    splits = fold_splits(c, folds, repeats, seed)
    results = run_chunked(partial(_fold_chunk, factory, h), list(range(len(splits))), n_jobs, progress,
                          shared=(X, y, splits))
    oof = np.full((repeats, t.size, len(causes), h.size), np.nan)
    failed = []
    for (r, k, _, test), res in zip(splits, results, strict=True):
        if isinstance(res, str):
            failed.append({"repeat": r, "fold": k, "reason": res})
            continue
        fitted, cif = res
        for i, name in enumerate(fitted):
            oof[r, test, causes.index(name)] = cif[:, i]
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(repeats + 1)[-1])
    ci = _bootstrap_ci(t, c, causes, h, bootstrap, rng)
    calibration = _calibration(oof, t, c, causes, h, ci)
    events = {name: int(np.sum(c == name)) for name in causes}
    return {
        "n": int(t.size),
        "causes": causes,
        "censored": censored_text,
        "horizons": h.tolist(),
        "design": {"folds": folds, "repeats": repeats, "bootstrap": bootstrap, "seed": seed,
                   "stratified_on": "cause"},
        "failed_folds": failed,
        "calibration": calibration,
        "brier": pattern_brier(oof, t, c, causes, h, censored_text),
        "concordance": _concordance(oof, t, c, causes, h, censored_text),
        "uncertainty": _statement(events, calibration, h),
        "method": {
            "predicted": "mean out-of-fold cumulative incidence of the model refitted on each training fold (as the "
                         "card's pattern_model says it is computed), averaged over repeats",
            "brier": "IPCW Brier score of the out-of-fold incidence of the cause at the horizon (Schoop et al. 2011; "
                     "censoring weights from the Kaplan-Meier estimate), per repeat; mean and sd over repeats",
            "observed": "Aalen-Johansen cumulative incidence; overall with a percentile bootstrap 95 % CI",
            "groups": "tertiles of the out-of-fold predicted incidence of the cause at the horizon, per repeat",
            "concordance": "Wolbers' competing-risks C (2009, no censoring weights) of the predicted incidence at "
                           "the horizon, on the pooled out-of-fold predictions of each repeat; mean and sd "
                           "(ddof=1) over repeats",
        },
    }
