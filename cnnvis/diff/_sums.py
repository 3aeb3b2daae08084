"""Running statistics of a diff, merged exactly across batches and ranks (plain numpy, float64).

Two kinds:
- `HSICSums`: minibatch linear CKA (Nguyen, Raghu & Kornblith 2021). Each layer's features are its per-image
  channel vector after the spatial mean (shape (n, C); a linear layer's units as they are). Per batch of n >= 4
  images the unbiased HSIC (Song et al. 2012) of the Gram matrices K = X X^T of every (A layer, B layer) pair
  and of every layer with itself is added up; CKA = mean HSIC(K, L) / sqrt(mean HSIC(K, K) mean HSIC(L, L)).
  Memory: one n x n Gram per layer per batch, never the data set's activations.
- `CrossMoments`: the exact Pearson correlation of every channel of an A layer with every channel of a B
  layer over images x positions: count, means, sums of squared deviations and the co-moment matrix
  sum (x - mean_x)(y - mean_y)^T, i.e. the running sums (sum x, sum x^2, sum x y^T) kept centred so that
  they do not cancel; two parts merge by Chan et al.'s pairwise formulas (exact up to rounding).
"""
from __future__ import annotations

import numpy as np

__all__ = ["HSICSums", "CrossMoments", "grams", "unbiased_hsic"]


def grams(features: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per layer of (n, C) features: the Gram matrix of the features centred over the n images, with a zeroed
    diagonal, flattened (L, n^2), its row sums (L, n) and its total (L,), all float64 (what unbiased HSIC
    reads)."""
    n = features[0].shape[0]
    flat = np.empty((len(features), n * n))
    for i, x in enumerate(features):
        x = np.asarray(x, np.float64).reshape(n, -1)
        # centred first: unbiased HSIC is exactly invariant to a shift of the features, and without it a
        # layer varying at 1e-4 of its mean (random images' logits) cancels to float64 noise (CKA 0.0 with
        # an exact copy)
        c = x - x.mean(0)
        if np.vdot(c, c) <= 1e-24 * np.vdot(x, x):  # constant but for the mean's float64 rounding
            c = np.zeros_like(c)
        k = c @ c.T
        np.fill_diagonal(k, 0.0)
        flat[i] = k.ravel()
    rows = flat.reshape(len(features), n, n).sum(2)
    return flat, rows, rows.sum(1)


def unbiased_hsic(ga, gb, n: int, *, pairs: bool = True) -> np.ndarray:
    """HSIC_1 of Song et al. (2012) of Grams ga, gb (each from `grams`) over n >= 4 images:
    [tr(K~L~) + 1'K~1 1'L~1 / ((n-1)(n-2)) - 2/(n-2) 1'K~L~1] / (n(n-3)). pairs: every (a, b) pair (La, Lb);
    otherwise ga and gb hold the same layers and the result is each layer's own (L,)."""
    fa, ra, sa = ga
    fb, rb, sb = gb
    if pairs:
        t, s, r = fa @ fb.T, np.outer(sa, sb), ra @ rb.T
    else:
        t, s, r = (fa * fb).sum(1), sa * sb, (ra * rb).sum(1)
    return (t + s / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * r) / (n * (n - 3))


class HSICSums:
    """Sums of per-batch unbiased HSIC for La layers of A and Lb layers of B."""

    def __init__(self, n_a: int, n_b: int):
        self.ab = np.zeros((n_a, n_b))
        self.aa = np.zeros(n_a)
        self.bb = np.zeros(n_b)
        self.batches = 0
        self.skipped = 0  # images in batches of fewer than 4 (unbiased HSIC needs n >= 4)

    def update(self, features_a: list[np.ndarray], features_b: list[np.ndarray]) -> None:
        """One batch: (n, C) features of every A layer and every B layer, the same n images."""
        n = features_a[0].shape[0]
        if n < 4:
            self.skipped += n
            return
        ga, gb = grams(features_a), grams(features_b)
        self.ab += unbiased_hsic(ga, gb, n)
        self.aa += unbiased_hsic(ga, ga, n, pairs=False)
        self.bb += unbiased_hsic(gb, gb, n, pairs=False)
        self.batches += 1

    def merge(self, other: "HSICSums") -> "HSICSums":
        out = HSICSums(*self.ab.shape)
        out.ab, out.aa, out.bb = self.ab + other.ab, self.aa + other.aa, self.bb + other.bb
        out.batches, out.skipped = self.batches + other.batches, self.skipped + other.skipped
        return out

    def cka(self) -> np.ndarray:
        """(La, Lb) minibatch CKA; NaN where a layer's own HSIC is not positive (a constant layer)."""
        den = np.sqrt(np.outer(np.clip(self.aa, 0, None), np.clip(self.bb, 0, None)))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, self.ab / np.where(den > 0, den, 1.0), np.nan)


class CrossMoments:
    """Count, means, squared-deviation sums of Ca channels of A and Cb channels of B, and their co-moment."""

    __slots__ = ("count", "mean_a", "mean_b", "m2_a", "m2_b", "co")

    def __init__(self, count, mean_a, mean_b, m2_a, m2_b, co):
        self.count = int(count)
        self.mean_a, self.mean_b = np.asarray(mean_a, np.float64), np.asarray(mean_b, np.float64)
        self.m2_a, self.m2_b = np.asarray(m2_a, np.float64), np.asarray(m2_b, np.float64)
        self.co = np.asarray(co, np.float64)

    @classmethod
    def of(cls, xa: np.ndarray, xb: np.ndarray) -> "CrossMoments":
        """Of rows (N, Ca) and (N, Cb) (the same N observations), in float64."""
        xa, xb = np.asarray(xa, np.float64), np.asarray(xb, np.float64)
        ma, mb = xa.mean(0), xb.mean(0)
        da, db = xa - ma, xb - mb
        return cls(len(xa), ma, mb, (da * da).sum(0), (db * db).sum(0), da.T @ db)

    def state(self) -> tuple:
        return self.count, self.mean_a, self.mean_b, self.m2_a, self.m2_b, self.co

    def merge(self, other: "CrossMoments") -> "CrossMoments":
        na, nb = self.count, other.count
        if na == 0 or nb == 0:
            return other if na == 0 else self
        n = na + nb
        da, db = other.mean_a - self.mean_a, other.mean_b - self.mean_b
        w = na * nb / n
        return CrossMoments(n, self.mean_a + da * (nb / n), self.mean_b + db * (nb / n),
                            self.m2_a + other.m2_a + da * da * w, self.m2_b + other.m2_b + db * db * w,
                            self.co + other.co + np.outer(da, db) * w)

    def correlation(self) -> np.ndarray:
        """(Ca, Cb) Pearson correlation; NaN where a channel is constant (e.g. a dead ReLU)."""
        den = np.sqrt(np.outer(self.m2_a, self.m2_b))
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.where(den > 0, self.co / np.where(den > 0, den, 1.0), np.nan)
        return np.clip(r, -1.0, 1.0)
