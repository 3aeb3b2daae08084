#include "cluster/bicluster.hpp"
#include "common/errors.hpp"
#include "common/simd.hpp"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <stdexcept>

namespace cnnvis {

// ===================================================================================================
// CPU kernels. The products with the thin matrix are register-tiled (R rows × 2 vectors of
// accumulators); every kernel is compiled once per CPU path and dispatched as common/simd.hpp says.

namespace {

using simd::Vec;

constexpr int64_t kColBlock = 1024;  // columns summed in T before adding into double
constexpr int64_t kFlushRows = 64;   // rows of A^T w summed in T before adding into double

// y (R×lp, double) += a (R rows of length n, stride n) · xs (n×lp, T) on the NV·lanes columns from c0:
// accumulated in T over column blocks of kColBlock, in double across blocks.
template <typename T, int R, int NV, int B>
struct AxChunk {
  [[gnu::always_inline]] static inline void run(const T* a, int64_t n, const T* xs, int lp, int c0, double* y) {
    using V = typename Vec<T, B>::type;
    constexpr int L = Vec<T, B>::lanes;
    for (int64_t j0 = 0; j0 < n; j0 += kColBlock) {
      const int64_t j1 = std::min(n, j0 + kColBlock);
      V acc[R][NV];
      for (int r = 0; r < R; ++r)
        for (int v = 0; v < NV; ++v) acc[r][v] = V{};
      for (int64_t j = j0; j < j1; ++j) {
        const T* xr = xs + j * lp + c0;
        V x[NV];
        for (int v = 0; v < NV; ++v) x[v] = simd::load<V>(xr + v * L);
        for (int r = 0; r < R; ++r) {
          const T av = a[r * n + j];
          for (int v = 0; v < NV; ++v) acc[r][v] += av * x[v];
        }
      }
      for (int r = 0; r < R; ++r)
        for (int v = 0; v < NV; ++v)
          for (int e = 0; e < L; ++e) y[r * lp + c0 + v * L + e] += acc[r][v][e];
    }
  }
};

// zf (n×lp, T) += a^T (R rows) · wt (R×lp, T), on the NV·lanes columns from c0.
template <typename T, int R, int NV, int B>
struct AtwChunk {
  [[gnu::always_inline]] static inline void run(const T* a, int64_t n, const T* wt, int lp, int c0, T* zf) {
    using V = typename Vec<T, B>::type;
    constexpr int L = Vec<T, B>::lanes;
    V wr[R][NV];
    for (int r = 0; r < R; ++r)
      for (int v = 0; v < NV; ++v) wr[r][v] = simd::load<V>(wt + r * lp + c0 + v * L);
    for (int64_t j = 0; j < n; ++j) {
      T* zr = zf + j * lp + c0;
      V s[NV];
      for (int v = 0; v < NV; ++v) s[v] = simd::load<V>(zr + v * L);
      for (int r = 0; r < R; ++r) {
        const T av = a[r * n + j];
        for (int v = 0; v < NV; ++v) s[v] += av * wr[r][v];
      }
      for (int v = 0; v < NV; ++v) simd::store(zr + v * L, s[v]);
    }
  }
};

constexpr int kTileRows = 4;

template <typename T>
auto pick_ax(int rows) { return simd::pick_row_tile<AxChunk, T, int64_t, double>(rows); }
template <typename T>
auto pick_atw(int rows) { return simd::pick_row_tile<AtwChunk, T, int64_t, T>(rows); }

// Row partitions: a fixed split that depends on the shape only (not on the thread count), each with its
// own column accumulators, added in order, so results are reproducible on any number of threads. A
// single partition runs without a parallel region: on shared cores idle OpenMP workers spinning at
// barriers cost more than small passes gain.
int64_t n_partitions(int64_t rows, int64_t per_partition_bytes) {
  int64_t p = std::min<int64_t>(16, std::max<int64_t>(1, rows / 1024));
  const int64_t budget = int64_t(256) << 20;
  while (p > 1 && p * per_partition_bytes > budget) --p;
  return p;
}

// One pass over the rows of A in tiles of kTileRows: y_tile = A_tile xs (when xs is given), then
// on_tile(i0, rows, y_tile, w_tile) fills w_tile (rows×lp, T), and z += A_tile^T w_tile (when want_z).
// Returns z (cols×lp, double) summed over the partitions; each partition's extra (nextra doubles,
// filled by on_tile through its last argument) is summed into extra_out.
template <typename T, typename OnTile>
std::vector<double> run_pass(const T* a, int64_t m, int64_t n, int lp, const T* xs, bool want_z, int nextra,
                             double* extra_out, OnTile&& on_tile) {
  const int64_t nparts = n_partitions(m, want_z ? n * lp * int64_t(sizeof(T) + sizeof(double)) : 0);
  std::vector<double> z(want_z ? static_cast<size_t>(n) * lp : 0, 0.0);
  std::vector<std::vector<double>> zparts(nparts);
  std::vector<std::vector<double>> extras(nparts, std::vector<double>(nextra, 0.0));
#pragma omp parallel for schedule(dynamic, 1) if (nparts > 1)
  for (int64_t part = 0; part < nparts; ++part) {
    const int64_t i_begin = m * part / nparts, i_end = m * (part + 1) / nparts;
    std::vector<T> zf(want_z ? static_cast<size_t>(n) * lp : 0, T(0));
    std::vector<double> zd(want_z ? static_cast<size_t>(n) * lp : 0, 0.0);
    std::vector<double> ytile(static_cast<size_t>(kTileRows) * lp);
    std::vector<T> wtile(static_cast<size_t>(kTileRows) * lp);
    int64_t pending = 0;
    for (int64_t i0 = i_begin; i0 < i_end; i0 += kTileRows) {
      const int rows = static_cast<int>(std::min<int64_t>(kTileRows, i_end - i0));
      const T* at = a + i0 * n;
      if (xs) {
        std::fill(ytile.begin(), ytile.end(), 0.0);
        pick_ax<T>(rows)(at, n, xs, lp, ytile.data());
      }
      std::fill(wtile.begin(), wtile.end(), T(0));
      on_tile(i0, rows, ytile.data(), wtile.data(), extras[part].data());
      if (want_z) {
        pick_atw<T>(rows)(at, n, wtile.data(), lp, zf.data());
        pending += rows;
        if (pending >= kFlushRows || i0 + rows >= i_end) {
          for (size_t q = 0; q < zf.size(); ++q) zd[q] += zf[q], zf[q] = T(0);
          pending = 0;
        }
      }
    }
    zparts[part] = std::move(zd);
  }
  for (int64_t part = 0; part < nparts; ++part) {
    if (want_z)
      for (size_t q = 0; q < z.size(); ++q) z[q] += zparts[part][q];
    for (int e = 0; e < nextra; ++e) extra_out[e] += extras[part][e];
  }
  return z;
}

using simd::padded_width;

// Row kernels of the normalisation passes, in double (sums over whole rows), vectorised with omp simd.
struct SumsRow {
  template <class Isa, typename T>
  [[gnu::always_inline]] static inline double run(const T* row, int64_t n, double* col, double* mn, int64_t* bad) {
    double rs = 0.0, lo = *mn;
    int64_t nb = 0;
#pragma omp simd reduction(+ : rs, nb) reduction(min : lo)
    for (int64_t j = 0; j < n; ++j) {
      const double x = row[j];
      nb += !(x - x == 0.0);  // NaN or ±inf (x - x is NaN for both); std::isfinite blocks vectorisation
      lo = std::min(lo, x);
      rs += x;
      col[j] += x;
    }
    *mn = lo;
    *bad += nb;
    return rs;
  }
};
struct SinkhornRow {
  template <class Isa, typename T>
  [[gnu::always_inline]] static inline double run(const T* row, int64_t n, double shift, double target,
                                                  const double* s, double* r, double* v) {
    double u = 0.0, f = 0.0;
#pragma omp simd reduction(+ : u, f)
    for (int64_t j = 0; j < n; ++j) {
      const double t = (static_cast<double>(row[j]) + shift) * s[j];
      u += t;
      f += t * t;
    }
    const double ri = u > 0.0 ? target / u : 0.0;
    *r = ri;
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) v[j] += ri * (static_cast<double>(row[j]) + shift);
    return ri * ri * f;
  }
};
template <typename T>
double sums_row(const T* row, int64_t n, double* col, double* mn, int64_t* bad) {
  return simd::dispatch<SumsRow, double>(row, n, col, mn, bad);
}
template <typename T>
double sinkhorn_row(const T* row, int64_t n, double shift, double target, const double* s, double* r, double* v) {
  return simd::dispatch<SinkhornRow, double>(row, n, shift, target, s, r, v);
}

// ===================================================================================================

template <typename T>
class CpuMatrix final : public MatrixBackend {
 public:
  CpuMatrix(const T* a, int64_t m, int64_t n) : a_(a), w_(a), m_(m), n_(n) {}

