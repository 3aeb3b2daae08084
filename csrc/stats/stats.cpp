// CPU per-class statistics kernel (see stats.hpp): one read of every activation, sums in double.
#include "stats/stats.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define CNNVIS_X86_DISPATCH 1
#include <immintrin.h>
#endif

namespace cnnvis {

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

struct RowStat {
  double sum;  // spatial sum, in double (exact enough that r keeps float64 precision for float32 data)
  double max;  // spatial max
};

// Portable row reduction: four independent sums so the add latency does not serialise the loop.
template <class T>
inline RowStat row_generic(const T* p, int64_t s) {
  double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  T m = p[0];
  int64_t i = 0;
  for (; i + 4 <= s; i += 4) {
    a0 += double(p[i]);
    a1 += double(p[i + 1]);
    a2 += double(p[i + 2]);
    a3 += double(p[i + 3]);
    m = std::max(m, std::max(std::max(p[i], p[i + 1]), std::max(p[i + 2], p[i + 3])));
  }
  for (; i < s; ++i) {
    a0 += double(p[i]);
    m = std::max(m, p[i]);
  }
  // A NaN may be lost by std::max, never by the sum: the caller's finiteness check looks at the sum.
  return {(a0 + a1) + (a2 + a3), double(m)};
}

#ifdef CNNVIS_X86_DISPATCH
__attribute__((target("avx2"))) inline double hsum(__m256d v) {
  __m128d lo = _mm256_castpd256_pd128(v), hi = _mm256_extractf128_pd(v, 1);
  lo = _mm_add_pd(lo, hi);
  return _mm_cvtsd_f64(_mm_add_sd(lo, _mm_unpackhi_pd(lo, lo)));
}

__attribute__((target("avx2"))) inline float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}

__attribute__((target("avx2"))) inline double hmax(__m256d v) {
  __m128d m = _mm_max_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
  return _mm_cvtsd_f64(_mm_max_sd(m, _mm_unpackhi_pd(m, m)));
}

