"""cnnvis: visual analysis of deep convolutional neural networks (CNNVis, Liu et al.), made fast.

Stages (one package each): graph -> analysis -> aggregate -> layout -> gl; docs/architecture.md describes
them and the import arrows between them. From Python: `cnnvis.analyze(model, data)` -> Analysis,
`cnnvis.Analysis.load(path)`, `cnnvis.diagnose(analysis)`.
"""
__version__ = "0.1.0"

from cnnvis.errors import CnnvisError

__all__ = ["Analysis", "CnnvisError", "analyze", "diagnose", "__version__"]


def __getattr__(name):
    # Lazy: `import cnnvis` stays cheap (no torch) for the viewer and the compute wrappers; torch comes with
    # the first use of `analyze`.
    if name in ("Analysis", "analyze"):
        import cnnvis.analysis

        return getattr(cnnvis.analysis, name)
    if name == "diagnose":  # the package is callable: cnnvis.diagnose(analysis) -> Diagnosis
        import importlib

        return importlib.import_module("cnnvis.diagnose")
    raise AttributeError(f"module 'cnnvis' has no attribute {name!r}")
