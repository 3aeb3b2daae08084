// Portable SIMD helpers shared by the CPU kernels (bicluster.cpp, kmeans.cpp). The module is built without
// -march so it runs on any x86-64: hot loops are compiled twice, for AVX2+FMA (CNNVIS_TARGET_AVX2) and for
// the baseline, and cpu_has_avx2() picks one at run time (pick_row_tile below does both for the
// register-tiled kernels).
#pragma once

namespace cnnvis {
namespace simd {

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define CNNVIS_X86_DISPATCH 1
#define CNNVIS_TARGET_AVX2 __attribute__((target("avx2,fma")))
inline bool cpu_has_avx2() {
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return ok;
}
#else
#define CNNVIS_TARGET_AVX2
inline bool cpu_has_avx2() { return false; }
#endif

// GCC/Clang vector types: the accumulators stay in registers whatever the target (two SSE registers per
// 32-byte vector on the baseline, one AVX register with AVX2). Loads through the under-aligned typedef
// are unaligned loads.
template <typename T>
struct Vec;
template <>
struct Vec<float> {
  typedef float type __attribute__((vector_size(32), aligned(4)));
  static constexpr int lanes = 8;
};
template <>
struct Vec<double> {
  typedef double type __attribute__((vector_size(32), aligned(8)));
  static constexpr int lanes = 4;
};

// Register-tiled kernels over R rows (1..4) and `width` columns (a multiple of the lanes), covered by
// chunks of two vectors, then one: Chunk<T, R, NV>::run(a, n, b, width, c0, out) handles the NV vectors
// of columns from c0 (it must be always-inline, so it is compiled for its caller's target).
template <template <typename, int, int> class Chunk, typename T, int R>
struct RowTile {
  template <typename N, typename Out>
  [[gnu::always_inline]] static inline void body(const T* a, N n, const T* b, int width, Out* out) {
    constexpr int L = Vec<T>::lanes;
    int c0 = 0;
    for (; c0 + 2 * L <= width; c0 += 2 * L) Chunk<T, R, 2>::run(a, n, b, width, c0, out);
    if (c0 < width) Chunk<T, R, 1>::run(a, n, b, width, c0, out);
  }
  template <typename N, typename Out>
  CNNVIS_TARGET_AVX2 static void avx2(const T* a, N n, const T* b, int width, Out* out) {
    body(a, n, b, width, out);
  }
  template <typename N, typename Out>
  static void base(const T* a, N n, const T* b, int width, Out* out) {
    body(a, n, b, width, out);
  }
};

template <typename T, typename N, typename Out>
using RowTileFn = void (*)(const T* a, N n, const T* b, int width, Out* out);

// The AVX2 or baseline copy of the kernel for a tile of `rows` rows (1..4).
template <template <typename, int, int> class Chunk, typename T, typename N, typename Out>
RowTileFn<T, N, Out> pick_row_tile(int rows) {
  const bool v = cpu_has_avx2();
  switch (rows) {
    case 4: return v ? RowTile<Chunk, T, 4>::template avx2<N, Out> : RowTile<Chunk, T, 4>::template base<N, Out>;
    case 3: return v ? RowTile<Chunk, T, 3>::template avx2<N, Out> : RowTile<Chunk, T, 3>::template base<N, Out>;
    case 2: return v ? RowTile<Chunk, T, 2>::template avx2<N, Out> : RowTile<Chunk, T, 2>::template base<N, Out>;
    default: return v ? RowTile<Chunk, T, 1>::template avx2<N, Out> : RowTile<Chunk, T, 1>::template base<N, Out>;
  }
}

}  // namespace simd
}  // namespace cnnvis