  int64_t rows() const override { return m_; }
  int64_t cols() const override { return n_; }
  double* alloc(int64_t count) override { return new double[std::max<int64_t>(count, 1)](); }
  void release(double* p) override { delete[] p; }
  void upload(const double* host, int64_t count, double* dst) override { std::memcpy(dst, host, count * sizeof(double)); }
  void download(const double* src, int64_t count, double* host) override { std::memcpy(host, src, count * sizeof(double)); }
  void copy(const double* src, int64_t count, double* dst) override { std::memcpy(dst, src, count * sizeof(double)); }
  void gram(const double* y, int64_t len, int l, double* g) override { host_gram(y, len, l, g); }
  void mul_small(const double* y, int64_t len, int l, const double* s, int l2, double* out) override {
    host_mul_small(y, len, l, s, l2, out);
  }

  void first_pass(double* min_value, bool* finite, double* row_sums, double* col_sums) override {
    const int64_t nparts = n_partitions(m_, n_ * 8);
    std::vector<std::vector<double>> cparts(nparts);
    std::vector<double> mins(nparts, std::numeric_limits<double>::infinity());
    std::vector<int64_t> bad(nparts, 0);
#pragma omp parallel for schedule(dynamic, 1) if (nparts > 1)
    for (int64_t part = 0; part < nparts; ++part) {
      const int64_t i_begin = m_ * part / nparts, i_end = m_ * (part + 1) / nparts;
      std::vector<double> cp(n_, 0.0);
      double mn = std::numeric_limits<double>::infinity();
      int64_t nb = 0;
      for (int64_t i = i_begin; i < i_end; ++i)
        row_sums[i] = sums_row(a_ + i * n_, n_, cp.data(), &mn, &nb);
      cparts[part] = std::move(cp);
      mins[part] = mn;
      bad[part] = nb;
    }
    std::fill(col_sums, col_sums + n_, 0.0);
    double mn = std::numeric_limits<double>::infinity();
    int64_t nb = 0;
    for (int64_t part = 0; part < nparts; ++part) {
      for (int64_t j = 0; j < n_; ++j) col_sums[j] += cparts[part][j];
      mn = std::min(mn, mins[part]);
      nb += bad[part];
    }
    *min_value = mn;
    *finite = nb == 0;
  }

