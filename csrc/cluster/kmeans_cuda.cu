// CUDA implementation of KMeansBackend (kmeans.hpp): the O(N) work of k-means++ and Lloyd's iterations
// runs on the device; the algorithm itself (kmeans.cpp) drives it from the host with k×D-sized copies.
// Sums over points are per chunk of kKMeansChunk points (one block each) added in order on the host;
// only the per-cluster coordinate sums use atomics (reproducible to rounding, not bit for bit).
#include <cuda_runtime.h>

#include <cmath>
#include <cstring>

#include "cluster/bicluster.hpp"
#include "cluster/kmeans.hpp"
#include "common/cuda_utils.cuh"

namespace cnnvis {
namespace {

using cuda_detail::block_sum_256;
using cuda_detail::ceil_div;
using cuda_detail::DevBuf;


template <typename T>
__global__ void set_mindist_kernel(const T* __restrict__ x, int64_t n, int d, const double* __restrict__ c,
                                   bool keep_min, double* __restrict__ mind) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  const double v = squared_distance(x + i * d, c, d);
  mind[i] = keep_min ? fmin(mind[i], v) : v;
}

// One block per chunk of kKMeansChunk points.
__global__ void chunk_sum_kernel(const double* __restrict__ v, int64_t n, double* __restrict__ out) {
  __shared__ double sh[256];
  const int64_t begin = blockIdx.x * kKMeansChunk;
  const int64_t end = begin + kKMeansChunk < n ? begin + kKMeansChunk : n;
  double s = 0.0;
  for (int64_t i = begin + threadIdx.x; i < end; i += 256) s += v[i];
  s = block_sum_256(s, sh);
  if (threadIdx.x == 0) out[blockIdx.x] = s;
}

template <typename T>
__global__ void candidate_kernel(const T* __restrict__ x, int64_t n, int d, const double* __restrict__ cands, int t,
                                 const double* __restrict__ mind, double* __restrict__ part) {
  __shared__ double sh[256];
  const int64_t begin = blockIdx.x * kKMeansChunk;
  const int64_t end = begin + kKMeansChunk < n ? begin + kKMeansChunk : n;
  for (int q = 0; q < t; ++q) {
    double s = 0.0;
    for (int64_t i = begin + threadIdx.x; i < end; i += 256) s += fmin(mind[i], squared_distance(x + i * d, cands + q * d, d));
    s = block_sum_256(s, sh);
    if (threadIdx.x == 0) part[blockIdx.x * static_cast<int64_t>(t) + q] = s;
  }
}

// Nearest center per point (centers staged in shared memory when they fit); per-chunk inertia and
// count of changed labels.
template <typename T>
__global__ void assign_kernel(const T* __restrict__ x, int64_t n, int d, const double* __restrict__ centers, int k,
                              int64_t* __restrict__ labels, double* __restrict__ mind, double* __restrict__ inertia,
                              unsigned long long* __restrict__ changed) {
  extern __shared__ double sc[];
  __shared__ double sh[256];
  const bool staged = static_cast<int64_t>(k) * d <= 4096;
  if (staged)
    for (int e = threadIdx.x; e < k * d; e += 256) sc[e] = centers[e];
  __syncthreads();
  const double* cs = staged ? sc : centers;
  const int64_t begin = blockIdx.x * kKMeansChunk;
  const int64_t end = begin + kKMeansChunk < n ? begin + kKMeansChunk : n;
  double s = 0.0, moved = 0.0;
  for (int64_t i = begin + threadIdx.x; i < end; i += 256) {
    const T* row = x + i * d;
    double best = INFINITY;
    int64_t arg = 0;
    for (int q = 0; q < k; ++q) {
      const double v = squared_distance(row, cs + static_cast<int64_t>(q) * d, d);
      if (v < best) best = v, arg = q;
    }
    moved += labels[i] != arg ? 1.0 : 0.0;
    labels[i] = arg;
    mind[i] = best;
    s += best;
  }
  s = block_sum_256(s, sh);
  moved = block_sum_256(moved, sh);
  if (threadIdx.x == 0) {
    inertia[blockIdx.x] = s;
    changed[blockIdx.x] = static_cast<unsigned long long>(moved);
  }
}

template <typename T>
__global__ void center_sums_kernel(const T* __restrict__ x, int64_t n, int d, const int64_t* __restrict__ labels,
                                   int k, double* __restrict__ sums, unsigned long long* __restrict__ counts) {
  extern __shared__ double ssum[];
  const bool staged = static_cast<int64_t>(k) * d <= 4096;
  if (staged) {
    for (int e = threadIdx.x; e < k * d; e += blockDim.x) ssum[e] = 0.0;
    __syncthreads();
  }
  double* target = staged ? ssum : sums;
  const int64_t begin = blockIdx.x * kKMeansChunk;
  const int64_t end = begin + kKMeansChunk < n ? begin + kKMeansChunk : n;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    const int64_t c = labels[i];
    atomicAdd(&counts[c], 1ULL);
    for (int j = 0; j < d; ++j) atomicAdd(&target[c * d + j], static_cast<double>(x[i * d + j]));
  }
  if (staged) {
    __syncthreads();
    for (int e = threadIdx.x; e < k * d; e += blockDim.x) atomicAdd(&sums[e], ssum[e]);
  }
}

