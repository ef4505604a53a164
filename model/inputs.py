"""Which columns of a file to score: the model's inputs, and the extras that are ignored or refused.

Registry extracts carry many columns a model does not use (outcomes, dates, other variables). A
file is scored from the model's input columns (covariates, id, best response); every other column
is ignored and listed by name, the ones the model knows (its training outcome and id columns, the
data dictionary's other fields) marked as such. A typo must never drop a covariate silently: an extra
column whose name is within edit distance 2 (case-insensitive) of a model input that the file lacks
is an error naming both. ``strict`` refuses every extra column. One-patient JSON (the REST API)
does not come here: there an unknown field is always an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .fields import CohortValidationError, Problem

__all__ = ["InputColumns", "sort_columns", "edit_distance", "NEAR_MISS"]

NEAR_MISS = 2  # edits (insertions, deletions, substitutions) within which a name is taken for a misspelt input


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance between two strings (insertions, deletions and substitutions count 1)."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


@dataclass(frozen=True)
class InputColumns:
    """How a file's columns are used.

    Attributes
    ----------
    used : tuple of str
        The model's input columns present in the file, in file order.
    ignored : tuple of str
        Every other column, in file order (not read beyond the header).
    recognised : tuple of str
        The ignored columns the model knows (training id/outcome columns, data-dictionary fields).
    """

    used: tuple[str, ...]
    ignored: tuple[str, ...]
    recognised: tuple[str, ...]

    def summary(self) -> str:
        """One line naming the ignored columns (empty when none)."""
        if not self.ignored:
            return ""
        known = set(self.recognised)
        names = ", ".join(f"{c} (known)" if c in known else c for c in self.ignored)
        return f"ignored {len(self.ignored)} column(s) the model does not use: {names}"


def sort_columns(inputs: Sequence[str], known: Sequence[str], columns: Sequence[str], *,
                 strict: bool = False) -> InputColumns:
    """Split a file's header into the model's inputs and the ignored extras, refusing near-misses.

    Parameters
    ----------
    inputs : sequence of str
        The model's input columns (covariates, id, response).
    known : sequence of str
        Columns the model recognises but does not use (pass-through).
    columns : sequence of str
        The file's header.
    strict : bool, default=False
        Refuse every column that is not a model input.

    Returns
    -------
    InputColumns

    Raises
    ------
    CohortValidationError
        One problem per column whose name is within :data:`NEAR_MISS` edits (case-insensitive) of an
        input the file lacks (naming both), and with ``strict`` one per extra column.
    """
    wanted = set(inputs)
    used = tuple(c for c in columns if c in wanted)
    ignored = tuple(c for c in columns if c not in wanted)
    absent = [name for name in inputs if name not in set(columns)]
    problems = []
    for column in ignored:
        if column in known:
            continue
        near = [name for name in absent if edit_distance(column.lower(), name.lower()) <= NEAR_MISS]
        if near:
            problems.append(Problem(f"looks like the model input {near[0]!r}, which the file lacks: rename the column "
                                    f"to {near[0]!r} (or remove it)", field=column))
    if strict:
        problems += [Problem("is not a model input; --strict refuses every column the model does not use", field=c)
                     for c in ignored if not any(p.field == c for p in problems)]
    if problems:
        raise CohortValidationError(problems)
    return InputColumns(used=used, ignored=ignored, recognised=tuple(c for c in ignored if c in set(known)))
