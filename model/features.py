"""Encode a checked cohort's covariates as a numeric matrix: 0/1 binaries, numerics, one-hot categories."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import StrOptions

from ._checks import join_notes, map_values, require_fitted, row_notes
from .contract import data_dictionary

__all__ = ["FeatureEncoder"]

_FORMAT = "cnslrisk.feature-encoder/1"
_BOOLEAN = {True: 1.0, False: 0.0}  # also maps 1, 0, 1.0, 0.0 (equal hashes)


def _hashable(value: Any) -> bool:
    return getattr(type(value), "__hash__", None) is not None


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or value != value


def _n_rows(X: pd.DataFrame | Mapping[str, Any]) -> int:
    if isinstance(X, pd.DataFrame):
        return len(X)
    return len(next(iter(X.values()))) if X else 0


def _plain(value: Any) -> Any:
    """A JSON-safe Python scalar."""
    return value.item() if isinstance(value, np.generic) else value


class FeatureEncoder(TransformerMixin, BaseEstimator):
    """Turn binary, numeric and categorical covariates into a float matrix for a survival model.

    Output columns, in this order: the binary columns as 0/1; the numeric columns, raw or
    standardised (``scale=True``, with the training mean and population sd); for each categorical
    column, one 0/1 column ``<column>_<level>`` per non-reference level. The reference (first)
    level is the first of the data dictionary's levels seen in training when the column is a
    dictionary field, else the first of the sorted observed values; ``categories`` fixes the
    levels (first = reference) instead.

    Missing values are refused with a ValueError naming the column and the number of rows,
    unless ``impute="median"``: then numeric gaps take the training median and binary or
    categorical gaps the most frequent training value, learned in :meth:`fit`. A category
    unseen in training encodes as all-zero dummies (the reference); :meth:`applicability` lists
    such rows, out-of-range numbers and imputed values.

    Parameters
    ----------
    binary : sequence of str, default=()
        Columns holding booleans (or 0/1).
    categorical : sequence of str, default=()
        Columns holding labels.
    numeric : sequence of str, default=()
        Columns holding numbers.
    scale : bool, default=False
        Standardise numeric columns (needed by penalised models).
    categories : dict of str to list, default=None
        Fixed levels per categorical column, reference first.
    impute : {"median"} or None, default=None
        Declared imputation of missing values; None refuses them.

    Attributes
    ----------
    levels_ : dict of str to list
        Levels of each categorical column, reference first.
    mean_, sd_ : dict of str to float
        Training mean and population standard deviation of each numeric column.
    low_, high_ : dict of str to float
        Training range of each numeric column, taken as the interpolated 1st and 99th percentiles so
        that no single patient's value is stored in a model artifact.
    fill_ : dict of str to object
        Imputation value of each column (empty when ``impute`` is None).
    n_features_out_ : int
        Number of encoded columns.
    """

    _parameter_constraints: dict = {
        "binary": [list, tuple],
        "categorical": [list, tuple],
        "numeric": [list, tuple],
        "scale": ["boolean"],
        "categories": [dict, None],
        "impute": [StrOptions({"median"}), None],
    }

    def __init__(
        self,
        binary: Sequence[str] = (),
        categorical: Sequence[str] = (),
        numeric: Sequence[str] = (),
        *,
        scale: bool = False,
        categories: Mapping[str, Sequence[Any]] | None = None,
        impute: str | None = None,
    ):
        self.binary = binary
        self.categorical = categorical
        self.numeric = numeric
        self.scale = scale
        self.categories = categories
        self.impute = impute

    def _columns(self) -> list[str]:
        return [*self.binary, *self.numeric, *self.categorical]

    def _frame(self, X: Any, where: str) -> Mapping[str, Any]:
        if not isinstance(X, (pd.DataFrame, Mapping)):
            raise ValueError(
                f"FeatureEncoder.{where}: X must be a pandas DataFrame with named columns or a mapping of column "
                f"names to values; got {type(X).__name__}"
            )
        absent = [c for c in self._columns() if c not in X]
        if absent:
            raise ValueError(f"FeatureEncoder.{where}: field {absent[0]}: column is missing from the input")
        return X

    @staticmethod
    def _numbers(values: Any) -> np.ndarray:
        array = np.asarray(values)
        if array.dtype.kind in "iufb":
            return array.astype(float)
        return pd.to_numeric(pd.Series(array, dtype=object), errors="raise").to_numpy(dtype=float, na_value=np.nan)

    def _binary(self, name: str, values: Any) -> np.ndarray:
        array = np.asarray(values)
        if array.dtype.kind == "b":  # checked input: nothing else to look at
            return array.astype(float)
        if array.dtype.kind in "iuf":
            out = array.astype(float)
        else:
            out = np.fromiter((_BOOLEAN.get(v, np.nan) if _hashable(v) else np.nan for v in array),
                              dtype=float, count=array.size)
        bad = ~pd.isna(array) & (out != 0.0) & (out != 1.0)
        if bad.any():
            raise ValueError(f"field {name}: {int(bad.sum())} row(s) are not one of {{true, false, 0, 1}}")
        return out

    def _refuse_missing(self, X: Mapping[str, Any], where: str) -> None:
        for name in self._columns():
            values = np.asarray(X[name])
            kind = values.dtype.kind
            missing = np.isnan(values) if kind == "f" else pd.isna(values) if kind not in "biu" else False
            n_missing = np.count_nonzero(missing)
            if n_missing:
                raise ValueError(
                    f"FeatureEncoder.{where}: field {name}: {n_missing} row(s) have a missing value; "
                    "the model refuses missing covariates (fill them in, or declare impute=\"median\")"
                )

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: pd.DataFrame, y: Any = None) -> FeatureEncoder:
        """Learn category levels, numeric moments and ranges, and imputation values.

        Parameters
        ----------
        X : pandas.DataFrame
            The checked cohort (other columns are ignored).
        y : ignored

        Returns
        -------
        self
        """
        X = self._frame(X, "fit")
        X = X if isinstance(X, pd.DataFrame) else pd.DataFrame(X)
        if self.impute is None:
            self._refuse_missing(X, "fit")
        dictionary = data_dictionary().by_name()
        fixed = dict(self.categories or {})
        self.levels_, self.fill_ = {}, {}
        for name in self.categorical:
            observed = pd.unique(X[name].dropna())
            if name in fixed:
                levels = [_plain(v) for v in fixed[name]]
                unknown = [v for v in observed if _plain(v) not in levels]
                if unknown:
                    raise ValueError(
                        f"FeatureEncoder.fit: field {name}: {unknown[0]!r} is not one of the declared categories "
                        f"{levels}"
                    )
            else:
                seen = {_plain(v) for v in observed}
                known = [v for v in (dictionary[name].levels if name in dictionary else ()) if v in seen]
                levels = known + sorted(seen - set(known))
            self.levels_[name] = levels
            if self.impute:
                self.fill_[name] = _plain(X[name].dropna().map(_plain).value_counts().index[0])
        for name in self.binary:
            values = self._binary(name, X[name])
            if self.impute:
                kept = values[~np.isnan(values)]
                self.fill_[name] = float(np.mean(kept) > 0.5)
        self.mean_, self.sd_, self.low_, self.high_ = {}, {}, {}, {}
        for name in self.numeric:
            values = pd.to_numeric(X[name], errors="raise").to_numpy(dtype=float)
            kept = values[~np.isnan(values)]
            if kept.size == 0:
                raise ValueError(f"FeatureEncoder.fit: field {name}: every value is missing")
            sd = float(np.std(kept))
            self.mean_[name], self.sd_[name] = float(np.mean(kept)), sd if sd > 0 else 1.0
            self.low_[name], self.high_[name] = (float(q) for q in np.percentile(kept, [1, 99]))
            if self.impute:
                self.fill_[name] = float(np.median(kept))
        self.n_features_out_ = len(self.get_feature_names_out())
        return self

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Encoded column names: binaries, numerics, then ``<column>_<level>`` for non-reference levels.

        Returns
        -------
        ndarray of str
        """
        require_fitted(self, "levels_")
        dummies = [f"{name}_{level}" for name in self.categorical for level in self.levels_[name][1:]]
        return np.asarray([*self.binary, *self.numeric, *dummies], dtype=object)

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """Encode ``X`` (see :meth:`encode`); the output container follows ``set_output``.

        Parameters
        ----------
        X : pandas.DataFrame
            Covariates, with the columns named in fit.

        Returns
        -------
        ndarray of float64, shape (n_samples, n_features_out_)
        """
        return self.encode(X)

    def encode(self, X: pd.DataFrame | Mapping[str, Any]) -> np.ndarray:
        """Encode ``X`` as a float matrix, whatever ``set_output`` says (what a scorer uses internally).

        Parameters
        ----------
        X : pandas.DataFrame or mapping of str to array-like
            Covariates, with the columns named in fit (a mapping of equal-length columns is read the
            same way, so one checked API record needs no DataFrame).

        Returns
        -------
        ndarray of float64, shape (n_samples, n_features_out_)
        """
        require_fitted(self, "levels_")
        X = self._frame(X, "transform")
        if self.impute is None:
            self._refuse_missing(X, "transform")
        out = np.empty((_n_rows(X), self.n_features_out_))
        position = 0
        for name in self.binary:
            out[:, position] = self._filled(name, self._binary(name, X[name]))
            position += 1
        for name in self.numeric:
            values = self._filled(name, self._numbers(X[name]))
            out[:, position] = (values - self.mean_[name]) / self.sd_[name] if self.scale else values
            position += 1
        for name in self.categorical:
            codes = self._codes(name, X[name])
            for level in range(1, len(self.levels_[name])):
                out[:, position] = codes == level
                position += 1
        return out

    def _filled(self, name: str, values: np.ndarray) -> np.ndarray:
        """Values with their gaps (NaN) filled by the declared imputation."""
        return np.where(np.isnan(values), self.fill_[name], values) if name in self.fill_ else values

    def _codes(self, name: str, values: Any) -> np.ndarray:
        """Position of each value among the column's levels (-1 for an unseen level); missing take the fill."""
        index = {level: i for i, level in enumerate(self.levels_[name])}
        fill = index.get(self.fill_.get(name), -1)
        array = np.asarray(values, dtype=object)

        def code(v: Any) -> int:
            return index.get(v, -1) if isinstance(v, str) else fill if _missing(v) else index.get(v, -1)

        return map_values(array, code, missing=fill, dtype=np.intp)

    def applicability(self, X: pd.DataFrame | Mapping[str, Any]) -> list[str]:
        """Per-row warnings about covariates the model was not trained on.

        Flags a category unseen in training (encoded as the reference level), a numeric value
        outside the training range, and a value filled in by the declared imputation.

        Parameters
        ----------
        X : pandas.DataFrame or mapping of str to array-like
            Covariates to be scored.

        Returns
        -------
        ndarray of str (object), shape (n_samples,)
            Warnings of each row joined by ``"; "`` (``""`` when none), e.g.
            ``"field car_product: 'other' was not seen in training (scored as the reference 'axi-cel')"``.
        """
        require_fitted(self, "levels_")
        X = self._frame(X, "applicability")
        notes = []
        for name in self.categorical:
            column = np.asarray(X[name], dtype=object)
            unseen = (self._codes(name, column) < 0) & ~pd.isna(column)
            ref = self.levels_[name][0] if self.levels_[name] else None
            notes.append(row_notes(unseen, column, lambda v, n=name, ref=ref: (
                f"field {n}: {_plain(v)!r} was not seen in training (scored as the reference {ref!r})")))
        for name in self.numeric:
            values = self._numbers(X[name])
            lo, hi = self.low_[name], self.high_[name]
            outside = (values < lo) | (values > hi)  # NaN compares false, without a warning
            notes.append(row_notes(outside, values, lambda v, n=name, lo=lo, hi=hi: (
                f"field {n}: {v:g} is outside the training range [{lo:g}, {hi:g}] (central 98% of training)")))
        for name in self._columns():
            if name in self.fill_:
                gaps = pd.isna(np.asarray(X[name], dtype=object))
                note = f"field {name}: missing, imputed as {self.fill_[name]!r}"
                notes.append(np.where(gaps, note, "").astype(object) if gaps.any() else None)
        return join_notes(notes, _n_rows(X))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe parameters and learned state (for :meth:`from_dict`).

        Returns
        -------
        dict
        """
        require_fitted(self, "levels_")
        return {
            "format": _FORMAT,
            "binary": list(self.binary),
            "categorical": list(self.categorical),
            "numeric": list(self.numeric),
            "scale": bool(self.scale),
            "impute": self.impute,
            "levels": {k: list(v) for k, v in self.levels_.items()},
            "mean": self.mean_,
            "sd": self.sd_,
            "low": self.low_,
            "high": self.high_,
            "fill": self.fill_,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FeatureEncoder:
        """Rebuild a fitted encoder from :meth:`to_dict` output.

        Parameters
        ----------
        d : dict
            Output of :meth:`to_dict`.

        Returns
        -------
        FeatureEncoder
        """
        if d.get("format") != _FORMAT:
            raise ValueError(f"FeatureEncoder.from_dict: format {d.get('format')!r} is not {_FORMAT!r}")
        encoder = cls(
            tuple(d["binary"]), tuple(d["categorical"]), tuple(d["numeric"]),
            scale=d["scale"], categories={k: list(v) for k, v in d["levels"].items()} or None, impute=d["impute"],
        )
        encoder.levels_ = {k: list(v) for k, v in d["levels"].items()}
        for attr in ("mean", "sd", "low", "high", "fill"):
            setattr(encoder, f"{attr}_", dict(d[attr]))
        encoder.n_features_out_ = len(encoder.get_feature_names_out())
        return encoder
