"""The CUDA statistics kernel against the CPU kernel (which tests/test_stats.py checks against numpy)."""
import numpy as np
import pytest
import torch

from cnnvis.compute import cuda_available, cuda_status
from cnnvis.errors import DataError
from cnnvis.stats import ClassStatsAccumulator, class_statistics

pytestmark = pytest.mark.skipif(not cuda_available(), reason=f"no usable CUDA device: {cuda_status()}")


def on_gpu(x: np.ndarray):
    """x as a torch CUDA tensor (or a CuPy array where torch has no CUDA): a GPU machine needs one."""
    if torch.cuda.is_available():
        return torch.from_numpy(np.ascontiguousarray(x)).cuda()
    import cupy  # no torch CUDA: CuPy must be there, or this GPU machine cannot hold device arrays

    return cupy.asarray(x)


def cpu_stats(x, labels, k):
    return class_statistics(x, labels, k, device="cpu")


def assert_close(gpu, cpu, rtol=1e-9, std_rtol=None):
    np.testing.assert_array_equal(gpu.count, cpu.count)
    np.testing.assert_array_equal(gpu.max, cpu.max)  # the same float maxima, exactly
    np.testing.assert_array_equal(gpu.active, cpu.active)
    np.testing.assert_allclose(gpu.mean, cpu.mean, rtol=rtol, atol=1e-12, equal_nan=True)
    np.testing.assert_allclose(gpu.std, cpu.std, rtol=rtol if std_rtol is None else std_rtol, atol=1e-12,
                               equal_nan=True)


# The CPU kernel's std of float32 (N, C) input is exact to ~1e-7 relative (tests/test_stats.py).
F32_ROWS_STD_RTOL = 2e-6


def make(shape, dtype=np.float32, k=5, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) - 0.3).astype(dtype)
    labels = rng.integers(0, k, size=shape[0])
    return x, labels


