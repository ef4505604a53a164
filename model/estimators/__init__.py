"""Survival estimators: Cox (Efron, with inference), penalised Cox and random survival forest."""

from .cox import CoxPH
from .coxnet import PenalizedCox
from .forest import SurvivalForest

__all__ = ["CoxPH", "PenalizedCox", "SurvivalForest"]
