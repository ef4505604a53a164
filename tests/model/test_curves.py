"""The median read off a survival curve: the Cox binary search against the whole curve on the grid."""

from __future__ import annotations

import numpy as np

from cnslrisk.model.curves import _proportional_hazards_crossing, first_time_at_or_below, predict_with_median
from cnslrisk.model.estimators import CoxPH


def test_first_time_at_or_below_reads_the_first_crossing():
    grid = np.array([1.0, 2.0, 4.0])
    curves = np.array([[0.9, 0.5, 0.2], [0.9, 0.8, 0.6], [0.4, 0.3, 0.2]])
    np.testing.assert_array_equal(first_time_at_or_below(curves, grid), [2.0, np.nan, 1.0])


def test_cox_median_equals_the_median_of_the_whole_curve(rossi):
    model = CoxPH().fit(rossi.X.to_numpy(dtype=float), rossi.y)
    grid = np.unique(rossi.y["time"][rossi.y["event"]])
    grid = np.concatenate([[0.5], grid, [grid[-1] + 10]])  # a grid time before the first event: H0 = 0 there
    rng = np.random.default_rng(0)
    X = rossi.X.to_numpy(dtype=float)[rng.integers(0, len(rossi.X), 3000)]
    # spread the linear predictors from about -1 (never reaches 0.5 within a year) to about 9 (below 0.5 at
    # the first event) by moving age (coefficient -0.057 per year)
    X[:, list(rossi.X.columns).index("age")] += rng.uniform(-160, 20, len(X))
    times = np.array([10.0, 30.0])
    risk, survival, median = predict_with_median(model, X, times, grid)
    curve = model.predict_survival(X, grid)
    np.testing.assert_array_equal(median, first_time_at_or_below(curve, grid))
    np.testing.assert_array_equal(survival, model.predict_survival(X, times))
    np.testing.assert_array_equal(risk, model.predict(X))
    assert np.isnan(median).any() and (median == grid[1]).any() and (median > grid[1]).any()


def test_proportional_hazards_crossing_settles_rounding_on_the_boundary():
    # r * H0(t_j) within a few ulps of log 2: the binary search on log(2) / r lands one step off the exact
    # test exp(-r H0) <= 0.5 for some of these rows, and the result must still be the curve's own crossing
    rng = np.random.default_rng(1)
    cum_hazard = np.concatenate([[0.0, 0.0], np.sort(rng.exponential(1, 40)).cumsum() * 0.37])
    grid = np.arange(1.0, cum_hazard.size + 1)
    at = rng.integers(2, cum_hazard.size, 50_000)
    r = np.log(2) / cum_hazard[at] * (1 + rng.integers(-8, 9, at.size) * 2.0**-52)
    curves = np.exp(-(r[:, None] * cum_hazard[None, :]))
    exact = first_time_at_or_below(curves, grid)
    guess = np.searchsorted(cum_hazard, np.log(2) / r, side="left")
    assert (grid[np.minimum(guess, grid.size - 1)] != exact).any()  # the rounding cases are there
    np.testing.assert_array_equal(_proportional_hazards_crossing(r, cum_hazard, grid, 0.5), exact)
