"""cnnvis.stats against a slow, obvious float64 numpy reference, on awkward inputs."""
import ctypes
import types

import numpy as np
import pytest
import torch

from cnnvis import _core
from cnnvis.compute import _stats

from cnnvis.errors import DataError, DeviceError
from cnnvis.stats import ClassStatistics, ClassStatsAccumulator, class_statistics

# Every test runs once per CPU path of the SIMD kernels this machine has (conftest.py's cpu_path).
pytestmark = pytest.mark.usefixtures("cpu_path")


def reference(x, labels, n_classes):
    """Per-class statistics the slow way: one class and one channel at a time, in float64."""
    x = np.asarray(x, dtype=np.float64)
    n, c = x.shape[:2]
    rows = x.reshape(n, c, -1)
    r, m = rows.mean(axis=2), rows.max(axis=2)
    out = {f: np.full((n_classes, c), np.nan) for f in ("mean", "std", "max", "active")}
    count = np.zeros(n_classes, dtype=np.int64)
    for k in range(n_classes):
        sel = np.asarray(labels) == k
        count[k] = sel.sum()
        if count[k] == 0:
            continue
        for ch in range(c):
            rk, mk = r[sel, ch], m[sel, ch]
            out["mean"][k, ch] = rk.mean()
            out["std"][k, ch] = np.sqrt(((rk - rk.mean()) ** 2).mean())
            out["max"][k, ch] = mk.max()
            out["active"][k, ch] = (mk > 0).mean()
    return count, out


# float32 (N, C) input: the kernel sums the squared deviations of each run of <= 8 images of a class in
# float32 (csrc/stats/stats.cpp, ClassRunF32), so the std is exact to ~1e-7 relative there (worst seen:
# 7e-7, test_two_dimensional_float32_precision), not to float64 rounding; the rest stays as exact.
F32_ROWS_STD_RTOL = 2e-6


def assert_matches(stats, x, labels, n_classes, rtol=1e-9, atol=1e-12):
    count, ref = reference(x, labels, n_classes)
    assert isinstance(stats, ClassStatistics)
    np.testing.assert_array_equal(stats.count, count)
    assert stats.count.dtype == np.int64
    a = np.asarray(x)
    f32_rows = a.dtype.itemsize <= 4 and int(np.prod(a.shape[2:])) == 1
    for field in ("mean", "std", "max", "active"):
        got = getattr(stats, field)
        assert got.dtype == np.float64 and got.shape == ref[field].shape, field
        r = max(rtol, F32_ROWS_STD_RTOL) if field == "std" and f32_rows else rtol
        np.testing.assert_allclose(got, ref[field], rtol=r, atol=atol, equal_nan=True, err_msg=field)


def make(shape, dtype=np.float32, n_classes=5, seed=0, shift=-0.3):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) + shift).astype(dtype)
    labels = rng.integers(0, n_classes, size=shape[0])
    return x, labels


SHAPES = [
    (37, 13), (37, 13, 11), (37, 13, 7, 5), (9, 6, 3, 4, 5), (64, 3, 28, 28), (5, 40, 1, 1), (1, 1, 1),
    # Kernel paths: short rows tiled by channel, over several tiles and image groups; wide rows.
    (50, 100, 3, 3), (40, 1100), (600, 20, 5), (3, 2, 130), (300, 7, 2, 2),
]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_reference(shape, dtype):
    x, labels = make(shape, dtype)
    assert_matches(class_statistics(x, labels, 5), x, labels, 5)


def test_float16_is_cast_and_matches_reference():
    x, labels = make((37, 13, 7, 5), np.float16)
    # float16 values are exact in float32, so the cast loses nothing.
    assert_matches(class_statistics(x, labels, 5), x, labels, 5)


@pytest.mark.parametrize("view", ["transpose_nc", "slice_n", "slice_c", "slice_spatial", "fortran",
                                  "transpose_spatial", "negative_stride"])
def test_non_contiguous_inputs(view):
    base, _ = make((40, 14, 9, 6), np.float32, seed=1)
    x = {
        "transpose_nc": lambda b: b.transpose(1, 0, 2, 3),
        "slice_n": lambda b: b[::3],
        "slice_c": lambda b: b[:, 1::2],
        "slice_spatial": lambda b: b[:, :, 1:8:2, ::2],
        "fortran": lambda b: np.asfortranarray(b),
        "transpose_spatial": lambda b: b.transpose(0, 1, 3, 2),
        "negative_stride": lambda b: b[::-1, ::-1],
    }[view](base)
    labels = np.random.default_rng(2).integers(0, 4, size=x.shape[0])
    assert_matches(class_statistics(x, labels, 4), x, labels, 4)