// Per-chunk column sums of (x − mean)² (mean null: of x), for the variance scale of tol.
template <typename T>
__global__ void col_moment_kernel(const T* __restrict__ x, int64_t n, int d, const double* __restrict__ mean,
                                  double* __restrict__ part) {
  const int64_t begin = blockIdx.x * kKMeansChunk;
  const int64_t end = begin + kKMeansChunk < n ? begin + kKMeansChunk : n;
  for (int j = threadIdx.x; j < d; j += blockDim.x) {
    double s = 0.0;
    for (int64_t i = begin; i < end; ++i) {
      const double v = static_cast<double>(x[i * d + j]);
      s += mean ? (v - mean[j]) * (v - mean[j]) : v;
    }
    part[blockIdx.x * static_cast<int64_t>(d) + j] = s;
  }
}

unsigned grid_for(int64_t count) { return static_cast<unsigned>(ceil_div(count, 256)); }

template <typename T>
class CudaKMeans final : public KMeansBackend {
 public:
  CudaKMeans(const T* x, int64_t n, int d, std::uintptr_t stream) : scope_(x, stream), x_(x), n_(n), d_(d), nc_(ceil_div(n, kKMeansChunk)) {
    mind_.resize(n);
    labels_.resize(n);
    reset_labels();
  }
  int64_t n() const override { return n_; }
  int d() const override { return d_; }

  double mean_variance() override {
    DevBuf<double> part(nc_ * d_);
    col_moment_kernel<T><<<static_cast<unsigned>(nc_), 256>>>(x_, n_, d_, nullptr, part.get());
    CNNVIS_CUDA_LAUNCHED("col_moment_kernel");
    std::vector<double> mean = column_total(part);
    for (auto& v : mean) v /= n_;
    DevBuf<double> md;
    md.upload(mean.data(), d_);
    col_moment_kernel<T><<<static_cast<unsigned>(nc_), 256>>>(x_, n_, d_, md.get(), part.get());
    CNNVIS_CUDA_LAUNCHED("col_moment_kernel");
    const std::vector<double> var = column_total(part);
    double s = 0.0;
    for (double v : var) s += v / n_;
    return s / d_;
  }

  void get_point(int64_t i, double* row) override {
    std::vector<T> h(d_);
    CNNVIS_CUDA_CHECK(cudaMemcpy(h.data(), x_ + i * d_, d_ * sizeof(T), cudaMemcpyDeviceToHost));
    for (int j = 0; j < d_; ++j) row[j] = static_cast<double>(h[j]);
  }

  void set_mindist(const double* c, bool keep_min) override {
    small_.upload(c, d_);
    set_mindist_kernel<T><<<grid_for(n_), 256>>>(x_, n_, d_, small_.get(), keep_min, mind_.get());
    CNNVIS_CUDA_LAUNCHED("set_mindist_kernel");
  }

  void mindist_chunk_sums(double* sums) override {
    part_.resize(nc_);
    chunk_sum_kernel<<<static_cast<unsigned>(nc_), 256>>>(mind_.get(), n_, part_.get());
    CNNVIS_CUDA_LAUNCHED("chunk_sum_kernel");
    CNNVIS_CUDA_CHECK(cudaMemcpy(sums, part_.get(), nc_ * sizeof(double), cudaMemcpyDeviceToHost));
  }

  void read_mindist(int64_t begin, int64_t count, double* out) override {
    CNNVIS_CUDA_CHECK(cudaMemcpy(out, mind_.get() + begin, count * sizeof(double), cudaMemcpyDeviceToHost));
  }

