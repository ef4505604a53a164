"""Training: fit, validate, register and describe models from a config."""

from .config import ConfigError, TrainingConfig, load_config
from .train import TrainResult, train

__all__ = ["ConfigError", "TrainingConfig", "TrainResult", "load_config", "train"]