@pytest.mark.parametrize("layout", ["fortran", "slice_c", "transpose"])
def test_non_contiguous_two_dimensional(layout):
    base, labels = make((45, 700), np.float64, seed=17)
    x = {"fortran": np.asfortranarray(base), "slice_c": base[:, ::3], "transpose": base.T.copy().T}[layout]
    assert_matches(class_statistics(x, labels, 5), x, labels, 5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_torch_tensors(dtype):
    x, labels = make((33, 10, 5, 7), np.float64, seed=3)
    t = torch.from_numpy(x).to(dtype)[:, ::2]  # non-contiguous too
    labels_t = torch.from_numpy(labels)
    expected = t.to(torch.float64).numpy()  # the exact values the kernel sees (16-bit casts are exact)
    assert_matches(class_statistics(t, labels_t, 5), expected, labels, 5)


def test_torch_requires_grad_and_cpu_device():
    x, labels = make((12, 4, 3, 3), np.float32, n_classes=3, seed=4)
    t = torch.from_numpy(x).requires_grad_(True)
    assert_matches(class_statistics(t, labels, 3, device="cpu"), x, labels, 3)


def test_empty_classes_are_nan_with_count_zero():
    x, _ = make((20, 6, 4, 4), seed=5)
    labels = np.where(np.arange(20) % 2 == 0, 0, 3)  # classes 1, 2 and 4 never occur
    stats = class_statistics(x, labels, 5)
    assert stats.count.tolist() == [10, 0, 0, 10, 0]
    for field in ("mean", "std", "max", "active"):
        values = getattr(stats, field)
        assert np.isnan(values[[1, 2, 4]]).all(), field
        assert np.isfinite(values[[0, 3]]).all(), field
    assert_matches(stats, x, labels, 5)


def test_all_negative_activations_are_never_active():
    x = -np.abs(make((25, 7, 3, 3), seed=6)[0]) - 1e-3
    labels = np.arange(25) % 3
    stats = class_statistics(x, labels, 3)
    assert (stats.active == 0).all()
    assert (stats.max < 0).all()
    assert_matches(stats, x, labels, 3)


def test_active_means_spatial_max_above_zero():
    x = np.full((4, 2, 2, 2), -1.0)
    x[0, 0, 1, 1] = 0.5  # one positive pixel makes image 0 active on channel 0
    x[1, 0] = 0.0  # zero is not active
    stats = class_statistics(x, np.array([0, 0, 1, 1]), 2)
    np.testing.assert_array_equal(stats.active, [[0.5, 0.0], [0.0, 0.0]])
    np.testing.assert_array_equal(stats.max, [[0.5, -1.0], [-1.0, -1.0]])


def test_hand_computed_example():
    x = np.array([[1.0, 3.0], [3.0, 5.0], [10.0, -2.0]]).reshape(3, 1, 2)  # r = 2, 4, 4; m = 3, 5, 10
    stats = class_statistics(x, [0, 0, 1], 2)
    np.testing.assert_array_equal(stats.count, [2, 1])
    np.testing.assert_allclose(stats.mean, [[3.0], [4.0]])
    np.testing.assert_allclose(stats.std, [[1.0], [0.0]])
    np.testing.assert_allclose(stats.max, [[5.0], [10.0]])
    np.testing.assert_allclose(stats.active, [[1.0], [1.0]])


@pytest.mark.parametrize("shape", [(61, 9, 5, 3), (61, 3, 40), (300, 2)], ids=str)
def test_merge_equals_one_shot(shape):
    x, labels = make(shape, np.float64, n_classes=4, seed=7)
    a = ClassStatsAccumulator(4, shape[1]).update(x[:20], labels[:20])
    b = ClassStatsAccumulator(4, shape[1]).update(x[20:], labels[20:])
    merged = a.merge(b).result()
    assert_matches(merged, x, labels, 4)


def test_merging_raw_states_equals_one_shot():
    # The distributed analysis ships raw states between ranks and merges them with the core's merge.
    x, labels = make((90, 6, 4), n_classes=4, seed=14)
    labels[:40][labels[:40] == 3] = 2  # class 3 empty in the first part: its state is all zeros there
    parts = [ClassStatsAccumulator(4, 6).update(x[a:b], labels[a:b])._moments.state() for a, b in ((0, 40), (40, 90))]
    merged = _stats.merge_states(*parts)
    assert_matches(_stats.finalize(*merged), x, labels, 4)
    with pytest.raises(ValueError, match="mean, m2, max and active must be"):
        _core.ClassMoments.from_state(parts[0][0], parts[0][1][:2], *parts[0][2:])


def test_merge_with_empty_accumulator_changes_nothing():
    x, labels = make((30, 5, 3), seed=8)
    acc = ClassStatsAccumulator(5, 5).update(x, labels)
    before = acc.result()
    after = acc.merge(ClassStatsAccumulator(5, 5)).result()
    for field in ("count", "mean", "std", "max", "active"):
        np.testing.assert_array_equal(getattr(after, field), getattr(before, field))


def test_many_small_updates_equal_one_shot():
    x, labels = make((97, 11, 4, 5), np.float32, seed=9)
    acc = ClassStatsAccumulator(5, 11)
    for start in range(0, 97, 7):  # odd batch sizes, some classes missing from some batches
        acc.update(x[start:start + 7], labels[start:start + 7])
    acc.update(x[:0], labels[:0])  # an empty batch is a no-op
    assert_matches(acc.result(), x, labels, 5, rtol=1e-9)


def test_large_batch_uses_threads_and_matches():
    # Large enough that the kernel splits the work over threads (by channel blocks).
    x, labels = make((64, 40, 12, 12), np.float32, n_classes=7, seed=10)
    assert_matches(class_statistics(x, labels, 7), x, labels, 7)


def test_few_channels_many_images_matches():
    # Few channels: the kernel splits by image blocks with private partials merged at the end.
    x, labels = make((4000, 2, 3, 3), np.float64, n_classes=6, seed=11)
    assert_matches(class_statistics(x, labels, 6), x, labels, 6, rtol=1e-9)


@pytest.mark.parametrize("dtype,offset", [(np.float64, 1e7), (np.float32, 1e4)])
def test_large_mean_keeps_std_precise(dtype, offset):
    # A naive sum of squares would lose ~all digits here: var/mean^2 ~ 1e-14 (float64 case).
    rng = np.random.default_rng(12)
    x = (offset + rng.standard_normal((300, 6, 5, 5))).astype(dtype)
    labels = rng.integers(0, 3, size=300)
    acc = ClassStatsAccumulator(3, 6)
    for start in range(0, 300, 50):
        acc.update(x[start:start + 50], labels[start:start + 50])
    count, ref = reference(x, labels, 3)
    np.testing.assert_allclose(acc.result().std, ref["std"], rtol=1e-6)
    np.testing.assert_allclose(class_statistics(x, labels, 3).std, ref["std"], rtol=1e-6)


def test_update_returns_self_and_result_is_a_snapshot():
    x, labels = make((10, 3, 2, 2), seed=13)
    acc = ClassStatsAccumulator(5, 3)
    assert acc.update(x, labels) is acc
    first = acc.result()
    acc.update(x, labels)
    assert first.count.sum() == 10 and acc.result().count.sum() == 20


def test_rejected_batch_leaves_state_unchanged():
    x, labels = make((10, 3, 4), seed=14)
    acc = ClassStatsAccumulator(5, 3).update(x, labels)
    bad = x.copy()
    bad[7, 2, 1] = np.nan
    with pytest.raises(DataError):
        acc.update(bad, labels)
    assert_matches(acc.result(), x, labels, 5)


X_OK = np.zeros((6, 4, 3, 3), np.float32)
Y_OK = np.array([0, 1, 2, 0, 1, 2])


def _with(index, value):
    x = X_OK.copy()
    x[index] = value
    return x


BAD_INPUTS = [
    (X_OK, np.array([0, 1, 3, 0, 1, 2]), r"labels: value 3 at index 2 is outside \[0, n_classes=3\)"),
    (X_OK, np.array([0, 1, 2, -1, 1, 2]), r"labels: value -1 at index 3 is outside"),
    (_with((4, 2, 1, 1), np.nan), Y_OK, r"non-finite value .* image 4, channel 2"),
    (_with((1, 3, 0, 2), np.inf), Y_OK, r"non-finite value .* image 1, channel 3"),
    (_with((0, 0, 0, 0), -np.inf), Y_OK, r"non-finite value .* image 0, channel 0"),
    (X_OK, Y_OK[:5], r"labels: expected length N=6 \(activations.shape\[0\]\), got 5"),
    (X_OK, Y_OK.reshape(2, 3), r"labels must be a 1-D integer array, got shape \(2, 3\)"),
    (X_OK, Y_OK.astype(np.float32), r"labels must be a 1-D integer array.*float32"),
    (X_OK[:, :3], Y_OK, r"expected n_channels=4 channels on axis 1, got 3"),
    (X_OK[:, 0, 0, 0], Y_OK, r"activations must have shape \(N, C\) or \(N, C, \*spatial\), got shape \(6,\)"),
    (X_OK[:, :, :0], Y_OK, r"spatial size is 0"),
    (X_OK.astype(np.int32), Y_OK, r"activations must be floating point, got dtype int32"),
]


@pytest.mark.parametrize("x,labels,match", BAD_INPUTS)
def test_bad_inputs_raise_data_error(x, labels, match):
    acc = ClassStatsAccumulator(3, 4)
    with pytest.raises(DataError, match=match):
        acc.update(x, labels)
    with pytest.raises(ValueError, match=match):  # DataError is a ValueError (cnnvis.errors)
        acc.update(x, labels)


def test_nan_in_float16_and_torch_input_is_caught():
    x = X_OK.astype(np.float16)
    x[5, 1, 2, 2] = np.nan
    with pytest.raises(DataError, match="image 5, channel 1"):
        class_statistics(x, Y_OK, 3)
    t = torch.from_numpy(X_OK.copy())
    t[3, 0, 0, 1] = float("inf")
    with pytest.raises(DataError, match="image 3, channel 0"):
        class_statistics(t, Y_OK, 3)


def test_nan_in_two_dimensional_input_is_caught():
    x = np.zeros((5, 3))
    x[2, 1] = np.nan
    with pytest.raises(DataError, match="image 2, channel 1"):
        class_statistics(x, [0, 0, 0, 0, 0], 1)


# (N, C) input merges runs of up to 8 images of one class at once (vector blocks of channels, then one
# channel at a time); labels: image 0 alone in class 0, images 1..20 in class 1 (runs of 8, 8, 4).
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("image", [0, 1, 5, 9, 20])  # alone in its class, first / inside a run, last run
@pytest.mark.parametrize("channel", [0, 19, 36])  # first vector block, later block, the one-at-a-time tail
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_in_two_dimensional_runs_is_caught(dtype, image, channel, bad):
    x = np.ones((21, 37), dtype)
    x[image, channel] = bad
    with pytest.raises(DataError, match=f"image {image}, channel {channel}"):
        class_statistics(x, [0] + [1] * 20, 2)


@pytest.mark.parametrize("n_classes", [1, 3, 40])  # long runs of one class, short ones, mostly single images
def test_two_dimensional_runs_of_one_class_match(n_classes):
    x, labels = make((203, 45), np.float32, n_classes=n_classes, seed=13, shift=2.0)
    assert_matches(class_statistics(x, labels, n_classes), x, labels, n_classes)


@pytest.mark.parametrize("kwargs,match", [
    ({"n_classes": 0, "n_channels": 3}, r"n_classes must be an integer >= 1, got 0"),
    ({"n_classes": 2.0, "n_channels": 3}, r"n_classes must be an integer >= 1, got 2.0"),
    ({"n_classes": 2, "n_channels": -1}, r"n_channels must be an integer >= 1, got -1"),
    ({"n_classes": True, "n_channels": 3}, r"n_classes must be an integer >= 1, got True"),
])
def test_bad_accumulator_parameters(kwargs, match):
    with pytest.raises(DataError, match=match):
        ClassStatsAccumulator(**kwargs)


def test_bad_device_and_merge_mismatch():
    with pytest.raises(DeviceError, match="device must be 'auto', 'cpu' or 'cuda', got 'gpu'"):
        ClassStatsAccumulator(2, 3, device="gpu")
    with pytest.raises(DataError, match=r"merge: other has \(n_classes, n_channels\) = \(2, 4\), expected \(2, 3\)"):
        ClassStatsAccumulator(2, 3).merge(ClassStatsAccumulator(2, 4))


def test_class_statistics_validates_n_classes():
    x, labels = make((8, 2, 2), seed=15, n_classes=2)
    with pytest.raises(DataError, match="n_classes must be an integer >= 1"):
        class_statistics(x, labels, 0)


def test_device_cuda_on_host_input_runs_on_gpu_or_raises_device_error():
    from cnnvis.compute import cuda_available

    x, labels = make((8, 2, 2), seed=16, n_classes=2)
    if cuda_available():  # copied to the device and computed there
        assert_matches(class_statistics(x, labels, 2, device="cuda"), x, labels, 2, rtol=1e-9)
    else:
        with pytest.raises(DeviceError, match="device='cuda'"):
            class_statistics(x, labels, 2, device="cuda")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("pos", [0, 17, 40, 48])  # vector body, second vector, last full block, scalar tail
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, "both_infs"])
def test_non_finite_in_long_rows_is_caught(dtype, pos, bad):
    x = np.ones((3, 2, 7, 7), dtype)  # 49 values per row: SIMD blocks plus a tail
    flat = x.reshape(3, 2, 49)
    if bad == "both_infs":  # inf - inf: the sum is NaN, still caught
        flat[1, 1, pos], flat[1, 1, (pos + 1) % 49] = np.inf, -np.inf
    else:
        flat[1, 1, pos] = bad
    with pytest.raises(DataError, match="image 1, channel 1"):
        class_statistics(x, [0, 1, 0], 2)


