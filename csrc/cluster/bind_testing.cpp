// _core._testing: pieces of the clustering kernels exposed only so that tests can check them against
// scikit-learn's private helpers on small matrices (dense float64 results). Nothing in cnnvis calls these;
// the algorithms never form the normalised matrix.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <vector>

#include "cluster/bicluster.hpp"
#include "cluster/linalg.hpp"
#include "common/binding.hpp"

namespace py = pybind11;

namespace cnnvis {
namespace {

// The normalised matrix dr_i · (w(A_ij + shift) + p_i + q_j) · dc_j, w = log or identity; empty vectors
// stand for ones (dr, dc) or zeros (p, q).
py::array_t<double> dense_normalised(const CArray<double>& a, const std::vector<double>& dr,
                                     const std::vector<double>& dc, const std::vector<double>& p,
                                     const std::vector<double>& q, bool logged, double shift) {
  const int64_t m = a.shape(0), n = a.shape(1);
  std::vector<double> out(static_cast<size_t>(m * n));
  const double* x = a.data();
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      const double w = logged ? std::log(x[i * n + j] + shift) : x[i * n + j] + shift;
      out[i * n + j] = (dr.empty() ? 1.0 : dr[i]) * (w + (p.empty() ? 0.0 : p[i]) + (q.empty() ? 0.0 : q[j])) *
                       (dc.empty() ? 1.0 : dc[j]);
    }
  return to_array(out, {m, n});
}

py::tuple scale_normalize(const CArray<double>& a) {
  check_2d(a, "matrix");
  auto mb = make_cpu_matrix(a.data(), a.shape(0), a.shape(1));
  const FirstPass fp = first_pass(*mb);
  const double shift = nonnegative_shift(fp, 0.0);
  std::vector<double> r, c;
  scale_factors(fp, shift, r, c);
  return py::make_tuple(dense_normalised(a, r, c, {}, {}, false, shift), to_array(r, {py::ssize_t(r.size())}),
                        to_array(c, {py::ssize_t(c.size())}));
}

py::tuple bistochastic_normalize(const CArray<double>& a, int max_iter, double tol) {
  check_2d(a, "matrix");
  auto mb = make_cpu_matrix(a.data(), a.shape(0), a.shape(1));
  const double shift = nonnegative_shift(first_pass(*mb), 0.0);
  std::vector<double> r, c;
  const int it = bistochastic_factors(*mb, shift, max_iter, tol, r, c);
  return py::make_tuple(dense_normalised(a, r, c, {}, {}, false, shift), it);
}

py::array_t<double> log_normalize(const CArray<double>& a) {
  check_2d(a, "matrix");
  auto mb = make_cpu_matrix(a.data(), a.shape(0), a.shape(1));
  const double shift = nonnegative_shift(first_pass(*mb), 1.0);
  std::vector<double> p, q;
  log_terms(*mb, shift, p, q);
  return dense_normalised(a, {}, {}, p, q, true, shift);
}

template <typename T>
py::tuple svd(const CArray<T>& a, const SvdOptions& opt) {
  check_2d(a, "matrix");
  SvdResult r;
  {
    py::gil_scoped_release nogil;
    auto mb = make_cpu_matrix(a.data(), a.shape(0), a.shape(1));
    r = randomized_svd(*mb, opt);
  }
  return py::make_tuple(to_array(r.u, {a.shape(0), opt.k}), to_array(r.s, {py::ssize_t(r.s.size())}),
                        to_array(r.v, {a.shape(1), opt.k}), r.n_iter);
}

}  // namespace

void register_cluster_testing(py::module_& t) {
  bind_struct<SvdOptions>(t, "SvdOptions", "Randomized SVD settings (cluster/linalg.hpp holds the defaults).", "k",
                          &SvdOptions::k, "n_oversamples", &SvdOptions::n_oversamples, "max_iter", &SvdOptions::max_iter,
                          "min_iter", &SvdOptions::min_iter, "tol", &SvdOptions::tol, "seed", &SvdOptions::seed);
  t.def("randomized_svd", &svd<float>, py::arg("matrix"), py::arg("options"));
  t.def("randomized_svd", &svd<double>, py::arg("matrix"), py::arg("options"),
        "Top-k singular triplets (u, s, v, power iterations) of a dense host matrix.");
  t.def("scale_normalize", &scale_normalize, py::arg("matrix"),
        "scikit-learn's _scale_normalize: (normalised, row factors, column factors).");
  t.def("bistochastic_normalize", &bistochastic_normalize, py::arg("matrix"), py::arg("max_iter"), py::arg("tol"),
        "scikit-learn's _bistochastic_normalize: (normalised, iterations).");
  t.def("log_normalize", &log_normalize, py::arg("matrix"), "scikit-learn's _log_normalize.");
}

}  // namespace cnnvis