  void candidate_potentials(const double* cands, int t, double* pot) override {
    small_.upload(cands, static_cast<int64_t>(t) * d_);
    part_.resize(nc_ * t);
    candidate_kernel<T><<<static_cast<unsigned>(nc_), 256>>>(x_, n_, d_, small_.get(), t, mind_.get(), part_.get());
    CNNVIS_CUDA_LAUNCHED("candidate_kernel");
    const auto h = part_.download(nc_ * t);
    for (int q = 0; q < t; ++q) {
      double s = 0.0;
      for (int64_t c = 0; c < nc_; ++c) s += h[c * t + q];
      pot[q] = s;
    }
  }

  double assign(const double* centers, int k, int64_t* changed) override {
    centers_.upload(centers, static_cast<int64_t>(k) * d_);
    part_.resize(nc_);
    moved_.resize(nc_);
    const size_t shmem = static_cast<int64_t>(k) * d_ <= 4096 ? static_cast<size_t>(k) * d_ * sizeof(double) : 0;
    assign_kernel<T><<<static_cast<unsigned>(nc_), 256, shmem>>>(x_, n_, d_, centers_.get(), k, labels_.get(),
                                                                 mind_.get(), part_.get(), moved_.get());
    CNNVIS_CUDA_LAUNCHED("assign_kernel");
    const auto in = part_.download(nc_);
    const auto mv = moved_.download(nc_);
    double total = 0.0;
    int64_t moved = 0;
    for (int64_t c = 0; c < nc_; ++c) total += in[c], moved += static_cast<int64_t>(mv[c]);
    *changed = moved;
    return total;
  }

  void reset_labels() override { CNNVIS_CUDA_CHECK(cudaMemset(labels_.get(), 0xff, n_ * sizeof(int64_t))); }

  void center_sums(int k, double* sums, int64_t* counts) override {
    sums_.resize(static_cast<int64_t>(k) * d_);
    counts_.resize(k);
    CNNVIS_CUDA_CHECK(cudaMemset(sums_.get(), 0, static_cast<size_t>(k) * d_ * sizeof(double)));
    CNNVIS_CUDA_CHECK(cudaMemset(counts_.get(), 0, static_cast<size_t>(k) * sizeof(unsigned long long)));
    const size_t shmem = static_cast<int64_t>(k) * d_ <= 4096 ? static_cast<size_t>(k) * d_ * sizeof(double) : 0;
    center_sums_kernel<T><<<static_cast<unsigned>(nc_), 256, shmem>>>(x_, n_, d_, labels_.get(), k, sums_.get(),
                                                                      counts_.get());
    CNNVIS_CUDA_LAUNCHED("center_sums_kernel");
    CNNVIS_CUDA_CHECK(cudaMemcpy(sums, sums_.get(), static_cast<size_t>(k) * d_ * sizeof(double),
                                 cudaMemcpyDeviceToHost));
    const auto c = counts_.download(k);
    for (int q = 0; q < k; ++q) counts[q] = static_cast<int64_t>(c[q]);
  }

  void read_labels(int64_t* out) override {
    CNNVIS_CUDA_CHECK(cudaMemcpy(out, labels_.get(), n_ * sizeof(int64_t), cudaMemcpyDeviceToHost));
  }

 private:
  std::vector<double> column_total(const DevBuf<double>& part) {
    const auto h = part.download(nc_ * d_);
    std::vector<double> out(d_, 0.0);
    for (int64_t c = 0; c < nc_; ++c)
      for (int j = 0; j < d_; ++j) out[j] += h[c * d_ + j];
    return out;
  }

  cuda_detail::DeviceScope scope_;  // first: restores the caller's device after the buffers are freed
  const T* x_;
  int64_t n_;
  int d_;
  int64_t nc_;
  DevBuf<double> mind_, part_, small_, centers_, sums_;
  DevBuf<int64_t> labels_;
  DevBuf<unsigned long long> moved_, counts_;
};

}  // namespace

std::unique_ptr<KMeansBackend> make_cuda_kmeans(const float* x_dev, int64_t n, int d, std::uintptr_t stream) {
  return std::make_unique<CudaKMeans<float>>(x_dev, n, d, stream);
}
std::unique_ptr<KMeansBackend> make_cuda_kmeans(const double* x_dev, int64_t n, int d, std::uintptr_t stream) {
  return std::make_unique<CudaKMeans<double>>(x_dev, n, d, stream);
}

KMeansFn cuda_kmeans_fn(const KMeansOptions& base) {
  return [base](const double* x, int64_t n, int d, int k, uint64_t seed) {
    DevBuf<double> xd;
    xd.upload(x, n * d);
    CudaKMeans<double> be(xd.get(), n, d, 0);
    KMeansOptions o = base;
    o.k = k;
    o.seed = seed;
    return kmeans_run(be, o).labels;
  };
}

}  // namespace cnnvis