# ---- the CUDA dispatch, checked on the host ------------------------------------------------------------
# _update_cuda hands the kernel a pointer, a dtype, (N, C, S) and element strides. Here a stand-in for the
# kernel reads that description back as host memory and runs the CPU kernel on it, so the description is
# checked without a GPU (tests/test_stats_gpu.py runs the real thing).

class HostAsDevice:
    def __init__(self, k, c):
        self.real = _core.ClassMoments(k, c)
        self.calls = []

    def update_cuda(self, ptr, dtype, n, c, s, sn, sc, labels, stream, host_input):
        self.calls.append((dtype, (n, c, s), (sn, sc), host_input))
        isz = int(dtype[1])
        if host_input:  # the kernel copies host input as C-contiguous (N, C, S)
            sn, sc = c * s, s
        span = ((n - 1) * sn + (c - 1) * sc + s) * isz
        buf = (ctypes.c_char * span).from_address(ptr)
        view = np.ndarray((n, c, s), dtype="<" + dtype, buffer=buf, strides=(sn * isz, sc * isz, isz))
        return self.real.update_cpu(view, labels)


class FakeCudaArray:
    """Host memory behind a __cuda_array_interface__, as a CUDA library would describe device memory."""

    def __init__(self, a):
        self._a = a
        self.shape = a.shape
        strides = None if a.flags.c_contiguous else a.strides
        self.__cuda_array_interface__ = {"shape": a.shape, "typestr": a.dtype.str, "data": (a.ctypes.data, False),
                                         "strides": strides, "version": 3, "stream": None}


