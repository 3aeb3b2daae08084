// Bindings for the per-class statistics kernel (owned by the stats work; see stats.hpp).
#include <pybind11/pybind11.h>

namespace py = pybind11;

namespace cnnvis {
void register_stats(py::module_& m) { (void)m; }
}  // namespace cnnvis
