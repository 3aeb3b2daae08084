"""Per-class activation statistics: validation, dtype and layout policy, device dispatch.

The fused kernels live in cnnvis._core (csrc/stats/stats.cpp for the CPU, stats_cuda.cu for CUDA); this
module checks the inputs, views them as (N, C, S) and hands a pointer over. The running state (count,
mean, M2, max, active count per class and channel) always lives on the host: it is small.

Policy, decided once:
- dtype: float32 and float64 reach the kernel unchanged; other floats are cast, 16-bit ones (float16,
  bfloat16) to float32 and wider ones to float64 (on the device they live on). Integer, bool and complex
  activations are rejected. Sums and moments are accumulated in float64; one exception, on the CPU: for
  float32 (N, C) input the squared deviations within runs of up to 8 images of a class are summed in
  float32 before they join the float64 moments, so the std is exact to ~1e-7 relative there (the mean,
  max and active fraction to float64 rounding).
- layout: any strides. The spatial dims are flattened to one axis without a copy whenever that is possible
  (C-contiguous arrays, slices along N or C, torch CPU tensors via ``.numpy()``); otherwise one C-order copy.
- device and stream: as cnnvis.compute._arrays (the kernels run on the producer's stream).
"""
from __future__ import annotations

import math

import numpy as np

from cnnvis import _core
from cnnvis.compute._arrays import (KERNEL_DTYPES, dtype_tag, is_torch, producer_stream, resolve_device,
                                    shape_of, to_numpy)
from cnnvis.compute._errors import calling_core, non_finite
from cnnvis._params import DEVICE, Interval, validate
from cnnvis.compute._types import ClassStatistics
from cnnvis.errors import DataError

__all__ = ["ClassStatsAccumulator", "ClassStatistics", "class_statistics"]

_OK, _BAD_LABEL, _NON_FINITE = 0, 1, 2  # StatsStatus codes (csrc/stats/stats.hpp)
_COUNT = Interval(1, wording="an integer >= 1")
_PARAMETERS = {"n_classes": _COUNT, "n_channels": _COUNT}


def class_statistics(activations, labels, n_classes: int, *, device: str = "auto") -> ClassStatistics:
    """Per-class statistics of activations (N, C) or (N, C, *spatial) with integer labels (N,) in [0, K)."""
    shape = shape_of(activations)
    _check_ndim(shape)
    acc = ClassStatsAccumulator(n_classes, shape[1], device=device).update(activations, labels)
    return ClassStatistics(*acc._moments.take_result())  # the one-shot state's arrays become the result


class ClassStatsAccumulator:
    """Streams batches into per-class statistics of n_channels neurons; see ``class_statistics``.

    ``update`` adds a batch (left unchanged when the batch is rejected), ``merge`` adds another
    accumulator's images, ``result`` returns a ClassStatistics. Batches may come from different devices.
    """

    def __init__(self, n_classes: int, n_channels: int, *, device: str = "auto"):
        p = validate(_PARAMETERS, dict(n_classes=n_classes, n_channels=n_channels), error=DataError)
        self.n_classes, self.n_channels = p["n_classes"], p["n_channels"]
        self.device = validate({"device": DEVICE}, dict(device=device))["device"]
        self._moments = _core.ClassMoments(self.n_classes, self.n_channels)

    def update(self, activations, labels) -> "ClassStatsAccumulator":
        """Add a batch: activations (N, C, *spatial) of any float dtype, labels (N,) integers in [0, K)."""
        shape = shape_of(activations)
        n, c, s = _check_activations(shape, self.n_channels)
        lab = _labels_array(labels, n)
        device = resolve_device(self.device, activations)
        if n == 0:  # nothing to add (and empty views may carry strides the kernels would reject)
            return self
        with calling_core("activations"):
            if device == "cuda":
                status = _update_cuda(self._moments, activations, lab, (n, c, s))
            else:
                status = self._moments.update_cpu(_host_rows(activations, (n, c, s)), lab)
        _raise_for_status(status, self.n_classes)
        return self

    def merge(self, other: "ClassStatsAccumulator") -> "ClassStatsAccumulator":
        """Add the images of `other` (same n_classes and n_channels) to this accumulator."""
        if not isinstance(other, ClassStatsAccumulator):
            raise DataError(f"merge: other must be a ClassStatsAccumulator, got {type(other).__name__}")
        if (other.n_classes, other.n_channels) != (self.n_classes, self.n_channels):
            raise DataError(
                f"merge: other has (n_classes, n_channels) = ({other.n_classes}, {other.n_channels}), "
                f"expected ({self.n_classes}, {self.n_channels})"
            )
        self._moments.merge(other._moments)
        return self

    def result(self) -> ClassStatistics:
        return ClassStatistics(*self._moments.result())

    def __repr__(self) -> str:
        return (f"ClassStatsAccumulator(n_classes={self.n_classes}, n_channels={self.n_channels}, "
                f"device={self.device!r})")


