"""Running data through a model: per-class statistics, learned features, importance, snapshot metrics."""
from cnnvis.analysis._analysis import Analysis, Importance, LearnedFeatures, TrainingHistory

__all__ = ["Analysis", "Importance", "LearnedFeatures", "TrainingHistory"]