  void sinkhorn_pass(double shift, double target, const double* s, double* r, double* v, double* fro2) override {
    const int64_t nparts = n_partitions(m_, n_ * 8);
    std::vector<std::vector<double>> vparts(nparts);
    std::vector<double> fparts(nparts, 0.0);
#pragma omp parallel for schedule(dynamic, 1) if (nparts > 1)
    for (int64_t part = 0; part < nparts; ++part) {
      const int64_t i_begin = m_ * part / nparts, i_end = m_ * (part + 1) / nparts;
      std::vector<double> vp(n_, 0.0);
      double fp = 0.0;
      for (int64_t i = i_begin; i < i_end; ++i) fp += sinkhorn_row(a_ + i * n_, n_, shift, target, s, &r[i], vp.data());
      vparts[part] = std::move(vp);
      fparts[part] = fp;
    }
    std::fill(v, v + n_, 0.0);
    double f = 0.0;
    for (int64_t part = 0; part < nparts; ++part) {
      for (int64_t j = 0; j < n_; ++j) v[j] += vparts[part][j];
      f += fparts[part];
    }
    *fro2 = f;
  }

  void make_log(double shift, double* row_sums, double* col_sums) override {
    log_.assign(static_cast<size_t>(m_) * n_, T(0));
    const int64_t nparts = n_partitions(m_, n_ * 8);
    std::vector<std::vector<double>> cparts(nparts);
#pragma omp parallel for schedule(dynamic, 1) if (nparts > 1)
    for (int64_t part = 0; part < nparts; ++part) {
      const int64_t i_begin = m_ * part / nparts, i_end = m_ * (part + 1) / nparts;
      std::vector<double> cp(n_, 0.0);
      for (int64_t i = i_begin; i < i_end; ++i) {
        double rs = 0.0;
        for (int64_t j = 0; j < n_; ++j) {
          const double lv = std::log(static_cast<double>(a_[i * n_ + j]) + shift);
          log_[i * n_ + j] = static_cast<T>(lv);
          rs += lv;
          cp[j] += lv;
        }
        row_sums[i] = rs;
      }
      cparts[part] = std::move(cp);
    }
    std::fill(col_sums, col_sums + n_, 0.0);
    for (int64_t part = 0; part < nparts; ++part)
      for (int64_t j = 0; j < n_; ++j) col_sums[j] += cparts[part][j];
    w_ = log_.data();
  }

