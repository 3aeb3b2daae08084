#include "common/device.hpp"

#include <omp.h>

namespace cnnvis {

int omp_max_threads() { return omp_get_max_threads(); }

#ifndef CNNVIS_WITH_CUDA
bool built_with_cuda() { return false; }
int cuda_device_count() { return 0; }
std::string cuda_status() { return "cnnvis._core was built without CUDA (nvcc not found or CNNVIS_CUDA=OFF)"; }
#endif

}  // namespace cnnvis
