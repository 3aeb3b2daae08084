// The one SIMD dispatch scheme of the CPU kernels (stats.cpp, kmeans.cpp, bicluster.cpp), after PyTorch's
// DispatchStub. The module is built without -march so it runs on any x86-64. A hot kernel is written once,
// as a struct K with an always-inline `template <class Isa, ...> static R run(...)` whose vectors come
// from Vec<T, Isa::bytes> (GCC vector types); Multi<K> compiles it once per path (default, AVX2+FMA,
// AVX-512) and dispatch<K, R>(args...) / select<K, R, Args...>() call or return the copy of the active
// path. The active path is the widest the CPU runs, or the one CNNVIS_CPU_CAPABILITY names (read when the
// module loads, common/cpu.cpp); tests switch it through _core._testing.set_cpu_capability.
#pragma once
#include <atomic>
#include <string>
#include <type_traits>
#include <vector>

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
#endif

namespace cnnvis {
namespace simd {

// The CPU paths, narrowest first.
enum class Capability : int { kDefault = 0, kAvx2 = 1, kAvx512 = 2 };

const char* capability_name(Capability c);
// "default" | "avx2" | "avx512"; throws InvalidArgument naming the accepted values otherwise.
Capability parse_capability(const std::string& name);
// The widest path this CPU (and this build) runs.
Capability max_capability();
// Every path this CPU runs, narrowest first.
std::vector<Capability> available_capabilities();
// Makes c the active path; throws InvalidArgument when the CPU lacks it.
void set_capability(Capability c);
// The path a request names on a CPU whose widest is `widest`: an unknown name throws InvalidArgument; a
// path wider than `widest` falls back to it, with a warning line (empty when nothing to warn).
struct Resolved {
  Capability capability;
  std::string warning;
};
Resolved resolve_capability(const std::string& requested, Capability widest);
// Applies CNNVIS_CPU_CAPABILITY (when set) as resolve_capability says; returns its warning.
std::string apply_capability_env();

namespace detail {
extern std::atomic<int> active;
}
// The active path (one relaxed load: cheap enough to ask per kernel call).
inline Capability capability() { return static_cast<Capability>(detail::active.load(std::memory_order_relaxed)); }

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define CNNVIS_X86 1
#define CNNVIS_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define CNNVIS_TARGET_AVX512 \
  __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma,prefer-vector-width=512")))
#else
#define CNNVIS_TARGET_AVX2
#define CNNVIS_TARGET_AVX512
#endif

// Vector traits of the paths: the width of the GCC vectors the kernels use. The default path has SSE2's
// 16 bytes (GCC lowers wider vectors' comparisons to scalar code there).
struct Default {
  static constexpr int bytes = 16;
};
struct Avx2 {
  static constexpr int bytes = 32;
};
struct Avx512 {
  static constexpr int bytes = 64;
};

// B bytes of T as a GCC vector type. Memory goes through load/store below, never through a V*: GCC
// drops an aligned() attribute on a dependent typedef, so a dereference would assume B-byte alignment.
template <typename T, int B>
struct Vec {
  typedef T type __attribute__((vector_size(B)));
  static constexpr int lanes = B / int(sizeof(T));
};

// Unaligned load and store of a vector of type V at p.
template <typename V, typename T>
[[gnu::always_inline]] inline V load(const T* p) {
  V v;
  __builtin_memcpy(&v, p, sizeof(V));
  return v;
}
template <typename V, typename T>
[[gnu::always_inline]] inline void store(T* p, const V& v) {
  __builtin_memcpy(p, &v, sizeof(V));
}
// Lane-wise a > b ? a : b (maxpd's rule: b where either is NaN) and a > b ? 1 : 0. 16-byte vectors (the
// default path's SSE2) as bitwise blends: GCC scalarises the vector ?: there; wider ones (only ever in the
// AVX2 / AVX-512 copies) as ?:, which GCC turns into one maxps / maxpd (a blend costs a compare too).
template <typename V>
[[gnu::always_inline]] inline V max(V a, V b) {
  if constexpr (sizeof(V) > 16) {
    return a > b ? a : b;
  } else {
    using I = decltype(a > b);
    const I m = a > b;
    return reinterpret_cast<V>((reinterpret_cast<I>(a) & m) | (reinterpret_cast<I>(b) & ~m));
  }
}
template <typename V>
[[gnu::always_inline]] inline V one_if_greater(V a, V b) {
  using I = decltype(a > b);
  return reinterpret_cast<V>(reinterpret_cast<I>(V{} + 1) & (a > b));
}

#ifdef CNNVIS_X86
// float -> double widening of 4 (AVX) and 8 (AVX-512) lanes as one vcvtps2pd: GCC 12 lowers
// __builtin_convertvector of those widths to two-lane conversions plus shuffles (3-5 instructions where
// one does, in the hottest loop of the statistics kernels). Plain `inline` functions of a narrower target
// than the AVX2 / AVX-512 copies that call them (through their always-inline kernels), so GCC inlines
// them there; they are only called from those copies (vectors of 32 or 64 bytes never occur in the
// default path).
#pragma GCC push_options
#pragma GCC target("avx")
inline __m256d widen_avx(__m128 x) { return _mm256_cvtps_pd(x); }
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("avx512f")
inline __m512d widen_avx512(__m256 x) { return _mm512_cvtps_pd(x); }
#pragma GCC pop_options
#endif

// The lanes of w (a vector of floats or doubles) as V (doubles of the same lane count).
template <typename V, typename W>
[[gnu::always_inline]] inline V widen(W w) {
#ifdef CNNVIS_X86
  constexpr bool from_float = std::is_same_v<std::decay_t<decltype(w[0])>, float> && sizeof(W) * 2 == sizeof(V);
  if constexpr (from_float && sizeof(V) == 32) {
    return reinterpret_cast<V>(widen_avx(reinterpret_cast<__m128>(w)));
  } else if constexpr (from_float && sizeof(V) == 64) {
    return reinterpret_cast<V>(widen_avx512(reinterpret_cast<__m256>(w)));
  } else
#endif
  {
    return __builtin_convertvector(w, V);
  }
}

// The lanes of V (doubles) loaded from p, element type T (float values are widened).
template <typename V, typename T>
[[gnu::always_inline]] inline V load_as(const T* p) {
  using From = typename Vec<T, int(sizeof(V) / sizeof(V{}[0]) * sizeof(T))>::type;
  return widen<V>(load<From>(p));
}

// The copies of kernel K, one per path (K::run must be always-inline: it is compiled for its caller's
// target).
template <class K>
struct Multi {
  template <class R, class... A>
  CNNVIS_TARGET_AVX512 static R avx512(A... a) {
    return K::template run<Avx512>(a...);
  }
  template <class R, class... A>
  CNNVIS_TARGET_AVX2 static R avx2(A... a) {
    return K::template run<Avx2>(a...);
  }
  template <class R, class... A>
  static R base(A... a) {
    return K::template run<Default>(a...);
  }
};

// The copy of K for the active path, as a function pointer (for kernels called in a loop).
template <class K, class R, class... A>
auto select() -> R (*)(A...) {
  switch (capability()) {
    case Capability::kAvx512: return &Multi<K>::template avx512<R, A...>;
    case Capability::kAvx2: return &Multi<K>::template avx2<R, A...>;
    default: return &Multi<K>::template base<R, A...>;
  }
}

// Calls the copy of K for the active path.
template <class K, class R, class... A>
R dispatch(A... a) {
  return select<K, R, A...>()(a...);
}

// Register-tiled kernels over R rows (1..4) and `width` columns (a multiple of 32 bytes), covered by
// chunks of two vectors, then one (the default path's 16-byte vectors end there), then (AVX-512) one
// 32-byte vector: Chunk<T, R, NV, B>::run(a, n, b,
// width, c0, out) handles the NV vectors of B bytes of columns from c0.
template <template <typename, int, int, int> class Chunk, typename T, int R>
struct RowTile {
  template <class Isa, typename N, typename Out>
  [[gnu::always_inline]] static inline void run(const T* a, N n, const T* b, int width, Out* out) {
    constexpr int B = Isa::bytes, L = Vec<T, B>::lanes;
    int c0 = 0;
    for (; c0 + 2 * L <= width; c0 += 2 * L) Chunk<T, R, 2, B>::run(a, n, b, width, c0, out);
    if (c0 + L <= width) Chunk<T, R, 1, B>::run(a, n, b, width, c0, out), c0 += L;
    if constexpr (B > 32) {
      if (c0 < width) Chunk<T, R, 1, 32>::run(a, n, b, width, c0, out);
    }
  }
};

template <typename T, typename N, typename Out>
using RowTileFn = void (*)(const T* a, N n, const T* b, int width, Out* out);

// The active path's copy of the kernel for a tile of `rows` rows (1..4).
template <template <typename, int, int, int> class Chunk, typename T, typename N, typename Out>
RowTileFn<T, N, Out> pick_row_tile(int rows) {
  switch (rows) {
    case 4: return select<RowTile<Chunk, T, 4>, void, const T*, N, const T*, int, Out*>();
    case 3: return select<RowTile<Chunk, T, 3>, void, const T*, N, const T*, int, Out*>();
    case 2: return select<RowTile<Chunk, T, 2>, void, const T*, N, const T*, int, Out*>();
    default: return select<RowTile<Chunk, T, 1>, void, const T*, N, const T*, int, Out*>();
  }
}

// Thin matrices are padded to whole 32-byte vectors (8 floats, 4 doubles) on every path.
constexpr int padded_width(int l, int elem_size) {
  const int step = 32 / elem_size;
  return (l + step - 1) / step * step;
}

}  // namespace simd
}  // namespace cnnvis