  void set_affine(const double* dr, const double* dc, const double* p, const double* q) override {
    dr_.assign(m_, 1.0);
    dc_.assign(n_, 1.0);
    p_.assign(m_, 0.0);
    q_.assign(n_, 0.0);
    if (dr) std::copy(dr, dr + m_, dr_.begin());
    if (dc) std::copy(dc, dc + n_, dc_.begin());
    if (p) std::copy(p, p + m_, p_.begin());
    if (q) std::copy(q, q + n_, q_.begin());
  }

  void power_pass(const double* x, int l, double* y, double* z) override {
    if (dr_.empty()) set_affine(nullptr, nullptr, nullptr, nullptr);
    const int lp = padded_width(l, sizeof(T));
    std::vector<T> xs(static_cast<size_t>(n_) * lp, T(0));
    std::vector<double> colsum(l, 0.0), qx(l, 0.0);
    for (int64_t j = 0; j < n_; ++j)
      for (int c = 0; c < l; ++c) {
        const double v = dc_[j] * x[j * l + c];
        xs[j * lp + c] = static_cast<T>(v);
        colsum[c] += v;
        qx[c] += q_[j] * v;
      }
    // extras: Σ_i p_i w_i (l values) then Σ_i w_i (l values)
    std::vector<double> extra(2 * l, 0.0);
    const bool want_z = z != nullptr;
    std::vector<double> zd = run_pass<T>(
        w_, m_, n_, lp, xs.data(), want_z, 2 * l, extra.data(),
        [&](int64_t i0, int rows, const double* yt, T* wt, double* ex) {
          for (int r = 0; r < rows; ++r) {
            const int64_t i = i0 + r;
            for (int c = 0; c < l; ++c) {
              const double yv = yt[r * lp + c] + p_[i] * colsum[c] + qx[c];
              y[i * l + c] = dr_[i] * yv;
              if (want_z) {
                const double wv = dr_[i] * dr_[i] * yv;
                wt[r * lp + c] = static_cast<T>(wv);
                ex[c] += p_[i] * wv;
                ex[l + c] += wv;
              }
            }
          }
        });
    if (!want_z) return;
    for (int64_t j = 0; j < n_; ++j)
      for (int c = 0; c < l; ++c) z[j * l + c] = dc_[j] * (zd[j * lp + c] + extra[c] + q_[j] * extra[l + c]);
  }

  void project(const double* x, const double* y, int c, double* out_r, double* out_c) override {
    const int lp = padded_width(c, sizeof(T));
    std::vector<T> xs(static_cast<size_t>(n_) * lp, T(0));
    for (int64_t j = 0; j < n_; ++j)
      for (int q = 0; q < c; ++q) xs[j * lp + q] = static_cast<T>(x[j * c + q]);
    std::vector<double> zd = run_pass<T>(a_, m_, n_, lp, xs.data(), true, 0, nullptr,
                                         [&](int64_t i0, int rows, const double* yt, T* wt, double*) {
                                           for (int r = 0; r < rows; ++r)
                                             for (int q = 0; q < c; ++q) {
                                               out_r[(i0 + r) * c + q] = yt[r * lp + q];
                                               wt[r * lp + q] = static_cast<T>(y[(i0 + r) * c + q]);
                                             }
                                         });
    for (int64_t j = 0; j < n_; ++j)
      for (int q = 0; q < c; ++q) out_c[j * c + q] = zd[j * lp + q];
  }

