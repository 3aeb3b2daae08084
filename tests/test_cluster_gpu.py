"""CUDA k-means and spectral co-/biclustering against the CPU path (same algorithm, same seeds), and the
CUDA matrix backend's primitives against dense numpy."""
import numpy as np
import pytest
from sklearn.datasets import make_biclusters, make_blobs, make_checkerboard
from sklearn.metrics import adjusted_rand_score, consensus_score

import backend_checks as bc
from cnnvis.bicluster import spectral_bicluster, spectral_cocluster
from cnnvis.compute import cuda_available, cuda_status, kmeans
from cnnvis.errors import DataError

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not cuda_available(), reason=f"no usable CUDA device: {cuda_status()}"),
]


def _cuda(x):
    import torch

    return torch.as_tensor(x, device="cuda")


def cocluster_sets(rows, cols, k):
    return np.vstack([rows == c for c in range(k)]), np.vstack([cols == c for c in range(k)])


def checkerboard_sets(rows, cols, nr, nc):
    return (np.vstack([rows == a for a in range(nr) for _ in range(nc)]),
            np.vstack([cols == b for _ in range(nr) for b in range(nc)]))


class CudaArrayOnly:
    """Exposes only __cuda_array_interface__ (as CuPy or Numba arrays do)."""

    def __init__(self, tensor):
        self._t = tensor
        self.__cuda_array_interface__ = tensor.__cuda_array_interface__


# With fewer than 8 features both devices compute every distance the same way (double, direct), so the
# same seeds give the same run; from 8 features the CPU ranks centers by |c|² − 2 x·c (as scikit-learn),
# so the 32-feature case uses separated blobs and 10 restarts, where both reach the same optimum.
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n,d,k,std,n_init", [(5000, 4, 10, 2.0, 4), (997, 3, 5, 2.0, 4), (20000, 32, 16, 1.0, 10)])
def test_kmeans_cuda_matches_cpu(dtype, n, d, k, std, n_init):
    x, _ = make_blobs(n_samples=n, n_features=d, centers=k, cluster_std=std, random_state=0)
    x = x.astype(dtype)
    cpu = kmeans(x, k, n_init=n_init, random_state=0)
    gpu = kmeans(_cuda(x), k, n_init=n_init, random_state=0)
    assert gpu.labels.dtype == np.int64 and gpu.labels.shape == (n,)
    assert gpu.inertia == pytest.approx(cpu.inertia, rel=1e-6)
    assert adjusted_rand_score(cpu.labels, gpu.labels) > 0.999


def test_kmeans_cuda_array_interface_and_device_argument():
    x, _ = make_blobs(n_samples=3000, n_features=5, centers=6, random_state=1)
    ref = kmeans(x, 6, random_state=2)
    for variant in (CudaArrayOnly(_cuda(x)), x):
        got = kmeans(variant, 6, random_state=2, device="cuda")
        assert got.inertia == pytest.approx(ref.inertia, rel=1e-6)


def test_kmeans_cuda_rejects_nan():
    x = np.random.default_rng(0).random((100, 3))
    x[5, 1] = np.nan
    with pytest.raises(DataError, match="NaN or infinity"):
        kmeans(_cuda(x), 3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
# Planted cases the CPU recovers exactly, so agreement between the devices is a meaningful check.
@pytest.mark.parametrize("shape,k,noise", [((97, 61), 3, 1.0), ((600, 400), 5, 2.0), ((4096, 4096), 5, 2.0),
                                            ((20000, 300), 4, 2.0)])
def test_cocluster_cuda_matches_cpu(dtype, shape, k, noise):
    x, rows, cols = make_biclusters(shape, k, noise=noise, random_state=0)
    x = x.astype(dtype)
    rc, cc = spectral_cocluster(x, k, random_state=0)
    rg, cg = spectral_cocluster(_cuda(x), k, random_state=0)
    assert rg.shape == (shape[0],) and cg.shape == (shape[1],)
    agree = consensus_score(cocluster_sets(rg, cg, k), cocluster_sets(rc, cc, k))
    assert agree > 0.98
    truth_cpu = consensus_score(cocluster_sets(rc, cc, k), (rows, cols))
    truth_gpu = consensus_score(cocluster_sets(rg, cg, k), (rows, cols))
    assert truth_gpu >= truth_cpu - 0.02


@pytest.mark.parametrize("method", ["bistochastic", "scale", "log"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bicluster_cuda_matches_cpu(method, dtype):
    x, rows, cols = make_checkerboard((700, 300), (4, 3), noise=2.0, random_state=0)
    x = x.astype(dtype)
    rc, cc = spectral_bicluster(x, (4, 3), method=method, random_state=0)
    rg, cg = spectral_bicluster(_cuda(x), (4, 3), method=method, random_state=0)
    agree = consensus_score(checkerboard_sets(rg, cg, 4, 3), checkerboard_sets(rc, cc, 4, 3))
    assert agree > 0.98
    truth_cpu = consensus_score(checkerboard_sets(rc, cc, 4, 3), (rows, cols))
    truth_gpu = consensus_score(checkerboard_sets(rg, cg, 4, 3), (rows, cols))
    assert truth_gpu >= truth_cpu - 0.02


def test_bicluster_cuda_zero_rows_and_nan():
    x, _, _ = make_checkerboard((300, 200), 3, noise=1.0, random_state=1)
    x = np.abs(x)
    x[[3, 30]] = 0
    x[:, 7] = 0
    for fn in (lambda a: spectral_cocluster(a, 3), lambda a: spectral_bicluster(a, 3)):
        r, c = fn(_cuda(x))
        assert r.min() >= 0 and r.max() < 3 and c.min() >= 0 and c.max() < 3
    x[0, 0] = np.inf
    with pytest.raises(DataError, match="NaN or infinity"):
        spectral_cocluster(_cuda(x), 3)


# ---- the CUDA matrix backend's primitives against dense numpy (tests/backend_checks.py) ------------------

DTYPES = [np.float32, np.float64]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", bc.SHAPES, ids=str)
def test_cuda_first_pass_matches_numpy(dtype, shape):
    bc.check_first_pass(_cuda, dtype, shape)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", bc.SHAPES, ids=str)
@pytest.mark.parametrize("width", bc.WIDTHS + [40])  # the CUDA products' widths 16, 32 and 64
@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
def test_cuda_power_pass_matches_numpy(dtype, shape, width, affine):
    bc.check_power_pass(_cuda, dtype, shape, width, affine)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", bc.SHAPES, ids=str)
@pytest.mark.parametrize("width", bc.WIDTHS + [40])
def test_cuda_project_matches_numpy(dtype, shape, width):
    bc.check_project(_cuda, dtype, shape, width)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cuda_randomized_svd_of_the_affine_operator(dtype):
    bc.check_svd_of_affine_operator(_cuda, dtype)