def run_cuda_dispatch(x, labels, k, wrap=True):
    n, c = x.shape[:2]
    fake = HostAsDevice(k, c)
    src = FakeCudaArray(x) if wrap else x
    status = _stats._update_cuda(fake, src, np.asarray(labels, np.int64), (n, c, int(np.prod(x.shape[2:]))))
    _stats._raise_for_status(status, k)
    return _stats.finalize(*fake.real.state()), fake.calls


@pytest.mark.parametrize("view", ["contiguous", "slice_n", "slice_c", "transpose_nc", "two_dim", "float64"])
def test_cuda_array_interface_description(view):
    base, _ = make((30, 8, 5, 6), np.float32, seed=18)
    x = {
        "contiguous": base,
        "slice_n": base[::2],
        "slice_c": base[:, 1::3],
        "transpose_nc": base.transpose(1, 0, 2, 3),
        "two_dim": base[:, :, 0, 0],
        "float64": base.astype(np.float64),
    }[view]
    labels = np.random.default_rng(19).integers(0, 4, size=x.shape[0])
    stats, calls = run_cuda_dispatch(x, labels, 4)
    assert calls[0][0] == x.dtype.str[1:] and calls[0][3] is False  # read in place, no copy
    assert_matches(stats, x, labels, 4)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("view", ["contiguous", "slice_c", "transpose_spatial"])
