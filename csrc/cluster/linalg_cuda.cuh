// Deterministic thin-matrix reductions for the clustering backends (bicluster_cuda.cu): fixed blocks,
// partials summed in order, so a given GPU gives the same bits on every run. The general CUDA utilities
// (errors, devices, streams, buffers) are common/cuda_utils.cuh.
#pragma once
#include <algorithm>
#include <cstdint>

#include "common/cuda_utils.cuh"

namespace cnnvis {
namespace cuda_detail {
namespace {  // internal linkage: each .cu file gets its own copy of these kernels

// out[c] = Σ_i w1_i · w2_i · M[i, c] for a row-major (len × l) double matrix; w1/w2 may be null (ones).
// Stage 1: block b sums a contiguous range of rows; stage 2 adds the block partials in order.
__global__ void weighted_colsum_partial(const double* __restrict__ m, int64_t len, int l,
                                               const double* __restrict__ w1, const double* __restrict__ w2,
                                               int64_t rows_per_block, double* __restrict__ part) {
  __shared__ double sh[256];
  const int64_t begin = blockIdx.x * rows_per_block;
  const int64_t end = begin + rows_per_block < len ? begin + rows_per_block : len;
  const int lane = threadIdx.x % 32, ro = threadIdx.x / 32;
  for (int c0 = 0; c0 < l; c0 += 32) {
    const int c = c0 + lane;
    double s = 0.0;
    if (c < l)
      for (int64_t i = begin + ro; i < end; i += 8) {
        double w = 1.0;
        if (w1) w *= w1[i];
        if (w2) w *= w2[i];
        s += w * m[i * l + c];
      }
    sh[threadIdx.x] = s;
    __syncthreads();
    if (ro == 0 && c < l) {
      double tot = 0.0;
      for (int r = 0; r < 8; ++r) tot += sh[r * 32 + lane];
      part[blockIdx.x * static_cast<int64_t>(l) + c] = tot;
    }
    __syncthreads();
  }
}

__global__ void sum_partials(const double* __restrict__ part, int nblocks, int l, double* __restrict__ out) {
  for (int c = threadIdx.x; c < l; c += blockDim.x) {
    double s = 0.0;
    for (int b = 0; b < nblocks; ++b) s += part[static_cast<int64_t>(b) * l + c];
    out[c] = s;
  }
}

inline void weighted_colsum(const double* m, int64_t len, int l, const double* w1, const double* w2, double* out,
                            DevBuf<double>& scratch) {
  const int64_t nblocks = len == 0 ? 1 : std::min<int64_t>(256, ceil_div(len, 256));
  const int64_t rows = ceil_div(len > 0 ? len : 1, nblocks);
  scratch.resize(nblocks * l);
  weighted_colsum_partial<<<static_cast<unsigned>(nblocks), 256>>>(m, len, l, w1, w2, rows, scratch.get());
  CNNVIS_CUDA_LAUNCHED("weighted_colsum_partial");
  sum_partials<<<1, 64>>>(scratch.get(), static_cast<int>(nblocks), l, out);
  CNNVIS_CUDA_LAUNCHED("sum_partials");
}

}  // namespace
}  // namespace cuda_detail
}  // namespace cnnvis
