// CPU per-class statistics kernel (see stats.hpp): one read of every activation, sums in double.
#include "stats/stats.hpp"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <iterator>
#include <limits>
#include <mutex>
#include <new>
#include <type_traits>
#include <utility>

#include "common/simd.hpp"

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

using simd::Vec;

// Spatial sum and max of one row of s values, in double: 4·L values a step in four independent
// accumulators of L doubles (L = the path's vector width; memory-bound, not add-bound), then L at a time,
// then one. Float rows are widened on load, so one body serves both element types.
template <int B, class T>
[[gnu::always_inline]] inline RowStat row_simd(const T* p, int64_t s) {
  using VD = typename Vec<double, B>::type;
  constexpr int L = Vec<double, B>::lanes;
  VD a0 = VD{}, a1 = a0, a2 = a0, a3 = a0;
  VD m0 = VD{} + kNegInf, m1 = m0;
  int64_t i = 0;
  for (; i + 4 * L <= s; i += 4 * L) {
    const VD u0 = simd::load_as<VD>(p + i), u1 = simd::load_as<VD>(p + i + L), u2 = simd::load_as<VD>(p + i + 2 * L),
             u3 = simd::load_as<VD>(p + i + 3 * L);
    a0 += u0, a1 += u1, a2 += u2, a3 += u3;
    m0 = simd::max(m0, u0), m1 = simd::max(m1, u1);
    m0 = simd::max(m0, u2), m1 = simd::max(m1, u3);
  }
  for (; i + L <= s; i += L) {
    const VD u = simd::load_as<VD>(p + i);
    a0 += u, m0 = simd::max(m0, u);
  }
  const VD a = (a0 + a1) + (a2 + a3), m = simd::max(m0, m1);
  double sum = 0.0, mx = kNegInf;
  for (int e = 0; e < L; ++e) sum += a[e], mx = std::max(mx, m[e]);
  for (; i < s; ++i) sum += double(p[i]), mx = std::max(mx, double(p[i]));
  return {sum, mx};
}

// row_simd for float32 rows: the max on the float vectors as they are loaded (exact; half the max
// instructions of taking it on the widened values: 0.88x the time on data in cache), the sum widened to
// double as before, and a software prefetch kRowPrefetch values ahead (one Zen 3 core reading
// (256, 256, 28, 28) from memory waited on the loads: 0.92x the time with it, at 0.5-4 KiB ahead).
constexpr int64_t kRowPrefetch = 512;
template <int B>
[[gnu::always_inline]] inline RowStat row_simd_f32(const float* p, int64_t s) {
  using VX = typename Vec<float, B>::type;
  using VD = typename Vec<double, B>::type;
  constexpr int LX = Vec<float, B>::lanes, LD = LX / 2;
  VD a0 = VD{}, a1 = a0, a2 = a0, a3 = a0;
  VX m0 = VX{} - std::numeric_limits<float>::infinity(), m1 = m0;
  int64_t i = 0;
  for (; i + 2 * LX <= s; i += 2 * LX) {
    __builtin_prefetch(p + i + kRowPrefetch);  // once per 64 bytes on the AVX2 path
    m0 = simd::max(m0, simd::load<VX>(p + i)), m1 = simd::max(m1, simd::load<VX>(p + i + LX));
    a0 += simd::load_as<VD>(p + i), a1 += simd::load_as<VD>(p + i + LD);
    a2 += simd::load_as<VD>(p + i + LX), a3 += simd::load_as<VD>(p + i + LX + LD);
  }
  for (; i + LX <= s; i += LX) {
    m0 = simd::max(m0, simd::load<VX>(p + i));
    a0 += simd::load_as<VD>(p + i), a1 += simd::load_as<VD>(p + i + LD);
  }
  const VD a = (a0 + a1) + (a2 + a3);
  const VX m = simd::max(m0, m1);
  double sum = 0.0, mx = kNegInf;
  for (int e = 0; e < LD; ++e) sum += a[e];
  for (int e = 0; e < LX; ++e) mx = std::max(mx, double(m[e]));
  for (; i < s; ++i) sum += double(p[i]), mx = std::max(mx, double(p[i]));
  return {sum, mx};
}

// Rows shorter than this use 32-byte vectors on the AVX-512 path too (fewer steps in the tail and the
// final reduction).
constexpr int64_t kWideRow = 128;

// Four lanes each of a, b, c, d reduced by op into one vector: lane i holds the reduction of the i-th
// argument (two shuffle-and-op steps instead of a horizontal reduction per vector).
template <class V, class Op>
[[gnu::always_inline]] inline V transpose_reduce4(V a, V b, V c, V d, Op op) {
  const V ab = op(__builtin_shufflevector(a, b, 0, 4, 2, 6), __builtin_shufflevector(a, b, 1, 5, 3, 7));
  const V cd = op(__builtin_shufflevector(c, d, 0, 4, 2, 6), __builtin_shufflevector(c, d, 1, 5, 3, 7));
  return op(__builtin_shufflevector(ab, cd, 0, 1, 4, 5), __builtin_shufflevector(ab, cd, 2, 3, 6, 7));
}

