#include "cluster/linalg.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace cnnvis {

// ---------------------------------------------------------------------------------------------------
// tiny factorizations

bool cholesky_upper(double* g, int l) {
  for (int j = 0; j < l; ++j) {
    double d = g[j * l + j];
    for (int k = 0; k < j; ++k) d -= g[k * l + j] * g[k * l + j];
    if (!(d > 0.0)) return false;
    const double rjj = std::sqrt(d);
    g[j * l + j] = rjj;
    for (int i = j + 1; i < l; ++i) {
      double s = g[j * l + i];
      for (int k = 0; k < j; ++k) s -= g[k * l + j] * g[k * l + i];
      g[j * l + i] = s / rjj;
    }
    for (int i = 0; i < j; ++i) g[j * l + i] = 0.0;
  }
  return true;
}

void invert_upper(double* r, int l) {
  // Column by column back substitution of R X = I; X overwrites R (X is upper triangular too).
  std::vector<double> x(static_cast<size_t>(l) * l, 0.0);
  for (int c = 0; c < l; ++c) {
    for (int i = c; i >= 0; --i) {
      double s = (i == c) ? 1.0 : 0.0;
      for (int k = i + 1; k <= c; ++k) s -= r[i * l + k] * x[k * l + c];
      x[i * l + c] = s / r[i * l + i];
    }
  }
  std::memcpy(r, x.data(), x.size() * sizeof(double));
}

