// CNNVIS_HOST_DEVICE marks small functions compiled for both the CPU and the CUDA kernels (one copy of
// the arithmetic, so both devices compute it the same way).
#pragma once

#ifdef __CUDACC__
#define CNNVIS_HOST_DEVICE __host__ __device__
#else
#define CNNVIS_HOST_DEVICE
#endif
