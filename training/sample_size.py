"""Sample-size adequacy of a time-to-event prediction model: events per parameter and Riley's criteria.

Riley et al. give the minimum number of patients needed to develop a prediction model for a
survival outcome as the largest of three criteria (Stat Med 2019;38:1276-1296, section 4;
BMJ 2020;368:m441, box 1), as computed for survival outcomes by the R/Stata package pmsampsize:

(i)   expected uniform shrinkage of the predictor effects at least ``shrinkage`` (0.9):
      n1 = p / ((S - 1) ln(1 - R2_CS / S));
(ii)  small optimism in the apparent Nagelkerke R-squared (absolute difference ``r2_difference``,
      0.05): the same formula with S = R2_CS / (R2_CS + delta max(R2_CS)), where
      max(R2_CS) = 1 - exp(2 lnL_null / n) and lnL_null / n = (E/n) ln(E/n) - E/n;
(iii) precise estimate of the overall risk F(t) = 1 - exp(-rate t) at the time point: the 95 %
      interval of F from rate +/- 1.96 sqrt(rate / (n T)) (T = mean follow-up) lies within
      ``margin`` (0.05) of F on both sides.

pmsampsize reports criterion (iii) only as the interval at max(n1, n2) and checks its upper side;
here the smallest n meeting both sides is solved for, so (iii) can also drive the minimum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .metrics import likelihood_ratio

__all__ = [
    "SampleSizeResult",
    "riley_sample_size",
    "assess_sample_size",
    "max_r2_cs",
    "anticipated_r2_cs",
    "shrinkage_sample_size",
]

_Z = 1.959963984540054  # standard normal 97.5 % quantile
_DEFAULT_NAGELKERKE = 0.15


def max_r2_cs(events_per_subject: float) -> float:
    """Largest Cox-Snell R-squared possible for a survival outcome with E/n events per subject.

    Parameters
    ----------
    events_per_subject : float
        E / n, in (0, 1].

    Returns
    -------
    r2 : float
        1 - exp(2 (E/n) (ln(E/n) - 1)).

    References
    ----------
    .. [1] Riley RD, Snell KIE, Ensor J, et al. Minimum sample size for developing a multivariable
           prediction model: part II - binary and time-to-event outcomes. Stat Med 2019;38:1276-1296.
    """
    q = float(events_per_subject)
    return 1.0 - math.exp(2.0 * q * (math.log(q) - 1.0))


def anticipated_r2_cs(lr_statistic: float, n: int, parameters: int) -> float | None:
    """Shrinkage-adjusted Cox-Snell R-squared from a fitted model's likelihood-ratio statistic.

    The apparent R2_CS = 1 - exp(-LR / n) is optimistic; it is multiplied by van Houwelingen's
    heuristic shrinkage factor S_VH = 1 - p / LR, as Riley et al. recommend for an existing
    model's R-squared (Stat Med 2019, section 4.3). ``None`` when LR <= p (no usable signal).

    Parameters
    ----------
    lr_statistic : float
        Likelihood-ratio chi-square of the fitted model.
    n : int
        Patients the model was fitted to.
    parameters : int
        Candidate predictor parameters.

    Returns
    -------
    r2 : float or None
        S_VH (1 - exp(-LR / n)).

    References
    ----------
    .. [1] van Houwelingen JC, Le Cessie S. Predictive value of statistical models. Stat Med 1990;9:1303-1325.
    """
    if lr_statistic <= parameters:
        return None
    return (1.0 - parameters / lr_statistic) * (1.0 - math.exp(-lr_statistic / n))


def shrinkage_sample_size(parameters: int, r2_cs: float, shrinkage: float) -> float:
    """Sample size (not rounded) for expected shrinkage ``shrinkage``: p / ((S - 1) ln(1 - R2_CS / S))."""
    return parameters / ((shrinkage - 1.0) * math.log(1.0 - r2_cs / shrinkage))


def _risk_interval(rate: float, person_time: float, timepoint: float) -> tuple[float, float]:
    d = _Z * math.sqrt(rate / person_time)
    return 1.0 - math.exp(-(rate - d) * timepoint), 1.0 - math.exp(-(rate + d) * timepoint)


def _precision_sample_size(rate: float, mean_followup: float, timepoint: float, margin: float) -> float:
    s = math.exp(-rate * timepoint)
    # largest half-width d of the rate interval keeping each side of the risk interval within margin
    d_upper = -math.log(s - margin) / timepoint - rate if s > margin else math.inf
    d_lower = rate + math.log(s + margin) / timepoint if s + margin < 1 else rate
    d = min(d_upper, d_lower)
    return _Z**2 * rate / (mean_followup * d**2)


@dataclass(frozen=True)
class SampleSizeResult:
    """Events per parameter and Riley et al.'s minimum sample size for a survival prediction model.

    Attributes
    ----------
    n, events, parameters : int
        Patients, events and candidate predictor parameters.
    events_per_parameter : float
        events / parameters.
    r2_cs, r2_source : float, str
        Anticipated Cox-Snell R-squared used and where it came from.
    max_r2_cs : float
        Largest possible Cox-Snell R-squared for this event fraction.
    criteria : DataFrame
        Indexed by criterion (``shrinkage``, ``r2_optimism``, ``overall_risk``): required ``n``,
        ``shrinkage`` targeted (``nan`` for ``overall_risk``) and ``events`` expected at that n.
    minimum : int
        Largest of the criteria.
    adequate : bool
        ``n >= minimum``.
    risk, risk_interval : float, tuple of float
        Overall risk at the time point (exponential model) and its 95 % interval at the actual n.
    warning : str
        Plain-language warning when not adequate, otherwise empty.
    """

    n: int
    events: int
    parameters: int
    events_per_parameter: float
    r2_cs: float
    r2_source: str
    max_r2_cs: float
    criteria: pd.DataFrame
    minimum: int
    adequate: bool
    risk: float
    risk_interval: tuple[float, float]
    warning: str

    def to_dict(self) -> dict[str, object]:
        """The model card's ``sample_size`` section (plain Python values)."""
        return {
            "events_per_parameter": round(self.events_per_parameter, 4),
            "riley_minimum_n": self.minimum,
            "adequate": self.adequate,
            "r2_cs": self.r2_cs,
            "r2_source": self.r2_source,
            "criteria": {k: int(v) for k, v in self.criteria["n"].items()},
            "warning": self.warning,
        }


