#include <cuda_runtime.h>

#include "common/device.hpp"

namespace cnnvis {

bool built_with_cuda() { return true; }

int cuda_device_count() {
  int n = 0;
  // cudart_static: with no driver this returns an error code instead of failing to load.
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error
    return 0;
  }
  return n;
}

std::string cuda_status() {
  int n = 0;
  cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    cudaGetLastError();
    return std::string("CUDA unavailable: ") + cudaGetErrorString(err);
  }
  if (n == 0) return "CUDA unavailable: no CUDA device";
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  return std::string("CUDA device 0: ") + prop.name + " (sm_" + std::to_string(prop.major) +
         std::to_string(prop.minor) + ")";
}

}  // namespace cnnvis
