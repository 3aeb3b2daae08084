"""The compute face: declared parameter checks, the core-error mapping, option defaults read from the core,
the array and stream helpers, and what importing cnnvis.compute loads."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import cnnvis
from cnnvis import _core
from cnnvis.bicluster import spectral_bicluster, spectral_cocluster
from cnnvis._params import SEED, Interval, Options, validate
from cnnvis.compute import _arrays, _errors, cpu_capability, kmeans
from cnnvis.compute import _testing as core_testing
from cnnvis.errors import CnnvisError, DataError, DeviceError

# ---- _params: one message style, bounds by name ---------------------------------------------------------

TABLE = {"k": Interval(1, "n_rows"), "tol": Interval(0, integer=False), "method": Options(("a", "b")),
         "seed": SEED, "n_best": Interval(1, "k"), "count": Interval(1, wording="an integer >= 1")}
GOOD = dict(k=3, tol=0.5, method="a", seed=7, n_best=2, count=4)


def test_validate_returns_normalised_values():
    out = validate(TABLE, dict(GOOD, k=np.int64(3), tol=1), limits=dict(n_rows=10))
    assert out == dict(k=3, tol=1.0, method="a", seed=7, n_best=2, count=4)
    assert type(out["k"]) is int and type(out["tol"]) is float


@pytest.mark.parametrize("name,value,message", [
    ("k", 11, r"^k must be in \[1, 10\], got 11$"),
    ("k", 0, r"^k must be in \[1, 10\], got 0$"),
    ("k", 2.5, r"^k must be an integer, got 2.5 \(float\)$"),
    ("k", True, r"^k must be an integer, got True \(bool\)$"),
    ("k", np.float64(2.0), r"^k must be an integer, got 2.0 \(float64\)$"),
    ("tol", -1, r"^tol must be in >= 0, got -1$"),
    ("tol", float("nan"), r"^tol must be a finite number, got nan \(float\)$"),
    ("tol", "x", r"^tol must be a finite number, got 'x' \(str\)$"),
    ("method", "c", r"^method must be one of 'a', 'b', got 'c'$"),
    ("method", None, r"^method must be one of 'a', 'b', got None$"),
    ("seed", -1, r"^seed must be in \[0, 18446744073709551615\], got -1$"),
    ("n_best", 4, r"^n_best must be in \[1, 3\], got 4$"),  # bounded by the checked value of k
    ("count", 0, r"^count must be an integer >= 1, got 0$"),
    ("count", 1.0, r"^count must be an integer >= 1, got 1.0$"),
])
def test_validate_messages_name_parameter_range_and_value(name, value, message):
    with pytest.raises(CnnvisError, match=message):
        validate(TABLE, dict(GOOD, **{name: value}), limits=dict(n_rows=10))


def test_validate_raises_the_requested_error_type():
    with pytest.raises(DataError):
        validate({"n": Interval(1)}, dict(n=0), error=DataError)


# ---- _errors: one mapping, one non-finite report --------------------------------------------------------

def test_core_errors_map_to_cnnvis_errors():
    with pytest.raises(DataError, match=r"^X contains NaN or infinity$"):
        with _errors.calling_core("X"):
            raise _core.NonFiniteError("")
    with pytest.raises(DataError, match=r"^X contains NaN or infinity \(detail\)$"):
        with _errors.calling_core("X"):
            raise _core.NonFiniteError("detail")
    with pytest.raises(DeviceError, match=r"^matrix: CUDA error in x: out of memory$"):
        with _errors.calling_core("matrix"):
            raise _core.CudaError("CUDA error in x: out of memory")
    with pytest.raises(CnnvisError, match=r"^matrix: bad$"):
        with _errors.calling_core("matrix"):
            raise ValueError("bad")
    with pytest.raises(DataError, match="^kept$"):  # cnnvis errors pass through unchanged
        with _errors.calling_core("matrix"):
            raise DataError("kept")


def test_core_exceptions_are_value_and_runtime_errors():
    assert issubclass(_core.NonFiniteError, ValueError)
    assert issubclass(_core.CudaError, RuntimeError)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_found_by_the_core_reads_the_same_everywhere(dtype, bad):
    x = np.random.default_rng(0).random((40, 6)).astype(dtype)
    x[17, 3] = bad
    for call in (lambda: kmeans(x, 3), lambda: spectral_cocluster(x, 2), lambda: spectral_bicluster(x, 2)):
        with pytest.raises(DataError, match=r"^(X|matrix) contains NaN or infinity"):
            call()


def test_kmeans_values_whose_squares_overflow_are_rejected_not_clustered():
    x = np.random.default_rng(1).random((30, 2)) * 1e200
    with pytest.raises(DataError, match=r"X contains NaN or infinity \(or values whose squares overflow"):
        kmeans(x, 2)


# ---- defaults in one place: the core's option structs ---------------------------------------------------

def test_public_defaults_are_the_cores():
    import inspect

    km, bi = _core.KMeansOptions(), _core.BiclusterOptions()
    sig = inspect.signature(kmeans).parameters
    assert (sig["n_init"].default, sig["max_iter"].default, sig["tol"].default, sig["random_state"].default) == \
        (km.n_init, km.max_iter, km.tol, km.seed) == (4, 300, 1e-4, 0)
    sig = inspect.signature(spectral_bicluster).parameters
    assert (sig["method"].default, sig["n_components"].default, sig["n_best"].default) == \
        (bi.method.name, bi.n_components, bi.n_best) == ("bistochastic", 6, 3)


def test_spectral_tuning_defaults_are_the_documented_ones():
    # cnnvis's settings (were 2 and 1e-6 in bicluster.hpp, overridden from Python): one place now.
    sp = _core.SpectralOptions()
    assert (sp.n_oversamples, sp.min_power_iter, sp.max_power_iter, sp.svd_tol, sp.kmeans.n_init) == \
        (10, 1, -1, 1e-3, 4)


def test_test_only_pieces_live_in_the_testing_submodule():
    for name in ("scale_normalize", "bistochastic_normalize", "log_normalize", "randomized_svd", "first_pass",
                 "power_pass", "project", "cpu_capabilities", "set_cpu_capability", "resolve_cpu_capability"):
        assert hasattr(_core._testing, name) and not hasattr(_core, name)


def test_cuda_subspace_limit_is_the_cores():
    from cnnvis.compute import _bicluster

    assert _bicluster.CUDA_MAX_SUBSPACE == _core.CUDA_MAX_SUBSPACE == 64


# ---- the CPU paths of the SIMD kernels ------------------------------------------------------------------

def _run_with_capability(value, code):
    env = dict(os.environ, PYTHONPATH=str(Path(cnnvis.__file__).parents[1]), CNNVIS_CPU_CAPABILITY=value)
    return subprocess.run([sys.executable, "-W", "always", "-c", code], env=env, capture_output=True, text=True,
                          cwd=Path(cnnvis.__file__).parents[1])


def test_cpu_capability_is_one_of_the_machines_paths():
    paths = core_testing.cpu_capabilities()
    assert paths[0] == "default" and set(paths) <= {"default", "avx2", "avx512"}
    assert cpu_capability() in paths


@pytest.mark.parametrize("path", core_testing.cpu_capabilities())
def test_environment_variable_forces_each_path(path):
    code = ("import numpy as np; from cnnvis.compute import cpu_capability; from cnnvis.stats import "
            "class_statistics; s = class_statistics(np.arange(60.0).reshape(4, 15), [0, 1, 0, 1], 2); "
            "print(cpu_capability(), s.mean[0, 0])")
    out = _run_with_capability(path, code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [path, "15.0"] and "Warning" not in out.stderr


def test_unknown_capability_fails_the_import_naming_the_values():
    out = _run_with_capability("sse9", "import cnnvis.compute")
    assert out.returncode != 0
    assert "CNNVIS_CPU_CAPABILITY must be one of default, avx2, avx512, got 'sse9'" in out.stderr


@pytest.mark.parametrize("requested,widest,expected,warns", [
    ("default", "avx512", "default", False), ("avx2", "avx512", "avx2", False), ("avx512", "avx512", "avx512", False),
    ("avx512", "avx2", "avx2", True), ("avx2", "default", "default", True), ("avx512", "default", "default", True),
])
def test_a_path_the_cpu_lacks_falls_back_to_its_widest_with_a_warning(requested, widest, expected, warns):
    path, warning = core_testing.resolve_cpu_capability(requested, widest)
    assert path == expected
    if warns:
        assert warning == f"CNNVIS_CPU_CAPABILITY={requested}: this CPU has no {requested} path; using {widest}"
    else:
        assert warning == ""


def test_setting_an_unknown_path_raises():
    with pytest.raises(ValueError, match="must be one of default, avx2, avx512, got 'neon'"):
        core_testing.set_cpu_capability("neon")


# ---- _arrays --------------------------------------------------------------------------------------------

class CudaArrayLike:
    def __init__(self, stream):
        self.__cuda_array_interface__ = {"shape": (2, 2), "typestr": "<f4", "data": (0, False), "version": 3,
                                         "stream": stream}


def test_producer_stream_of_cuda_array_interface():
    assert _arrays.producer_stream(CudaArrayLike(None)) == 0
    assert _arrays.producer_stream(CudaArrayLike(1)) == 1
    assert _arrays.producer_stream(CudaArrayLike(0x7F00AB)) == 0x7F00AB


def test_dtype_tags():
    import torch

    assert [_arrays.dtype_tag(d) for d in (np.float32, np.dtype(np.float64), torch.float32, torch.float64)] == \
        ["f4", "f8", "f4", "f8"]


def test_host_matrix_casts_and_copies_only_when_needed():
    a = np.ones((3, 4), np.float32)
    assert _arrays.host_matrix(a, "X") is a
    f = _arrays.host_matrix(np.asfortranarray(np.ones((3, 4))), "X")
    assert f.flags.c_contiguous and f.dtype == np.float64
    assert _arrays.host_matrix(np.ones((3, 4), np.int16), "X").dtype == np.float64
    with pytest.raises(DataError, match=r"X must be 2-D \(rows, columns\), got shape \(3,\)"):
        _arrays.host_matrix(np.ones(3), "X")


def test_resolve_device():
    assert _arrays.resolve_device("auto", np.ones(2)) == "cpu"
    assert _arrays.resolve_device("cpu", CudaArrayLike(None)) == "cpu"
    with pytest.raises(DeviceError, match="device must be 'auto', 'cpu' or 'cuda', got 'gpu'"):
        _arrays.resolve_device("gpu")


def test_importing_compute_loads_neither_torch_nor_cupy():
    code = "import sys, cnnvis.compute, cnnvis.stats, cnnvis.bicluster; print(sorted({'torch', 'cupy'} & set(sys.modules)))"
    root = str(Path(cnnvis.__file__).parents[1])  # the cnnvis under test (checkout or installed), from its own folder
    env = dict(os.environ, PYTHONPATH=root)       # so a fresh clone's core-less cnnvis/ cannot shadow it
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env,
                         cwd=root).stdout
    assert out.strip() == "[]"

