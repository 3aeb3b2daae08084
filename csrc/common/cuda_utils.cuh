// CUDA utilities shared by every .cu file of the core: error checks (throwing CudaError), the device and
// stream policy, device buffers, and a deterministic block sum. Only the CUDA runtime is used: no cuBLAS,
// cuSOLVER or cuRAND.
//
// Stream policy (one for every kernel family): an input's producer names its stream (torch's current
// stream, the "stream" of __cuda_array_interface__; an integer, 0 the legacy default stream, 1 and 2 CUDA's
// legacy / per-thread handles). The core's work on that input starts after everything queued there:
// stats launches on the producer's stream itself; the clustering backends launch on the legacy default
// stream, which waits for the producer's stream through an event (no host synchronisation).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/errors.hpp"

namespace cnnvis {
namespace cuda_detail {
namespace {  // internal linkage: each .cu file gets its own copy of these kernels

inline void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error
    throw CudaError(std::string("CUDA error in ") + what + ": " + cudaGetErrorString(err));
  }
}
#define CNNVIS_CUDA_CHECK(expr) ::cnnvis::cuda_detail::check((expr), #expr)
#define CNNVIS_CUDA_LAUNCHED(name) ::cnnvis::cuda_detail::check(cudaGetLastError(), name)

inline cudaStream_t as_stream(std::uintptr_t s) { return reinterpret_cast<cudaStream_t>(s); }

// The device that owns ptr (inputs may live on any GPU).
inline int device_of(const void* ptr) {
  cudaPointerAttributes attr{};
  CNNVIS_CUDA_CHECK(cudaPointerGetAttributes(&attr, ptr));
  if (attr.type != cudaMemoryTypeDevice && attr.type != cudaMemoryTypeManaged)
    throw InvalidArgument("expected a pointer to CUDA device memory");
  return attr.device;
}

// Work queued on `consumer` from now on starts after the work queued so far on `producer`.
inline void order_after(std::uintptr_t producer, cudaStream_t consumer) {
  const cudaStream_t p = as_stream(producer);
  const bool both_legacy = (producer == 0 || p == cudaStreamLegacy) && consumer == cudaStreamLegacy;
  if (p == consumer || both_legacy) return;  // 0 is the legacy default stream (no per-thread default here)
  cudaEvent_t ev;
  CNNVIS_CUDA_CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
  const cudaError_t rec = cudaEventRecord(ev, p);
  const cudaError_t wait = rec == cudaSuccess ? cudaStreamWaitEvent(consumer, ev, 0) : rec;
  cudaEventDestroy(ev);  // released once the wait is satisfied
  CNNVIS_CUDA_CHECK(wait);
}

// Makes a device current for the owner's lifetime and gives the caller its device back afterwards.
// Declare it as the owner's first member: members are destroyed in reverse order, so the owner's device
// buffers are freed while their device is still current.
class DeviceScope {
 public:
  explicit DeviceScope(int device) {
    CNNVIS_CUDA_CHECK(cudaGetDevice(&prev_));
    if (device != prev_) CNNVIS_CUDA_CHECK(cudaSetDevice(device));
  }
  // The device that owns ptr, with the legacy default stream ordered after the producer's stream.
  DeviceScope(const void* ptr, std::uintptr_t producer) : DeviceScope(device_of(ptr)) {
    order_after(producer, cudaStreamLegacy);
  }
  ~DeviceScope() { cudaSetDevice(prev_); }
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;

 private:
  int prev_ = 0;
};

// A device array on the legacy default stream (synchronous copies), grown on demand.
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

// Device memory allocated and freed in the order of a stream (also on error paths).
class StreamBuf {
 public:
  StreamBuf(size_t bytes, cudaStream_t s) : stream_(s) {
    if (bytes) CNNVIS_CUDA_CHECK(cudaMallocAsync(&ptr_, bytes, s));
  }
  ~StreamBuf() {
    if (ptr_) cudaFreeAsync(ptr_, stream_);
  }
  StreamBuf(const StreamBuf&) = delete;
  StreamBuf& operator=(const StreamBuf&) = delete;
  void* get() const { return ptr_; }
  template <class T>
  T* as() const { return static_cast<T*>(ptr_); }

 private:
  void* ptr_ = nullptr;
  cudaStream_t stream_;
};

// Multiprocessors of the current device (cached per device).
inline int sm_count() {
  int dev = 0, n = 0;
  CNNVIS_CUDA_CHECK(cudaGetDevice(&dev));
  static thread_local int cached_dev = -1, cached = 0;
  if (dev == cached_dev) return cached;
  cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev);
  cached_dev = dev, cached = n > 0 ? n : 80;
  return cached;
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

}  // namespace
}  // namespace cuda_detail
}  // namespace cnnvis
