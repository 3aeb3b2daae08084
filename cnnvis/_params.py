"""Declared parameter constraints, checked in one place (as scikit-learn's ``_parameter_constraints``).

Every public entry point (``cnnvis.analyze``, ``aggregate``, ``build_scene``, ``diagnose``, the compute
functions) declares a table ``{name: constraint}`` beside it; ``validate`` checks the values in table order and
returns them normalised (``int`` / ``float``). A top-level module so that every package may use it
(docs/architecture.md: it imports only ``cnnvis.errors``). Every failure reads ``"<name> must be <allowed>, got
<value>"``, the allowed part worded by the constraint (a constraint may carry its own wording where a
message is pinned by tests, e.g. the statistics counts' "an integer >= 1"). A bound may be a number or
the name of another value (already checked, earlier in the table) or of a data limit passed to
``validate`` (``n_rows``): checks that depend on the data run once the data's shape is known.
"""
from __future__ import annotations

import math
from numbers import Integral, Real

from cnnvis.errors import CnnvisError, DeviceError

__all__ = ["DEVICE", "DEVICES", "Interval", "Options", "SEED", "validate"]


def _show(value, with_type=False) -> str:
    if isinstance(value, bool) or not isinstance(value, Real):
        shown = repr(value)
    else:
        shown = str(value)  # numpy scalars as plain numbers
    return f"{shown} ({type(value).__name__})" if with_type else shown


class _Failure(Exception):
    def __init__(self, allowed: str, with_type: bool = False):
        self.allowed, self.with_type = allowed, with_type


class Interval:
    """Integers (``integer=True``; bools are not integers) or finite reals in [low, high]; None: unbounded."""

    def __init__(self, low=None, high=None, *, integer=True, wording=None):
        self.low, self.high, self.integer, self.wording = low, high, integer, wording

    def check(self, value, bounds):
        low, high = (bounds(b) for b in (self.low, self.high))
        if self.integer:
            if isinstance(value, bool) or not isinstance(value, Integral):
                raise _Failure(self.wording or "an integer", with_type=self.wording is None)
            value = int(value)
        elif isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
            raise _Failure(self.wording or "a finite number", with_type=self.wording is None)
        else:
            value = float(value)
        if (low is not None and value < low) or (high is not None and value > high):
            raise _Failure(self.wording or self._range(low, high))
        return value

    @staticmethod
    def _range(low, high) -> str:
        if low is not None and high is not None:
            return f"in [{low}, {high}]"
        return f"in >= {low}" if low is not None else f"in <= {high}"


class Options:
    """One of a few strings; `error`, where given, is raised instead of validate's (the device: DeviceError)."""

    def __init__(self, values, *, wording=None, error=None):
        self.values, self.wording, self.error = tuple(values), wording, error

    def check(self, value, bounds):
        if not isinstance(value, str) or value not in self.values:
            raise _Failure(self.wording or "one of " + ", ".join(map(repr, self.values)))
        return value


# The seed of the core's generators (uint64_t).
SEED = Interval(0, 2**64 - 1)

# Where work runs, for every entry point that takes `device` (the one check of it; resolved to a device by
# cnnvis.compute.resolve_device, and for the model by cnnvis.analyze).
DEVICES = ("auto", "cpu", "cuda")
DEVICE = Options(DEVICES, wording="'auto', 'cpu' or 'cuda'", error=DeviceError)


def validate(constraints: dict, values: dict, *, limits: dict | None = None, error=CnnvisError) -> dict:
    """The values, checked against their constraints in table order and normalised; raises `error`."""
    out = {}

    def bound(b):
        if not isinstance(b, str):
            return b
        return out[b] if b in out else (limits or {})[b]

    for name, constraint in constraints.items():
        value = values[name]
        try:
            out[name] = constraint.check(value, bound)
        except _Failure as f:
            kind = getattr(constraint, "error", None) or error
            raise kind(f"{name} must be {f.allowed}, got {_show(value, f.with_type)}") from None
    return out