// 16 floats per step: widened to double in four independent accumulators (memory-bound, not add-bound).
__attribute__((target("avx2"))) inline RowStat row_avx2(const float* p, int64_t s) {
  __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
  __m256 m0 = _mm256_set1_ps(-std::numeric_limits<float>::infinity()), m1 = m0;
  int64_t i = 0;
  for (; i + 16 <= s; i += 16) {
    __m256 u = _mm256_loadu_ps(p + i), v = _mm256_loadu_ps(p + i + 8);
    m0 = _mm256_max_ps(m0, u);
    m1 = _mm256_max_ps(m1, v);
    a0 = _mm256_add_pd(a0, _mm256_cvtps_pd(_mm256_castps256_ps128(u)));
    a1 = _mm256_add_pd(a1, _mm256_cvtps_pd(_mm256_extractf128_ps(u, 1)));
    a2 = _mm256_add_pd(a2, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    a3 = _mm256_add_pd(a3, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
  }
  double sum = hsum(_mm256_add_pd(_mm256_add_pd(a0, a1), _mm256_add_pd(a2, a3)));
  float m = hmax(_mm256_max_ps(m0, m1));
  for (; i < s; ++i) {
    sum += double(p[i]);
    m = std::max(m, p[i]);
  }
  return {sum, double(m)};
}

__attribute__((target("avx2"))) inline RowStat row_avx2(const double* p, int64_t s) {
  __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
  __m256d m0 = _mm256_set1_pd(kNegInf), m1 = m0;
  int64_t i = 0;
  for (; i + 16 <= s; i += 16) {
    __m256d u0 = _mm256_loadu_pd(p + i), u1 = _mm256_loadu_pd(p + i + 4);
    __m256d u2 = _mm256_loadu_pd(p + i + 8), u3 = _mm256_loadu_pd(p + i + 12);
    a0 = _mm256_add_pd(a0, u0);
    a1 = _mm256_add_pd(a1, u1);
    a2 = _mm256_add_pd(a2, u2);
    a3 = _mm256_add_pd(a3, u3);
    m0 = _mm256_max_pd(m0, _mm256_max_pd(u0, u1));
    m1 = _mm256_max_pd(m1, _mm256_max_pd(u2, u3));
  }
  double sum = hsum(_mm256_add_pd(_mm256_add_pd(a0, a1), _mm256_add_pd(a2, a3)));
  double m = hmax(_mm256_max_pd(m0, m1));
  for (; i < s; ++i) {
    sum += p[i];
    m = std::max(m, p[i]);
  }
  return {sum, m};
}

// GCC 12's own AVX-512 headers trip -Wmaybe-uninitialized (_mm512_undefined_ps); nothing here is.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
__attribute__((target("avx512f"))) inline __m256 hi(__m512 v) {
  return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
}

// 32 floats per step with 512-bit vectors; masked loads for the tail (no read past the row).
__attribute__((target("avx512f"))) inline RowStat row_avx512(const float* p, int64_t s) {
  __m512d a0 = _mm512_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
  __m512 m0 = _mm512_set1_ps(-std::numeric_limits<float>::infinity()), m1 = m0;
  int64_t i = 0;
  for (; i + 32 <= s; i += 32) {
    __m512 u = _mm512_loadu_ps(p + i), v = _mm512_loadu_ps(p + i + 16);
    m0 = _mm512_max_ps(m0, u);
    m1 = _mm512_max_ps(m1, v);
    a0 = _mm512_add_pd(a0, _mm512_cvtps_pd(_mm512_castps512_ps256(u)));
    a1 = _mm512_add_pd(a1, _mm512_cvtps_pd(hi(u)));
    a2 = _mm512_add_pd(a2, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
    a3 = _mm512_add_pd(a3, _mm512_cvtps_pd(hi(v)));
  }
  for (; i < s; i += 16) {
    const __mmask16 k = s - i >= 16 ? __mmask16(0xffff) : __mmask16((1u << (s - i)) - 1);
    __m512 u = _mm512_maskz_loadu_ps(k, p + i);  // masked lanes read as 0: no effect on the sum
    m0 = _mm512_mask_max_ps(m0, k, m0, u);
    a0 = _mm512_add_pd(a0, _mm512_cvtps_pd(_mm512_castps512_ps256(u)));
    a1 = _mm512_add_pd(a1, _mm512_cvtps_pd(hi(u)));
  }
  const double sum = _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(a0, a1), _mm512_add_pd(a2, a3)));
  return {sum, double(_mm512_reduce_max_ps(_mm512_max_ps(m0, m1)))};
}

__attribute__((target("avx512f"))) inline RowStat row_avx512(const double* p, int64_t s) {
  __m512d a0 = _mm512_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
  __m512d m0 = _mm512_set1_pd(kNegInf), m1 = m0;
  int64_t i = 0;
  for (; i + 32 <= s; i += 32) {
    __m512d u0 = _mm512_loadu_pd(p + i), u1 = _mm512_loadu_pd(p + i + 8);
    __m512d u2 = _mm512_loadu_pd(p + i + 16), u3 = _mm512_loadu_pd(p + i + 24);
    a0 = _mm512_add_pd(a0, u0);
    a1 = _mm512_add_pd(a1, u1);
    a2 = _mm512_add_pd(a2, u2);
    a3 = _mm512_add_pd(a3, u3);
    m0 = _mm512_max_pd(m0, _mm512_max_pd(u0, u1));
    m1 = _mm512_max_pd(m1, _mm512_max_pd(u2, u3));
  }
  for (; i < s; i += 8) {
    const __mmask8 k = s - i >= 8 ? __mmask8(0xff) : __mmask8((1u << (s - i)) - 1);
    __m512d u = _mm512_maskz_loadu_pd(k, p + i);
    m0 = _mm512_mask_max_pd(m0, k, m0, u);
    a0 = _mm512_add_pd(a0, u);
  }
  const double sum = _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(a0, a1), _mm512_add_pd(a2, a3)));
  return {sum, _mm512_reduce_max_pd(_mm512_max_pd(m0, m1))};
}


