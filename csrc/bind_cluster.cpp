// Bindings for k-means and spectral co-/biclustering: conversion and dispatch only. The Python wrappers
// (cnnvis/compute/_kmeans.py, _bicluster.py) validate and hand over C-contiguous float32/float64 arrays
// or, for CUDA, raw device pointers; the GIL is released while the kernels run.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "bicluster.hpp"
#include "kmeans.hpp"

namespace py = pybind11;

namespace cnnvis {
namespace {

template <typename T>
using CArray = py::array_t<T, py::array::c_style>;

py::array_t<int64_t> to_array(const std::vector<int64_t>& v) {
  py::array_t<int64_t> out(static_cast<py::ssize_t>(v.size()));
  if (!v.empty()) std::memcpy(out.mutable_data(), v.data(), v.size() * sizeof(int64_t));
  return out;
}
py::array_t<double> to_array(const std::vector<double>& v, int64_t rows, int64_t cols) {
  py::array_t<double> out({static_cast<py::ssize_t>(rows), static_cast<py::ssize_t>(cols)});
  if (!v.empty()) std::memcpy(out.mutable_data(), v.data(), v.size() * sizeof(double));
  return out;
}

void check_2d(const py::array& a, const char* name) {
  if (a.ndim() != 2) throw std::invalid_argument(std::string(name) + " must be 2-D");
}

KMeansOptions km_options(int k, int n_init, int max_iter, double tol, uint64_t seed) {
  KMeansOptions o;
  o.k = k;
  o.n_init = n_init;
  o.max_iter = max_iter;
  o.tol = tol;
  o.seed = seed;
  return o;
}

py::tuple km_result(const KMeansOutput& r, int k, int d) {
  return py::make_tuple(to_array(r.labels), to_array(r.centers, k, d), r.inertia, r.n_iter);
}

// k-means for the spectral methods: host data, scikit-learn's defaults for the spectral estimators.
KMeansFn host_kmeans(int n_init) {
  return [n_init](const double* x, int64_t n, int d, int k, uint64_t seed) {
    return kmeans_cpu(x, n, d, km_options(k, n_init, 300, 1e-4, seed)).labels;
  };
}

SpectralOptions spectral_options(uint64_t seed, int n_oversamples, int min_iter, int max_iter, double tol) {
  SpectralOptions o;
  o.seed = seed;
  o.n_oversamples = n_oversamples;
  o.min_power_iter = min_iter;
  o.max_power_iter = max_iter;
  o.svd_tol = tol;
  return o;
}

template <typename T>
py::tuple kmeans_cpu(CArray<T> x, int k, int n_init, int max_iter, double tol, uint64_t seed) {
  check_2d(x, "X");
  const int64_t n = x.shape(0);
  const int d = static_cast<int>(x.shape(1));
  KMeansOutput r;
  {
    py::gil_scoped_release nogil;
    r = kmeans_cpu(x.data(), n, d, km_options(k, n_init, max_iter, tol, seed));
  }
  return km_result(r, k, d);
}

template <typename T>
py::tuple cocluster_cpu(CArray<T> a, int n_clusters, uint64_t seed, int n_init, int n_oversamples, int min_iter,
                        int max_iter, double tol) {
  check_2d(a, "matrix");
  BiclusterLabels r;
  {
    py::gil_scoped_release nogil;
    auto mb = make_cpu_matrix(a.data(), a.shape(0), a.shape(1));
    r = spectral_cocluster(*mb, n_clusters, spectral_options(seed, n_oversamples, min_iter, max_iter, tol),
                           host_kmeans(n_init));
  }
  return py::make_tuple(to_array(r.rows), to_array(r.cols), r.svd_iterations);
}

template <typename T>
py::tuple bicluster_cpu(CArray<T> a, int method, int n_row, int n_col, int n_components, int n_best, uint64_t seed,
                        int n_init, int n_oversamples, int min_iter, int max_iter, double tol) {
  check_2d(a, "matrix");
  BiclusterLabels r;
  {
    py::gil_scoped_release nogil;
    auto mb = make_cpu_matrix(a.data(), a.shape(0), a.shape(1));
    r = spectral_bicluster(*mb, static_cast<BiclusterMethod>(method), n_row, n_col, n_components, n_best,
                           spectral_options(seed, n_oversamples, min_iter, max_iter, tol), host_kmeans(n_init));
  }
  return py::make_tuple(to_array(r.rows), to_array(r.cols), r.svd_iterations);
}

// The normalised matrix as a dense host array (for tests against scikit-learn's helpers; small inputs).
py::array_t<double> dense_normalised(CArray<double> a, const std::vector<double>& dr, const std::vector<double>& dc,
                                     const std::vector<double>& p, const std::vector<double>& q, bool logged,
                                     double shift) {
  const int64_t m = a.shape(0), n = a.shape(1);
  py::array_t<double> out({static_cast<py::ssize_t>(m), static_cast<py::ssize_t>(n)});
  double* o = out.mutable_data();
  const double* x = a.data();
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      const double w = logged ? std::log(x[i * n + j] + shift) : x[i * n + j] + shift;
      o[i * n + j] = (dr.empty() ? 1.0 : dr[i]) * (w + (p.empty() ? 0.0 : p[i]) + (q.empty() ? 0.0 : q[j])) *
                     (dc.empty() ? 1.0 : dc[j]);
    }
  return out;
}

py::tuple scale_normalize(CArray<double> a) {
  check_2d(a, "matrix");
  auto mb = make_cpu_matrix(a.data(), a.shape(0), a.shape(1));
  const FirstPass fp = first_pass(*mb);
  const double shift = nonnegative_shift(fp, 0.0);
  std::vector<double> r, c;
  scale_factors(fp, shift, r, c);
  py::array_t<double> rr(static_cast<py::ssize_t>(r.size())), cc(static_cast<py::ssize_t>(c.size()));
  std::memcpy(rr.mutable_data(), r.data(), r.size() * sizeof(double));
  std::memcpy(cc.mutable_data(), c.data(), c.size() * sizeof(double));
  return py::make_tuple(dense_normalised(a, r, c, {}, {}, false, shift), rr, cc);
}

py::tuple bistochastic_normalize(CArray<double> a, int max_iter, double tol) {
  check_2d(a, "matrix");
  auto mb = make_cpu_matrix(a.data(), a.shape(0), a.shape(1));
  const double shift = nonnegative_shift(first_pass(*mb), 0.0);
  std::vector<double> r, c;
  const int it = bistochastic_factors(*mb, shift, max_iter, tol, r, c);
  return py::make_tuple(dense_normalised(a, r, c, {}, {}, false, shift), it);
}

py::array_t<double> log_normalize(CArray<double> a) {
  check_2d(a, "matrix");
  auto mb = make_cpu_matrix(a.data(), a.shape(0), a.shape(1));
  const double shift = nonnegative_shift(first_pass(*mb), 1.0);
  std::vector<double> p, q;
  log_terms(*mb, shift, p, q);
  return dense_normalised(a, {}, {}, p, q, true, shift);
}

template <typename T>
py::tuple svd_cpu(CArray<T> a, int k, int n_oversamples, int min_iter, int max_iter, double tol, uint64_t seed) {
  check_2d(a, "matrix");
  SvdResult r;
  {
    py::gil_scoped_release nogil;
    auto mb = make_cpu_matrix(a.data(), a.shape(0), a.shape(1));
    SvdOptions o;
    o.k = k;
    o.n_oversamples = n_oversamples;
    o.min_iter = min_iter;
    o.max_iter = max_iter;
    o.tol = tol;
    o.seed = seed;
    r = randomized_svd(*mb, o);
  }
  py::array_t<double> s(static_cast<py::ssize_t>(r.s.size()));
  std::memcpy(s.mutable_data(), r.s.data(), r.s.size() * sizeof(double));
  return py::make_tuple(to_array(r.u, a.shape(0), k), s, to_array(r.v, a.shape(1), k), r.n_iter);
}

#ifdef CNNVIS_WITH_CUDA
// CUDA entry points take a device pointer (an integer), the dtype ("float32"/"float64") and the shape.
// k-means inside the spectral methods runs on the device as well.

template <typename F>
auto by_dtype(const std::string& dtype, F&& f) {
  if (dtype == "float32") return f(float{});
  if (dtype == "float64") return f(double{});
  throw std::invalid_argument("dtype must be float32 or float64, got " + dtype);
}

py::tuple kmeans_cuda(uintptr_t ptr, const std::string& dtype, int64_t n, int d, int k, int n_init, int max_iter,
                      double tol, uint64_t seed) {
  KMeansOutput r;
  {
    py::gil_scoped_release nogil;
    r = by_dtype(dtype, [&](auto tag) {
      using T = decltype(tag);
      auto be = make_cuda_kmeans(reinterpret_cast<const T*>(ptr), n, d);
      return kmeans_run(*be, km_options(k, n_init, max_iter, tol, seed));
    });
  }
  return km_result(r, k, d);
}

py::tuple cocluster_cuda(uintptr_t ptr, const std::string& dtype, int64_t rows, int64_t cols, int n_clusters,
                         uint64_t seed, int n_init, int n_oversamples, int min_iter, int max_iter, double tol) {
  BiclusterLabels r;
  {
    py::gil_scoped_release nogil;
    r = by_dtype(dtype, [&](auto tag) {
      using T = decltype(tag);
      auto mb = make_cuda_matrix(reinterpret_cast<const T*>(ptr), rows, cols);
      return spectral_cocluster(*mb, n_clusters, spectral_options(seed, n_oversamples, min_iter, max_iter, tol),
                                cuda_kmeans_fn(n_init));
    });
  }
  return py::make_tuple(to_array(r.rows), to_array(r.cols), r.svd_iterations);
}

py::tuple bicluster_cuda(uintptr_t ptr, const std::string& dtype, int64_t rows, int64_t cols, int method, int n_row,
                         int n_col, int n_components, int n_best, uint64_t seed, int n_init, int n_oversamples,
                         int min_iter, int max_iter, double tol) {
  BiclusterLabels r;
  {
    py::gil_scoped_release nogil;
    r = by_dtype(dtype, [&](auto tag) {
      using T = decltype(tag);
      auto mb = make_cuda_matrix(reinterpret_cast<const T*>(ptr), rows, cols);
      return spectral_bicluster(*mb, static_cast<BiclusterMethod>(method), n_row, n_col, n_components, n_best,
                                spectral_options(seed, n_oversamples, min_iter, max_iter, tol),
                                cuda_kmeans_fn(n_init));
    });
  }
  return py::make_tuple(to_array(r.rows), to_array(r.cols), r.svd_iterations);
}
#endif

}  // namespace

