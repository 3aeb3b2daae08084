"""Running data through a model: per-class statistics, learned features, importance, snapshot metrics.

`analyze(model, data, ...)` makes an Analysis (it needs torch, imported on first use of `analyze`, so that
reading a file with `Analysis.load` does not); `Analysis.load(path)` reads one back.
"""
from cnnvis.analysis._analysis import Analysis, Importance, LearnedFeatures, TrainingHistory

__all__ = ["Analysis", "Importance", "LearnedFeatures", "TrainingHistory", "analyze"]


def __getattr__(name):
    if name == "analyze":
        from cnnvis.analysis._run import analyze

        return analyze
    raise AttributeError(f"module 'cnnvis.analysis' has no attribute {name!r}")