def _check_positive(name: str, value: float, *, integer: bool = False) -> None:
    kind = "an int" if integer else "a number"
    if not np.isfinite(value) or value <= 0 or (integer and int(value) != value):
        raise ValueError(f"parameter {name} of riley_sample_size must be {kind} > 0; got {value!r}")


def riley_sample_size(
    *,
    n: int,
    events: int,
    parameters: int,
    mean_followup: float,
    timepoint: float,
    r2_cs: float | None = None,
    lr_statistic: float | None = None,
    shrinkage: float = 0.9,
    r2_difference: float = 0.05,
    margin: float = 0.05,
) -> SampleSizeResult:
    """Minimum sample size for a time-to-event prediction model (Riley et al. 2019/2020).

    The anticipated Cox-Snell R-squared is ``r2_cs`` when given; otherwise it is derived from a
    fitted model's ``lr_statistic`` with :func:`anticipated_r2_cs` (apparent value times van
    Houwelingen's shrinkage factor, which is conservative for a small cohort); when neither is
    available or the model shows no signal (LR <= p), it is set to 15 % of the maximum, i.e. a
    Nagelkerke R-squared of 0.15, as Riley et al. (BMJ 2020) suggest when nothing is known.

    Parameters
    ----------
    n : int
        Patients in the cohort.
    events : int
        Events observed.
    parameters : int
        Candidate predictor parameters (all considered, not only those kept; one per non-reference
        category level).
    mean_followup : float
        Mean follow-up per patient, in the time unit of ``timepoint``.
    timepoint : float
        Time point of criterion (iii), e.g. the prediction horizon of main interest.
    r2_cs : float, optional
        Anticipated Cox-Snell R-squared (user override).
    lr_statistic : float, optional
        Likelihood-ratio statistic of a model fitted to the cohort (used when ``r2_cs`` is None).
    shrinkage : float, default: 0.9
        Target expected shrinkage of criterion (i).
    r2_difference : float, default: 0.05
        Accepted optimism in the Nagelkerke R-squared, criterion (ii).
    margin : float, default: 0.05
        Accepted margin of error of the overall risk at ``timepoint``, criterion (iii).

    Returns
    -------
    result : SampleSizeResult
        Each criterion's n, the minimum, adequacy and a warning.

    References
    ----------
    .. [1] Riley RD, Snell KIE, Ensor J, et al. Minimum sample size for developing a multivariable
           prediction model: part II - binary and time-to-event outcomes. Stat Med 2019;38:1276-1296.
    .. [2] Riley RD, Ensor J, Snell KIE, et al. Calculating the sample size required for developing a
           clinical prediction model. BMJ 2020;368:m441.
    .. [3] Ensor J, Martin EC, Riley RD. pmsampsize: calculates the minimum sample size required for
           developing a multivariable prediction model. R package (survival outcomes).
    """
    for name, value, integer in (
        ("n", n, True),
        ("events", events, True),
        ("parameters", parameters, True),
        ("mean_followup", mean_followup, False),
        ("timepoint", timepoint, False),
    ):
        _check_positive(name, value, integer=integer)
    if events > n:
        raise ValueError(f"parameter events of riley_sample_size must be <= n ({n}); got {events}")
    q = events / n
    r2_max = max_r2_cs(q)
    if r2_cs is not None:
        source = "user"
    elif lr_statistic is not None and (r2_cs := anticipated_r2_cs(lr_statistic, n, parameters)) is not None:
        source = "likelihood ratio of the fitted model, times van Houwelingen shrinkage 1 - p/LR"
    else:
        r2_cs, source = _DEFAULT_NAGELKERKE * r2_max, "default: Nagelkerke R2 of 0.15 (15 % of the maximum)"
    if not 0 < r2_cs < min(r2_max, shrinkage):
        raise ValueError(
            f"parameter r2_cs of riley_sample_size must be in (0, {min(r2_max, shrinkage):.4g}), the maximum "
            f"Cox-Snell R2 for this event fraction or the target shrinkage; got {r2_cs!r}"
        )
    rate = events / (n * mean_followup)
    s2 = r2_cs / (r2_cs + r2_difference * r2_max)
    need = {
        "shrinkage": (math.ceil(shrinkage_sample_size(parameters, r2_cs, shrinkage)), shrinkage),
        "r2_optimism": (math.ceil(shrinkage_sample_size(parameters, r2_cs, s2)), s2),
        "overall_risk": (math.ceil(_precision_sample_size(rate, mean_followup, timepoint, margin)), np.nan),
    }
    criteria = pd.DataFrame(
        [(k, m, s, m * q) for k, (m, s) in need.items()], columns=["criterion", "n", "shrinkage", "events"]
    ).set_index("criterion")
    minimum = int(criteria["n"].max())
    adequate = n >= minimum
    warning = (
        ""
        if adequate
        else (
            f"the cohort is too small for a reliable prediction model: {n} patients with {events} events for "
            f"{parameters} candidate parameters, but Riley et al.'s criteria need at least {minimum} patients "
            f"(about {math.ceil(minimum * q)} events); expect overfitting - treat performance figures as "
            "optimistic, prefer penalised models and fewer candidate parameters"
        )
    )
    return SampleSizeResult(
        n=int(n),
        events=int(events),
        parameters=int(parameters),
        events_per_parameter=events / parameters,
        r2_cs=float(r2_cs),
        r2_source=source,
        max_r2_cs=r2_max,
        criteria=criteria,
        minimum=minimum,
        adequate=bool(adequate),
        risk=1.0 - math.exp(-rate * timepoint),
        risk_interval=_risk_interval(rate, n * mean_followup, timepoint),
        warning=warning,
    )