// Rows shorter than this run faster with 256-bit vectors (fewer masked steps and reduction levels).
constexpr int64_t kWideRow = 128;

// Means and maxima of `len` rows (row j at p + j * stride_c): one call per tile, the row code inlined.
template <class T>
__attribute__((target("avx512f"))) void rows_avx512(const T* p, int64_t stride_c, int64_t S, int64_t len,
                                                   double* r, double* m) {
  const double inv_s = 1.0 / double(S);
  for (int64_t j = 0; j < len; ++j) {
    const RowStat rs = row_avx512(p + j * stride_c, S);
    r[j] = rs.sum * inv_s, m[j] = rs.max;
  }
}
template <class T>
__attribute__((target("avx2"))) void rows_avx2(const T* p, int64_t stride_c, int64_t S, int64_t len, double* r,
                                               double* m) {
  const double inv_s = 1.0 / double(S);
  for (int64_t j = 0; j < len; ++j) {
    const RowStat rs = row_avx2(p + j * stride_c, S);
    r[j] = rs.sum * inv_s, m[j] = rs.max;
  }
}

#pragma GCC diagnostic pop

template <class T>
using RowsFn = void (*)(const T*, int64_t, int64_t, int64_t, double*, double*);

// The widest row code this CPU runs (chosen once); nullptr means the portable loop.
template <class T>
RowsFn<T> simd_rows(int64_t S) {
  static const bool avx512 = __builtin_cpu_supports("avx512f"), avx2 = __builtin_cpu_supports("avx2");
  if (avx512 && (S >= kWideRow || !avx2)) return rows_avx512<T>;
  return avx2 ? rows_avx2<T> : nullptr;
}
#define CNNVIS_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
template <class T>
using RowsFn = void (*)(const T*, int64_t, int64_t, int64_t, double*, double*);
template <class T>
RowsFn<T> simd_rows(int64_t) { return nullptr; }
#define CNNVIS_CLONES
#endif

// Rows shorter than this go through the inlined portable loop (an indirect call would cost more).
constexpr int64_t kSimdMinRow = 16;
// Rows this long dominate the cost: whole images are one channel tile (reads stay sequential). Shorter
// rows come in tiles of about kTileValues values of x per image (2 KiB of float32), so the state of one
// class for a tile (32 bytes a channel) stays in L1 while the images of that class pass.
constexpr int64_t kLongRow = 16;
constexpr int64_t kTileValues = 512;
// Images per group: a group is walked once per channel tile, in class order for short rows.
constexpr int64_t kImageGroup = 256;

struct BadRow {
  int64_t n = -1, c = -1;
  bool before(const BadRow& o) const { return o.n < 0 || (n >= 0 && (n < o.n || (n == o.n && c < o.c))); }
};

// Welford step of one image over `len` channels of its class (w = 1 / the class's new count), from the
// rows' means r and maxima m; a loop the compiler vectorises, built for several ISAs. Returns NaN iff some
// r is NaN or inf (r * 0 is NaN then), so the finiteness check costs no branch and no second read.
CNNVIS_CLONES double welford_step(double* __restrict mean, double* __restrict m2, double* __restrict mx,
                                  int64_t* __restrict act, const double* __restrict r,
                                  const double* __restrict m, int64_t len, double w) {
  double check = 0.0;
#pragma omp simd reduction(+ : check)
  for (int64_t j = 0; j < len; ++j) {
    const double d = r[j] - mean[j];
    mean[j] += d * w;
    m2[j] += d * (r[j] - mean[j]);
    mx[j] = mx[j] > m[j] ? mx[j] : m[j];
    act[j] += m[j] > 0.0 ? 1 : 0;
    check += r[j] * 0.0;
  }
  return check;
}