def merge_states(a: tuple, b: tuple) -> tuple:
    """Chan et al.'s merge of two raw states (count (K,), mean, M2, max, active (K, C)), as the accumulators
    store them: by the core's one merge (ClassMoments::merge, csrc/stats/stats.cpp)."""
    def moments(state):
        count, mean, m2, mx, active = (np.ascontiguousarray(v) for v in state)
        return _core.ClassMoments.from_state(count.astype(np.int64), mean.astype(np.float64),
                                             m2.astype(np.float64), mx.astype(np.float64), active.astype(np.int64))

    out = moments(a)
    out.merge(moments(b))
    return out.state()


def finalize(count, mean, m2, mx, active) -> ClassStatistics:
    """ClassStatistics from raw moments (M2 = sum of squared deviations); NaN rows for empty classes. The
    core's arithmetic (finalize_moments, csrc/stats/stats.cpp), the same as ClassStatsAccumulator.result."""
    count, active = (np.ascontiguousarray(v, dtype=np.int64) for v in (count, active))
    mean, m2, mx = (np.ascontiguousarray(v, dtype=np.float64) for v in (mean, m2, mx))
    return ClassStatistics(*_core.ClassMoments.finalize(count, mean, m2, mx, active))


# ---- validation ---------------------------------------------------------------------------------------

def _check_ndim(shape: tuple) -> None:
    if len(shape) < 2:
        raise DataError(f"activations must have shape (N, C) or (N, C, *spatial), got shape {shape} "
                        f"(ndim {len(shape)})")


def _check_activations(shape: tuple, n_channels: int) -> tuple:
    """(N, C, S) of an activation shape, checked against the accumulator's channel count."""
    _check_ndim(shape)
    n, c = shape[:2]
    if c != n_channels:
        raise DataError(f"activations: expected n_channels={n_channels} channels on axis 1, got {c} "
                        f"(shape {shape})")
    s = math.prod(shape[2:])
    if s == 0:
        raise DataError(f"activations: the spatial size is 0 (shape {shape})")
    return n, c, s


def _labels_array(labels, n: int) -> np.ndarray:
    lab = to_numpy(labels, name="labels")
    if lab.ndim != 1 or lab.dtype.kind not in "iu":
        raise DataError(f"labels must be a 1-D integer array, got shape {lab.shape} and dtype {lab.dtype}")
    if lab.shape[0] != n:
        raise DataError(f"labels: expected length N={n} (activations.shape[0]), got {lab.shape[0]}")
    if lab.dtype == np.uint64 and n and lab.max() > np.iinfo(np.int64).max:
        raise DataError(f"labels: value {lab.max()} is outside [0, n_classes)")
    return np.ascontiguousarray(lab, dtype=np.int64)


def _raise_for_status(status: tuple, n_classes: int) -> None:
    code, index, value = status
    if code == _BAD_LABEL:
        raise DataError(f"labels: value {value} at index {index} is outside [0, n_classes={n_classes})")
    if code == _NON_FINITE:
        raise non_finite("activations", f"non-finite value at image {index}, channel {value}; or a spatial sum "
                                        "beyond the float64 range")


# ---- host path ----------------------------------------------------------------------------------------

def _kernel_dtype(dtype: np.dtype) -> np.dtype:
    if dtype in KERNEL_DTYPES:
        return dtype
    if dtype.kind != "f":
        raise DataError(f"activations must be floating point, got dtype {dtype}")
    return np.dtype(np.float32 if dtype.itemsize <= 4 else np.float64)


def _host_rows(x, ncs: tuple) -> np.ndarray:
    """A float32/float64 (N, C, S) host view of x with a contiguous spatial axis (a copy only if needed)."""
    a = _torch_host_numpy(x) if is_torch(x) else to_numpy(x, name="activations")
    a = a.astype(_kernel_dtype(a.dtype), copy=False)
    rows = a.reshape(ncs)  # a view whenever the strides allow it
    isz = rows.itemsize
    if (ncs[2] > 1 and rows.strides[2] != isz) or rows.strides[0] % isz or rows.strides[1] % isz:
        rows = np.ascontiguousarray(rows)
    return rows


