// The pybind11 module cnnvis._core. This file defines the module, the device queries and the error types;
// each kernel family registers its own functions from its bind_*.cpp (conversion and dispatch only, no
// compute), and the test-only pieces go to the submodule _core._testing.
#include <pybind11/pybind11.h>

#include "common/device.hpp"
#include "common/errors.hpp"

namespace py = pybind11;

namespace cnnvis {
void register_stats(py::module_& m);              // stats/bind_stats.cpp
void register_cluster(py::module_& m);            // cluster/bind_cluster.cpp
void register_cluster_testing(py::module_& t);    // cluster/bind_testing.cpp
}  // namespace cnnvis

PYBIND11_MODULE(_core, m) {
  m.doc() = "cnnvis compiled core: per-class statistics, k-means, spectral co-/biclustering (CPU and CUDA)";
  // common/errors.hpp's types; InvalidArgument arrives as ValueError (pybind11's std::invalid_argument).
  // cnnvis/compute/_errors.py maps these to cnnvis.errors.
  py::register_exception<cnnvis::NonFiniteError>(m, "NonFiniteError", PyExc_ValueError);
  py::register_exception<cnnvis::CudaError>(m, "CudaError", PyExc_RuntimeError);
  m.def("built_with_cuda", &cnnvis::built_with_cuda, "True when the CUDA kernels were compiled in.");
  m.def("cuda_device_count", &cnnvis::cuda_device_count,
        "Number of usable CUDA devices (0 without a driver or GPU; never raises).");
  m.def("cuda_status", &cnnvis::cuda_status, "One line on why CUDA is or is not usable.");
  m.def("omp_max_threads", &cnnvis::omp_max_threads, "OpenMP's thread count for the CPU kernels.");
  cnnvis::register_stats(m);
  cnnvis::register_cluster(m);
  auto testing = m.def_submodule("_testing", "Kernel pieces exposed for tests only (not used by cnnvis).");
  cnnvis::register_cluster_testing(testing);
}
