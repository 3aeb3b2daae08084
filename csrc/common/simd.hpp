// Portable SIMD helpers shared by the CPU kernels (bicluster.cpp, kmeans.cpp). The module is built without
// -march so it runs on any x86-64: hot loops are compiled twice, for AVX2+FMA (CNNVIS_TARGET_AVX2) and for
// the baseline, and cpu_has_avx2() picks one at run time.
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

}  // namespace simd
}  // namespace cnnvis
