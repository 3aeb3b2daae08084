// _core._testing: pieces of the clustering kernels exposed only so that tests can check them against
// scikit-learn's private helpers and dense numpy products on small matrices (dense float64 results):
// the normalisations, the randomized SVD, and the matrix backends' primitives (first_pass, power_pass
// with its affine terms, project) on the CPU and, with CUDA, on a device matrix. Nothing in cnnvis calls
// these; the algorithms never form the normalised matrix.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cluster/bicluster.hpp"
#include "cluster/linalg.hpp"
#include "common/binding.hpp"
#include "common/dtype.hpp"

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

using Vector = std::optional<CArray<double>>;

// The host matrix's backend (a C-contiguous float32 or float64 array, borrowed).
std::unique_ptr<MatrixBackend> host_backend(const py::array& a) {
  check_2d(a, "matrix");
  if (!(a.flags() & py::array::c_style)) throw InvalidArgument("matrix must be C-contiguous");
  if (a.dtype().is(py::dtype::of<float>()))
    return make_cpu_matrix(static_cast<const float*>(a.data()), a.shape(0), a.shape(1));
  if (a.dtype().is(py::dtype::of<double>()))
    return make_cpu_matrix(static_cast<const double*>(a.data()), a.shape(0), a.shape(1));
  throw InvalidArgument("matrix must be float32 or float64");
}

const double* data_or_null(const Vector& v, int64_t len, const char* name) {
  if (!v) return nullptr;
  if (v->ndim() != 1 || v->shape(0) != len) throw InvalidArgument(std::string(name) + " has the wrong length");
  return v->data();
}

// Host (len × l) array of doubles, checked.
void check_thin(const CArray<double>& x, int64_t len, const char* name) {
  if (x.ndim() != 2 || x.shape(0) != len) throw InvalidArgument(std::string(name) + " must have shape (" +
                                                                  std::to_string(len) + ", l)");
}

// set_affine(dr, dc, p, q) on mb (null for an absent vector).
void set_affine(MatrixBackend& mb, const Vector& dr, const Vector& dc, const Vector& p, const Vector& q) {
  mb.set_affine(data_or_null(dr, mb.rows(), "dr"), data_or_null(dc, mb.cols(), "dc"),
                data_or_null(p, mb.rows(), "p"), data_or_null(q, mb.cols(), "q"));
}

// (min, finite, row sums, column sums) of one first pass.
py::tuple first_pass_of(MatrixBackend& mb) {
  std::vector<double> r(mb.rows()), c(mb.cols());
  double mn = 0.0;
  bool finite = true;
  {
    py::gil_scoped_release nogil;
    mb.first_pass(&mn, &finite, r.data(), c.data());
  }
  return py::make_tuple(mn, finite, to_array(r, {py::ssize_t(r.size())}), to_array(c, {py::ssize_t(c.size())}));
}

// (y, z) of one power pass with x (cols × l) and the affine terms; z is None unless want_z. x, y and z
// move through the backend's memory (device memory for CUDA), as the SVD uses them.
py::tuple power_pass_of(MatrixBackend& mb, const CArray<double>& x, const Vector& dr, const Vector& dc,
                        const Vector& p, const Vector& q, bool want_z) {
  check_thin(x, mb.cols(), "x");
  const int l = static_cast<int>(x.shape(1));
  const int64_t m = mb.rows(), n = mb.cols();
  std::vector<double> y(m * l), z(want_z ? n * l : 0);
  set_affine(mb, dr, dc, p, q);
  {
    py::gil_scoped_release nogil;
    double* xb = mb.alloc(n * l);
    double* yb = mb.alloc(m * l);
    double* zb = want_z ? mb.alloc(n * l) : nullptr;
    mb.upload(x.data(), n * l, xb);
    mb.power_pass(xb, l, yb, zb);
    mb.download(yb, m * l, y.data());
    if (want_z) mb.download(zb, n * l, z.data());
    mb.release(xb), mb.release(yb);
    if (zb) mb.release(zb);
  }
  return py::make_tuple(to_array(y, {m, l}), want_z ? py::object(to_array(z, {n, l})) : py::object(py::none()));
}

// (A x, A^T y) with the original matrix, x (cols × c), y (rows × c).
py::tuple project_of(MatrixBackend& mb, const CArray<double>& x, const CArray<double>& y) {
  check_thin(x, mb.cols(), "x");
  check_thin(y, mb.rows(), "y");
  const int c = static_cast<int>(x.shape(1));
  if (y.shape(1) != c) throw InvalidArgument("x and y must have the same number of columns");
  std::vector<double> out_r(mb.rows() * c), out_c(mb.cols() * c);
  {
    py::gil_scoped_release nogil;
    mb.project(x.data(), y.data(), c, out_r.data(), out_c.data());
  }
  return py::make_tuple(to_array(out_r, {mb.rows(), c}), to_array(out_c, {mb.cols(), c}));
}