// The same step straight from one contiguous (N, C) activation row (r = m = x), with no staging.
template <class T>
inline double welford_step_row(double* __restrict mean, double* __restrict m2, double* __restrict mx,
                               int64_t* __restrict act, const T* __restrict x, int64_t len, double w) {
  double check = 0.0;
#pragma omp simd reduction(+ : check)
  for (int64_t j = 0; j < len; ++j) {
    const double v = double(x[j]);
    const double d = v - mean[j];
    mean[j] += d * w;
    m2[j] += d * (v - mean[j]);
    mx[j] = mx[j] > v ? mx[j] : v;
    act[j] += v > 0.0 ? 1 : 0;
    check += v * 0.0;
  }
  return check;
}
CNNVIS_CLONES double welford_step_row_f32(double* mean, double* m2, double* mx, int64_t* act, const float* x,
                                          int64_t len, double w) {
  return welford_step_row(mean, m2, mx, act, x, len, w);
}
CNNVIS_CLONES double welford_step_row_f64(double* mean, double* m2, double* mx, int64_t* act, const double* x,
                                          int64_t len, double w) {
  return welford_step_row(mean, m2, mx, act, x, len, w);
}
inline double welford_step_row_any(double* mean, double* m2, double* mx, int64_t* act, const float* x,
                                   int64_t len, double w) {
  return welford_step_row_f32(mean, m2, mx, act, x, len, w);
}
inline double welford_step_row_any(double* mean, double* m2, double* mx, int64_t* act, const double* x,
                                   int64_t len, double w) {
  return welford_step_row_f64(mean, m2, mx, act, x, len, w);
}

// Spatial mean r and max m of channels [c0, c0 + len) of one image.
template <class T>
void image_rows(const T* img, int64_t stride_c, int64_t S, int64_t c0, int64_t len, RowsFn<T> simd, double* r,
                double* m) {
  if (S == 1) {  // strided (N, C) input: r = m = x
    for (int64_t j = 0; j < len; ++j) r[j] = m[j] = double(img[(c0 + j) * stride_c]);
  } else if (simd) {
    simd(img + c0 * stride_c, stride_c, S, len, r, m);
  } else {
    const double inv_s = 1.0 / double(S);
    for (int64_t j = 0; j < len; ++j) {
      const RowStat rs = row_generic(img + (c0 + j) * stride_c, S);
      r[j] = rs.sum * inv_s, m[j] = rs.max;
    }
  }
}

// Error path only: the first channel of image n in [t0, t0 + len) whose row sum is not finite (NaN/inf
// in x, or a float64 sum overflowing).
template <class T>
void record_bad(const T* img, const ActivationView& x, int64_t t0, int64_t len, int64_t n, BadRow& bad) {
  for (int64_t c = t0; c < t0 + len; ++c) {
    if (!std::isfinite(row_generic(img + c * x.stride_c, x.s).sum)) {
      const BadRow here{n, c};
      if (here.before(bad)) bad = here;
      return;
    }
  }
}

// The next image's chunk of a tile (rows contiguous or strided by stride_c).
template <class T>
inline void prefetch_chunk(const T* p, int64_t len, const ActivationView& x) {
  const char* b = reinterpret_cast<const char*>(p);
  if (x.stride_c == x.s) {  // one contiguous span
    const int64_t bytes = len * x.s * int64_t(sizeof(T));
    for (int64_t o = 0; o < bytes; o += 64) __builtin_prefetch(b + o);
  } else {
    for (int64_t j = 0; j < len; ++j) __builtin_prefetch(p + j * x.stride_c);
  }
}

// Images [g0, g1) in class order (stable), so one class's state is reused by consecutive images.
// Long rows keep the natural order: their state is reused anyway, and sequential reads prefetch better.
void group_by_class(const int64_t* labels, int64_t g0, int64_t g1, bool sort, std::vector<int64_t>& order) {
  order.resize(g1 - g0);
  for (int64_t i = g0; i < g1; ++i) order[i - g0] = i;
  if (sort) std::stable_sort(order.begin(), order.end(), [labels](int64_t a, int64_t b) { return labels[a] < labels[b]; });
}