def _torch_host_numpy(t) -> np.ndarray:
    t = t.detach()
    if t.is_cuda:
        t = t.cpu()
    if not t.dtype.is_floating_point:
        raise DataError(f"activations must be floating point, got dtype {t.dtype}")
    if t.dtype.itemsize < 4:
        t = t.float()  # float16 / bfloat16: cast once here (bfloat16 has no numpy dtype)
    return t.resolve_conj().resolve_neg().numpy()  # zero-copy for float32/float64


# ---- CUDA path ----------------------------------------------------------------------------------------

def _update_cuda(moments, x, labels: np.ndarray, ncs: tuple) -> tuple:
    n, c, s = ncs
    if is_torch(x) and x.is_cuda:
        ptr, dtype, sn, sc, stream, keep = _torch_cuda_view(x, ncs)
    elif hasattr(x, "__cuda_array_interface__"):
        ptr, dtype, sn, sc, stream, keep = _cai_view(x, ncs)
    else:  # a host array sent to the GPU (device="cuda"): the kernel copies it over
        rows = np.ascontiguousarray(_host_rows(x, ncs))
        return moments.update_cuda(rows.ctypes.data, dtype_tag(rows.dtype), n, c, s, c * s, s, labels, 0, True)
    status = moments.update_cuda(ptr, dtype, n, c, s, sn, sc, labels, stream, False)
    del keep  # the input (or its cast copy) stays alive until the kernel has finished
    return status


def _torch_cuda_view(t, ncs: tuple):
    import torch

    t = t.detach()
    if not t.dtype.is_floating_point:
        raise DataError(f"activations must be floating point, got dtype {t.dtype}")
    if t.dtype not in (torch.float32, torch.float64):
        t = t.float() if t.dtype.itemsize < 4 else t.double()  # stays on the device
    rows = t.reshape(ncs)
    if ncs[2] > 1 and rows.stride(2) != 1:
        rows = rows.contiguous()
    return rows.data_ptr(), dtype_tag(rows.dtype), rows.stride(0), rows.stride(1), producer_stream(rows), rows


def _cai_view(x, ncs: tuple):
    """Pointer and element strides from __cuda_array_interface__ (CuPy, Numba, ...)."""
    if type(x).__module__.split(".", 1)[0] == "cupy":
        x = _cupy_rows(x, ncs)
    cai = x.__cuda_array_interface__
    typestr = cai["typestr"]
    if typestr not in ("<f4", "<f8"):
        raise DataError(f"activations: CUDA arrays must be float32 or float64 here, got typestr {typestr!r}")
    isz = int(typestr[2])
    shape = tuple(cai["shape"])
    strides = cai.get("strides") or _c_strides(shape, isz)
    sn, sc = _nc_strides(shape, strides, isz)
    return int(cai["data"][0]), typestr[1:], sn, sc, producer_stream(x), x


def _cupy_rows(x, ncs: tuple):
    import cupy

    if x.dtype.kind != "f":
        raise DataError(f"activations must be floating point, got dtype {x.dtype}")
    rows = x.astype(_kernel_dtype(np.dtype(x.dtype)), copy=False).reshape(ncs)
    if ncs[2] > 1 and rows.strides[2] != rows.itemsize:
        rows = cupy.ascontiguousarray(rows)
    return rows


def _c_strides(shape: tuple, itemsize: int) -> tuple:
    strides, step = [], itemsize
    for d in reversed(shape):
        strides.append(step)
        step *= max(d, 1)
    return tuple(reversed(strides))


def _nc_strides(shape: tuple, strides: tuple, itemsize: int) -> tuple:
    """Element strides of N and C when the spatial dims flatten to one contiguous axis, else DataError."""
    expected = itemsize
    for d, st in zip(reversed(shape[2:]), reversed(strides[2:])):
        if d > 1 and st != expected:
            raise DataError("activations: a CUDA array whose spatial dims are not C-contiguous needs a "
                            "contiguous copy first (torch .contiguous() / cupy.ascontiguousarray)")
        expected *= d
    if strides[0] % itemsize or strides[1] % itemsize:
        raise DataError("activations: strides are not multiples of the element size")
    return strides[0] // itemsize, strides[1] // itemsize
