"""A :class:`CompactForest` as ``forest.npz`` + ``forest.json``: no pickle, SHA-256 checked before reading.

Version 2 writes the leaf curves as the steps the forest holds (``step_ptr``, ``step_col``,
``step_chf``, ``step_surv``) and, when the forest has one, the Gram matrix of its centred in-bag
counts. Version 1 files (each curve's steps stored apart) are still read.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from .compact_forest import ARRAYS, CompactForest

__all__ = ["ForestFileError", "save_forest", "load_forest", "FORMAT", "FORMAT_VERSION"]

FORMAT = "cnslrisk-compact-forest"
FORMAT_VERSION = 2
_READABLE = (1, 2)
_NPZ = "forest.npz"
_JSON = "forest.json"
_GRAM = "inbag_gram"


class ForestFileError(ValueError):
    """A stored forest file is missing, altered or of an unknown format."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_forest(forest: CompactForest, directory: str | Path) -> dict[str, Any]:
    """Write ``forest.npz`` (arrays, ``np.savez_compressed``, no object arrays) and ``forest.json``.

    Returns
    -------
    dict
        Record to keep with the model: format, version, file names and their SHA-256.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = dict(forest.arrays)
    arrays["step_col"] = arrays["step_col"].astype(np.min_scalar_type(max(forest.times_.size - 1, 0)))
    if forest.inbag_gram is not None:
        arrays[_GRAM] = forest.inbag_gram
    np.savez_compressed(directory / _NPZ, **arrays)
    meta = {"format": FORMAT, "version": FORMAT_VERSION, "n_trees": forest.n_trees_,
            "n_features_in": forest.n_features_in, "feature_names": forest.feature_names,
            "n_times": int(forest.times_.size), "metadata": forest.metadata}
    (directory / _JSON).write_text(json.dumps(meta, indent=2) + "\n")
    return {"format": FORMAT, "version": FORMAT_VERSION, "files": {
        name: {"sha256": _sha256(directory / name)} for name in (_NPZ, _JSON)}}


def _steps_from_version_1(npz: Any) -> dict[str, np.ndarray]:
    """Version 1 kept each curve's steps apart (first value and every change); merge them per leaf."""
    n_times = npz["times"].size
    curves = {}
    for name in ("survival", "cum_hazard"):
        ptr, col, value = (npz[f"{name}_{part}"] for part in ("ptr", "col", "value"))
        rows = np.repeat(np.arange(ptr.size - 1), np.diff(ptr))
        index = np.zeros((ptr.size - 1, n_times), dtype=np.int64)
        index[rows, col] = np.arange(value.size)
        np.maximum.accumulate(index, axis=1, out=index)
        curves[name] = value[index].astype(np.float64)
    chf, surv = curves["cum_hazard"], curves["survival"]
    change = (np.diff(chf, axis=1, prepend=0.0) != 0) | (np.diff(surv, axis=1, prepend=1.0) != 0)
    rows, cols = np.nonzero(change)
    return {"step_ptr": np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=chf.shape[0]))]),
            "step_col": cols, "step_chf": chf[rows, cols], "step_surv": surv[rows, cols]}


def load_forest(directory: str | Path, record: dict[str, Any]) -> CompactForest:
    """Read a forest written by :func:`save_forest`, refusing files whose SHA-256 differs from ``record``.

    Raises
    ------
    ForestFileError
        A file is missing or altered, or the record is of another format or version.
    """
    directory = Path(directory)
    if record.get("format") != FORMAT or record.get("version") not in _READABLE:
        raise ForestFileError(f"CompactForest load: record format {record.get('format')!r} version "
                              f"{record.get('version')!r} is not {FORMAT!r} version {' or '.join(map(str, _READABLE))}")
    for name in (_NPZ, _JSON):
        if not (directory / name).is_file():
            raise ForestFileError(f"CompactForest load: {directory / name}: file is missing")
    for name in (_NPZ, _JSON):
        path = directory / name
        if _sha256(path) != record.get("files", {}).get(name, {}).get("sha256"):
            raise ForestFileError(f"CompactForest load: {path}: sha256 differs from the record; "
                                  "the file was altered or belongs to another model")
    meta = json.loads((directory / _JSON).read_text())
    with np.load(directory / _NPZ, allow_pickle=False) as npz:
        if record["version"] == 1:
            arrays = {name: npz[name] for name in ARRAYS if not name.startswith("step_")}
            arrays.update(_steps_from_version_1(npz))
        else:
            arrays = {name: npz[name] for name in ARRAYS}
        gram = npz[_GRAM] if _GRAM in npz.files else None
    return CompactForest(**arrays, inbag_gram=gram, n_features_in=meta["n_features_in"],
                         feature_names=meta["feature_names"], metadata=meta["metadata"])
