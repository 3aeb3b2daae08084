"""Spectral co-/biclustering on the compiled core against scikit-learn's estimators and helpers."""
import numpy as np
import pytest
import torch
from sklearn.cluster import SpectralBiclustering, SpectralCoclustering
from sklearn.cluster import _bicluster as skb
from sklearn.datasets import make_biclusters, make_checkerboard
from sklearn.metrics import consensus_score

import backend_checks as bc
from cnnvis.bicluster import spectral_bicluster, spectral_cocluster
from cnnvis.compute import _testing as ours
from cnnvis.errors import CnnvisError, DataError

# Tests of the kernels themselves run once per CPU path of the SIMD kernels this machine has
# (conftest.py's cpu_path); the comparisons with scikit-learn's estimators run on the widest path.
every_cpu_path = pytest.mark.usefixtures("cpu_path")


def cocluster_sets(rows, cols, k):
    return np.vstack([rows == c for c in range(k)]), np.vstack([cols == c for c in range(k)])


def checkerboard_sets(rows, cols, nr, nc):
    return (np.vstack([rows == a for a in range(nr) for _ in range(nc)]),
            np.vstack([cols == b for _ in range(nr) for b in range(nc)]))


# ---------------------------------------------------------------------------------------------------
# the normalisation helpers, on tiny arrays

@every_cpu_path
def test_scale_normalize_by_hand():
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    an, r, c = ours.scale_normalize(x)
    # row sums 3, 7; column sums 4, 6
    np.testing.assert_allclose(r, [3 ** -0.5, 7 ** -0.5])
    np.testing.assert_allclose(c, [4 ** -0.5, 6 ** -0.5])
    np.testing.assert_allclose(an, [[1 / np.sqrt(12), 2 / np.sqrt(18)], [3 / np.sqrt(28), 4 / np.sqrt(42)]])


@every_cpu_path
def test_scale_normalize_shifts_negative_input():
    x = np.array([[-1.0, 0.0], [1.0, 2.0]])  # make_nonnegative adds 1
    an, r, c = ours.scale_normalize(x)
    # shifted [[0, 1], [2, 3]]: row sums 1, 5; column sums 2, 4
    np.testing.assert_allclose(an, [[0.0, 1 / np.sqrt(4)], [2 / np.sqrt(10), 3 / np.sqrt(20)]])


@every_cpu_path
@pytest.mark.parametrize("seed", range(4))
def test_scale_normalize_matches_sklearn(seed):
    x = np.random.default_rng(seed).random((7, 5)) - 0.2 * seed
    an, r, c = ours.scale_normalize(x)
    ref_an, ref_r, ref_c = skb._scale_normalize(x)
    np.testing.assert_allclose(an, ref_an, rtol=1e-12)
    np.testing.assert_allclose(r, ref_r, rtol=1e-12)
    np.testing.assert_allclose(c, ref_c, rtol=1e-12)


@every_cpu_path
def test_scale_normalize_zero_rows_and_columns_are_zero_not_nan():
    x = np.random.default_rng(0).random((6, 4))
    x[2] = 0
    x[:, 1] = 0
    an, r, c = ours.scale_normalize(x)
    assert np.isfinite(an).all()
    assert (an[2] == 0).all() and (an[:, 1] == 0).all()
    assert r[2] == 0 and c[1] == 0
    # elsewhere the same as scikit-learn (which gives NaN in the empty row and column)
    with np.errstate(divide="ignore", invalid="ignore"):
        ref = skb._scale_normalize(x)[0]
    keep_r, keep_c = np.arange(6) != 2, np.arange(4) != 1
    np.testing.assert_allclose(an[np.ix_(keep_r, keep_c)], ref[np.ix_(keep_r, keep_c)], rtol=1e-12)


@every_cpu_path
def test_bistochastic_normalize_by_hand():
    # A doubly stochastic pattern is its own fixed point once scaled to row sums sqrt(n/m) = 1.
    x = np.array([[2.0, 1.0], [1.0, 2.0]])
    np.testing.assert_allclose(ours.bistochastic_normalize(x), x / 3, rtol=1e-9)


@every_cpu_path
@pytest.mark.parametrize("shape,seed", [((7, 5), 0), ((5, 9), 1), ((12, 12), 2), ((3, 30), 3)])
def test_bistochastic_normalize_matches_sklearn(shape, seed):
    x = np.random.default_rng(seed).random(shape) + 0.05
    got = ours.bistochastic_normalize(x)
    ref = skb._bistochastic_normalize(x)
    m, n = shape
    # Both approximate the same fixed point within scikit-learn's tolerance (1e-5, Frobenius).
    assert np.linalg.norm(got - ref) < 2e-5
    np.testing.assert_allclose(got.sum(1), np.sqrt(n / m), rtol=1e-5)
    np.testing.assert_allclose(got.sum(0), np.sqrt(m / n), rtol=1e-5)