 private:
  const T* a_;  // the caller's matrix
  const T* w_;  // the working matrix: a_ or log_
  int64_t m_, n_;
  std::vector<T> log_;
  std::vector<double> dr_, dc_, p_, q_;
};

}  // namespace

std::unique_ptr<MatrixBackend> make_cpu_matrix(const float* a, int64_t rows, int64_t cols) {
  return std::make_unique<CpuMatrix<float>>(a, rows, cols);
}
std::unique_ptr<MatrixBackend> make_cpu_matrix(const double* a, int64_t rows, int64_t cols) {
  return std::make_unique<CpuMatrix<double>>(a, rows, cols);
}

// ===================================================================================================
// normalisations and the two algorithms (device independent)

namespace {
double inv_sqrt_or_zero(double s) { return s > 0.0 ? 1.0 / std::sqrt(s) : 0.0; }
}  // namespace

FirstPass first_pass(MatrixBackend& mb) {
  FirstPass fp;
  fp.row_sums.resize(mb.rows());
  fp.col_sums.resize(mb.cols());
  bool finite = true;
  mb.first_pass(&fp.min_value, &finite, fp.row_sums.data(), fp.col_sums.data());
  if (!finite) throw NonFiniteError("");
  return fp;
}

void scale_factors(const FirstPass& fp, double shift, std::vector<double>& r, std::vector<double>& c) {
  const int64_t m = fp.row_sums.size(), n = fp.col_sums.size();
  r.resize(m);
  c.resize(n);
  for (int64_t i = 0; i < m; ++i) r[i] = inv_sqrt_or_zero(fp.row_sums[i] + shift * n);
  for (int64_t j = 0; j < n; ++j) c[j] = inv_sqrt_or_zero(fp.col_sums[j] + shift * m);
}

int bistochastic_factors(MatrixBackend& mb, double shift, int max_iter, double tol, std::vector<double>& r,
                         std::vector<double>& c) {
  const int64_t m = mb.rows(), n = mb.cols();
  const double row_target = std::sqrt(static_cast<double>(n) / m), col_target = std::sqrt(static_cast<double>(m) / n);
  r.assign(m, 1.0);
  c.assign(n, 1.0);
  std::vector<double> v(n);
  for (int t = 1; t <= max_iter; ++t) {
    // Rows are scaled to their target inside the pass; the columns here. The column step changes X_half
    // by at most max_j |1 − γ_j| · ‖X_half‖_F, and the row step of the next pass by about as much.
    double fro2 = 0.0;
    mb.sinkhorn_pass(shift, row_target, c.data(), r.data(), v.data(), &fro2);
    double worst = 0.0;
    for (int64_t j = 0; j < n; ++j) {
      const double colsum = c[j] * v[j];
      const double gamma = colsum > 0.0 ? col_target / colsum : 0.0;
      if (colsum > 0.0) worst = std::max(worst, std::fabs(1.0 - gamma));
      c[j] = colsum > 0.0 ? c[j] * gamma : 0.0;
    }
    if (2.0 * worst * std::sqrt(fro2) < tol) return t;
  }
  return max_iter;
}

void log_terms(MatrixBackend& mb, double shift, std::vector<double>& p, std::vector<double>& q) {
  const int64_t m = mb.rows(), n = mb.cols();
  std::vector<double> rs(m), cs(n);
  mb.make_log(shift, rs.data(), cs.data());
  double total = 0.0;
  for (double v : rs) total += v;
  const double avg = total / (static_cast<double>(m) * n);
  p.resize(m);
  q.resize(n);
  for (int64_t i = 0; i < m; ++i) p[i] = avg - rs[i] / n;
  for (int64_t j = 0; j < n; ++j) q[j] = -cs[j] / m;
}