// Means and maxima of four short rows (LX <= S < kWideRow, row q at p + q * stride_c) with 32-byte
// vectors (AVX2 and AVX-512 paths): per row, whole vectors of LX values (8 floats: max in float, exact;
// sums widened to double), then the last S % LX values as one vector ending at the row's end, overlapping
// the values already read (harmless for the max; masked out of the sums by `tail`), so no scalar steps;
// the four rows' sums and maxima are reduced together. About half the instructions of four row_simd<32>
// calls for S = 49.
template <class T>
struct Short4 {
  using VX = typename Vec<T, 32>::type;
  using VD = typename Vec<double, 32>::type;
  using VI = decltype(VD{} > VD{});
  static constexpr int LX = Vec<T, 32>::lanes, H = int(sizeof(double) / sizeof(T));
  // Masks of the tail vector's double lanes that lie past the whole vectors (t = S % LX values); `alone`:
  // t = 1 (S = 9, 25, 49 and every odd square): that one value a row is added after the reduction
  // instead (a tail vector costs a row as much as a whole one: 0.9x the time for S = 49).
  struct Tail {
    VI keep[H];
    bool alone;
  };
  static Tail tail(int64_t S) {
    const int64_t t = S % LX;
    Tail m;
    m.alone = t == 1;
    for (int h = 0; h < H; ++h)
      for (int l = 0; l < 4; ++l) m.keep[h][l] = h * 4 + l >= LX - t ? -1 : 0;
    return m;
  }
  [[gnu::always_inline]] static inline void run(const T* p, int64_t stride_c, int64_t S, const Tail& tail,
                                                double inv_s, double* r, double* m) {
    VD s[4][H];
    VX hi[4];
    for (int q = 0; q < 4; ++q) {
      const T* row = p + q * stride_c;
      hi[q] = simd::load<VX>(row);
      for (int h = 0; h < H; ++h) s[q][h] = simd::load_as<VD>(row + h * 4);
    }
    const int64_t whole = S / LX * LX;
    for (int64_t i = LX; i < whole; i += LX) {
      for (int q = 0; q < 4; ++q) {
        const T* row = p + q * stride_c + i;
        hi[q] = simd::max(hi[q], simd::load<VX>(row));
        for (int h = 0; h < H; ++h) s[q][h] += simd::load_as<VD>(row + h * 4);
      }
    }
    VD last{};
    if (whole < S && tail.alone) {
      last = VD{double(p[S - 1]), double(p[stride_c + S - 1]), double(p[2 * stride_c + S - 1]),
                double(p[3 * stride_c + S - 1])};
    } else if (whole < S) {
      for (int q = 0; q < 4; ++q) {
        const T* row = p + q * stride_c + S - LX;
        hi[q] = simd::max(hi[q], simd::load<VX>(row));
        for (int h = 0; h < H; ++h)
          s[q][h] += reinterpret_cast<VD>(reinterpret_cast<VI>(simd::load_as<VD>(row + h * 4)) & tail.keep[h]);
      }
    }
    VD sum[4], top[4];
    for (int q = 0; q < 4; ++q) {
      sum[q] = s[q][0];
      for (int h = 1; h < H; ++h) sum[q] += s[q][h];
      if constexpr (H == 2) {  // both halves of the 8 floats widened (exact), then one max
        top[q] = simd::max(simd::widen<VD>(__builtin_shufflevector(hi[q], hi[q], 0, 1, 2, 3)),
                           simd::widen<VD>(__builtin_shufflevector(hi[q], hi[q], 4, 5, 6, 7)));
      } else {
        top[q] = hi[q];
      }
    }
    const auto add = [](VD a, VD b) { return a + b; };
    const auto mx = [](VD a, VD b) { return simd::max(a, b); };
    VD sums = transpose_reduce4(sum[0], sum[1], sum[2], sum[3], add);
    VD tops = transpose_reduce4(top[0], top[1], top[2], top[3], mx);
    if (whole < S && tail.alone) sums += last, tops = simd::max(tops, last);
    simd::store(r, sums * inv_s);
    simd::store(m, tops);
  }
};

// Software prefetch distance for contiguous short rows (Rows): the hardware prefetcher alone left a 2-core
// Zen 3 waiting on memory (S = 49 from memory: 1.15x the time without, at 2-4 KiB; 8 KiB no better).
// Long rows gained nothing (S = 784: the same time).
constexpr int64_t kPrefetchBytes = 4096;

// Means and maxima of `len` rows (row j at p + j * stride_c): one call per tile, the row code inlined.
// Short rows go four at a time through Short4 on the 32-byte paths; contiguous ones (stride_c == S) are
// prefetched kPrefetchBytes ahead of the rows at hand, one line at a time.
struct Rows {
  template <class Isa, class T>
  [[gnu::always_inline]] static inline void run(const T* p, int64_t stride_c, int64_t S, int64_t len, double* r,
                                                double* m) {
    const double inv_s = 1.0 / double(S);
    const char* bytes = reinterpret_cast<const char*>(p);
    const int64_t row_bytes = stride_c == S && S < kWideRow ? S * int64_t(sizeof(T)) : 0;  // 0: no prefetching
    // Prefetched up to bytes + fetched; the first kPrefetchBytes were prefetched with the previous image's
    // rows when images are contiguous too, and are left to the hardware otherwise.
    int64_t fetched = kPrefetchBytes;
    const auto ahead = [&](int64_t rows_done) {
      for (const int64_t to = rows_done * row_bytes + kPrefetchBytes; row_bytes && fetched < to; fetched += 64)
        __builtin_prefetch(bytes + fetched);
    };
    int64_t j = 0;
    if constexpr (Isa::bytes >= 32) {
      if (S < kWideRow && S >= Short4<T>::LX) {
        const typename Short4<T>::Tail tail = Short4<T>::tail(S);
        for (; j + 4 <= len; j += 4) {
          ahead(j + 4);
          Short4<T>::run(p + j * stride_c, stride_c, S, tail, inv_s, r + j, m + j);
        }
      }
    }
    for (; j < len; ++j) {
      ahead(j + 1);
      RowStat rs;
      if constexpr (std::is_same_v<T, float>) {
        if constexpr (Isa::bytes > 32)
          rs = S < kWideRow ? row_simd_f32<32>(p + j * stride_c, S) : row_simd_f32<Isa::bytes>(p + j * stride_c, S);
        else
          rs = row_simd_f32<Isa::bytes>(p + j * stride_c, S);
      } else if constexpr (Isa::bytes > 32) {
        rs = S < kWideRow ? row_simd<32>(p + j * stride_c, S) : row_simd<Isa::bytes>(p + j * stride_c, S);
      } else {
        rs = row_simd<Isa::bytes>(p + j * stride_c, S);
      }
      r[j] = rs.sum * inv_s, m[j] = rs.max;
    }
  }
};

template <class T>
using RowsFn = void (*)(const T*, int64_t, int64_t, int64_t, double*, double*);

// Rows shorter than this go through the inlined portable loop (an indirect call would cost more; from 8
// values on, Short4 takes four rows a step on the 32-byte paths).
constexpr int64_t kSimdMinRow = 8;
// Rows this long: whole images are one channel tile, read in their order (sequential reads, prefetched
// by Rows; for S = 49 this took 0.9x the time of the class-ordered tiles of 16 channels below, whose
// scattered 3 KiB chunks kept the loads waiting on memory). Shorter rows come in tiles of about
// kTileValues values of x per image (2 KiB of float32), so the state of one class for a tile (32 bytes
// a channel) stays in L1 while the images of that class pass.
constexpr int64_t kLongRow = 8;
constexpr int64_t kTileValues = 512;
// Images per group: a group is walked once per channel tile, in class order for short rows.
constexpr int64_t kImageGroup = 256;

struct BadRow {
  int64_t n = -1, c = -1;
  bool before(const BadRow& o) const { return o.n < 0 || (n >= 0 && (n < o.n || (n == o.n && c < o.c))); }
};