def test_torch_tensor_description(monkeypatch, dtype, view):
    # _torch_cuda_view on a host tensor (with a stand-in for torch's current stream): the same pointer
    # and stride logic it applies to CUDA tensors.
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: types.SimpleNamespace(cuda_stream=7))
    base, labels = make((21, 6, 4, 5), np.float64, seed=22)
    t = {"contiguous": lambda a: a, "slice_c": lambda a: a[:, ::2],
         "transpose_spatial": lambda a: a.transpose(2, 3)}[view](torch.from_numpy(base).to(dtype))
    ncs = (t.shape[0], t.shape[1], 20)
    ptr, dt, sn, sc, stream, keep = _stats._torch_cuda_view(t, ncs)
    assert stream == 7 and dt == ("f8" if dtype == torch.float64 else "f4")
    fake = HostAsDevice(5, t.shape[1])
    _stats._raise_for_status(fake.update_cuda(ptr, dt, *ncs, sn, sc, labels, stream, False), 5)
    assert_matches(_stats.finalize(*fake.real.state()), t.double().numpy(), labels, 5)


def test_host_input_sent_to_cuda_is_described_as_contiguous():
    base, labels = make((30, 8, 5, 6), np.float16, seed=20)
    x = base[:, ::2]
    stats, calls = run_cuda_dispatch(x, labels, 5, wrap=False)
    assert calls == [("f4", (30, 4, 30), (120, 30), True)]
    assert_matches(stats, x, labels, 5)


