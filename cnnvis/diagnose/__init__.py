"""Findings: what the paper's experts saw by eye (dead, redundant and mostly-positive neurons, a weight-change
jump, vanishing gradients, isolated clusters), stated with their evidence. See each module for the criterion.

    import cnnvis.diagnose
    for f in cnnvis.diagnose(analysis):   # most severe first; the package is callable (see below)
        print(f.kind, f.layer, f.neurons, f.evidence, f.message)
"""
import sys
import types

from cnnvis.diagnose._diagnose import diagnose
from cnnvis.diagnose._findings import FACETS, KINDS, SEVERITIES, Diagnosis, Finding, Thresholds

__all__ = ["diagnose", "Diagnosis", "Finding", "Thresholds", "KINDS", "SEVERITIES", "FACETS"]


class _CallableModule(types.ModuleType):
    """Once this package is imported, Python binds it to the attribute `cnnvis.diagnose`, which would hide a
    top-level function of that name; so the package itself forwards calls: `cnnvis.diagnose(analysis)` works
    in every import order."""

    def __call__(self, analysis, **kwargs) -> Diagnosis:
        return diagnose(analysis, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
