// Per-class activation statistics (CNNVis): one fused pass over activations of shape (N, C, S).
//
// For every row (image n, channel c) of S spatial values the kernels compute the spatial sum (in double)
// and max, then accumulate per (class k, channel c): the image count, the mean and the sum of squared
// deviations (M2) of the spatial means r, the max of the spatial maxima m and the number of images with
// m > 0. Batches and accumulators combine with Chan et al.'s pairwise update, so streaming many small
// batches gives the same result as one large one, without the cancellation of a naive sum of squares.
//
// Layout: element (n, c, s) lives at x[n * stride_n + c * stride_c + s] (strides in elements, may be
// negative); the spatial axis must be contiguous. Accepted element types: float32 and float64; wider or
// narrower floats are cast by the caller (the Python wrapper casts float16/bfloat16 to float32).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/dtype.hpp"

namespace cnnvis {

// Blocks of reused memory for the (K, C) arrays of ClassMoments. A K x C array is allocated per call
// (the state of class_statistics, a thread's partial, the result handed to numpy); fresh pages cost a
// fault each (about 4 us a page on the VM this was measured on: 1.3 ms for the 1.3 MB of a (4096, 4096)
// batch's state, a third of a plain read of the batch), so blocks of 64 KiB and more are kept when freed
// (at most kCachedBlocks of them, kCachedBytes in all, the oldest dropped first) and handed out again for
// the same size. Thread-safe.
namespace block_cache {
constexpr std::size_t kMinBytes = std::size_t(64) << 10;
constexpr std::size_t kCachedBytes = std::size_t(64) << 20;
constexpr int kCachedBlocks = 16;
void* take(std::size_t bytes);
void give(void* p, std::size_t bytes);
}  // namespace block_cache

template <class T>
struct CachedAllocator {
  using value_type = T;
  CachedAllocator() = default;
  template <class U>
  CachedAllocator(const CachedAllocator<U>&) {}
  T* allocate(std::size_t n) { return static_cast<T*>(block_cache::take(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) { block_cache::give(p, n * sizeof(T)); }
  template <class U>
  bool operator==(const CachedAllocator<U>&) const { return true; }
  template <class U>
  bool operator!=(const CachedAllocator<U>&) const { return false; }
};

template <class T>
using CachedVector = std::vector<T, CachedAllocator<T>>;

// Running moments of K classes x C channels; also the result of one batch.
struct ClassMoments {
  int64_t n_classes = 0, n_channels = 0;
  std::vector<int64_t> count;    // (K,)
  CachedVector<double> mean;     // (K, C) mean of r
  CachedVector<double> m2;       // (K, C) sum of squared deviations of r from the mean
  CachedVector<double> max;      // (K, C) max of m; -inf while empty
  CachedVector<int64_t> active;  // (K, C) images with m > 0

  ClassMoments() = default;
  ClassMoments(int64_t k, int64_t c);
  void reset();
  // No images yet (every count 0).
  bool empty() const;
  // Chan's pairwise combination: *this becomes the statistics of both sample sets.
  void merge(const ClassMoments& other);
  // The same for channels [c0, c1) of every class, with the class counts na (this) and nb (other) given
  // and left as they are (threads merge disjoint channel ranges).
  void merge_range(const ClassMoments& other, const int64_t* na, const int64_t* nb, int64_t c0, int64_t c1);
  // finalize_moments in place: mean stays, m2 becomes the std, max stays, active becomes the active
  // fraction (float64 values in the int64 array's memory), NaN rows for empty classes. The moments are
  // gone afterwards (for a state whose arrays are handed over as the result).
  void finalize_in_place();
};

// Outcome of a batch: on failure nothing is merged and the fields say where the problem is.
struct StatsStatus {
  enum Code { Ok = 0, BadLabel = 1, NonFinite = 2 } code = Ok;
  int64_t index = -1;  // BadLabel: position in labels;   NonFinite: image n
  int64_t value = 0;   // BadLabel: the label value;      NonFinite: channel c
};

struct ActivationView {
  const void* data = nullptr;
  DType dtype = DType::F32;
  int64_t n = 0, c = 0, s = 0;      // images, channels, spatial size
  int64_t stride_n = 0, stride_c = 0;  // in elements
};

// The statistics of raw moments (count (K,); mean, m2, max, active (K, C), row-major): the mean, the
// population std sqrt(max(m2, 0) / n), the max and the active fraction active / n, each (K, C) into the
// out_* arrays, NaN throughout the rows of classes with no images. One pass, no temporaries.
void finalize_moments(int64_t n_classes, int64_t n_channels, const int64_t* count, const double* mean, const double* m2,
                      const double* max, const int64_t* active, double* out_mean, double* out_std, double* out_max,
                      double* out_active);

// First label outside [0, K), if any (O(N), runs before any activation is read).
StatsStatus check_labels(const int64_t* labels, int64_t n, int64_t n_classes);

// CPU kernel: statistics of one batch into `out` (overwritten). OpenMP over channel blocks, or over image
// blocks with private partials (few channels), merged in block order by the thread that finishes the last
// block (an atomic count; no barrier in between), so results do not depend on the thread timing. float32
// (N, C) input keeps its squared deviations in float32 within runs of 8 images (std to ~1e-7 relative).
// The row reductions and updates take the active CPU path (common/simd.hpp: default, AVX2 or AVX-512).
StatsStatus class_moments_cpu(const ActivationView& x, const int64_t* labels, ClassMoments& out);

#ifdef CNNVIS_WITH_CUDA
// CUDA kernel: `x.data` is a device pointer (or a host pointer to a C-contiguous array when
// `host_input`, which is then copied to the device first); labels are on the host (they are also needed
// there for the counts). Runs on `stream` (a cudaStream_t as an integer; 0 = legacy default), on the device
// that owns x.data, and returns after the small results are copied back to `out`.
StatsStatus class_moments_cuda(const ActivationView& x, const int64_t* labels, ClassMoments& out,
                               std::uintptr_t stream, bool host_input);
#endif

}  // namespace cnnvis