@pytest.mark.parametrize("x,match", [
    (np.zeros((4, 3, 5, 6), np.float32).transpose(0, 1, 3, 2), "spatial dims are not C-contiguous"),
    (np.zeros((4, 3, 5), np.float16), "must be float32 or float64 here, got typestr '<f2'"),
])
def test_cuda_array_interface_rejects(x, match):
    with pytest.raises(DataError, match=match):
        run_cuda_dispatch(x, np.zeros(4, np.int64), 2)


@pytest.mark.parametrize("make_input", [
    lambda: torch.randn(6, 5, 4, 3),
    lambda: torch.randn(6, 5, 4, 3, dtype=torch.float64)[::2],
    lambda: np.random.default_rng(0).standard_normal((6, 5, 4, 3)).astype(np.float32)[:, 1:],
    lambda: np.random.default_rng(0).standard_normal((6, 5, 12)).transpose(1, 0, 2),
])
def test_host_inputs_are_not_copied(make_input):
    x = make_input()
    n, c = x.shape[:2]
    rows = _stats._host_rows(x, (n, c, int(np.prod(x.shape[2:]))))
    assert np.shares_memory(rows, x.numpy() if isinstance(x, torch.Tensor) else x)


def test_empty_batches_of_any_layout_are_no_ops():
    x, labels = make((12, 5, 3, 2), seed=21)
    acc = ClassStatsAccumulator(5, 5).update(x, labels)
    for empty in (x[:0], x[::-1][5:5], np.swapaxes(x, 2, 3)[:0], torch.from_numpy(x)[:0]):
        acc.update(empty, labels[:0])
    assert_matches(acc.result(), x, labels, 5)


@pytest.mark.parametrize("shape", [(40, 300, 3), (40, 300, 20)], ids=str)
def test_many_classes(shape):
    # Many classes x channels: the kernel splits by channel blocks instead of per-thread partials.
    x, labels = make(shape, np.float32, n_classes=200, seed=23)
    stats = class_statistics(x, labels, 200)
    assert (stats.count == 0).sum() > 100  # most classes are empty
    assert_matches(stats, x, labels, 200)


