// The pybind11 module cnnvis._core. This file only defines the module; each kernel family registers its
// own functions from a bind_*.cpp file (conversion and dispatch only, no compute), so the families can be
// built and changed independently.
#include <pybind11/pybind11.h>

#include "device.hpp"

namespace py = pybind11;

namespace cnnvis {
void register_stats(py::module_& m);    // bind_stats.cpp
void register_cluster(py::module_& m);  // bind_cluster.cpp
}  // namespace cnnvis

PYBIND11_MODULE(_core, m) {
  m.doc() = "cnnvis compiled core: per-class statistics, k-means, spectral co-/biclustering (CPU and CUDA)";
  m.def("built_with_cuda", &cnnvis::built_with_cuda, "True when the CUDA kernels were compiled in.");
  m.def("cuda_device_count", &cnnvis::cuda_device_count,
        "Number of usable CUDA devices (0 without a driver or GPU; never raises).");
  m.def("cuda_status", &cnnvis::cuda_status, "One line on why CUDA is or is not usable.");
  m.def("omp_max_threads", &cnnvis::omp_max_threads, "OpenMP's thread count for the CPU kernels.");
  cnnvis::register_stats(m);
  cnnvis::register_cluster(m);
}
