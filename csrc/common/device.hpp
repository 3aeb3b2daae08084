// Device queries shared by every kernel family. Defined in device.cpp (CPU build) and device_cuda.cu.
#pragma once
#include <string>

namespace cnnvis {
bool built_with_cuda();
int cuda_device_count();    // 0 when no driver/GPU; never throws
std::string cuda_status();  // human-readable reason
int omp_max_threads();
}  // namespace cnnvis