// Welford step of one image over `len` channels of its class (w = 1 / the class's new count), from the
// rows' means r and maxima m; a loop the compiler vectorises. Returns NaN iff some r is NaN or inf
// (r * 0 is NaN then), so the finiteness check costs no branch and no second read.
struct WelfordStep {
  template <class Isa>
  [[gnu::always_inline]] static inline double run(double* __restrict mean, double* __restrict m2,
                                                  double* __restrict mx, int64_t* __restrict act,
                                                  const double* __restrict r, const double* __restrict m,
                                                  int64_t len, double w) {
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
};

// Chan's combination of n consecutive (k, c) entries of another state (weights wb = nb / n, wab =
// na·nb / n) into this one's: the body of ClassMoments::merge_range, vectorised on every path.
struct MergeRow {
  template <class Isa>
  [[gnu::always_inline]] static inline void run(double* __restrict mean, double* __restrict m2, double* __restrict mx,
                                                int64_t* __restrict act, const double* __restrict omean,
                                                const double* __restrict om2, const double* __restrict omx,
                                                const int64_t* __restrict oact, int64_t n, double wb, double wab) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
      const double d = omean[i] - mean[i];
      mean[i] += d * wb;
      m2[i] += om2[i] + d * d * wab;
      mx[i] = mx[i] < omx[i] ? omx[i] : mx[i];  // std::max
      act[i] += oact[i];
    }
  }
};

// One class's row of finalize_moments (n = its image count; NaN throughout when 0), vectorised. The
// outputs may be the inputs' own memory (finalize_in_place: out_active over active's int64 values), so
// no __restrict; each entry is read before it is written.
struct FinalizeRow {
  template <class Isa>
  [[gnu::always_inline]] static inline void run(const double* mean, const double* m2, const double* mx,
                                                const int64_t* act, double* out_mean, double* out_std,
                                                double* out_max, double* out_active, int64_t len, double n) {
    if (n == 0) {
      const double nan = std::numeric_limits<double>::quiet_NaN();
      for (double* f : {out_mean, out_std, out_max, out_active}) std::fill(f, f + len, nan);
      return;
    }
    constexpr int64_t kBlock = 64;  // through local arrays: the loop that divides and takes roots vectorises
    for (int64_t i0 = 0; i0 < len; i0 += kBlock) {
      const int64_t b = std::min(kBlock, len - i0);
      double a[kBlock], sd[kBlock];
      // std::max(m2, 0.0) as a ?: of the same rule (NaN stays NaN): std::max's reference to a temporary
      // keeps GCC from vectorising the loop.
#pragma omp simd
      for (int64_t j = 0; j < b; ++j) sd[j] = std::sqrt((m2[i0 + j] < 0.0 ? 0.0 : m2[i0 + j]) / n);
      // int64 -> double: AVX2 has no vector conversion (GCC made this a scalar loop, cvtsi2sd and divsd a
      // value: most of the function's time); counts below 2^52 convert exactly as the low bits of 2^52.
      bool below_2p52 = true;
#pragma omp simd reduction(&& : below_2p52)
      for (int64_t j = 0; j < b; ++j) below_2p52 = below_2p52 && uint64_t(act[i0 + j]) < (uint64_t(1) << 52);
      if (below_2p52) {
#pragma omp simd
        for (int64_t j = 0; j < b; ++j) {
          const uint64_t bits = uint64_t(act[i0 + j]) | 0x4330000000000000u;  // 2^52 + act
          double v;
          std::memcpy(&v, &bits, sizeof v);
          a[j] = (v - 4503599627370496.0) / n;
        }
      } else {
        for (int64_t j = 0; j < b; ++j) a[j] = double(act[i0 + j]) / n;
      }
      if (out_mean != mean) std::memcpy(out_mean + i0, mean + i0, b * sizeof(double));
      if (out_max != mx) std::memcpy(out_max + i0, mx + i0, b * sizeof(double));
      std::memcpy(out_std + i0, sd, b * sizeof(double));
      std::memcpy(out_active + i0, a, b * sizeof(double));
    }
  }
};

// nb (N, C) rows of one class (x_q = rows[q], channels [c0, c1)) merged into the class's state (count na
// before) in one go: per block of two native vectors of channels (16 floats on AVX2, 32 on AVX-512) the
// rows' shifted sums Σ(x - x_0), Σ(x - x_0)² (in double), max and positive count (in the element type:
// exact, and half the work of doing them in double) stay in registers, then one Chan update per block.
// The state is read and written once per chunk instead of once per image. Shifting by the chunk's first
// row keeps the sums free of cancellation; that row, widened, is read from a small buffer in L1, so the
// accumulators fit in AVX2's 16 registers. Returns NaN iff some x is NaN or inf.
template <class T>
struct ClassChunk {
  static constexpr int NV = 2;  // native vectors of channels a step (AVX2: 16 floats, 12 accumulators)
  // Channels [c, c + W·LX) (W native vectors) of the chunk: sums in registers, then the Chan update.
  template <int B, int W>
  [[gnu::always_inline]] static inline void block(const T* const* rows, int nb, int64_t c, double* mean, double* m2,
                                                  double* mx, int64_t* act, double wb, double wab, double inv_b,
                                                  typename Vec<double, B>::type& check) {
    using VX = typename Vec<T, B>::type;  // elements as they are stored
    using VM = decltype(VX{} > VX{});     // same-width integer lanes (comparison results: 0 / -1)
    using M = typename std::remove_reference<decltype(VM{}[0])>::type;
    constexpr int LX = Vec<T, B>::lanes;
    constexpr int H = int(sizeof(double) / sizeof(T));  // double vectors per native vector
    constexpr int LD = LX / H;
    using VD = typename Vec<double, LD * 8>::type;
    using VL = typename Vec<int64_t, LD * 8>::type;
    using VMH = typename Vec<M, LD * int(sizeof(T))>::type;
    VX hi[W];
    VM pos[W];
    VD s1[W * H], s2[W * H];
    double h[W * LX];  // the first row, widened (read from L1 in the loop: frees registers)
    for (int w = 0; w < W; ++w) {
      hi[w] = simd::load<VX>(rows[0] + c + w * LX);
      pos[w] = -(hi[w] > VX{});
    }
    for (int v = 0; v < W * H; ++v) {
      simd::store(h + v * LD, simd::load_as<VD>(rows[0] + c + v * LD));
      s1[v] = s2[v] = VD{};
    }
    for (int q = 1; q < nb; ++q) {
      const T* row = rows[q] + c;
      for (int w = 0; w < W; ++w) {
        const VX u = simd::load<VX>(row + w * LX);
        hi[w] = simd::max(hi[w], u);
        pos[w] -= u > VX{};
      }
      for (int v = 0; v < W * H; ++v) {
        const VD d = simd::load_as<VD>(row + v * LD) - simd::load<VD>(h + v * LD);
        s1[v] += d, s2[v] += d * d;
      }
    }
    T his[W * LX];
    M poss[W * LX];
    for (int w = 0; w < W; ++w) simd::store(his + w * LX, hi[w]), simd::store(poss + w * LX, pos[w]);
    for (int v = 0; v < W * H; ++v) {
      const int64_t o = c + v * LD;
      const VD hv = simd::load<VD>(h + v * LD);
      const VD mb = hv + s1[v] * inv_b, m2b = s2[v] - s1[v] * s1[v] * inv_b;
      VD mu = simd::load<VD>(mean + o), sq = simd::load<VD>(m2 + o), top = simd::load<VD>(mx + o);
      const VD d = mb - mu;
      mu += d * wb, sq += m2b + d * d * wab, top = simd::max(top, simd::load_as<VD>(his + v * LD));
      simd::store(mean + o, mu), simd::store(m2 + o, sq), simd::store(mx + o, top);
      simd::store(act + o, simd::load<VL>(act + o) + __builtin_convertvector(simd::load<VMH>(poss + v * LD), VL));
      check += (s1[v] + hv) * 0.0;  // h: the first row may be the only one
    }
  }

