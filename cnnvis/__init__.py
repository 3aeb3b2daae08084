"""cnnvis: visual analysis of deep convolutional neural networks (CNNVis, Liu et al.), made fast.

Stages (one package each): graph -> analysis -> aggregate -> layout -> gl. See DESIGN.md.
"""
__version__ = "0.1.0"

from cnnvis.errors import CnnvisError

__all__ = ["Analysis", "CnnvisError", "diagnose", "__version__"]


def __getattr__(name):
    # Lazy: `import cnnvis` stays cheap (no torch) for the viewer and the compute wrappers.
    if name == "Analysis":
        from cnnvis.analysis import Analysis

        return Analysis
    if name == "diagnose":  # the package is callable: cnnvis.diagnose(analysis) -> Diagnosis
        import importlib

        return importlib.import_module("cnnvis.diagnose")
    raise AttributeError(f"module 'cnnvis' has no attribute {name!r}")
