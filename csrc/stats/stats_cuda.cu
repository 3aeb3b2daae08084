// CUDA per-class statistics kernel (see stats.hpp). Two kernels on the caller's stream:
//   1. row_stats: the spatial sum (double) and max of every (n, c) row, G lanes per row (vector loads,
//      warp shuffles) or a whole block per row for very long rows. This is the only full read of x.
//   2. class_reduce: per (class, 32 channels) block, over the images of that class (grouped on the host,
//      where the labels are), the shifted one-pass mean and M2 of r plus max and active count, also
//      checking r for NaN/inf. Rows of one value (S == 1) skip kernel 1 and are read here directly.
// Only the (K, C) results come back to the host, where they merge into the running state.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/cuda_utils.cuh"
#include "stats/stats.hpp"

namespace cnnvis {
namespace {

using cuda_detail::as_stream;
using cuda_detail::device_of;
using cuda_detail::DeviceScope;
using cuda_detail::sm_count;
using cuda_detail::StreamBuf;

constexpr int kBlock = 256;         // threads per block of the row kernels
constexpr int kLongRow = 1 << 14;   // rows at least this long get a whole block
constexpr int kReduceWarps = 8;     // class_reduce: warps (image slices) per block

template <class T>
struct Vec;
template <>
struct Vec<float> {
  using type = float4;
  static constexpr int width = 4;
  __host__ __device__ static void add(const float4 v, double& s, float& m) {
    s += double(v.x) + double(v.y) + double(v.z) + double(v.w);
    m = fmaxf(m, fmaxf(fmaxf(v.x, v.y), fmaxf(v.z, v.w)));
  }
};
template <>
struct Vec<double> {
  using type = double2;
  static constexpr int width = 2;
  __host__ __device__ static void add(const double2 v, double& s, double& m) {
    s += v.x + v.y;
    m = fmax(m, fmax(v.x, v.y));
  }
};

__host__ __device__ inline float dmax(float a, float b) { return fmaxf(a, b); }
__host__ __device__ inline double dmax(double a, double b) { return fmax(a, b); }

// This lane's share (lane, lane + step, ...) of one row: a scalar head up to 16-byte alignment, vector
// loads two at a time (more bytes in flight), a scalar tail. fmax drops NaN; the sum keeps it.
template <class T>
__host__ __device__ void row_partial(const T* __restrict__ p, int64_t S, int lane, int step, double& sum, T& mx) {
  using V = Vec<T>;
  constexpr int W = V::width;
  const int64_t misalign = int64_t(reinterpret_cast<uintptr_t>(p) / sizeof(T)) % W;
  const int64_t head = misalign ? (S < W - misalign ? S : W - misalign) : 0;
  for (int64_t i = lane; i < head; i += step) {
    sum += double(p[i]);
    mx = dmax(mx, p[i]);
  }
  const int64_t nvec = (S - head) / W;
  const typename V::type* q = reinterpret_cast<const typename V::type*>(p + head);
  int64_t j = lane;
  for (; j + step < nvec; j += 2 * int64_t(step)) {
    const typename V::type a = q[j], b = q[j + step];
    V::add(a, sum, mx);
    V::add(b, sum, mx);
  }
  for (; j < nvec; j += step) V::add(q[j], sum, mx);
  for (int64_t i = head + nvec * W + lane; i < S; i += step) {
    sum += double(p[i]);
    mx = dmax(mx, p[i]);
  }
}

template <class T>
__device__ inline void group_reduce(double& sum, T& mx, int width) {
  for (int o = width / 2; o > 0; o /= 2) {
    sum += __shfl_xor_sync(0xffffffffu, sum, o);
    mx = dmax(mx, __shfl_xor_sync(0xffffffffu, mx, o));
  }
}

// G lanes per row (G divides 32). All lanes of a warp loop together (the loop bound is the warp's first
// row) so the shuffles always see a full warp; groups past the end just contribute nothing.
template <class T, int G>
__global__ void row_stats_kernel(const T* __restrict__ x, int64_t rows, int64_t C, int64_t S, int64_t sn,
                                 int64_t sc, double* __restrict__ r, T* __restrict__ m) {
  const int64_t tid = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const int lane = threadIdx.x % G;
  const int group_in_warp = (threadIdx.x % 32) / G;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x / G;
  const double inv_s = 1.0 / double(S);
  for (int64_t row = tid / G; row - group_in_warp < rows; row += stride) {
    double sum = 0.0;
    T mx = T(-INFINITY);
    if (row < rows) {
      const int64_t n = row / C, c = row % C;
      row_partial(x + n * sn + c * sc, S, lane, G, sum, mx);
    }
    if (G > 1) group_reduce(sum, mx, G);
    if (row < rows && lane == 0) {
      r[row] = sum * inv_s;
      m[row] = mx;
    }
  }
}

// A block per row, for long rows and few of them.
template <class T>
__global__ void row_stats_block_kernel(const T* __restrict__ x, int64_t rows, int64_t C, int64_t S,
                                       int64_t sn, int64_t sc, double* __restrict__ r, T* __restrict__ m) {
  __shared__ double s_sum[kBlock / 32];
  __shared__ T s_max[kBlock / 32];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const int64_t n = row / C, c = row % C;
    double sum = 0.0;
    T mx = T(-INFINITY);
    row_partial(x + n * sn + c * sc, S, threadIdx.x, blockDim.x, sum, mx);
    group_reduce(sum, mx, 32);
    if (lane == 0) s_sum[warp] = sum, s_max[warp] = mx;
    __syncthreads();
    if (threadIdx.x == 0) {
      for (int w = 1; w < int(blockDim.x / 32); ++w) sum += s_sum[w], mx = dmax(mx, s_max[w]);
      r[row] = sum / double(S);
      m[row] = mx;
    }
    __syncthreads();
  }
}

// Moments of one class and channel, shifted by a sample of the class: sums of d = r - shift stay of the
// order of the spread, so M2 = sum(d^2) - sum(d)^2 / n keeps its digits even when |mean| >> std, in one
// pass over r (which, for S == 1, is x itself).
struct Shifted {  // plain data: it also lives in __shared__ memory
  double sd, sd2, mx;
  long long act;
  __device__ void add(double v, double mv, double shift) {
    const double d = v - shift;
    sd += d, sd2 += d * d, mx = fmax(mx, mv), act += mv > 0.0;
  }
};

// Block (32 channels x kReduceWarps image slices) per (class, channel block); the warps of a block walk
// the class's images (grouped on the host) four at a time, so several loads are in flight per thread.
// r and m share the strides (rn, rc): the row kernel's (C, 1) outputs, or x itself when S == 1.
template <class R, class M>
__global__ void class_reduce_kernel(const R* __restrict__ r, const M* __restrict__ m, int64_t rn, int64_t rc,
                                    int64_t C, int64_t K, const int64_t* __restrict__ order,
                                    const int64_t* __restrict__ offsets, double* __restrict__ out_mean,
                                    double* __restrict__ out_m2, double* __restrict__ out_max,
                                    long long* __restrict__ out_active, unsigned long long* __restrict__ bad) {
  __shared__ Shifted s_part[kReduceWarps][32];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t c = int64_t(blockIdx.x) * 32 + tx;
  constexpr int W = kReduceWarps;
  for (int64_t k = blockIdx.y; k < K; k += gridDim.y) {
    const int64_t i0 = offsets[k], i1 = offsets[k + 1];
    Shifted acc{0.0, 0.0, -INFINITY, 0};
    const double shift = (c < C && i1 > i0) ? double(r[order[i0] * rn + c * rc]) : 0.0;
    if (c < C) {
      int64_t i = i0 + ty;
      for (; i + 3 * W < i1; i += 4 * W) {
        int64_t at[4];
        double v[4], mv[4];
#pragma unroll
        for (int u = 0; u < 4; ++u) at[u] = order[i + u * W] * rn + c * rc;
#pragma unroll
        for (int u = 0; u < 4; ++u) v[u] = double(r[at[u]]), mv[u] = double(m[at[u]]);
#pragma unroll
        for (int u = 0; u < 4; ++u) {
          if (!isfinite(v[u])) atomicMin(bad, static_cast<unsigned long long>(order[i + u * W] * C + c));
          acc.add(v[u], mv[u], shift);
        }
      }
      for (; i < i1; i += W) {
        const int64_t at = order[i] * rn + c * rc;
        const double v = double(r[at]);
        if (!isfinite(v)) atomicMin(bad, static_cast<unsigned long long>(order[i] * C + c));
        acc.add(v, double(m[at]), shift);
      }
    }
    s_part[ty][tx] = acc;
    __syncthreads();
    if (ty == 0 && c < C) {
      for (int w = 1; w < W; ++w) {
        const Shifted& o = s_part[w][tx];
        acc.sd += o.sd, acc.sd2 += o.sd2, acc.mx = fmax(acc.mx, o.mx), acc.act += o.act;
      }
      const double n = double(i1 - i0);
      const int64_t o = k * C + c;
      out_mean[o] = n > 0 ? shift + acc.sd / n : 0.0;
      out_m2[o] = n > 0 ? fmax(acc.sd2 - acc.sd * (acc.sd / n), 0.0) : 0.0;
      out_max[o] = acc.mx;
      out_active[o] = acc.act;
    }
    __syncthreads();
  }
}

// Page-locked host staging for the small transfers (image order up, (K, C) results down): pageable
// copies go through the driver's bounce buffers at a fraction of the bus speed. One buffer per host
// thread, grown on demand and kept (portable: any device may use it).
class PinnedStaging {
 public:
  ~PinnedStaging() {
    if (ptr_) cudaFreeHost(ptr_);
  }
  int64_t* words(size_t n) {
    if (n > capacity_) {
      if (ptr_) CNNVIS_CUDA_CHECK(cudaFreeHost(ptr_));
      ptr_ = nullptr, capacity_ = 0;
      CNNVIS_CUDA_CHECK(cudaHostAlloc(&ptr_, n * 8, cudaHostAllocPortable));
      capacity_ = n;
    }
    return static_cast<int64_t*>(ptr_);
  }