  template <class Isa>
  [[gnu::always_inline]] static inline double run(const T* const* rows, int nb, int64_t c0, int64_t c1,
                                                  double* mean, double* m2, double* mx, int64_t* act, int64_t na) {
    constexpr int B = Isa::bytes;
    constexpr int LX = Vec<T, B>::lanes;
    constexpr int LD = B / 8;
    using VD = typename Vec<double, B>::type;
    const double fb = nb, wb = fb / double(na + nb), wab = double(na) * wb, inv_b = 1.0 / fb;
    VD check = VD{};
    int64_t c = c0;
    for (; c + NV * LX <= c1; c += NV * LX) block<B, NV>(rows, nb, c, mean, m2, mx, act, wb, wab, inv_b, check);
    for (; c + LX <= c1; c += LX) block<B, 1>(rows, nb, c, mean, m2, mx, act, wb, wab, inv_b, check);
    double out = 0.0;
    for (int e = 0; e < LD; ++e) out += check[e];
    for (; c < c1; ++c) {  // the last channels, one at a time, the same arithmetic
      const double h0 = double(rows[0][c]);
      double s1 = 0.0, s2 = 0.0, hi = h0;
      int64_t pos = h0 > 0.0;
      for (int q = 1; q < nb; ++q) {
        const double u = double(rows[q][c]), d = u - h0;
        s1 += d, s2 += d * d, hi = std::max(hi, u), pos += u > 0.0;
      }
      const double mb = h0 + s1 * inv_b, d = mb - mean[c];
      mean[c] += d * wb, m2[c] += s2 - s1 * s1 * inv_b + d * d * wab;
      mx[c] = std::max(mx[c], hi), act[c] += pos;
      out += (s1 + h0) * 0.0;
    }
    return out;
  }
};

// The running state of one class over 16 channels in the float32 (N, C) path (ClassRunF32), laid out
// together so that a run touches 6 consecutive cache lines: mean and M2 as in ClassMoments, the max and
// the positive count (exact in float32 / int32).
struct alignas(64) Unit16 {
  Unit16() {}  // left uninitialised (a vector of them is not zeroed): emptied at its class's first run
  double mean[16];
  double m2[16];
  float hi[16];
  int32_t pos[16];
};

// The lanes [H * n/2, H * n/2 + n/2) of a vector of n lanes (H = 0: the low half, 1: the high half).
template <int H, class V, std::size_t... I>
[[gnu::always_inline]] inline auto half_of(V v, std::index_sequence<I...>) {
  return __builtin_shufflevector(v, v, (H * sizeof...(I) + I)...);
}
template <int H, class V>
[[gnu::always_inline]] inline auto half(V v) {
  return half_of<H>(v, std::make_index_sequence<sizeof(V) / sizeof(v[0]) / 2>{});
}

// float32 (N, C) input, the fast path: a run of nb rows of one class (x_q = rows[q], channels [0, len);
// na images of the class before it) merged into the class's units (unit u: channels [16u, 16u + 16)).
// Per unit, in registers across the rows: Σx in double (the mean as exact as ClassChunk's), the max and
// the positive count (exact), and Σd² with d = x - x_0 (the run's first row) in float32; then one Chan
// update of the unit's mean and M2 with the run's. Doing d² in float32 saves the widening, subtraction
// and FMA of half the vectors (ClassChunk, all in double, took 1.1-1.25x the time on one Zen 3 core). The one
// rounding this path adds is ~1e-7 of the run's Σd², and since x_0 is one of the run's values, Σd² is at
// most nb + 1 times the run's M2, so the std keeps ~1e-7 relative precision whatever the data (see
// tests/test_stats.py). Returns NaN iff some d² is NaN or inf: a non-finite x, or |x - x_0| beyond
// ~1.8e19 (d² overflows float32); the caller tells the two apart.
struct ClassRunF32 {
  template <int B>
  [[gnu::always_inline]] static inline void unit(const float* const* rows, int nb, int64_t c, Unit16& U, double wb,
                                                 double wab, double inv_b, typename Vec<float, B>::type& check) {
    using VX = typename Vec<float, B>::type;
    using VM = decltype(VX{} > VX{});
    using VD = typename Vec<double, B>::type;
    constexpr int LX = Vec<float, B>::lanes, W = 16 / LX, LD = LX / 2;
    // Unrolled loops over the W vectors of a unit: GCC otherwise keeps these arrays on the stack.
    VX h[W], sq[W], hi[W];
    VM pos[W];
    VD sum[2 * W];
#pragma GCC unroll 4
    for (int w = 0; w < W; ++w) {
      h[w] = simd::load<VX>(rows[0] + c + w * LX), hi[w] = simd::load<VX>(U.hi + w * LX);
      pos[w] = simd::load<VM>(U.pos + w * LX), sq[w] = VX{};
      sum[2 * w] = sum[2 * w + 1] = VD{};
    }
    for (int q = 0; q < nb; ++q) {
      const float* row = rows[q] + c;
#pragma GCC unroll 4
      for (int w = 0; w < W; ++w) {
        const VX u = simd::load<VX>(row + w * LX), d = u - h[w];
        hi[w] = simd::max(hi[w], u);
        pos[w] -= u > VX{};
        sq[w] += d * d;
        sum[2 * w] += simd::load_as<VD>(row + w * LX);
        sum[2 * w + 1] += simd::load_as<VD>(row + w * LX + LD);
      }
    }
    const double fb = nb;
#pragma GCC unroll 4
    for (int w = 0; w < W; ++w) {
      check += sq[w] * 0.0f;
      simd::store(U.hi + w * LX, hi[w]), simd::store(U.pos + w * LX, pos[w]);
      const VD s2[2] = {simd::widen<VD>(half<0>(sq[w])), simd::widen<VD>(half<1>(sq[w]))};
#pragma GCC unroll 2
      for (int e = 0; e < 2; ++e) {
        const int v = 2 * w + e;
        // The run's M2 = Σd² - (Σd)²/nb, Σd = Σx - nb·x_0 in double; then Chan's update.
        const VD d1 = sum[v] - fb * simd::load_as<VD>(rows[0] + c + v * LD);
        const VD m2b = s2[e] - d1 * d1 * inv_b, mb = sum[v] * inv_b;
        VD mu = simd::load<VD>(U.mean + v * LD), sqd = simd::load<VD>(U.m2 + v * LD);
        const VD dm = mb - mu;
        mu += dm * wb, sqd += m2b + dm * dm * wab;
        simd::store(U.mean + v * LD, mu), simd::store(U.m2 + v * LD, sqd);
      }
    }
  }

