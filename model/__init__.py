"""The domain: cohort data contract, features, survival estimators and prediction outputs.

Imports numpy, pandas, pyarrow, scipy, scikit-learn and scikit-survival only.
"""

from .cohort_io import read_cohort, write_cohort
from .contract import CohortValidationError, Field, Problem, Schema, check_cohort, data_dictionary, to_surv

__all__ = [
    "CohortValidationError",
    "Field",
    "Problem",
    "Schema",
    "check_cohort",
    "data_dictionary",
    "read_cohort",
    "to_surv",
    "write_cohort",
]