# One or more shapes per row-kernel variant: S = 1 (no row pass), 3 (a thread per row), 20, 100, 300 and
# 784 (4 to 32 lanes per row), 20000 with few rows (a block per row); odd channel counts (not multiples of
# the 32-channel reduction blocks) and batches with an empty class.
SHAPES = [(37, 13), (513, 70), (37, 13, 3), (21, 33, 4, 5), (9, 35, 10, 10), (16, 7, 300), (64, 64, 28, 28),
          (3, 2, 20000), (2, 3, 5, 7, 9)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cuda_matches_cpu(shape, dtype):
    x, labels = make(shape, dtype, k=6)
    labels[labels == 4] = 0  # class 4 stays empty
    gpu = class_statistics(on_gpu(x), labels, 6)
    assert gpu.count[4] == 0 and np.isnan(gpu.mean[4]).all()
    f32_rows = dtype == np.float32 and len(shape) == 2
    assert_close(gpu, cpu_stats(x, labels, 6), std_rtol=F32_ROWS_STD_RTOL if f32_rows else None)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_cuda_half_precision_is_cast_on_the_device(dtype):
    x, labels = make((33, 10, 6, 6), np.float64, seed=1)
    t = torch.from_numpy(x).to(dtype)
    gpu = class_statistics(t.cuda(), torch.from_numpy(labels).cuda(), 5)
    assert_close(gpu, class_statistics(t, labels, 5, device="cpu"))


@pytest.mark.parametrize("view", ["slice_n", "slice_c", "transpose_nc", "transpose_spatial", "slice_spatial"])
def test_cuda_non_contiguous(view):
    x, _ = make((40, 14, 9, 6), seed=2)
    t = torch.from_numpy(x).cuda()
    pick = {
        "slice_n": lambda a: a[::3],
        "slice_c": lambda a: a[:, 1::2],
        "transpose_nc": lambda a: a.transpose(0, 1),
        "transpose_spatial": lambda a: a.transpose(2, 3),
        "slice_spatial": lambda a: a[:, :, 1:8:2],
    }[view]
    xt = pick(t)
    labels = np.random.default_rng(3).integers(0, 4, size=xt.shape[0])
    assert_close(class_statistics(xt, labels, 4), class_statistics(pick(torch.from_numpy(x)), labels, 4))


class CudaArray:
    """A bare __cuda_array_interface__ holder (what Numba or other libraries hand over)."""

    def __init__(self, t):
        self._t = t
        self.__cuda_array_interface__ = t.__cuda_array_interface__
        self.shape = tuple(t.shape)


def test_cuda_array_interface_and_cupy():
    x, labels = make((29, 11, 5, 5), seed=4)
    expected = cpu_stats(x, labels, 5)
    assert_close(class_statistics(CudaArray(torch.from_numpy(x).cuda()), labels, 5), expected)
    try:
        import cupy
    except ImportError:
        return  # CuPy is optional; the interface path above is the one it takes
    assert_close(class_statistics(cupy.asarray(x)[:, ::2], labels, 5), cpu_stats(x[:, ::2], labels, 5))


def test_host_input_with_device_cuda():
    x, labels = make((31, 9, 7, 7), np.float64, seed=5)
    assert_close(class_statistics(x[:, ::2], labels, 5, device="cuda"), cpu_stats(x[:, ::2], labels, 5))


def test_gpu_input_with_device_cpu():
    x, labels = make((31, 9, 7, 7), seed=6)
    assert_close(class_statistics(on_gpu(x), labels, 5, device="cpu"), cpu_stats(x, labels, 5), rtol=0)


def test_streaming_mixes_devices_and_merges():
    x, labels = make((90, 12, 6, 6), np.float64, seed=7)
    acc = ClassStatsAccumulator(5, 12)
    for i, start in enumerate(range(0, 90, 13)):
        batch = x[start:start + 13]
        acc.update(on_gpu(batch) if i % 2 else batch, labels[start:start + 13])
    other = ClassStatsAccumulator(5, 12).update(on_gpu(x[:20]), labels[:20])
    acc.merge(other)
    both = np.concatenate([x, x[:20]])
    assert_close(acc.result(), cpu_stats(both, np.concatenate([labels, labels[:20]]), 5))


def test_cuda_large_mean_std_is_precise():
    rng = np.random.default_rng(8)
    x = 1e7 + rng.standard_normal((400, 6, 5, 5))
    labels = rng.integers(0, 3, size=400)
    gpu = class_statistics(on_gpu(x), labels, 3)
    cpu = cpu_stats(x, labels, 3)  # itself checked against the float64 reference in test_stats.py
    np.testing.assert_allclose(gpu.std, cpu.std, rtol=1e-6)


@pytest.mark.parametrize("shape,where", [((6, 4, 3, 3), (4, 2, 1, 1)), ((6, 4), (3, 1)), ((6, 4, 40), (1, 3, 39))])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_cuda_non_finite_raises_and_keeps_state(shape, where, bad):
    x = np.zeros(shape, np.float32)
    labels = np.array([0, 1, 2, 0, 1, 2])
    acc = ClassStatsAccumulator(3, 4).update(on_gpu(x), labels)
    x[where] = bad
    with pytest.raises(DataError, match=f"image {where[0]}, channel {where[1]}"):
        acc.update(on_gpu(x), labels)
    assert acc.result().count.tolist() == [2, 2, 2]


def test_cuda_bad_label_raises():
    x, _ = make((6, 4, 3, 3), seed=9)
    with pytest.raises(DataError, match=r"labels: value 7 at index 5 is outside \[0, n_classes=3\)"):
        class_statistics(on_gpu(x), np.array([0, 1, 2, 0, 1, 7]), 3)


def test_cuda_on_a_side_stream():
    x, labels = make((64, 32, 14, 14), seed=10)
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        t = torch.from_numpy(x).cuda() + 1.0  # produced on the side stream, read there too
        gpu = class_statistics(t, labels, 5)
    assert_close(gpu, cpu_stats(x + np.float32(1.0), labels, 5))