// One block of the work: images [n0, n1) x channels [c0, c1), Welford-accumulated into `acc`. Loops go
// image group -> channel tile -> images of the group (in class order for short rows): the state of the
// class at hand stays in L1 across its images, and the pages of x a group touches stay in the TLB.
// `cnt` (K) receives the block's class counts.
template <class T>
void accumulate_block(const ActivationView& x, const int64_t* labels, int64_t n0, int64_t n1, int64_t c0,
                      int64_t c1, ClassMoments& acc, int64_t* cnt, BadRow& bad) {
  const T* base = static_cast<const T*>(x.data);
  const int64_t C = x.c, K = acc.n_classes;
  const RowsFn<T> simd = x.s >= kSimdMinRow ? simd_rows<T>(x.s) : nullptr;
  const bool direct = x.s == 1 && x.stride_c == 1;  // welford straight from x
  const int64_t tile = x.s >= kLongRow ? c1 - c0 : std::max<int64_t>(16, kTileValues / x.s / 16 * 16);
  std::vector<double> r(direct ? 0 : std::min(tile, c1 - c0)), m(r.size());
  std::vector<int64_t> order, running(K);
  std::fill(cnt, cnt + K, 0);
  for (int64_t g0 = n0; g0 < n1; g0 += kImageGroup) {
    const int64_t g1 = std::min(n1, g0 + kImageGroup);
    group_by_class(labels, g0, g1, x.s < kLongRow, order);
    for (int64_t t0 = c0; t0 < c1; t0 += tile) {
      const int64_t len = std::min(tile, c1 - t0);
      std::copy(cnt, cnt + K, running.begin());  // each tile counts the group's images afresh
      for (size_t i = 0; i < order.size(); ++i) {
        const int64_t n = order[i], k = labels[n], o = k * C + t0;
        const double w = 1.0 / double(++running[k]);
        const T* img = base + n * x.stride_n;
        if (x.s < kLongRow && i + 1 < order.size())  // short chunks at scattered offsets: prefetch the next
          prefetch_chunk(base + order[i + 1] * x.stride_n + t0 * x.stride_c, len, x);
        double check;
        if (direct) {
          check = welford_step_row_any(acc.mean.data() + o, acc.m2.data() + o, acc.max.data() + o,
                                       acc.active.data() + o, img + t0, len, w);
        } else {
          image_rows(img, x.stride_c, x.s, t0, len, simd, r.data(), m.data());
          check = welford_step(acc.mean.data() + o, acc.m2.data() + o, acc.max.data() + o,
                               acc.active.data() + o, r.data(), m.data(), len, w);
        }
        if (check != check) record_bad(img, x, t0, len, n, bad);
      }
    }
    std::copy(running.begin(), running.end(), cnt);
  }
}

// Work (values of x) below which one thread does it all.
constexpr int64_t kParallelMin = int64_t(1) << 15;
constexpr double kMaxPartialBytes = 64.0 * (1 << 20);

// Splits [0, total) into `parts` near-equal ranges.
inline int64_t split_at(int64_t total, int parts, int i) { return total * i / parts; }

// How the batch is cut into blocks, one per thread. Image blocks (each a contiguous stretch of x, like a
// plain parallel sum) get private partials, merged in block order at the end; they measured fastest
// (1.15x vs 1.3x of a sum for (256, 256, 28, 28), 2 threads). Channel blocks share `out` (disjoint
// columns, no merge) and serve when the partials would be large or cost more than the data: many
// classes x channels, or few images.
struct Plan {
  int threads = 1, blocks = 1;
  bool by_channel = false;
};

Plan plan_blocks(int64_t N, int64_t C, int64_t S, int64_t K) {
  Plan p;
  p.threads = N * C * S >= kParallelMin ? std::max(1, omp_get_max_threads()) : 1;
  if (p.threads == 1) return p;
  const double partial_bytes = double(p.threads) * double(K * C) * 32.0;
  const double data_bytes = double(N) * double(C) * double(S) * 4.0;
  p.by_channel = partial_bytes > kMaxPartialBytes || data_bytes < 4.0 * partial_bytes || N < p.threads;
  p.blocks = int(std::max<int64_t>(1, std::min<int64_t>(p.threads, p.by_channel ? C : N)));
  return p;
}