namespace {

// CNNVIS_CLUSTER_PROFILE=1 prints the time of each stage to stderr (for the benchmarks).
struct StageClock {
  bool on = std::getenv("CNNVIS_CLUSTER_PROFILE") != nullptr;
  std::chrono::steady_clock::time_point t = std::chrono::steady_clock::now();
  void lap(const char* what) {
    if (!on) return;
    const auto now = std::chrono::steady_clock::now();
    std::fprintf(stderr, "[cnnvis cluster] %-14s %8.2f ms\n", what,
                 std::chrono::duration<double, std::milli>(now - t).count());
    t = now;
  }
};

SvdResult run_svd(MatrixBackend& mb, int k, const SpectralOptions& opt) {
  SvdOptions so;
  so.k = k;
  so.n_oversamples = opt.n_oversamples;
  so.max_iter = opt.max_power_iter >= 0 ? opt.max_power_iter : default_power_iterations(k, mb.rows(), mb.cols());
  so.min_iter = std::min(opt.min_power_iter, so.max_iter);
  so.tol = opt.svd_tol;
  so.seed = opt.seed;
  return randomized_svd(mb, so);
}

uint64_t derive_seed(uint64_t seed, uint64_t stream) {
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + stream;
  return splitmix64(s);
}

// Squared error of the best k-level piecewise-constant fit of a vector found by 1-D k-means: sorted
// values, centers started at the k quantiles, Lloyd iterations on the sorted order where each cluster is
// a run between two midpoints (binary search + prefix sums: O(k log n) per iteration).
double piecewise_error(const double* x, int64_t n, int k) {
  std::vector<double> v(x, x + n);
  std::sort(v.begin(), v.end());
  k = static_cast<int>(std::min<int64_t>(k, n));
  std::vector<double> prefix(n + 1, 0.0);
  for (int64_t i = 0; i < n; ++i) prefix[i + 1] = prefix[i] + v[i];
  std::vector<double> c(k);
  for (int q = 0; q < k; ++q) c[q] = v[std::min<int64_t>(n - 1, (2 * q + 1) * n / (2 * k))];
  std::vector<int64_t> lo(k + 1), prev;
  for (int it = 0; it < 300; ++it) {
    lo[0] = 0;
    lo[k] = n;
    for (int q = 1; q < k; ++q) {
      const double mid = 0.5 * (c[q - 1] + c[q]);
      lo[q] = std::max(lo[q - 1], static_cast<int64_t>(std::upper_bound(v.begin(), v.end(), mid) - v.begin()));
    }
    if (lo == prev) break;
    prev = lo;
    for (int q = 0; q < k; ++q)
      if (lo[q + 1] > lo[q]) c[q] = (prefix[lo[q + 1]] - prefix[lo[q]]) / (lo[q + 1] - lo[q]);
    std::sort(c.begin(), c.end());
  }
  double err = 0.0;
  for (int q = 0; q < k; ++q)
    for (int64_t i = lo[q]; i < lo[q + 1]; ++i) err += (v[i] - c[q]) * (v[i] - c[q]);
  return err;
}

// _fit_best_piecewise: the n_best of the vectors (columns of vecs, len × k, from column first) whose
// piecewise-constant approximation with n_clusters levels is closest; returned len × n_best.
std::vector<double> fit_best_piecewise(const std::vector<double>& vecs, int64_t len, int k, int first, int n_best,
                                       int n_clusters) {
  const int count = k - first;
  std::vector<double> dist(count);
#pragma omp parallel for schedule(dynamic, 1)
  for (int v = 0; v < count; ++v) {
    std::vector<double> col(len);
    for (int64_t i = 0; i < len; ++i) col[i] = vecs[i * k + first + v];
    dist[v] = piecewise_error(col.data(), len, n_clusters);
  }
  std::vector<int> order(count);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return dist[a] < dist[b]; });
  std::vector<double> best(static_cast<size_t>(len) * n_best);
  for (int b = 0; b < n_best; ++b)
    for (int64_t i = 0; i < len; ++i) best[i * n_best + b] = vecs[i * k + first + order[b]];
  return best;
}

}  // namespace

