// Bindings for k-means and spectral co-/biclustering (owned by the clustering work).
#include <pybind11/pybind11.h>

namespace py = pybind11;

namespace cnnvis {
void register_cluster(py::module_& m) { (void)m; }
}  // namespace cnnvis