void register_cluster(py::module_& m) {
  m.def("kmeans", &kmeans_cpu<float>, py::arg("x"), py::arg("k"), py::arg("n_init"), py::arg("max_iter"),
        py::arg("tol"), py::arg("seed"));
  m.def("kmeans", &kmeans_cpu<double>, py::arg("x"), py::arg("k"), py::arg("n_init"), py::arg("max_iter"),
        py::arg("tol"), py::arg("seed"),
        "k-means on the CPU: (labels int64, centers float64 (k, D), inertia, n_iter).");
  m.def("spectral_cocluster", &cocluster_cpu<float>, py::arg("matrix"), py::arg("n_clusters"), py::arg("seed"),
        py::arg("n_init"), py::arg("n_oversamples"), py::arg("min_iter"), py::arg("max_iter"), py::arg("tol"));
  m.def("spectral_cocluster", &cocluster_cpu<double>, py::arg("matrix"), py::arg("n_clusters"), py::arg("seed"),
        py::arg("n_init"), py::arg("n_oversamples"), py::arg("min_iter"), py::arg("max_iter"), py::arg("tol"),
        "Dhillon co-clustering on the CPU: (row_labels, column_labels, power iterations).");
  m.def("spectral_bicluster", &bicluster_cpu<float>, py::arg("matrix"), py::arg("method"), py::arg("n_row"),
        py::arg("n_col"), py::arg("n_components"), py::arg("n_best"), py::arg("seed"), py::arg("n_init"),
        py::arg("n_oversamples"), py::arg("min_iter"), py::arg("max_iter"), py::arg("tol"));
  m.def("spectral_bicluster", &bicluster_cpu<double>, py::arg("matrix"), py::arg("method"), py::arg("n_row"),
        py::arg("n_col"), py::arg("n_components"), py::arg("n_best"), py::arg("seed"), py::arg("n_init"),
        py::arg("n_oversamples"), py::arg("min_iter"), py::arg("max_iter"), py::arg("tol"),
        "Kluger biclustering on the CPU (method 0 scale, 1 bistochastic, 2 log): (row_labels, column_labels, "
        "power iterations).");
  m.def("randomized_svd", &svd_cpu<float>, py::arg("matrix"), py::arg("k"), py::arg("n_oversamples"),
        py::arg("min_iter"), py::arg("max_iter"), py::arg("tol"), py::arg("seed"));
  m.def("randomized_svd", &svd_cpu<double>, py::arg("matrix"), py::arg("k"), py::arg("n_oversamples"),
        py::arg("min_iter"), py::arg("max_iter"), py::arg("tol"), py::arg("seed"),
        "Top-k singular triplets (u, s, v, power iterations) of a dense matrix.");
  m.def("scale_normalize", &scale_normalize, py::arg("matrix"),
        "scikit-learn's _scale_normalize: (normalised, row factors, column factors).");
  m.def("bistochastic_normalize", &bistochastic_normalize, py::arg("matrix"), py::arg("max_iter"), py::arg("tol"),
        "scikit-learn's _bistochastic_normalize: (normalised, iterations).");
  m.def("log_normalize", &log_normalize, py::arg("matrix"), "scikit-learn's _log_normalize.");
#ifdef CNNVIS_WITH_CUDA
  m.def("kmeans_cuda", &kmeans_cuda, py::arg("ptr"), py::arg("dtype"), py::arg("n"), py::arg("d"), py::arg("k"),
        py::arg("n_init"), py::arg("max_iter"), py::arg("tol"), py::arg("seed"));
  m.def("spectral_cocluster_cuda", &cocluster_cuda, py::arg("ptr"), py::arg("dtype"), py::arg("rows"),
        py::arg("cols"), py::arg("n_clusters"), py::arg("seed"), py::arg("n_init"), py::arg("n_oversamples"),
        py::arg("min_iter"), py::arg("max_iter"), py::arg("tol"));
  m.def("spectral_bicluster_cuda", &bicluster_cuda, py::arg("ptr"), py::arg("dtype"), py::arg("rows"),
        py::arg("cols"), py::arg("method"), py::arg("n_row"), py::arg("n_col"), py::arg("n_components"),
        py::arg("n_best"), py::arg("seed"), py::arg("n_init"), py::arg("n_oversamples"), py::arg("min_iter"),
        py::arg("max_iter"), py::arg("tol"));
#endif
}

}  // namespace cnnvis