# Short rows (8 <= S < 128) go four at a time through the 32-byte paths' Short4 kernel (whole vectors, then
# one overlapping masked vector for the last S % 8 values); channel counts that leave 1-3 rows over, one
# class, empty classes, a single image.
@pytest.mark.parametrize("shape", [(9, 7, 8), (9, 13, 12), (5, 19, 16), (6, 6, 49), (3, 10, 7, 7), (4, 5, 63),
                                   (4, 3, 64), (2, 9, 127), (1, 11, 49), (1, 4, 9)], ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_classes", [1, 4, 30])
def test_short_rows_match(shape, dtype, n_classes):
    x, labels = make(shape, dtype, n_classes=n_classes, seed=31, shift=0.1)
    x.reshape(x.shape[0], x.shape[1], -1)[:, ::3, -1] = 5.0  # a maximum in the last (masked) vector
    stats = class_statistics(x, labels, n_classes)
    assert_matches(stats, x, labels, n_classes)


# (N, C) input: image groups of 256 in class order, channel tiles beyond 4096, two vectors of channels a
# step, then one, then one channel at a time; C not a multiple of 16, one class, empty classes, N = 1.
@pytest.mark.parametrize("shape", [(1, 37), (2, 15), (300, 17), (600, 45), (20, 4100), (3, 4096 + 37)], ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_classes", [1, 3, 50])
def test_two_dimensional_shapes_match(shape, dtype, n_classes):
    x, labels = make(shape, dtype, n_classes=n_classes, seed=32, shift=1.0)
    assert_matches(class_statistics(x, labels, n_classes), x, labels, n_classes)


def test_two_dimensional_image_blocks_merge_in_parallel():
    # Many images, few channels: image blocks with private partials, merged over channel ranges by the threads.
    x, labels = make((5000, 40), np.float32, n_classes=7, seed=33, shift=3.0)
    assert_matches(class_statistics(x, labels, 7), x, labels, 7)
    acc = ClassStatsAccumulator(7, 40)
    for start in range(0, 5000, 1700):  # later batches go through the batch buffer and the merge
        acc.update(x[start:start + 1700], labels[start:start + 1700])
    assert_matches(acc.result(), x, labels, 7)


def test_repeated_calls_reuse_memory_without_stale_values():
    # The (K, C) arrays come from a cache of freed blocks: a second call of the same size must not see the
    # first one's values, nor change the first one's result.
    a, la = make((64, 2048), np.float32, n_classes=10, seed=34)
    b, lb = make((64, 2048), np.float32, n_classes=10, seed=35, shift=2.0)
    first = class_statistics(a, la, 10)
    kept = {f: getattr(first, f).copy() for f in ("mean", "std", "max", "active")}
    del first
    second = class_statistics(b, lb, 10)
    assert_matches(second, b, lb, 10)
    again = class_statistics(a, la, 10)
    for f, v in kept.items():
        np.testing.assert_array_equal(getattr(again, f), v)
    assert_matches(class_statistics(b[:3], lb[:3], 10), b[:3], lb[:3], 10)  # mostly empty classes


def test_taken_result_leaves_nothing_behind():
    x, labels = make((10, 6, 4), seed=36)
    moments = _core.ClassMoments(5, 6)
    moments.update_cpu(x.reshape(10, 6, 4), labels.astype(np.int64))
    stats = ClassStatistics(*moments.take_result())
    assert_matches(stats, x, labels, 5)
    assert all(getattr(stats, f).flags.c_contiguous for f in ("mean", "std", "max", "active"))
    with pytest.raises(Exception, match="take_result"):
        moments.result()


def test_finalize_of_raw_state_matches_result():
    x, labels = make((40, 9, 5), seed=37, n_classes=6)
    acc = ClassStatsAccumulator(6, 9).update(x, labels)
    direct, raw = acc.result(), _stats.finalize(*acc._moments.state())
    for f in ("count", "mean", "std", "max", "active"):
        np.testing.assert_array_equal(getattr(raw, f), getattr(direct, f))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("channel", [1, 5])  # a row of a group of four (Short4), a row left over
@pytest.mark.parametrize("pos", [0, 20, 44, 48])  # first vector, middle, overlapped by the tail vector, tail
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_in_short_rows_is_caught(dtype, channel, pos, bad):
    x = np.ones((3, 6, 49), dtype)
    x[1, channel, pos] = bad
    with pytest.raises(DataError, match=f"image 1, channel {channel}"):
        class_statistics(x, [0, 1, 0], 2)


# The float32 (N, C) path's one float32 rounding (squared deviations from the run's first image) on data
# that defeats a fixed shift: outliers first, a large offset, ReLU zeros, heavy tails, many magnitudes;
# awkward shapes (channels not a multiple of 16, one class, runs of one image). The mean, max and active
# fraction stay exact to float64 rounding.
@pytest.mark.parametrize("kind", ["normal", "offset", "relu", "outliers_first", "cauchy", "lognormal"])
def test_two_dimensional_float32_precision(kind):
    rng = np.random.default_rng(41)
    gen = {
        "normal": lambda n, c: rng.standard_normal((n, c)),
        "offset": lambda n, c: 1e4 + rng.standard_normal((n, c)),
        "relu": lambda n, c: np.maximum(3 * rng.standard_normal((n, c)) - 2, 0),
        "outliers_first": lambda n, c: np.where(np.arange(n)[:, None] < 3, 50.0,
                                                1.0 + 1e-3 * rng.standard_normal((n, c))),
        "cauchy": lambda n, c: rng.standard_cauchy((n, c)),
        "lognormal": lambda n, c: np.exp(3 * rng.standard_normal((n, c))),
    }[kind]
    worst = 0.0
    for shape, k in [((203, 45), 1), ((600, 45), 3), ((20, 4100), 3), ((1000, 17), 10), ((517, 300), 50)]:
        x = gen(*shape).astype(np.float32)
        labels = rng.integers(0, k, size=shape[0])
        stats = class_statistics(x, labels, k)
        count, ref = reference(x, labels, k)
        for field in ("mean", "max", "active"):
            np.testing.assert_allclose(getattr(stats, field), ref[field], rtol=1e-9, atol=1e-12, equal_nan=True,
                                       err_msg=field)
        ok = count[:, None].repeat(shape[1], 1) > 0
        ok &= ref["std"] > 0
        worst = max(worst, float((np.abs(stats.std[ok] - ref["std"][ok]) / ref["std"][ok]).max()))
        np.testing.assert_array_equal(stats.std[~ok & (count[:, None] > 0)], 0.0)
    assert worst < F32_ROWS_STD_RTOL


@pytest.mark.parametrize("scale", [1e19, 3e37])
def test_two_dimensional_float32_beyond_float32_squares(scale):
    # Finite float32 values whose squared deviations overflow float32: not an error; the kernel redoes the
    # block with sums in double and matches the reference as closely as float64 input does.
    x, labels = make((300, 37), np.float32, n_classes=3, seed=42)
    x = (x.astype(np.float64) * scale).astype(np.float32)
    assert np.isfinite(x).all()
    assert_matches(class_statistics(x, labels, 3), x, labels, 3, rtol=1e-9)


# Long rows (S >= 128): float32 rows take the max on the float vectors, two vectors a step, then one, then
# one value at a time (row_simd_f32); lengths that end in each of those steps, float64 rows for comparison.
@pytest.mark.parametrize("s", [128, 129, 136, 141, 150, 255, 791])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_long_rows_match(s, dtype):
    x, labels = make((11, 5, s), dtype, n_classes=3, seed=43, shift=0.05)
    x[:, ::2, -1] = 7.0  # maxima in the one-at-a-time tail
    x[1::3, 1, s // 2] = 9.0  # and in the middle
    assert_matches(class_statistics(x, labels, 3), x, labels, 3)


@pytest.mark.parametrize("pos", [0, 70, 130, 139, 140])  # two-vector steps, one-vector step, tail (S = 141)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_in_long_float32_rows_is_caught(pos, bad):
    x = np.ones((4, 3, 141), np.float32)
    x[2, 1, pos] = bad
    with pytest.raises(DataError, match="image 2, channel 1"):
        class_statistics(x, [0, 1, 0, 1], 2)


# float32 (N, C) input split into image blocks (threads) keeps each block's state in 16-channel units and
# merges them into the result straight from there: channel counts that cut the last unit and split units
# unevenly between threads, classes missing from a block, and finite values whose squares overflow float32
# (the whole batch again in double).
@pytest.mark.parametrize("shape,n_classes", [((5000, 45), 7), ((3000, 16), 3), ((2600, 33), 5)], ids=str)
def test_two_dimensional_image_blocks_from_units(shape, n_classes):
    x, labels = make(shape, np.float32, n_classes=n_classes, seed=44, shift=1.5)
    labels[: shape[0] // 2][labels[: shape[0] // 2] == 1] = 0  # class 1 only in the second half
    labels[shape[0] // 2:][labels[shape[0] // 2:] == 2] = 0  # class 2 only in the first half
    assert_matches(class_statistics(x, labels, n_classes), x, labels, n_classes)
    big = (x.astype(np.float64) * 1e19).astype(np.float32)
    assert_matches(class_statistics(big, labels, n_classes), big, labels, n_classes)


def test_finalize_active_fraction_is_the_exact_quotient():
    # Counts below 2^52 take a vectorised int64 -> float64 conversion; larger ones the plain one.
    count = np.array([49, 2**53, 3], np.int64)
    active = np.array([[0, 49, 48, 1, 17], [2**53, 2**52 + 1, 7, 0, 2**52 - 1], [1, 2, 3, 0, 0]], np.int64)
    zeros = np.zeros(active.shape)
    stats = _stats.finalize(count, zeros, zeros, zeros, active)
    np.testing.assert_array_equal(stats.active, active.astype(np.float64) / count[:, None].astype(np.float64))
    assert stats.active[0, 1] == 1.0


# Image blocks (threads), merged by the thread that finishes last: a non-finite value in a later block is
# reported, nothing merged.
@pytest.mark.parametrize("shape,dtype,where", [((5000, 45), np.float32, (4000, 17)),
                                               ((4000, 2, 3, 3), np.float64, (3000, 1, 2, 0)),
                                               ((300, 8, 49), np.float32, (299, 7, 48))], ids=str)
def test_non_finite_in_a_later_image_block_is_caught(shape, dtype, where):
    x, labels = make(shape, dtype, n_classes=6, seed=45)
    x[where] = np.nan
    with pytest.raises(DataError, match=f"image {where[0]}, channel {where[1]}"):
        class_statistics(x, labels, 6)


def test_two_dimensional_float32_with_many_classes_x_channels():
    # 700 classes x 4096 channels: the float32 path's per-class units would take more than 64 MB on top of
    # the state, so the kernel keeps to the in-place double path; two classes present, the rest NaN.
    x, _ = make((3, 4096), np.float32, seed=46)
    labels = np.array([0, 5, 5])
    stats = class_statistics(x, labels, 700)
    np.testing.assert_array_equal(stats.count[[0, 5]], [1, 2])
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(stats.mean[5], x64[1:].mean(0), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(stats.std[5], x64[1:].std(0), rtol=1e-9, atol=1e-15)
    np.testing.assert_array_equal(stats.std[0], 0.0)
    np.testing.assert_array_equal(stats.max[5], x64[1:].max(0))
    np.testing.assert_array_equal(stats.active[0], (x64[0] > 0).astype(np.float64))
    assert np.isnan(stats.mean[1]).all() and np.isnan(stats.std[699]).all()