def assess_sample_size(
    y: np.ndarray,
    *,
    parameters: int,
    timepoint: float,
    linear_predictor: np.ndarray | None = None,
    r2_cs: float | None = None,
    **kwargs: float,
) -> SampleSizeResult:
    """:func:`riley_sample_size` for a cohort's outcome, with R2_CS from a fitted Cox model's x'b.

    n, events and the mean follow-up (mean observed time) come from ``y``; the likelihood-ratio
    statistic from :func:`~cnslrisk.training.metrics.likelihood_ratio` of ``linear_predictor``.

    Parameters
    ----------
    y : structured array, shape = (n_samples,)
        Outcome (bool event, float time).
    parameters : int
        Candidate predictor parameters.
    timepoint : float
        Time point of criterion (iii).
    linear_predictor : ndarray, shape = (n_samples,), optional
        x'b of an (unpenalised) Cox model fitted to ``y``.
    r2_cs : float, optional
        Anticipated Cox-Snell R-squared; overrides ``linear_predictor``.
    **kwargs
        ``shrinkage``, ``r2_difference``, ``margin`` of :func:`riley_sample_size`.

    Returns
    -------
    result : SampleSizeResult
        As :func:`riley_sample_size`.
    """
    event, time = y[y.dtype.names[0]], y[y.dtype.names[1]]
    lr = (
        None
        if linear_predictor is None or r2_cs is not None or not event.any()
        else likelihood_ratio(y, linear_predictor)
    )
    return riley_sample_size(
        n=int(y.shape[0]),
        events=int(event.sum()),
        parameters=parameters,
        mean_followup=float(time.mean()),
        timepoint=timepoint,
        r2_cs=r2_cs,
        lr_statistic=lr,
        **kwargs,
    )