  template <class Isa>
  [[gnu::always_inline]] static inline float run(const float* const* rows, int nb, int64_t len, Unit16* units,
                                                 int64_t na) {
    constexpr int B = Isa::bytes, LX = Vec<float, B>::lanes;
    const double fb = nb, wb = fb / double(na + nb), wab = double(na) * wb, inv_b = 1.0 / fb;
    typename Vec<float, B>::type check{};
    int64_t c = 0;
    for (; c + 16 <= len; c += 16) unit<B>(rows, nb, c, units[c / 16], wb, wab, inv_b, check);
    float out = 0.0f;
    for (int e = 0; e < LX; ++e) out += check[e];
    if (c < len) {  // the last channels, one at a time, the same arithmetic
      Unit16& U = units[c / 16];
      for (int l = 0; c + l < len; ++l) {
        const float h = rows[0][c + l];
        float sq = 0.0f, hi = U.hi[l];
        int32_t pos = U.pos[l];
        double sum = 0.0;
        for (int q = 0; q < nb; ++q) {
          const float u = rows[q][c + l], d = u - h;
          sum += double(u), sq += d * d, hi = hi > u ? hi : u, pos += u > 0.0f;
        }
        const double d1 = sum - fb * double(h), m2b = double(sq) - d1 * d1 * inv_b, dm = sum * inv_b - U.mean[l];
        U.mean[l] += dm * wb, U.m2[l] += m2b + dm * dm * wab, U.hi[l] = hi, U.pos[l] = pos;
        out += sq * 0.0f;
      }
    }
    return out;
  }
};

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

// Images [g0, g1) in class order (stable) when `sort`, so one class's state is reused by consecutive
// images: a counting sort (`slots`: K + 1 scratch). Long rows keep the natural order: their state is
// reused anyway, and sequential reads prefetch better.
void group_by_class(const int64_t* labels, int64_t g0, int64_t g1, int64_t K, bool sort, std::vector<int64_t>& order,
                    std::vector<int64_t>& slots) {
  order.resize(g1 - g0);
  if (!sort || K > 4 * (g1 - g0)) {
    for (int64_t i = g0; i < g1; ++i) order[i - g0] = i;
    if (sort)
      std::stable_sort(order.begin(), order.end(), [labels](int64_t a, int64_t b) { return labels[a] < labels[b]; });
    return;
  }
  slots.assign(K + 1, 0);
  for (int64_t i = g0; i < g1; ++i) ++slots[labels[i] + 1];
  for (int64_t k = 0; k < K; ++k) slots[k + 1] += slots[k];
  for (int64_t i = g0; i < g1; ++i) order[slots[labels[i]]++] = i;
}

// Rows of one class merged at once by ClassChunk: enough to amortise the state's update; more parallel
// streams of x read slower (on a 2-core Zen 3, 4, 12, 16 or 24 rows took 1.05-1.3x the time of 8).
constexpr int kChunkRows = 8;
// (N, C) input is walked in groups of images, in class order within a group, so that a chunk's rows lie
// close together (walking the whole batch in class order sweeps memory once per class: 4x the time of a
// plain read of a (4096, 4096) batch), and, for very wide rows, in tiles of channels (one class's state,
// 32 bytes a channel, at most 128 KiB: in L2). Tiles of 512 or 1024 channels (state in L1) and software
// prefetching of the next chunk measured slower: the rows' streams prefetch well on their own.
constexpr int64_t kDirectGroup = 256;
constexpr int64_t kDirectTile = 4096;

// The block [n0, n1) x [c0, c1) of contiguous (N, C) input (S = 1): per image group and channel tile, each
// run of up to kChunkRows images of one class merged by ClassChunk. `cnt` (K) receives the block's class
// counts.
template <class T>
void accumulate_direct(const ActivationView& x, const int64_t* labels, int64_t n0, int64_t n1, int64_t c0,
                       int64_t c1, ClassMoments& acc, int64_t* cnt, BadRow& bad) {
  const T* base = static_cast<const T*>(x.data);
  const int64_t C = x.c, K = acc.n_classes;
  const auto chunk = simd::select<ClassChunk<T>, double, const T* const*, int, int64_t, int64_t, double*, double*,
                                  double*, int64_t*, int64_t>();
  std::vector<int64_t> order, slots, running(K);
  std::fill(cnt, cnt + K, 0);
  const T* rows[kChunkRows];
  for (int64_t g0 = n0; g0 < n1; g0 += kDirectGroup) {
    const int64_t g1 = std::min(n1, g0 + kDirectGroup), G = g1 - g0;
    group_by_class(labels, g0, g1, K, true, order, slots);
    for (int64_t t0 = c0; t0 < c1; t0 += kDirectTile) {
      const int64_t t1 = std::min(c1, t0 + kDirectTile);
      std::copy(cnt, cnt + K, running.begin());  // each tile counts the group's images afresh
      for (int64_t i = 0; i < G;) {
        const int64_t k = labels[order[i]], o = k * C;
        int nb = 0;
        for (; nb < kChunkRows && i + nb < G && labels[order[i + nb]] == k; ++nb)
          rows[nb] = base + order[i + nb] * x.stride_n;
        const double check = chunk(rows, nb, t0, t1, acc.mean.data() + o, acc.m2.data() + o, acc.max.data() + o,
                                   acc.active.data() + o, running[k]);
        if (check != check)
          for (int q = 0; q < nb; ++q) record_bad(rows[q], x, t0, t1 - t0, order[i + q], bad);
        running[k] += nb;
        i += nb;
      }
    }
    std::copy(running.begin(), running.end(), cnt);
  }
}

