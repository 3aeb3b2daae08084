// CUDA helpers shared by the clustering backends (bicluster_cuda.cu, kmeans_cuda.cu): error checks,
// device buffers, and deterministic reductions (fixed blocks, partials summed in order, so a given GPU
// gives the same bits on every run). Only the CUDA runtime is used: no cuBLAS, cuSOLVER or cuRAND.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace cnnvis {
namespace cuda_detail {
namespace {  // internal linkage: each .cu file gets its own copy of these kernels

inline void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    cudaGetLastError();
    throw std::runtime_error(std::string("CUDA error in ") + what + ": " + cudaGetErrorString(err));
  }
}
#define CNNVIS_CUDA_CHECK(expr) ::cnnvis::cuda_detail::check((expr), #expr)
#define CNNVIS_CUDA_LAUNCHED(name) ::cnnvis::cuda_detail::check(cudaGetLastError(), name)

// Make the device that owns ptr current (inputs may live on any GPU).
inline void use_device_of(const void* ptr) {
  cudaPointerAttributes attr{};
  CNNVIS_CUDA_CHECK(cudaPointerGetAttributes(&attr, ptr));
  if (attr.type != cudaMemoryTypeDevice && attr.type != cudaMemoryTypeManaged)
    throw std::invalid_argument("expected a pointer to CUDA device memory");
  CNNVIS_CUDA_CHECK(cudaSetDevice(attr.device));
}

// Makes the device that owns ptr current for its owner's lifetime and gives the caller its device back
// afterwards. Declare it as the owner's first member: members are destroyed in reverse order, so the
// owner's device buffers are freed while their device is still current.
class DeviceScope {
 public:
  explicit DeviceScope(const void* ptr) {
    CNNVIS_CUDA_CHECK(cudaGetDevice(&prev_));
    use_device_of(ptr);
  }
  ~DeviceScope() { cudaSetDevice(prev_); }
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;

 private:
  int prev_ = 0;
};

template <typename T>
class DevBuf {
 public:
  DevBuf() = default;
  explicit DevBuf(int64_t count) { resize(count); }
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
  ~DevBuf() {
    if (p_) cudaFree(p_);
  }
  void resize(int64_t count) {
    if (count <= count_) return;
    if (p_) cudaFree(p_);
    p_ = nullptr;
    CNNVIS_CUDA_CHECK(cudaMalloc(&p_, static_cast<size_t>(count > 0 ? count : 1) * sizeof(T)));
    count_ = count;
  }
  T* get() const { return p_; }
  void upload(const T* host, int64_t count) {
    resize(count);
    CNNVIS_CUDA_CHECK(cudaMemcpy(p_, host, count * sizeof(T), cudaMemcpyHostToDevice));
  }
  std::vector<T> download(int64_t count) const {
    std::vector<T> out(count);
    if (count) CNNVIS_CUDA_CHECK(cudaMemcpy(out.data(), p_, count * sizeof(T), cudaMemcpyDeviceToHost));
    return out;
  }

 private:
  T* p_ = nullptr;
  int64_t count_ = 0;
};

inline int sm_count() {
  static int sms = [] {
    int dev = 0, n = 0;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev);
    return n > 0 ? n : 80;
  }();
  return sms;
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Tree sum over a 256-thread block (fixed order); the result is valid in thread 0.
__device__ inline double block_sum_256(double v, double* shared) {
  const int t = threadIdx.x;
  shared[t] = v;
  __syncthreads();
  for (int s = 128; s > 0; s >>= 1) {
    if (t < s) shared[t] += shared[t + s];
    __syncthreads();
  }
  const double r = shared[0];
  __syncthreads();
  return r;
}

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
