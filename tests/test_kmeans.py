"""k-means on the compiled core against scikit-learn's KMeans, plus invariants and input checks."""
import functools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs

import cnnvis
from cnnvis.compute import KMeansResult, kmeans
from cnnvis.errors import CnnvisError, DataError

# Every test runs once per CPU path of the SIMD kernels this machine has (conftest.py's cpu_path).
pytestmark = pytest.mark.usefixtures("cpu_path")

def _blobs(n, d, k, seed, std=1.0):
    x, _ = make_blobs(n_samples=n, n_features=d, centers=k, cluster_std=std, random_state=seed)
    return x


def _random(n, d, seed):
    return np.random.default_rng(seed).random((n, d))


def _inertia(x, labels, centers):
    return float(((x - centers[labels]) ** 2).sum())


CASES = [
    ("blobs", lambda: _blobs(2000, 2, 5, 0)),
    ("blobs-overlap", lambda: _blobs(3000, 8, 12, 1, std=4.0)),
    ("blobs-wide", lambda: _blobs(500, 64, 7, 2)),
    ("uniform", lambda: _random(2000, 3, 3)),
    ("uniform-wide", lambda: _random(700, 20, 4)),
]


@functools.lru_cache(maxsize=None)
def _sklearn_inertia(name, dtype, k):
    """scikit-learn's inertia on a case (computed once for all CPU paths)."""
    x = dict(CASES)[name]().astype(dtype)
    return KMeans(k, n_init=4, random_state=0).fit(x.astype(np.float64)).inertia_