// Rows a run: 12, 16 or 24 took 1.3-1.5x the time of 8 on a 2-core Zen 3 (4096 x 4096 batch; probably
// because the rows, 16 KiB apart, put more than 8 lines of one channel block into one 8-way L1 set).
// Images a group and channels a tile as for ClassChunk (128-1024 images, 1024-2048 channels: no faster).
constexpr int kChunkRowsF32 = 8;
constexpr int64_t kDirectGroupF32 = kDirectGroup;
constexpr int64_t kDirectTileF32 = kDirectTile;

// The block [n0, n1) x [c0, c1) of contiguous float32 (N, C) input (S = 1) through ClassRunF32: per
// image group (class order within it) and channel tile, runs of up to kChunkRowsF32 rows of one class,
// as accumulate_direct. The state goes to `units` (K rows of ceil((c1 - c0) / 16) units; a class's row is
// set only if cnt[k] > 0). Returns false when the float32 sums overflowed on finite input (|x| beyond
// ~1e19): the caller redoes the block in double. `cnt` (K) receives the class counts.
bool direct_f32_units(const ActivationView& x, const int64_t* labels, int64_t n0, int64_t n1, int64_t c0,
                      int64_t c1, int64_t K, CachedVector<Unit16>& units, int64_t* cnt, BadRow& bad) {
  const float* base = static_cast<const float*>(x.data);
  const int64_t Cb = c1 - c0, U = (Cb + 15) / 16;
  const auto run = simd::select<ClassRunF32, float, const float* const*, int, int64_t, Unit16*, int64_t>();
  units.resize(K * U);
  std::vector<int64_t> order, slots, running(K);
  std::fill(cnt, cnt + K, 0);
  std::vector<char> seen(K, 0);
  bool overflow = false;
  const float* rows[kChunkRowsF32];
  for (int64_t g0 = n0; g0 < n1; g0 += kDirectGroupF32) {
    const int64_t g1 = std::min(n1, g0 + kDirectGroupF32), G = g1 - g0;
    group_by_class(labels, g0, g1, K, true, order, slots);
    for (int64_t t0 = c0; t0 < c1; t0 += kDirectTileF32) {
      const int64_t len = std::min(c1, t0 + kDirectTileF32) - t0;
      std::copy(cnt, cnt + K, running.begin());  // each tile counts the group's images afresh
      for (int64_t i = 0; i < G;) {
        const int64_t k = labels[order[i]];
        int nb = 0;
        for (; nb < kChunkRowsF32 && i + nb < G && labels[order[i + nb]] == k; ++nb)
          rows[nb] = base + order[i + nb] * x.stride_n + t0;
        Unit16* uk = units.data() + k * U;
        if (!seen[k]) {  // the class's first run (in the first tile): its units, all channels, empty
          for (int64_t u = 0; u < U; ++u) {
            Unit16& e = uk[u];
            std::fill(e.mean, e.mean + 16, 0.0), std::fill(e.m2, e.m2 + 16, 0.0);
            std::fill(e.hi, e.hi + 16, -std::numeric_limits<float>::infinity()), std::fill(e.pos, e.pos + 16, 0);
          }
          seen[k] = 1;
        }
        const float check = run(rows, nb, len, uk + (t0 - c0) / 16, running[k]);
        if (check != check) {  // a non-finite x, or an overflow of the float32 sums
          bool found = false;
          for (int q = 0; q < nb; ++q) {
            BadRow here;
            record_bad(base + order[i + q] * x.stride_n, x, t0, len, order[i + q], here);
            if (here.n >= 0) found = true;
            if (here.n >= 0 && here.before(bad)) bad = here;
          }
          overflow |= !found;
        }
        running[k] += nb;
        i += nb;
      }
    }
    std::copy(running.begin(), running.end(), cnt);
  }
  return !overflow;
}

// Units [u0, u1) of one class from `blocks` blocks' units (block b's at units[b]; its image count nb[b],
// blocks without images of the class skipped), Chan-combined in block order into ClassMoments rows
// (channels 16·u0 on, the last unit cut at `len` channels): the image-block merge of the float32 (N, C)
// path, straight from the units (no partial ClassMoments to fill, copy and merge); with one block, the copy
// of a block's units into its ClassMoments (accumulate_direct_f32).
struct MergeUnits {
  template <class Isa>
  [[gnu::always_inline]] static inline void run(const Unit16* const* units, const int64_t* nb, int blocks, int64_t u0,
                                                int64_t u1, int64_t len, double* mean, double* m2, double* mx,
                                                int64_t* act) {
    for (int64_t u = u0; u < u1; ++u) {
      double mu[16], sq[16], hi[16];
      int64_t pos[16];
      int64_t na = 0;
      for (int b = 0; b < blocks; ++b) {
        if (nb[b] == 0) continue;
        const Unit16& e = units[b][u];
        if (na == 0) {
#pragma omp simd
          for (int l = 0; l < 16; ++l) mu[l] = e.mean[l], sq[l] = e.m2[l], hi[l] = e.hi[l], pos[l] = e.pos[l];
        } else {
          const double wb = double(nb[b]) / double(na + nb[b]), wab = double(na) * wb;
#pragma omp simd
          for (int l = 0; l < 16; ++l) {
            const double d = e.mean[l] - mu[l], h = e.hi[l];
            mu[l] += d * wb, sq[l] += e.m2[l] + d * d * wab, hi[l] = hi[l] < h ? h : hi[l], pos[l] += e.pos[l];
          }
        }
        na += nb[b];
      }
      const int64_t o = (u - u0) * 16, n = std::min<int64_t>(16, len - o);
      std::copy(mu, mu + n, mean + o), std::copy(sq, sq + n, m2 + o), std::copy(hi, hi + n, mx + o);
      std::copy(pos, pos + n, act + o);
    }
  }
};

