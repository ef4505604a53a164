"""Survival estimators: Cox (Efron, with inference), penalised Cox and random survival forest."""

from ._forest_files import ForestFileError
from .compact_forest import CompactForest
from .cox import CoxPH
from .coxnet import PenalizedCox
from .forest import SurvivalForest, forest_from_files, forest_to_files

__all__ = ["CoxPH", "PenalizedCox", "SurvivalForest", "CompactForest", "ForestFileError", "forest_to_files",
           "forest_from_files"]
