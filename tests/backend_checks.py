"""The matrix backend's primitives (first_pass, power_pass with its affine terms, project, and the
randomized SVD over the affine operator) against dense float64 numpy, for a host or device matrix.

Imported as `backend_checks` by tests/test_bicluster.py (the CPU backend, on every CPU path) and
tests/test_cluster_gpu.py (the CUDA backend); `to_device` turns the numpy matrix into the input to test.
The operator is M = diag(dr)·(A + p 1ᵀ + 1 qᵀ)·diag(dc), formed densely here and never by the core.
Tolerances are relative to the sums of absolute products (|M| |x|), the scale of the rounding errors:
float32 matrices are multiplied in float32 (with float64 across column blocks), float64 ones in float64.
"""
import numpy as np

from cnnvis.compute import _testing as core

TOL = {np.float32: 2e-6, np.float64: 1e-13}
# Shapes that reach the kernels' edges: rows not a multiple of the 4-row tile, more than 1024 rows
# (several row partitions, summed in order) and more than 1024 columns (several column blocks).
SHAPES = [(37, 23), (1031, 45), (67, 1030)]
# Thin widths padded to 8 or 24 floats / 8 or 20 doubles: whole 64-byte vectors and 32-byte tails.
WIDTHS = [5, 20]


def matrix(shape, dtype, seed=0):
    """A (rows, cols) matrix of dtype, and its exact float64 value."""
    a = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    return a, a.astype(np.float64)


def affine_terms(m, n, seed=1):
    rng = np.random.default_rng(seed)
    return dict(dr=rng.uniform(0.5, 2.0, m), dc=rng.uniform(0.5, 2.0, n), p=rng.standard_normal(m),
                q=rng.standard_normal(n))


def dense_operator(a, dr=None, dc=None, p=None, q=None):
    m, n = a.shape
    dr = np.ones(m) if dr is None else dr
    dc = np.ones(n) if dc is None else dc
    p = np.zeros(m) if p is None else p
    q = np.zeros(n) if q is None else q
    return dr[:, None] * (a + p[:, None] + q[None, :]) * dc[None, :]


def assert_product(got, mat, x, tol, what):
    """got == mat @ x within tol times the row's sum of |mat| |x| (the size of the rounding errors)."""
    scale = np.abs(mat) @ np.abs(x)
    assert got.shape == scale.shape, what
    err = np.abs(got - mat @ x)
    assert (err <= tol * (scale + 1e-300)).all(), f"{what}: max relative error {(err / scale).max():.3g}"


def check_first_pass(to_device, dtype, shape):
    a, a64 = matrix(shape, dtype)
    mn, finite, rows, cols = core.first_pass(to_device(a))
    assert finite and mn == a64.min()
    assert_product(rows, a64, np.ones(shape[1]), TOL[dtype], "row sums")
    assert_product(cols, a64.T, np.ones(shape[0]), TOL[dtype], "column sums")
    a[shape[0] // 2, shape[1] - 1] = np.inf
    assert not core.first_pass(to_device(a))[1]


def check_power_pass(to_device, dtype, shape, width, affine):
    a, a64 = matrix(shape, dtype)
    terms = affine_terms(*shape) if affine else {}
    op = dense_operator(a64, **terms)
    x = np.random.default_rng(2).standard_normal((shape[1], width))
    y, z = core.power_pass(to_device(a), x, **terms)
    assert_product(y, op, x, TOL[dtype], "y = M x")
    # z = Mᵀ (M x): the rounding of the first product is carried into the second's scale.
    assert_product(z, op.T, op @ x, 4 * TOL[dtype], "z = Mᵀ M x")
    y_only, none = core.power_pass(to_device(a), x, want_z=False, **terms)
    assert none is None
    np.testing.assert_array_equal(y_only, y)


def check_project(to_device, dtype, shape, width):
    a, a64 = matrix(shape, dtype)
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((shape[1], width)), rng.standard_normal((shape[0], width))
    ax, aty = core.project(to_device(a), x, y)
    assert_product(ax, a64, x, TOL[dtype], "A x")
    assert_product(aty, a64.T, y, TOL[dtype], "Aᵀ y")


def check_svd_of_affine_operator(to_device, dtype):
    """The SVD runs on M (the affine terms set), not on A: its triplets are M's."""
    m, n, k = 90, 60, 4
    rng = np.random.default_rng(4)
    u0 = np.linalg.qr(rng.standard_normal((m, n)))[0]
    v0 = np.linalg.qr(rng.standard_normal((n, n)))[0]
    a64 = (u0 * np.r_[40.0, 30.0, 20.0, 10.0, np.full(n - 4, 0.1)]) @ v0.T
    a = a64.astype(dtype)
    terms = affine_terms(m, n, seed=5)
    op = dense_operator(a.astype(np.float64), **terms)
    s_ref = np.linalg.svd(op, compute_uv=False)
    assert s_ref[k - 1] > 1.5 * s_ref[k]  # a gap, so the top-k subspace is well defined
    u, s, v = core.randomized_svd(to_device(a), k, max_iter=30, tol=1e-12, **terms)
    rtol = 1e-5 if dtype == np.float32 else 1e-9
    np.testing.assert_allclose(s, s_ref[:k], rtol=rtol)
    # M v_i = s_i u_i and Mᵀ u_i = s_i v_i, with unit vectors
    np.testing.assert_allclose(op @ v, u * s, atol=rtol * s_ref[0])
    np.testing.assert_allclose(op.T @ u, v * s, atol=rtol * s_ref[0])
    # the plain SVD of A differs: the affine terms were applied
    assert abs(core.randomized_svd(to_device(a), k, max_iter=30, tol=1e-12)[1][0] - s[0]) > 1e-3 * s[0]