void jacobi_eigh(double* a, int l, double* w, double* v) {
  for (int i = 0; i < l; ++i)
    for (int j = 0; j < l; ++j) v[i * l + j] = (i == j) ? 1.0 : 0.0;
  double total = 0.0;
  for (int i = 0; i < l * l; ++i) total += a[i] * a[i];
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0.0;
    for (int p = 0; p < l; ++p)
      for (int q = p + 1; q < l; ++q) off += a[p * l + q] * a[p * l + q];
    if (off <= 1e-30 * total || off == 0.0) break;
    for (int p = 0; p < l; ++p) {
      for (int q = p + 1; q < l; ++q) {
        const double apq = a[p * l + q];
        if (apq == 0.0) continue;
        const double app = a[p * l + p], aqq = a[q * l + q];
        const double theta = (aqq - app) / (2.0 * apq);
        const double t = (theta >= 0 ? 1.0 : -1.0) / (std::fabs(theta) + std::sqrt(theta * theta + 1.0));
        const double c = 1.0 / std::sqrt(t * t + 1.0), s = t * c;
        for (int k = 0; k < l; ++k) {  // A ← A J (columns p, q)
          const double akp = a[k * l + p], akq = a[k * l + q];
          a[k * l + p] = c * akp - s * akq;
          a[k * l + q] = s * akp + c * akq;
        }
        for (int k = 0; k < l; ++k) {  // A ← J^T A (rows p, q)
          const double apk = a[p * l + k], aqk = a[q * l + k];
          a[p * l + k] = c * apk - s * aqk;
          a[q * l + k] = s * apk + c * aqk;
        }
        for (int k = 0; k < l; ++k) {
          const double vkp = v[k * l + p], vkq = v[k * l + q];
          v[k * l + p] = c * vkp - s * vkq;
          v[k * l + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  // Sort descending (selection sort: l is tiny); ties keep their order so results are reproducible.
  std::vector<double> vals(l);
  for (int i = 0; i < l; ++i) vals[i] = a[i * l + i];
  for (int i = 0; i < l; ++i) {
    int best = i;
    for (int j = i + 1; j < l; ++j)
      if (vals[j] > vals[best]) best = j;
    if (best != i) {
      std::swap(vals[i], vals[best]);
      for (int k = 0; k < l; ++k) std::swap(v[k * l + i], v[k * l + best]);
    }
    w[i] = vals[i];
  }
}

// ---------------------------------------------------------------------------------------------------
// host thin-matrix kernels: fixed row chunks summed in order, so results do not depend on thread count

namespace {
constexpr int64_t kChunk = 4096;
// Smaller loops run on one thread (parallel regions cost more than they save there on shared cores).
constexpr int64_t kParallelWork = int64_t(1) << 21;
}

void host_gram(const double* y, int64_t len, int l, double* g) {
  const int64_t nchunk = std::max<int64_t>(1, (len + kChunk - 1) / kChunk);
  std::vector<double> part(static_cast<size_t>(nchunk) * l * l, 0.0);
#pragma omp parallel for schedule(dynamic, 1) if (nchunk > 1 && len * l * l > kParallelWork)
  for (int64_t c = 0; c < nchunk; ++c) {
    double* p = part.data() + c * l * l;
    const int64_t end = std::min(len, (c + 1) * kChunk);
    for (int64_t r = c * kChunk; r < end; ++r) {
      const double* row = y + r * l;
      for (int i = 0; i < l; ++i) {  // the full square: fixed-length rows vectorise, the triangle does not
        const double yi = row[i];
        double* pi = p + i * l;
#pragma omp simd
        for (int j = 0; j < l; ++j) pi[j] += yi * row[j];
      }
    }
  }
  std::fill(g, g + l * l, 0.0);
  for (int64_t c = 0; c < nchunk; ++c)
    for (int i = 0; i < l * l; ++i) g[i] += part[c * l * l + i];
  for (int i = 0; i < l; ++i)  // exact symmetry for the eigensolver
    for (int j = 0; j < i; ++j) g[i * l + j] = g[j * l + i];
}

void host_mul_small(const double* y, int64_t len, int l, const double* s, int l2, double* out) {
#pragma omp parallel for schedule(static) if (len * l * l2 > kParallelWork)
  for (int64_t r = 0; r < len; ++r) {
    const double* row = y + r * l;
    double* o = out + r * l2;
    for (int j = 0; j < l2; ++j) o[j] = 0.0;
    for (int i = 0; i < l; ++i) {
      const double yi = row[i];
      const double* si = s + i * l2;
      for (int j = 0; j < l2; ++j) o[j] += yi * si[j];
    }
  }
}

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void fill_test_matrix(double* out, int64_t count, uint64_t seed) {
  uint64_t st = seed;
  for (int64_t i = 0; i < count; ++i) out[i] = static_cast<double>(splitmix64(st) >> 11) * 0x1.0p-52 - 1.0;
}

// ---------------------------------------------------------------------------------------------------
// orthonormalisation and the randomized SVD

namespace {

// One Cholesky-QR round: y ← y R^{-1} (via tmp, pointers swapped). Returns false when a shift was needed.
bool cholqr_round(SvdBackend& be, double*& y, double*& tmp, int64_t len, int l) {
  std::vector<double> g(static_cast<size_t>(l) * l), r;
  be.gram(y, len, l, g.data());
  double trace = 0.0;
  for (int i = 0; i < l; ++i) trace += g[i * l + i];
  if (!(trace > 0.0) || !std::isfinite(trace)) return true;  // all zero: nothing to scale
  r = g;
  bool clean = cholesky_upper(r.data(), l);
  if (!clean) {
    // Shifted CholeskyQR (Fukaya et al. 2020): s = 11 (len·l + l(l+1)) u ‖y‖², grown until it works.
    double shift = 11.0 * (static_cast<double>(len) * l + l * (l + 1.0)) * 1.1e-16 * trace;
    for (int attempt = 0; attempt < 60; ++attempt, shift *= 10.0) {
      r = g;
      for (int i = 0; i < l; ++i) r[i * l + i] += shift;
      if (cholesky_upper(r.data(), l)) break;
    }
  }
  invert_upper(r.data(), l);
  be.mul_small(y, len, l, r.data(), l, tmp);
  std::swap(y, tmp);
  return clean;
}

}  // namespace

void orthonormalize(SvdBackend& be, double* y, double* tmp, int64_t len, int l) {
  double* a = y;
  double* b = tmp;
  int clean_rounds = 0;
  for (int round = 0; round < 5 && clean_rounds < 2; ++round)
    clean_rounds = cholqr_round(be, a, b, len, l) ? clean_rounds + 1 : 0;
  if (a != y) be.copy(a, len * l, y);
}

int default_power_iterations(int k, int64_t rows, int64_t cols) {
  return k < 0.1 * static_cast<double>(std::min(rows, cols)) ? 7 : 4;
}


SvdResult randomized_svd(SvdBackend& be, const SvdOptions& opt) {
  const int64_t m = be.rows(), n = be.cols();
  const int k = std::max(1, opt.k);
  // The subspace is widened to a multiple of 8 columns: the kernels pad to whole vectors anyway, so the
  // extra oversampling is free and speeds convergence.
  const int64_t wide = (k + opt.n_oversamples + 7) / 8 * 8;
  const int l = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(wide, std::min(m, n))));
  const int kk = std::min(k, l);
  struct Buf {  // backend buffers released on every exit path
    SvdBackend& be;
    double* p;
    Buf(SvdBackend& b, int64_t count) : be(b), p(b.alloc(count)) {}
    ~Buf() { be.release(p); }
  };
  Buf xb(be, n * l), zb(be, n * l), yb(be, m * l);
  double* x = xb.p;
  double* z = zb.p;
  double* y = yb.p;
  {
    std::vector<double> omega(static_cast<size_t>(n) * l);
    fill_test_matrix(omega.data(), n * l, opt.seed);
    be.upload(omega.data(), n * l, x);
  }
  orthonormalize(be, x, z, n, l);

  std::vector<double> g(static_cast<size_t>(l) * l), w(l), wv(static_cast<size_t>(l) * l), h(g.size());
  const bool trace = std::getenv("CNNVIS_CLUSTER_PROFILE") != nullptr;
  int it = 0;
  for (;; ++it) {
    const bool last = it >= opt.max_iter;
    be.power_pass(x, l, y, last ? nullptr : z);
    be.gram(y, m, l, g.data());  // = x^T M^T M x
    jacobi_eigh(g.data(), l, w.data(), wv.data());
    bool converged = false;
    if (!last && it >= opt.min_iter) {
      // Residual of each Ritz pair (σ², v = x w) of M^T M: ‖z w − σ² x w‖² = w^T (z^T z) w − σ⁴, with
      // x orthonormal and z = M^T M x; small residuals bound the error of the whole top-k subspace,
      // even where singular values are nearly equal and single vectors are not defined.
      be.gram(z, n, l, h.data());
      double worst = 0.0;
      for (int i = 0; i < kk; ++i) {
        double q = 0.0;
        for (int a = 0; a < l; ++a)
          for (int b = 0; b < l; ++b) q += wv[a * l + i] * h[a * l + b] * wv[b * l + i];
        worst = std::max(worst, std::sqrt(std::max(q - w[i] * w[i], 0.0)));
      }
      converged = worst <= opt.tol * std::max(w[0], 0.0);
      if (trace) std::fprintf(stderr, "[cnnvis cluster] svd iteration %d: residual %.3g of sigma1^2\n", it, worst / std::max(w[0], 1e-300));
    }
    for (int i = 0; i < l; ++i) w[i] = std::sqrt(std::max(w[i], 0.0));
    if (converged || last) break;
    std::swap(x, z);
    orthonormalize(be, x, z, n, l);
  }

  // Rayleigh-Ritz: with x orthonormal and y = M x = P Σ W^T, the triplets are (y W Σ^-1, Σ, x W).
  std::vector<double> wk(static_cast<size_t>(l) * kk), wks(static_cast<size_t>(l) * kk);
  const double floor_s = w[0] * 1e-10;
  for (int i = 0; i < l; ++i)
    for (int j = 0; j < kk; ++j) {
      wk[i * kk + j] = wv[i * l + j];
      wks[i * kk + j] = (w[j] > floor_s && w[j] > 0.0) ? wv[i * l + j] / w[j] : 0.0;
    }
  Buf ub(be, m * kk), vb(be, n * kk);
  be.mul_small(y, m, l, wks.data(), kk, ub.p);
  be.mul_small(x, n, l, wk.data(), kk, vb.p);
  std::vector<double> uh(static_cast<size_t>(m) * kk), vh(static_cast<size_t>(n) * kk);
  be.download(ub.p, m * kk, uh.data());
  be.download(vb.p, n * kk, vh.data());

  SvdResult res;
  res.k = k;
  res.n_iter = it;
  res.u.assign(static_cast<size_t>(m) * k, 0.0);
  res.v.assign(static_cast<size_t>(n) * k, 0.0);
  res.s.assign(k, 0.0);
  for (int j = 0; j < kk; ++j) {
    const bool null_dir = !(w[j] > floor_s && w[j] > 0.0);
    res.s[j] = null_dir ? 0.0 : w[j];
    int64_t arg = 0;  // svd_flip: the largest |u| of the column made positive
    for (int64_t i = 1; i < m; ++i)
      if (std::fabs(uh[i * kk + j]) > std::fabs(uh[arg * kk + j])) arg = i;
    const double sign = uh[arg * kk + j] < 0 ? -1.0 : 1.0;
    for (int64_t i = 0; i < m; ++i) res.u[i * k + j] = sign * uh[i * kk + j];
    for (int64_t i = 0; i < n; ++i) res.v[i * k + j] = null_dir ? 0.0 : sign * vh[i * kk + j];
  }
  return res;
}

}  // namespace cnnvis
