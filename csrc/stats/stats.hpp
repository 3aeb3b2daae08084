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
#include <cstdint>
#include <vector>

#include "common/dtype.hpp"

namespace cnnvis {

// Running moments of K classes x C channels; also the result of one batch.
struct ClassMoments {
  int64_t n_classes = 0, n_channels = 0;
  std::vector<int64_t> count;   // (K,)
  std::vector<double> mean;     // (K, C) mean of r
  std::vector<double> m2;       // (K, C) sum of squared deviations of r from the mean
  std::vector<double> max;      // (K, C) max of m; -inf while empty
  std::vector<int64_t> active;  // (K, C) images with m > 0

  ClassMoments() = default;
  ClassMoments(int64_t k, int64_t c);
  void reset();
  // Chan's pairwise combination: *this becomes the statistics of both sample sets.
  void merge(const ClassMoments& other);
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

// First label outside [0, K), if any (O(N), runs before any activation is read).
StatsStatus check_labels(const int64_t* labels, int64_t n, int64_t n_classes);

// CPU kernel: statistics of one batch into `out` (reset first). OpenMP over channel blocks, or over image
// blocks with private partials merged at the end when there are few channels; no atomics. The row
// reductions and updates take the active CPU path (common/simd.hpp: default, AVX2 or AVX-512).
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