@every_cpu_path
def test_bistochastic_zero_rows_stay_zero():
    x = np.random.default_rng(4).random((6, 5))
    x[1] = 0
    got = ours.bistochastic_normalize(x)
    assert np.isfinite(got).all() and (got[1] == 0).all()


@every_cpu_path
def test_log_normalize_by_hand():
    x = np.array([[1.0, np.e], [np.e, np.e ** 3]])
    # log: [[0, 1], [1, 3]]; row means 0.5, 2; column means 0.5, 2; overall 1.25
    np.testing.assert_allclose(ours.log_normalize(x), [[0.25, -0.25], [-0.25, 0.25]], atol=1e-15)


@every_cpu_path
@pytest.mark.parametrize("seed", range(3))
def test_log_normalize_matches_sklearn(seed):
    x = np.random.default_rng(seed).random((6, 8)) * 10 - 3 * seed
    np.testing.assert_allclose(ours.log_normalize(x), skb._log_normalize(x), rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------------------
# the CPU matrix backend's primitives against dense numpy (tests/backend_checks.py)

DTYPES = [np.float32, np.float64]


@every_cpu_path
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", bc.SHAPES, ids=str)
def test_first_pass_matches_numpy(dtype, shape):
    bc.check_first_pass(np.asarray, dtype, shape)


@every_cpu_path
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", bc.SHAPES, ids=str)
@pytest.mark.parametrize("width", bc.WIDTHS)
@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
def test_power_pass_matches_numpy(dtype, shape, width, affine):
    bc.check_power_pass(np.asarray, dtype, shape, width, affine)


@every_cpu_path
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", bc.SHAPES, ids=str)
@pytest.mark.parametrize("width", bc.WIDTHS)
def test_project_matches_numpy(dtype, shape, width):
    bc.check_project(np.asarray, dtype, shape, width)


@every_cpu_path
@pytest.mark.parametrize("dtype", DTYPES)
def test_randomized_svd_of_the_affine_operator(dtype):
    bc.check_svd_of_affine_operator(np.asarray, dtype)


# ---------------------------------------------------------------------------------------------------
# the randomized SVD

@every_cpu_path
@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-9), (np.float32, 1e-5)])
@pytest.mark.parametrize("shape", [(400, 150), (150, 400), (97, 61)])
def test_randomized_svd_matches_lapack(dtype, rtol, shape):
    rng = np.random.default_rng(0)
    m, n = shape
    r = min(m, n)
    u0 = np.linalg.qr(rng.standard_normal((m, r)))[0]
    v0 = np.linalg.qr(rng.standard_normal((n, r)))[0]
    a = ((u0 * 0.7 ** np.arange(r)) @ v0.T).astype(dtype)
    u, s, v = ours.randomized_svd(a, 5, max_iter=7, tol=1e-12)
    np.testing.assert_allclose(s, 0.7 ** np.arange(5), rtol=rtol)
    cos_u = np.abs((u * u0[:, :5]).sum(0))
    cos_v = np.abs((v * v0[:, :5]).sum(0))
    np.testing.assert_allclose(cos_u, 1.0, atol=10 * rtol)
    np.testing.assert_allclose(cos_v, 1.0, atol=10 * rtol)
    # sign convention of svd_flip: the largest |u| entry of each column is positive
    assert (u[np.abs(u).argmax(0), np.arange(5)] > 0).all()


@every_cpu_path
def test_randomized_svd_stops_early_when_converged():
    rng = np.random.default_rng(1)
    u0 = np.linalg.qr(rng.standard_normal((300, 20)))[0]
    v0 = np.linalg.qr(rng.standard_normal((200, 20)))[0]
    a = (u0 * np.r_[10.0, 8.0, 6.0, 4.0, np.full(16, 0.01)]) @ v0.T  # a wide gap after 4 values
    u, s, v = ours.randomized_svd(a, 4, max_iter=7, tol=1e-3)
    np.testing.assert_allclose(s, [10, 8, 6, 4], rtol=1e-6)
    from cnnvis._core import _testing

    opt = ours.svd_options(k=4, n_oversamples=10, min_iter=1, max_iter=7, tol=1e-3, seed=0)
    assert _testing.randomized_svd(a, opt)[3] < 7  # power iterations actually made


