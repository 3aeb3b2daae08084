// Bindings for k-means and spectral co-/biclustering: conversion and dispatch only. The option structs
// are bound once, with the defaults of kmeans.hpp / bicluster.hpp (the only ones: the Python wrappers
// read them). Host inputs arrive as C-contiguous float32/float64 arrays; CUDA inputs as a device pointer,
// a dtype tag ('f4'/'f8', common/dtype.hpp), the shape and the producer's stream. The GIL is released
// while the kernels run.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>

#include "cluster/bicluster.hpp"
#include "cluster/kmeans.hpp"
#include "common/dtype.hpp"
#include "common/errors.hpp"
#include "common/binding.hpp"

namespace py = pybind11;

namespace cnnvis {

namespace {

py::tuple km_result(const KMeansOutput& r, int k, int d) {
  return py::make_tuple(to_array(r.labels, {py::ssize_t(r.labels.size())}), to_array(r.centers, {k, d}), r.inertia,
                        r.n_iter);
}

py::tuple bicluster_result(const BiclusterLabels& r) {
  return py::make_tuple(to_array(r.rows, {py::ssize_t(r.rows.size())}), to_array(r.cols, {py::ssize_t(r.cols.size())}),
                        r.svd_iterations);
}

// The labels of a spectral method on a host matrix; `run` is spectral_cocluster or spectral_bicluster.
template <typename T, typename Options, typename Run>
py::tuple spectral_cpu(const CArray<T>& a, const Options& opt, Run run) {
  check_2d(a, "matrix");
  BiclusterLabels r;
  {
    py::gil_scoped_release nogil;
    auto mb = make_cpu_matrix(a.data(), a.shape(0), a.shape(1));
    r = run(*mb, opt, cpu_kmeans_fn(opt.spectral.kmeans));
  }
  return bicluster_result(r);
}

template <typename T>
py::tuple kmeans_host(const CArray<T>& x, const KMeansOptions& opt) {
  check_2d(x, "X");
  const int d = static_cast<int>(x.shape(1));
  KMeansOutput r;
  {
    py::gil_scoped_release nogil;
    r = kmeans_cpu(x.data(), x.shape(0), d, opt);
  }
  return km_result(r, opt.k, d);
}

#ifdef CNNVIS_WITH_CUDA
// f(typed device pointer) with the GIL released, for a CUDA input given by pointer and dtype tag.
template <typename F>
auto with_device_array(std::uintptr_t ptr, const std::string& dtype, F&& f) {
  const DType t = parse_dtype(dtype);
  py::gil_scoped_release nogil;
  return with_dtype(t, [&](auto tag) { return f(reinterpret_cast<const decltype(tag)*>(ptr)); });
}

template <typename Options, typename Run>
py::tuple spectral_cuda(std::uintptr_t ptr, const std::string& dtype, int64_t rows, int64_t cols,
                        std::uintptr_t stream, const Options& opt, Run run) {
  return bicluster_result(with_device_array(ptr, dtype, [&](auto a) {
    auto mb = make_cuda_matrix(a, rows, cols, stream);
    return run(*mb, opt, cuda_kmeans_fn(opt.spectral.kmeans));  // the embedding's k-means on the GPU too
  }));
}

py::tuple kmeans_device(std::uintptr_t ptr, const std::string& dtype, int64_t n, int d, std::uintptr_t stream,
                        const KMeansOptions& opt) {
  return km_result(with_device_array(ptr, dtype, [&](auto x) {
    auto be = make_cuda_kmeans(x, n, d, stream);
    return kmeans_run(*be, opt);
  }), opt.k, d);
}
#endif

void bind_options(py::module_& m) {
  bind_struct<KMeansOptions>(m, "KMeansOptions", "k-means settings (cluster/kmeans.hpp holds the defaults).",
                             "k", &KMeansOptions::k, "n_init", &KMeansOptions::n_init, "max_iter",
                             &KMeansOptions::max_iter, "tol", &KMeansOptions::tol, "seed", &KMeansOptions::seed);
  bind_struct<SpectralOptions>(m, "SpectralOptions",
                               "Settings shared by the spectral methods (cluster/bicluster.hpp holds the defaults).",
                               "seed", &SpectralOptions::seed, "n_oversamples", &SpectralOptions::n_oversamples,
                               "min_power_iter", &SpectralOptions::min_power_iter, "max_power_iter",
                               &SpectralOptions::max_power_iter, "svd_tol", &SpectralOptions::svd_tol, "kmeans",
                               &SpectralOptions::kmeans);
  bind_struct<CoclusterOptions>(m, "CoclusterOptions", "Spectral co-clustering settings.", "n_clusters",
                                &CoclusterOptions::n_clusters, "spectral", &CoclusterOptions::spectral);
  py::enum_<BiclusterMethod>(m, "BiclusterMethod")
      .value("scale", BiclusterMethod::kScale)
      .value("bistochastic", BiclusterMethod::kBistochastic)
      .value("log", BiclusterMethod::kLog);
  bind_struct<BiclusterOptions>(m, "BiclusterOptions", "Spectral biclustering settings.", "method",
                                &BiclusterOptions::method, "n_row_clusters", &BiclusterOptions::n_row_clusters,
                                "n_col_clusters", &BiclusterOptions::n_col_clusters, "n_components",
                                &BiclusterOptions::n_components, "n_best", &BiclusterOptions::n_best, "spectral",
                                &BiclusterOptions::spectral);
}

// _core.<name>(matrix, options) for float32 and float64 host matrices and, with CUDA,
// _core.<name>_cuda(ptr, dtype, rows, cols, stream, options); `run` is spectral_cocluster or _bicluster.
template <typename Options>
void def_spectral(py::module_& m, const char* name, BiclusterLabels (*run)(MatrixBackend&, const Options&,
                                                                           const KMeansFn&), const char* doc) {
  m.def(name, [run](const CArray<float>& a, const Options& o) { return spectral_cpu(a, o, run); },
        py::arg("matrix"), py::arg("options"));
  m.def(name, [run](const CArray<double>& a, const Options& o) { return spectral_cpu(a, o, run); },
        py::arg("matrix"), py::arg("options"), doc);
#ifdef CNNVIS_WITH_CUDA
  m.def((std::string(name) + "_cuda").c_str(),
        [run](std::uintptr_t ptr, const std::string& dtype, int64_t rows, int64_t cols, std::uintptr_t stream,
              const Options& o) { return spectral_cuda(ptr, dtype, rows, cols, stream, o, run); },
        py::arg("ptr"), py::arg("dtype"), py::arg("rows"), py::arg("cols"), py::arg("stream"), py::arg("options"));
#endif
}

}  // namespace

void register_cluster(py::module_& m) {
  bind_options(m);
  m.attr("CUDA_MAX_SUBSPACE") = kCudaMaxSubspace;
  m.def("kmeans", &kmeans_host<float>, py::arg("x"), py::arg("options"));
  m.def("kmeans", &kmeans_host<double>, py::arg("x"), py::arg("options"),
        "k-means on the CPU: (labels int64, centers float64 (k, D), inertia, n_iter).");
#ifdef CNNVIS_WITH_CUDA
  m.def("kmeans_cuda", &kmeans_device, py::arg("ptr"), py::arg("dtype"), py::arg("n"), py::arg("d"),
        py::arg("stream"), py::arg("options"), "k-means of a device array; the same result as kmeans.");
#endif
  def_spectral<CoclusterOptions>(m, "spectral_cocluster", &spectral_cocluster,
                                 "Dhillon co-clustering: (row_labels, column_labels, power iterations).");
  def_spectral<BiclusterOptions>(m, "spectral_bicluster", &spectral_bicluster,
                                 "Kluger biclustering: (row_labels, column_labels, power iterations).");
}

}  // namespace cnnvis