// accumulate_block's form of direct_f32_units: the units copied into acc's columns [c0, c1). Also false
// (the caller's double path then) when the units would take more than kMaxUnitBytes: they come on top of
// the state, which ClassChunk updates in place.
constexpr int64_t kMaxUnitBytes = int64_t(64) << 20;
bool accumulate_direct_f32(const ActivationView& x, const int64_t* labels, int64_t n0, int64_t n1, int64_t c0,
                           int64_t c1, ClassMoments& acc, int64_t* cnt, BadRow& bad) {
  const int64_t C = x.c, K = acc.n_classes, Cb = c1 - c0, U = (Cb + 15) / 16;
  if (K * U * int64_t(sizeof(Unit16)) > kMaxUnitBytes) return false;
  CachedVector<Unit16> units;
  if (!direct_f32_units(x, labels, n0, n1, c0, c1, K, units, cnt, bad)) return false;
  const auto copy = simd::select<MergeUnits, void, const Unit16* const*, const int64_t*, int, int64_t, int64_t,
                                 int64_t, double*, double*, double*, int64_t*>();
  for (int64_t k = 0; k < K; ++k) {
    if (cnt[k] == 0) continue;  // its units were never set
    const Unit16* from = units.data() + k * U;
    const int64_t o = k * C + c0;
    copy(&from, cnt + k, 1, 0, U, Cb, acc.mean.data() + o, acc.m2.data() + o, acc.max.data() + o,
         acc.active.data() + o);  // one block: the units as they are
  }
  return true;
}