template <class T>
StatsStatus class_moments_cpu_t(const ActivationView& x, const int64_t* labels, ClassMoments& out) {
  const int64_t N = x.n, C = x.c, K = out.n_classes;
  const Plan plan = plan_blocks(N, C, x.s, K);
  const int blocks = plan.blocks;
  std::vector<ClassMoments> partial(plan.by_channel ? 0 : blocks - 1);
  std::vector<std::vector<int64_t>> counts(blocks, std::vector<int64_t>(K, 0));
  std::vector<BadRow> bad(blocks);

#pragma omp parallel for num_threads(plan.threads) schedule(static, 1) if (plan.threads > 1)
  for (int b = 0; b < blocks; ++b) {
    if (plan.by_channel) {
      accumulate_block<T>(x, labels, 0, N, split_at(C, blocks, b), split_at(C, blocks, b + 1), out,
                          counts[b].data(), bad[b]);
    } else {
      ClassMoments& acc = b == 0 ? out : (partial[b - 1] = ClassMoments(K, C));
      accumulate_block<T>(x, labels, split_at(N, blocks, b), split_at(N, blocks, b + 1), 0, C, acc,
                          counts[b].data(), bad[b]);
    }
  }

  BadRow first;
  for (const BadRow& r : bad)
    if (r.n >= 0 && r.before(first)) first = r;
  if (first.n >= 0) return {StatsStatus::NonFinite, first.n, first.c};

  out.count = counts[0];  // channel blocks all count every image; image blocks count their own
  for (int b = 1; b < blocks && !plan.by_channel; ++b) {
    partial[b - 1].count = counts[b];
    out.merge(partial[b - 1]);
  }
  return {};
}

}  // namespace

ClassMoments::ClassMoments(int64_t k, int64_t c)
    : n_classes(k),
      n_channels(c),
      count(k, 0),
      mean(k * c, 0.0),
      m2(k * c, 0.0),
      max(k * c, kNegInf),
      active(k * c, 0) {}

void ClassMoments::reset() {
  std::fill(count.begin(), count.end(), 0);
  std::fill(mean.begin(), mean.end(), 0.0);
  std::fill(m2.begin(), m2.end(), 0.0);
  std::fill(max.begin(), max.end(), kNegInf);
  std::fill(active.begin(), active.end(), 0);
}

void ClassMoments::merge(const ClassMoments& o) {
  const int64_t C = n_channels;
  for (int64_t k = 0; k < n_classes; ++k) {
    const int64_t nb = o.count[k], na = count[k];
    if (nb == 0) continue;
    const double fa = double(na), fb = double(nb), fn = double(na + nb);
    for (int64_t i = k * C; i < (k + 1) * C; ++i) {
      const double d = o.mean[i] - mean[i];
      mean[i] += d * (fb / fn);
      m2[i] += o.m2[i] + d * d * (fa * fb / fn);
      max[i] = std::max(max[i], o.max[i]);
      active[i] += o.active[i];
    }
    count[k] = na + nb;
  }
}

StatsStatus check_labels(const int64_t* labels, int64_t n, int64_t n_classes) {
  for (int64_t i = 0; i < n; ++i)
    if (labels[i] < 0 || labels[i] >= n_classes) return {StatsStatus::BadLabel, i, labels[i]};
  return {};
}

StatsStatus class_moments_cpu(const ActivationView& x, const int64_t* labels, ClassMoments& out) {
  StatsStatus st = check_labels(labels, x.n, out.n_classes);
  if (st.code != StatsStatus::Ok) return st;
  out.reset();
  if (x.n == 0 || x.c == 0) return st;
  return x.dtype == DType::F32 ? class_moments_cpu_t<float>(x, labels, out)
                               : class_moments_cpu_t<double>(x, labels, out);
}

}  // namespace cnnvis
