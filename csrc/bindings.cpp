// The pybind11 module cnnvis._core. This file defines the module, the device queries and the error types;
// each kernel family registers its own functions from its bind_*.cpp (conversion and dispatch only, no
// compute), and the test-only pieces go to the submodule _core._testing.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "common/device.hpp"
#include "common/errors.hpp"
#include "common/simd.hpp"

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
  // The CPU path of the SIMD kernels (common/simd.hpp): CNNVIS_CPU_CAPABILITY applies once, here; an
  // unknown value fails the import with the accepted values, a path the CPU lacks warns and falls back.
  namespace simd = cnnvis::simd;
  const std::string fallback = simd::apply_capability_env();
  if (!fallback.empty() && PyErr_WarnEx(PyExc_RuntimeWarning, fallback.c_str(), 1) < 0) throw py::error_already_set();
  m.def("cpu_capability", [] { return simd::capability_name(simd::capability()); },
        "The CPU path the SIMD kernels take: 'default', 'avx2' or 'avx512'.");
  cnnvis::register_stats(m);
  cnnvis::register_cluster(m);
  auto testing = m.def_submodule("_testing", "Kernel pieces exposed for tests only (not used by cnnvis).");
  cnnvis::register_cluster_testing(testing);
  testing.def("cpu_capabilities", [] {
    std::vector<std::string> out;
    for (simd::Capability c : simd::available_capabilities()) out.push_back(simd::capability_name(c));
    return out;
  }, "The CPU paths this machine runs, narrowest first.");
  testing.def("set_cpu_capability", [](const std::string& name) { simd::set_capability(simd::parse_capability(name)); },
              py::arg("name"), "Switch the CPU path for the whole process (tests; the public switch is "
              "CNNVIS_CPU_CAPABILITY). ValueError for a path this CPU lacks.");
  testing.def("resolve_cpu_capability", [](const std::string& requested, const std::string& widest) {
    const simd::Resolved r = simd::resolve_capability(requested, simd::parse_capability(widest));
    return py::make_tuple(simd::capability_name(r.capability), r.warning);
  }, py::arg("requested"), py::arg("widest"),
     "(path, warning) that CNNVIS_CPU_CAPABILITY=requested gives on a CPU whose widest path is `widest`.");
}