@pytest.mark.parametrize("name,make", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_inertia_within_one_percent_of_sklearn(name, make, dtype):
    x = make().astype(dtype)
    k = 8
    ours = kmeans(x, k, n_init=4, random_state=0)
    assert ours.inertia <= _sklearn_inertia(name, dtype, k) * 1.01
    # The reported inertia is the one of the returned labels and centers.
    assert ours.inertia == pytest.approx(_inertia(x.astype(np.float64), ours.labels, ours.centers), rel=1e-6)


@pytest.mark.parametrize("d", [5, 12])  # direct distances; dot-product kernel (8 features and more)
def test_result_invariants(d):
    x = _blobs(1500, d, 6, 7)
    res = kmeans(x, 6, random_state=3)
    assert isinstance(res, KMeansResult)
    assert res.labels.dtype == np.int64 and res.labels.shape == (1500,)
    assert res.centers.dtype == np.float64 and res.centers.shape == (6, d)
    assert res.labels.min() >= 0 and res.labels.max() < 6
    assert 1 <= res.n_iter <= 300
    # Lloyd's fixed point: every center is the mean of its points, every point is at its nearest center.
    for c in range(6):
        np.testing.assert_allclose(res.centers[c], x[res.labels == c].mean(0), rtol=1e-9, atol=1e-9)
    d = ((x[:, None, :] - res.centers[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(res.labels, d.argmin(1))


def test_recovers_separated_blobs():
    x, truth = make_blobs(n_samples=900, centers=[[0, 0], [20, 0], [0, 20]], cluster_std=1.0, random_state=0)
    res = kmeans(x, 3, random_state=0)
    # Same partition up to renaming.
    pairs = set(zip(truth.tolist(), res.labels.tolist()))
    assert len(pairs) == 3


def test_deterministic_for_a_random_state():
    x = _random(3000, 4, 11)
    a = kmeans(x, 7, random_state=5)
    b = kmeans(x, 7, random_state=5)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.centers, b.centers)
    assert a.inertia == b.inertia and a.n_iter == b.n_iter


def test_same_result_on_one_and_two_threads(tmp_path):
    code = (
        "import numpy as np; from cnnvis.compute import kmeans; "
        "x = np.random.default_rng(2).random((20000, 3)); r = kmeans(x, 9, random_state=1); "
        "print(repr(r.inertia), r.labels[:50].tolist())"
    )
    out = []
    for threads in ("1", "2"):
        # the same cnnvis as this test imports (source checkout or installed), whatever the cwd
        env = dict(os.environ, OMP_NUM_THREADS=threads, PYTHONPATH=str(Path(cnnvis.__file__).parents[1]))
        out.append(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                  check=True, cwd=tmp_path).stdout)
    assert out[0] == out[1]


def test_input_kinds_agree():
    x = _blobs(400, 3, 4, 5)
    ref = kmeans(x, 4, random_state=0)
    for variant in (torch.from_numpy(x), np.asfortranarray(x), x.tolist()):
        res = kmeans(variant, 4, random_state=0)
        np.testing.assert_array_equal(res.labels, ref.labels)
    ints = kmeans(np.round(x * 100).astype(np.int32), 4, random_state=0)
    assert ints.centers.dtype == np.float64


def test_one_cluster_is_the_mean():
    x = _random(100, 3, 0)
    res = kmeans(x, 1)
    assert (res.labels == 0).all()
    np.testing.assert_allclose(res.centers[0], x.mean(0))
    assert res.inertia == pytest.approx(((x - x.mean(0)) ** 2).sum())


def test_as_many_clusters_as_points():
    x = _random(12, 2, 1)
    res = kmeans(x, 12)
    assert sorted(res.labels.tolist()) == list(range(12))
    assert res.inertia == pytest.approx(0.0, abs=1e-20)


def test_constant_data_is_defined():
    x = np.full((50, 3), 2.5)
    res = kmeans(x, 4)
    assert res.inertia == 0.0
    assert np.isfinite(res.centers).all()
    np.testing.assert_allclose(res.centers, 2.5)
    assert res.labels.min() >= 0 and res.labels.max() < 4


def test_duplicate_points_fewer_distinct_than_clusters():
    x = np.repeat(np.array([[0.0, 0.0], [5.0, 5.0]]), 20, axis=0)
    res = kmeans(x, 3)
    assert res.inertia == 0.0
    assert np.isfinite(res.centers).all()


BAD = [
    (dict(X=np.ones(5), n_clusters=2), DataError, r"X must be 2-D"),
    (dict(X=np.ones((0, 3)), n_clusters=1), DataError, r"at least one row"),
    (dict(X=np.array([[1.0, np.nan], [0.0, 1.0]]), n_clusters=1), DataError, r"NaN or infinity"),
    (dict(X=np.array([[1.0, np.inf], [0.0, 1.0]]), n_clusters=1), DataError, r"NaN or infinity"),
    (dict(X=np.ones((5, 2)), n_clusters=6), CnnvisError, r"n_clusters must be in \[1, 5\], got 6"),
    (dict(X=np.ones((5, 2)), n_clusters=0), CnnvisError, r"n_clusters must be in \[1, 5\], got 0"),
    (dict(X=np.ones((5, 2)), n_clusters=2.0), CnnvisError, r"n_clusters must be an integer, got 2.0"),
    (dict(X=np.ones((5, 2)), n_clusters=True), CnnvisError, r"n_clusters must be an integer"),
    (dict(X=np.ones((5, 2)), n_clusters=2, n_init=0), CnnvisError, r"n_init must be in >= 1, got 0"),
    (dict(X=np.ones((5, 2)), n_clusters=2, max_iter=0), CnnvisError, r"max_iter must be in >= 1, got 0"),
    (dict(X=np.ones((5, 2)), n_clusters=2, tol=-1.0), CnnvisError, r"tol must be a finite number >= 0, got -1.0"),
    (dict(X=np.ones((5, 2)), n_clusters=2, random_state=-1), CnnvisError, r"random_state must be in"),
    (dict(X=np.ones((5, 2)), n_clusters=2, random_state=None), CnnvisError, r"random_state must be an integer"),
    (dict(X=np.ones((5, 2)), n_clusters=2, device="tpu"), CnnvisError, r"device must be"),
    (dict(X=np.ones((5, 2), dtype=complex), n_clusters=2), DataError, r"real numbers"),
]


@pytest.mark.parametrize("kwargs,exc,match", BAD)
def test_bad_input_raises(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        kmeans(**kwargs)


def test_errors_are_value_errors():
    with pytest.raises(ValueError):
        kmeans(np.ones((3, 2)), 4)