 private:
  void* ptr_ = nullptr;
  size_t capacity_ = 0;
};

int64_t* pinned_words(size_t n) {
  thread_local PinnedStaging staging;
  return staging.words(n);
}

// Counting sort of the images by class: order (N) and CSR offsets (K + 1), and the counts.
void group_by_class(const int64_t* labels, int64_t N, int64_t K, std::vector<int64_t>& order,
                    std::vector<int64_t>& offsets, std::vector<int64_t>& count) {
  count.assign(K, 0);
  for (int64_t i = 0; i < N; ++i) ++count[labels[i]];
  offsets.assign(K + 1, 0);
  for (int64_t k = 0; k < K; ++k) offsets[k + 1] = offsets[k] + count[k];
  std::vector<int64_t> next(offsets.begin(), offsets.end() - 1);
  order.resize(N);
  for (int64_t i = 0; i < N; ++i) order[next[labels[i]]++] = i;
}

template <class T>
void launch_rows(const T* x, const ActivationView& v, double* r, T* m, int sms, cudaStream_t st) {
  const int64_t rows = v.n * v.c;
  const int64_t max_blocks = int64_t(sms) * (2048 / kBlock);
  auto blocks_for = [&](int64_t threads) { return int(std::max<int64_t>(1, std::min(max_blocks, cuda_detail::ceil_div(threads, kBlock)))); };
  const int64_t S = v.s;
  if (S >= kLongRow && rows < max_blocks * 4) {
    row_stats_block_kernel<T><<<int(std::min(rows, max_blocks * 4)), kBlock, 0, st>>>(x, rows, v.c, S, v.stride_n, v.stride_c, r, m);
  } else if (S <= 4) {
    row_stats_kernel<T, 1><<<blocks_for(rows), kBlock, 0, st>>>(x, rows, v.c, S, v.stride_n, v.stride_c, r, m);
  } else if (S <= 32) {
    row_stats_kernel<T, 4><<<blocks_for(rows * 4), kBlock, 0, st>>>(x, rows, v.c, S, v.stride_n, v.stride_c, r, m);
  } else if (S <= 128) {
    row_stats_kernel<T, 8><<<blocks_for(rows * 8), kBlock, 0, st>>>(x, rows, v.c, S, v.stride_n, v.stride_c, r, m);
  } else if (S <= 512) {
    row_stats_kernel<T, 16><<<blocks_for(rows * 16), kBlock, 0, st>>>(x, rows, v.c, S, v.stride_n, v.stride_c, r, m);
  } else {
    row_stats_kernel<T, 32><<<blocks_for(rows * 32), kBlock, 0, st>>>(x, rows, v.c, S, v.stride_n, v.stride_c, r, m);
  }
  CNNVIS_CUDA_LAUNCHED("row_stats");
}

// One allocation per call, carved into 8-byte-aligned pieces, so a batch costs one H2D copy (image order
// and class offsets), one memset, the kernels and one D2H copy of the (K, C) results.
struct Workspace {
  int64_t* order;           // N
  int64_t* offsets;         // K + 1
  unsigned long long* bad;  // 1: smallest n * C + c whose r is not finite, else ~0
  double* mean;             // K * C   (bad .. active are contiguous: one copy back)
  double* m2;               // K * C
  double* max;              // K * C
  long long* active;        // K * C
  double* r;                // rows    (rows = N * C when S > 1, else 0)
  void* m;                  // rows of T
};

size_t workspace_words(int64_t N, int64_t C, int64_t K, int64_t rows) {
  return size_t(N + (K + 1) + 1 + 4 * K * C + 2 * rows);  // m takes <= 8 bytes per row
}

Workspace carve(void* base, int64_t N, int64_t C, int64_t K, int64_t rows) {
  auto* w = static_cast<int64_t*>(base);
  Workspace ws;
  ws.order = w, w += N;
  ws.offsets = w, w += K + 1;
  ws.bad = reinterpret_cast<unsigned long long*>(w), w += 1;
  ws.mean = reinterpret_cast<double*>(w), w += K * C;
  ws.m2 = reinterpret_cast<double*>(w), w += K * C;
  ws.max = reinterpret_cast<double*>(w), w += K * C;
  ws.active = reinterpret_cast<long long*>(w), w += K * C;
  ws.r = reinterpret_cast<double*>(w), w += rows;
  ws.m = w;
  return ws;
}

template <class T>
StatsStatus run(const ActivationView& v, const int64_t* labels, ClassMoments& out, cudaStream_t st,
                bool host_input) {
  const int64_t N = v.n, C = v.c, K = out.n_classes, S = v.s;
  const int sms = sm_count();

  // Host side: images grouped by class, uploaded with the class offsets in one copy.
  std::vector<int64_t> order, offsets, count;
  group_by_class(labels, N, K, order, offsets, count);
  // Pinned staging: [order (N) | offsets (K + 1)] up, then [bad | mean | m2 | max | active] down.
  const size_t kc = size_t(K * C), up_words = size_t(N + K + 1), down_words = 1 + 4 * kc;
  int64_t* up = pinned_words(up_words + down_words);
  std::copy(order.begin(), order.end(), up);
  std::copy(offsets.begin(), offsets.end(), up + N);
  int64_t* down = up + up_words;

  // A host input is copied once, C-contiguous; device inputs are read in place with their strides.
  const T* x = static_cast<const T*>(v.data);
  ActivationView dv = v;
  const size_t x_bytes = size_t(N * C * S) * sizeof(T);
  StreamBuf staged(host_input ? x_bytes : 0, st);
  if (host_input) {
    CNNVIS_CUDA_CHECK(cudaMemcpyAsync(staged.get(), v.data, x_bytes, cudaMemcpyHostToDevice, st));
    x = staged.as<T>();
    dv.stride_n = C * S, dv.stride_c = S;
  }

  const int64_t rows = S > 1 ? N * C : 0;
  StreamBuf buf(workspace_words(N, C, K, rows) * 8, st);
  const Workspace ws = carve(buf.get(), N, C, K, rows);
  CNNVIS_CUDA_CHECK(cudaMemcpyAsync(ws.order, up, up_words * 8, cudaMemcpyHostToDevice, st));
  CNNVIS_CUDA_CHECK(cudaMemsetAsync(ws.bad, 0xff, 8, st));

  const dim3 rblock(32, kReduceWarps);
  const dim3 rgrid(unsigned(cuda_detail::ceil_div(C, 32)), unsigned(std::min<int64_t>(K, 65535)));
  if (S == 1) {  // r = m = x: no row pass
    class_reduce_kernel<T, T><<<rgrid, rblock, 0, st>>>(x, x, dv.stride_n, dv.stride_c, C, K, ws.order,
                                                        ws.offsets, ws.mean, ws.m2, ws.max, ws.active, ws.bad);
  } else {
    T* m = static_cast<T*>(ws.m);
    launch_rows<T>(x, dv, ws.r, m, sms, st);
    class_reduce_kernel<double, T><<<rgrid, rblock, 0, st>>>(ws.r, m, C, 1, C, K, ws.order, ws.offsets,
                                                             ws.mean, ws.m2, ws.max, ws.active, ws.bad);
  }
  CNNVIS_CUDA_LAUNCHED("class_reduce");

  CNNVIS_CUDA_CHECK(cudaMemcpyAsync(down, ws.bad, down_words * 8, cudaMemcpyDeviceToHost, st));
  CNNVIS_CUDA_CHECK(cudaStreamSynchronize(st));

  unsigned long long first_bad;
  std::memcpy(&first_bad, down, 8);
  if (first_bad != ~0ull) return {StatsStatus::NonFinite, int64_t(first_bad / C), int64_t(first_bad % C)};
  const int64_t* p = down + 1;  // 8-byte words: doubles and int64 counts, bit-copied
  std::memcpy(out.mean.data(), p, kc * 8);
  std::memcpy(out.m2.data(), p + kc, kc * 8);
  std::memcpy(out.max.data(), p + 2 * kc, kc * 8);
  std::memcpy(out.active.data(), p + 3 * kc, kc * 8);
  out.count = count;
  return {};
}

}  // namespace

StatsStatus class_moments_cuda(const ActivationView& x, const int64_t* labels, ClassMoments& out,
                               std::uintptr_t stream, bool host_input) {
  StatsStatus st = check_labels(labels, x.n, out.n_classes);
  if (st.code != StatsStatus::Ok) return st;
  out.reset();
  if (x.n == 0 || x.c == 0) return st;
  // The device that owns the input (the current one for a host input); the kernels run on the producer's
  // stream (common/cuda_utils.cuh's policy).
  int current = 0;
  if (host_input) CNNVIS_CUDA_CHECK(cudaGetDevice(&current));
  DeviceScope scope(host_input ? current : device_of(x.data));
  const cudaStream_t s = as_stream(stream);
  try {
    return x.dtype == DType::F32 ? run<float>(x, labels, out, s, host_input)
                                 : run<double>(x, labels, out, s, host_input);
  } catch (...) {
    cudaStreamSynchronize(s);  // nothing may still read the staging buffer when the next call refills it
    throw;
  }
}

}  // namespace cnnvis