// One block of the work: images [n0, n1) x channels [c0, c1), Welford-accumulated into `acc`. Loops go
// image group -> channel tile -> images of the group (in class order for short rows): the state of the
// class at hand stays in L1 across its images, and the pages of x a group touches stay in the TLB.
// `cnt` (K) receives the block's class counts.
template <class T>
void accumulate_block(const ActivationView& x, const int64_t* labels, int64_t n0, int64_t n1, int64_t c0,
                      int64_t c1, ClassMoments& acc, int64_t* cnt, BadRow& bad) {
  if (x.s == 1 && x.stride_c == 1) {
    if constexpr (std::is_same_v<T, float>) {
      // Overflow of the float32 sums, or too many classes x channels for the units (acc untouched then):
      // the block with sums in double.
      if (accumulate_direct_f32(x, labels, n0, n1, c0, c1, acc, cnt, bad)) return;
    }
    return accumulate_direct<T>(x, labels, n0, n1, c0, c1, acc, cnt, bad);
  }
  const T* base = static_cast<const T*>(x.data);
  const int64_t C = x.c, K = acc.n_classes;
  const RowsFn<T> simd =
      x.s >= kSimdMinRow ? simd::select<Rows, void, const T*, int64_t, int64_t, int64_t, double*, double*>() : nullptr;
  const auto welford = simd::select<WelfordStep, double, double*, double*, double*, int64_t*, const double*,
                                    const double*, int64_t, double>();
  const int64_t tile = x.s >= kLongRow ? c1 - c0 : std::max<int64_t>(16, kTileValues / x.s / 16 * 16);
  std::vector<double> r(std::min(tile, c1 - c0)), m(r.size());
  std::vector<int64_t> order, slots, running(K);
  std::fill(cnt, cnt + K, 0);
  for (int64_t g0 = n0; g0 < n1; g0 += kImageGroup) {
    const int64_t g1 = std::min(n1, g0 + kImageGroup);
    group_by_class(labels, g0, g1, K, x.s < kLongRow, order, slots);
    for (int64_t t0 = c0; t0 < c1; t0 += tile) {
      const int64_t len = std::min(tile, c1 - t0);
      std::copy(cnt, cnt + K, running.begin());  // each tile counts the group's images afresh
      for (size_t i = 0; i < order.size(); ++i) {
        const int64_t n = order[i], k = labels[n], o = k * C + t0;
        const double w = 1.0 / double(++running[k]);
        const T* img = base + n * x.stride_n;
        if (x.s < kLongRow && i + 1 < order.size())  // short chunks at scattered offsets: prefetch the next
          prefetch_chunk(base + order[i + 1] * x.stride_n + t0 * x.stride_c, len, x);
        image_rows(img, x.stride_c, x.s, t0, len, simd, r.data(), m.data());
        const double check = welford(acc.mean.data() + o, acc.m2.data() + o, acc.max.data() + o,
                                     acc.active.data() + o, r.data(), m.data(), len, w);
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
StatsStatus class_moments_cpu_t(const ActivationView& x, const int64_t* labels, ClassMoments& out,
                                bool f32_units = true) {
  const int64_t N = x.n, C = x.c, K = out.n_classes;
  const Plan plan = plan_blocks(N, C, x.s, K);
  const int blocks = plan.blocks;
  // Image blocks of float32 (N, C) input keep their state in units, merged into `out` from there.
  const bool units_mode = std::is_same_v<T, float> && f32_units && x.s == 1 && x.stride_c == 1 &&
                          !plan.by_channel && blocks > 1 &&
                          K * ((C + 15) / 16) * int64_t(sizeof(Unit16)) <= kMaxUnitBytes;
  std::vector<ClassMoments> partial(plan.by_channel || units_mode ? 0 : blocks - 1);
  std::vector<CachedVector<Unit16>> units(units_mode ? blocks : 0);
  std::vector<std::vector<int64_t>> counts(blocks, std::vector<int64_t>(K, 0));
  std::vector<BadRow> bad(blocks);
  std::vector<char> overflow(blocks, 0);
  std::atomic<int> finished{0};
  // `out` starts empty; in units mode the merge writes every row instead (1.3 MB not written twice for a
  // 4096 x 4096 batch).
  if (!units_mode) out.reset();

  // Image blocks: the partials merged into `out` in block order by the thread that finishes the last block,
  // with no barrier in between (a barrier where a thread sleeps costs its wake-up: milliseconds on a
  // loaded machine; the merge itself is small next to the blocks: K x C values a block).
  const auto merge_blocks = [&] {
    if (std::any_of(bad.begin(), bad.end(), [](const BadRow& r) { return r.n >= 0; }) ||
        std::any_of(overflow.begin(), overflow.end(), [](char o) { return o != 0; }))
      return;
    if (units_mode) {
      const auto merge = simd::select<MergeUnits, void, const Unit16* const*, const int64_t*, int, int64_t, int64_t,
                                      int64_t, double*, double*, double*, int64_t*>();
      const int64_t U = (C + 15) / 16;
      std::vector<const Unit16*> from(blocks);
      std::vector<int64_t> nb(blocks);
      for (int64_t k = 0; k < K; ++k) {
        for (int b = 0; b < blocks; ++b) from[b] = units[b].data() + k * U, nb[b] = counts[b][k];
        const int64_t o = k * C;
        if (std::any_of(nb.begin(), nb.end(), [](int64_t n) { return n > 0; })) {
          merge(from.data(), nb.data(), blocks, 0, U, C, out.mean.data() + o, out.m2.data() + o, out.max.data() + o,
                out.active.data() + o);
        } else {  // a class without images: its row as reset() leaves it
          std::fill_n(out.mean.data() + o, C, 0.0), std::fill_n(out.m2.data() + o, C, 0.0);
          std::fill_n(out.max.data() + o, C, kNegInf), std::fill_n(out.active.data() + o, C, 0);
        }
      }
    } else {
      std::vector<int64_t> na = counts[0];
      for (int b = 1; b < blocks; ++b) {
        out.merge_range(partial[b - 1], na.data(), counts[b].data(), 0, C);
        for (int64_t k = 0; k < K; ++k) na[k] += counts[b][k];
      }
    }
  };

#pragma omp parallel num_threads(plan.threads) if (plan.threads > 1)
  {
#pragma omp for schedule(static, 1) nowait
    for (int b = 0; b < blocks; ++b) {
      if (units_mode) {
        overflow[b] = !direct_f32_units(x, labels, split_at(N, blocks, b), split_at(N, blocks, b + 1), 0, C, K,
                                        units[b], counts[b].data(), bad[b]);
      } else if (plan.by_channel) {
        accumulate_block<T>(x, labels, 0, N, split_at(C, blocks, b), split_at(C, blocks, b + 1), out,
                            counts[b].data(), bad[b]);
      } else {
        ClassMoments& acc = b == 0 ? out : (partial[b - 1] = ClassMoments(K, C));
        accumulate_block<T>(x, labels, split_at(N, blocks, b), split_at(N, blocks, b + 1), 0, C, acc,
                            counts[b].data(), bad[b]);
      }
      // acq_rel: the last block's thread sees every block's results.
      if (finished.fetch_add(1, std::memory_order_acq_rel) + 1 == blocks && !plan.by_channel && blocks > 1)
        merge_blocks();
    }
  }

  const bool failed = std::any_of(bad.begin(), bad.end(), [](const BadRow& r) { return r.n >= 0; });
  if (units_mode && (failed || std::any_of(overflow.begin(), overflow.end(), [](char o) { return o != 0; }))) {
    out.reset();  // nothing merged: `out` as the other modes leave it
    if (!failed) return class_moments_cpu_t<T>(x, labels, out, false);  // float32 sums overflowed: in double
  }
  if (failed) {
    BadRow first;
    for (const BadRow& r : bad)
      if (r.n >= 0 && r.before(first)) first = r;
    return {StatsStatus::NonFinite, first.n, first.c};
  }
  out.count = counts[0];  // channel blocks all count every image; image blocks count their own
  for (int b = 1; b < blocks && !plan.by_channel; ++b)
    for (int64_t k = 0; k < K; ++k) out.count[k] += counts[b][k];
  return {};
}

}  // namespace

namespace block_cache {
namespace {

struct Block {
  void* p;
  std::size_t bytes;
};
std::mutex mutex;
std::vector<Block> blocks;  // oldest first
std::size_t held = 0;

void release(void* p) { ::operator delete(p, std::align_val_t(64)); }

}  // namespace

void* take(std::size_t bytes) {
  if (bytes >= kMinBytes) {
    std::lock_guard<std::mutex> lock(mutex);
    for (auto it = blocks.rbegin(); it != blocks.rend(); ++it) {
      if (it->bytes == bytes) {
        void* p = it->p;
        held -= bytes;
        blocks.erase(std::next(it).base());
        return p;
      }
    }
  }
  return ::operator new(bytes, std::align_val_t(64));
}

void give(void* p, std::size_t bytes) {
  if (bytes >= kMinBytes && bytes <= kCachedBytes) {
    std::lock_guard<std::mutex> lock(mutex);
    while (!blocks.empty() && (held + bytes > kCachedBytes || int(blocks.size()) >= kCachedBlocks)) {
      release(blocks.front().p);
      held -= blocks.front().bytes;
      blocks.erase(blocks.begin());
    }
    blocks.push_back({p, bytes});
    held += bytes;
    return;
  }
  release(p);
}

}  // namespace block_cache

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

void ClassMoments::finalize_in_place() {
  const auto row = simd::select<FinalizeRow, void, const double*, const double*, const double*, const int64_t*,
                                double*, double*, double*, double*, int64_t, double>();
  for (int64_t k = 0; k < n_classes; ++k) {
    const int64_t o = k * n_channels;
    // The active fractions go to the int64 array's memory as float64 (the array is handed over as such).
    row(mean.data() + o, m2.data() + o, max.data() + o, active.data() + o, mean.data() + o, m2.data() + o,
        max.data() + o, reinterpret_cast<double*>(active.data() + o), n_channels, double(count[k]));
  }
}

bool ClassMoments::empty() const {
  return std::all_of(count.begin(), count.end(), [](int64_t n) { return n == 0; });
}

void ClassMoments::merge_range(const ClassMoments& o, const int64_t* na, const int64_t* nb, int64_t c0, int64_t c1) {
  const auto step = simd::select<MergeRow, void, double*, double*, double*, int64_t*, const double*, const double*,
                                 const double*, const int64_t*, int64_t, double, double>();
  const int64_t C = n_channels;
  for (int64_t k = 0; k < n_classes; ++k) {
    if (nb[k] == 0) continue;
    const double fa = double(na[k]), fb = double(nb[k]), fn = double(na[k] + nb[k]);
    const int64_t i = k * C + c0;
    step(mean.data() + i, m2.data() + i, max.data() + i, active.data() + i, o.mean.data() + i, o.m2.data() + i,
         o.max.data() + i, o.active.data() + i, c1 - c0, fb / fn, fa * fb / fn);
  }
}

void ClassMoments::merge(const ClassMoments& o) {
  merge_range(o, count.data(), o.count.data(), 0, n_channels);
  for (int64_t k = 0; k < n_classes; ++k) count[k] += o.count[k];
}

void finalize_moments(int64_t n_classes, int64_t n_channels, const int64_t* count, const double* mean, const double* m2,
                      const double* max, const int64_t* active, double* out_mean, double* out_std, double* out_max,
                      double* out_active) {
  const auto row = simd::select<FinalizeRow, void, const double*, const double*, const double*, const int64_t*,
                                double*, double*, double*, double*, int64_t, double>();
  for (int64_t k = 0; k < n_classes; ++k) {
    const int64_t o = k * n_channels;
    row(mean + o, m2 + o, max + o, active + o, out_mean + o, out_std + o, out_max + o, out_active + o, n_channels,
        double(count[k]));
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
  if (x.n == 0 || x.c == 0) {
    out.reset();
    return st;
  }
  return x.dtype == DType::F32 ? class_moments_cpu_t<float>(x, labels, out)
                               : class_moments_cpu_t<double>(x, labels, out);
}

}  // namespace cnnvis