@every_cpu_path
def test_randomized_svd_rank_deficient_is_finite():
    a = np.outer(np.arange(1, 21.0), np.arange(1, 11.0))  # rank 1
    u, s, v = ours.randomized_svd(a, 4)
    assert np.isfinite(u).all() and np.isfinite(v).all() and np.isfinite(s).all()
    assert s[0] == pytest.approx(np.linalg.norm(a), rel=1e-9)
    assert (s[1:] == 0).all()


# ---------------------------------------------------------------------------------------------------
# planted structure: at least as good as scikit-learn's estimator minus 0.02

COCLUSTER_CASES = [
    ((97, 61), 3, 0.5),
    ((97, 61), 4, 5.0),
    ((300, 300), 5, 1.0),
    ((300, 300), 3, 10.0),
    ((600, 90), 4, 2.0),
    ((61, 240), 3, 2.0),
]


@pytest.mark.parametrize("shape,k,noise", COCLUSTER_CASES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cocluster_consensus_vs_sklearn(shape, k, noise, dtype):
    x, rows, cols = make_biclusters(shape, k, noise=noise, random_state=0)
    x = x.astype(dtype)
    r, c = spectral_cocluster(x, k, random_state=0)
    assert r.dtype == np.int64 and r.shape == (shape[0],) and c.shape == (shape[1],)
    got = consensus_score(cocluster_sets(r, c, k), (rows, cols))
    ref = SpectralCoclustering(k, random_state=0).fit(x)
    assert got >= consensus_score(ref.biclusters_, (rows, cols)) - 0.02


BICLUSTER_CASES = [
    ((97, 61), (3, 2), 0.5, "bistochastic"),
    ((97, 61), 3, 5.0, "scale"),
    ((97, 61), (2, 4), 1.0, "log"),
    ((300, 300), 4, 2.0, "bistochastic"),
    ((300, 300), (4, 3), 10.0, "bistochastic"),
    ((300, 300), 3, 2.0, "log"),
    ((500, 80), (5, 3), 2.0, "scale"),
    ((80, 500), (3, 5), 2.0, "bistochastic"),
]


@pytest.mark.parametrize("shape,k,noise,method", BICLUSTER_CASES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_bicluster_consensus_vs_sklearn(shape, k, noise, method, dtype):
    x, rows, cols = make_checkerboard(shape, k, noise=noise, random_state=0)
    x = x.astype(dtype)
    nr, nc = (k, k) if isinstance(k, int) else k
    r, c = spectral_bicluster(x, k, method=method, random_state=0)
    assert r.shape == (shape[0],) and c.shape == (shape[1],)
    assert r.min() >= 0 and r.max() < nr and c.min() >= 0 and c.max() < nc
    got = consensus_score(checkerboard_sets(r, c, nr, nc), (rows, cols))
    ref = SpectralBiclustering(k, method=method, random_state=0).fit(x)
    assert got >= consensus_score(ref.biclusters_, (rows, cols)) - 0.02


@every_cpu_path
def test_planted_coclusters_are_recovered_exactly():
    x, rows, cols = make_biclusters((200, 150), 4, noise=0.1, random_state=3)
    r, c = spectral_cocluster(x, 4, random_state=0)
    assert consensus_score(cocluster_sets(r, c, 4), (rows, cols)) == pytest.approx(1.0)


@every_cpu_path
def test_planted_checkerboard_is_recovered_exactly():
    x, rows, cols = make_checkerboard((200, 150), (4, 3), noise=0.5, random_state=3)
    r, c = spectral_bicluster(x, (4, 3), random_state=0)
    assert consensus_score(checkerboard_sets(r, c, 4, 3), (rows, cols)) == pytest.approx(1.0)


@every_cpu_path
def test_deterministic_for_a_random_state():
    x, _, _ = make_checkerboard((150, 120), 3, noise=3.0, random_state=1)
    for fn in (lambda: spectral_cocluster(x, 3, random_state=7), lambda: spectral_bicluster(x, 3, random_state=7)):
        a, b = fn(), fn()
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


def test_input_kinds_agree():
    x, _, _ = make_biclusters((120, 80), 3, noise=1.0, random_state=2)
    ref = spectral_cocluster(x, 3)
    for variant in (torch.from_numpy(x), np.asfortranarray(x), x.tolist()):
        got = spectral_cocluster(variant, 3)
        np.testing.assert_array_equal(got[0], ref[0])
        np.testing.assert_array_equal(got[1], ref[1])


# ---------------------------------------------------------------------------------------------------
# degenerate inputs: a defined result or a clear error

@every_cpu_path
def test_one_cluster():
    x = np.random.default_rng(0).random((10, 7))
    r, c = spectral_cocluster(x, 1)
    assert (r == 0).all() and (c == 0).all()
    r, c = spectral_bicluster(x, 1)
    assert (r == 0).all() and (c == 0).all()


@every_cpu_path
@pytest.mark.parametrize("fn", [lambda x: spectral_cocluster(x, 3),
                                lambda x: spectral_bicluster(x, 3, method="scale"),
                                lambda x: spectral_bicluster(x, 3, method="bistochastic"),
                                lambda x: spectral_bicluster(x, 3, method="log")])
def test_constant_matrix_is_defined(fn):
    r, c = fn(np.full((20, 15), 4.0))
    assert r.shape == (20,) and c.shape == (15,)
    assert r.min() >= 0 and r.max() < 3 and c.min() >= 0 and c.max() < 3


@every_cpu_path
@pytest.mark.parametrize("fn", [lambda x: spectral_cocluster(x, 3),
                                lambda x: spectral_bicluster(x, 3, method="scale"),
                                lambda x: spectral_bicluster(x, 3, method="bistochastic")])
def test_zero_rows_and_columns_keep_the_rest(fn):
    x, rows, cols = make_biclusters((150, 100), 3, noise=0.2, random_state=4, minval=10, maxval=20)
    x = np.abs(x)
    x[[5, 50, 90]] = 0
    x[:, [3, 40]] = 0
    r, c = fn(x)
    assert r.min() >= 0 and r.max() < 3 and c.min() >= 0 and c.max() < 3


@every_cpu_path
def test_tiny_matrix_more_vectors_than_rank():
    x = np.array([[1.0, 2.0], [2.0, 1.0], [5.0, 5.0]])
    r, c = spectral_bicluster(x, (2, 2), n_components=6, n_best=3)
    assert r.shape == (3,) and c.shape == (2,)


M = np.random.default_rng(0).random((10, 6))
BAD = [
    (lambda: spectral_cocluster(M, 11), CnnvisError, r"n_clusters must be in \[1, 10\], got 11"),
    (lambda: spectral_cocluster(M, 0), CnnvisError, r"n_clusters must be in \[1, 10\], got 0"),
    (lambda: spectral_cocluster(M, 2.5), CnnvisError, r"n_clusters must be an integer, got 2.5"),
    (lambda: spectral_cocluster(M, 2, random_state=-3), CnnvisError, r"random_state must be in"),
    (lambda: spectral_cocluster(np.ones(5), 2), DataError, r"matrix must be 2-D"),
    (lambda: spectral_cocluster(np.ones((0, 4)), 1), DataError, r"at least one row"),
    (lambda: spectral_cocluster(np.where(M > 0.5, np.nan, M), 2), DataError, r"matrix contains NaN or infinity"),
    (lambda: spectral_bicluster(np.where(M > 0.5, np.inf, M), 2), DataError, r"matrix contains NaN or infinity"),
    (lambda: spectral_bicluster(M, 7), CnnvisError, r"n_clusters must be in \[1, 6\], got 7"),
    (lambda: spectral_bicluster(M, (11, 2)), CnnvisError, r"n_row_clusters must be in \[1, 10\], got 11"),
    (lambda: spectral_bicluster(M, (2, 7)), CnnvisError, r"n_column_clusters must be in \[1, 6\], got 7"),
    (lambda: spectral_bicluster(M, (2, 2, 2)), CnnvisError, r"n_clusters must be an integer or a pair"),
    (lambda: spectral_bicluster(M, "3"), CnnvisError, r"n_clusters must be an integer or a pair"),
    (lambda: spectral_bicluster(M, 2, method="svd"), CnnvisError, r"method must be one of 'scale'"),
    (lambda: spectral_bicluster(M, 2, n_components=0), CnnvisError, r"n_components must be in >= 1, got 0"),
    (lambda: spectral_bicluster(M, 2, n_best=7), CnnvisError, r"n_best must be in \[1, 6\], got 7"),
    (lambda: spectral_bicluster(M, 2, device="gpu"), CnnvisError, r"device must be 'auto', 'cpu' or 'cuda'"),
]


@pytest.mark.parametrize("call,exc,match", BAD)
def test_bad_input_raises(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