// Top-k triplets of dr·(A + p + q)·dc (absent terms: ones, zeros).
py::tuple svd_of(MatrixBackend& mb, const SvdOptions& opt, const Vector& dr, const Vector& dc, const Vector& p,
                 const Vector& q) {
  set_affine(mb, dr, dc, p, q);
  SvdResult r;
  {
    py::gil_scoped_release nogil;
    r = randomized_svd(mb, opt);
  }
  return py::make_tuple(to_array(r.u, {mb.rows(), opt.k}), to_array(r.s, {py::ssize_t(r.s.size())}),
                        to_array(r.v, {mb.cols(), opt.k}), r.n_iter);
}

#ifdef CNNVIS_WITH_CUDA
// The backend of a device matrix given as (ptr, dtype tag, rows, cols, producer stream).
std::unique_ptr<MatrixBackend> device_backend(std::uintptr_t ptr, const std::string& dtype, int64_t rows,
                                              int64_t cols, std::uintptr_t stream) {
  return with_dtype(parse_dtype(dtype), [&](auto tag) {
    return make_cuda_matrix(reinterpret_cast<const decltype(tag)*>(ptr), rows, cols, stream);
  });
}
#endif

// _testing.<name>(matrix, ...) for a host matrix and, with CUDA, _testing.<name>_cuda(ptr, dtype, rows,
// cols, stream, ...) for a device one; f(MatrixBackend&, ...) does the work.
template <typename... Args, typename F, typename... Extra>
void def_backend(py::module_& t, const char* name, F f, const char* doc, Extra... arg_names) {
  t.def(name, [f](const py::array& a, Args... args) { return f(*host_backend(a), args...); }, py::arg("matrix"),
        arg_names..., doc);
#ifdef CNNVIS_WITH_CUDA
  t.def((std::string(name) + "_cuda").c_str(),
        [f](std::uintptr_t ptr, const std::string& dtype, int64_t rows, int64_t cols, std::uintptr_t stream,
            Args... args) { return f(*device_backend(ptr, dtype, rows, cols, stream), args...); },
        py::arg("ptr"), py::arg("dtype"), py::arg("rows"), py::arg("cols"), py::arg("stream"), arg_names..., doc);
#endif
}

}  // namespace

void register_cluster_testing(py::module_& t) {
  bind_struct<SvdOptions>(t, "SvdOptions", "Randomized SVD settings (cluster/linalg.hpp holds the defaults).", "k",
                          &SvdOptions::k, "n_oversamples", &SvdOptions::n_oversamples, "max_iter", &SvdOptions::max_iter,
                          "min_iter", &SvdOptions::min_iter, "tol", &SvdOptions::tol, "seed", &SvdOptions::seed);
  const auto none = py::none();
  def_backend<const SvdOptions&, const Vector&, const Vector&, const Vector&, const Vector&>(
      t, "randomized_svd", &svd_of,
      "Top-k singular triplets (u, s, v, power iterations) of dr·(A + p + q)·dc (absent terms: ones, zeros).",
      py::arg("options"), py::arg("dr") = none, py::arg("dc") = none, py::arg("p") = none, py::arg("q") = none);
  def_backend<>(t, "first_pass", &first_pass_of,
                "The backend's first pass: (min, all finite, row sums, column sums) of A.");
  def_backend<const CArray<double>&, const Vector&, const Vector&, const Vector&, const Vector&, bool>(
      t, "power_pass", &power_pass_of,
      "One power pass of M = dr·(A + p + q)·dc: (M x, M^T M x or None) for x (cols, l), float64.", py::arg("x"),
      py::arg("dr") = none, py::arg("dc") = none, py::arg("p") = none, py::arg("q") = none,
      py::arg("want_z") = true);
  def_backend<const CArray<double>&, const CArray<double>&>(
      t, "project", &project_of, "(A x, A^T y) with the original A, for x (cols, c) and y (rows, c).",
      py::arg("x"), py::arg("y"));
  t.def("scale_normalize", &scale_normalize, py::arg("matrix"),
        "scikit-learn's _scale_normalize: (normalised, row factors, column factors).");
  t.def("bistochastic_normalize", &bistochastic_normalize, py::arg("matrix"), py::arg("max_iter"), py::arg("tol"),
        "scikit-learn's _bistochastic_normalize: (normalised, iterations).");
  t.def("log_normalize", &log_normalize, py::arg("matrix"), "scikit-learn's _log_normalize.");
}

}  // namespace cnnvis