BiclusterLabels spectral_cocluster(MatrixBackend& mb, const CoclusterOptions& options, const KMeansFn& km) {
  const int64_t m = mb.rows(), n = mb.cols();
  const int n_clusters = options.n_clusters;
  const SpectralOptions& opt = options.spectral;
  BiclusterLabels out;
  StageClock clock;
  const FirstPass fp = first_pass(mb);
  const double shift = nonnegative_shift(fp, 0.0);
  if (n_clusters <= 1) {  // one bicluster: every row and column in it (scikit-learn has no embedding here)
    out.rows.assign(m, 0);
    out.cols.assign(n, 0);
    return out;
  }
  std::vector<double> r, c;
  scale_factors(fp, shift, r, c);
  std::vector<double> p(m, shift);
  mb.set_affine(r.data(), c.data(), shift != 0.0 ? p.data() : nullptr, nullptr);
  clock.lap("normalise");
  const int n_sv = 1 + static_cast<int>(std::ceil(std::log2(static_cast<double>(n_clusters))));
  const SvdResult svd = run_svd(mb, n_sv, opt);
  clock.lap("svd");
  out.svd_iterations = svd.n_iter;
  const int d = n_sv - 1;  // the first singular pair is discarded
  std::vector<double> z(static_cast<size_t>(m + n) * d);
  for (int64_t i = 0; i < m; ++i)
    for (int q = 0; q < d; ++q) z[i * d + q] = r[i] * svd.u[i * n_sv + 1 + q];
  for (int64_t j = 0; j < n; ++j)
    for (int q = 0; q < d; ++q) z[(m + j) * d + q] = c[j] * svd.v[j * n_sv + 1 + q];
  const std::vector<int64_t> labels = km(z.data(), m + n, d, n_clusters, derive_seed(opt.seed, 1));
  clock.lap("kmeans");
  out.rows.assign(labels.begin(), labels.begin() + m);
  out.cols.assign(labels.begin() + m, labels.end());
  return out;
}

BiclusterLabels spectral_bicluster(MatrixBackend& mb, const BiclusterOptions& options, const KMeansFn& km) {
  const int64_t m = mb.rows(), n = mb.cols();
  const BiclusterMethod method = options.method;
  const int n_row_clusters = options.n_row_clusters, n_col_clusters = options.n_col_clusters;
  const int n_components = options.n_components, n_best = options.n_best;
  const SpectralOptions& opt = options.spectral;
  if (n_best > n_components) throw InvalidArgument("n_best must be <= n_components");
  BiclusterLabels out;
  StageClock clock;
  int n_sv = n_components;
  int discard = 1;
  if (method == BiclusterMethod::kLog) {
    const double shift = nonnegative_shift(first_pass(mb), 1.0);
    std::vector<double> p, q;
    log_terms(mb, shift, p, q);
    mb.set_affine(nullptr, nullptr, p.data(), q.data());
    discard = 0;
  } else {
    const FirstPass fp = first_pass(mb);
    const double shift = nonnegative_shift(fp, 0.0);
    std::vector<double> r, c;
    if (method == BiclusterMethod::kScale)
      scale_factors(fp, shift, r, c);
    else
      bistochastic_factors(mb, shift, 1000, 1e-5, r, c);
    std::vector<double> p(m, shift);
    mb.set_affine(r.data(), c.data(), shift != 0.0 ? p.data() : nullptr, nullptr);
    n_sv += 1;
  }
  clock.lap("normalise");
  const SvdResult svd = run_svd(mb, n_sv, opt);
  out.svd_iterations = svd.n_iter;
  clock.lap("svd");
  const std::vector<double> best_u = fit_best_piecewise(svd.u, m, n_sv, discard, n_best, n_row_clusters);
  const std::vector<double> best_v = fit_best_piecewise(svd.v, n, n_sv, discard, n_best, n_col_clusters);
  clock.lap("piecewise");
  // _project_and_cluster on the original matrix: rows by A·best_v, columns by A^T·best_u.
  std::vector<double> proj_r(static_cast<size_t>(m) * n_best), proj_c(static_cast<size_t>(n) * n_best);
  mb.project(best_v.data(), best_u.data(), n_best, proj_r.data(), proj_c.data());
  clock.lap("project");
  out.rows = km(proj_r.data(), m, n_best, n_row_clusters, derive_seed(opt.seed, 4));
  out.cols = km(proj_c.data(), n, n_best, n_col_clusters, derive_seed(opt.seed, 5));
  clock.lap("kmeans");
  return out;
}

KMeansFn cpu_kmeans_fn(const KMeansOptions& base) {
  return [base](const double* x, int64_t n, int d, int k, uint64_t seed) {
    KMeansOptions o = base;
    o.k = k;
    o.seed = seed;
    return kmeans_cpu(x, n, d, o).labels;
  };
}

}  // namespace cnnvis
