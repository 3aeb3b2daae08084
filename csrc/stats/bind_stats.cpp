// Bindings for the per-class statistics kernel (stats.hpp): conversion and dispatch only.
//
// _core.ClassMoments(K, C) holds the running state; update_cpu / update_cuda add one batch and return
// (code, index, value) from StatsStatus (0 = ok; the Python wrapper turns the rest into DataError with a
// message), leaving the state untouched on failure. Arrays arrive already shaped (N, C, S) by Python.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <memory>
#include <string>

#include "common/dtype.hpp"
#include "common/errors.hpp"
#include "common/binding.hpp"
#include "stats/stats.hpp"

namespace py = pybind11;

namespace cnnvis {
namespace {

using Labels = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;

// Running state plus a batch buffer, made at the second batch and reused after: the first batch goes
// straight into the empty state (no second K x C buffer to fault in and merge for a one-shot call).
struct Accumulator {
  ClassMoments state;
  std::unique_ptr<ClassMoments> batch;
  Accumulator(int64_t k, int64_t c) : state(k, c) {
    if (k < 1 || c < 1) throw InvalidArgument("ClassMoments: n_classes and n_channels must be >= 1");
  }
};

// take_result hands the state's arrays over; the accumulator is of no further use then.
const Accumulator& live(const Accumulator& a) {
  if (a.state.mean.size() != size_t(a.state.n_classes * a.state.n_channels))
    throw InvalidArgument("ClassMoments: its result was taken (take_result); it holds nothing more");
  return a;
}

py::tuple as_tuple(const StatsStatus& st) { return py::make_tuple(int(st.code), st.index, st.value); }

void check_batch(const Accumulator& acc, const ActivationView& v, const Labels& labels) {
  live(acc);
  if (v.c != acc.state.n_channels)
    throw InvalidArgument("activations have " + std::to_string(v.c) + " channels, the accumulator " +
                                std::to_string(acc.state.n_channels));
  if (labels.ndim() != 1 || labels.shape(0) != v.n)
    throw InvalidArgument("labels must be 1-D with one entry per image");
  if (v.s < 1) throw InvalidArgument("activations have an empty spatial size");
}

ActivationView host_view(const py::array& x) {
  if (x.ndim() != 3) throw InvalidArgument("update_cpu expects an (N, C, S) array");
  const auto isz = x.itemsize();
  ActivationView v;
  if (x.dtype().is(py::dtype::of<float>()))
    v.dtype = DType::F32;
  else if (x.dtype().is(py::dtype::of<double>()))
    v.dtype = DType::F64;
  else
    throw InvalidArgument("update_cpu expects float32 or float64");
  v.data = x.data();
  v.n = x.shape(0), v.c = x.shape(1), v.s = x.shape(2);
  if (x.strides(0) % isz || x.strides(1) % isz || (v.s > 1 && x.strides(2) != isz))
    throw InvalidArgument("update_cpu expects a contiguous spatial axis and element-aligned strides");
  v.stride_n = x.strides(0) / isz, v.stride_c = x.strides(1) / isz;
  return v;
}

template <class Kernel>
py::tuple run_batch(Accumulator& acc, const ActivationView& v, const Labels& labels, Kernel kernel) {
  check_batch(acc, v, labels);
  StatsStatus st;
  {
    py::gil_scoped_release nogil;
    if (acc.state.empty()) {  // the batch is the state; a rejected one leaves it empty, as it was
      st = kernel(v, labels.data(), acc.state);
      if (st.code != StatsStatus::Ok) acc.state.reset();
    } else {
      if (!acc.batch) acc.batch = std::make_unique<ClassMoments>(acc.state.n_classes, acc.state.n_channels);
      st = kernel(v, labels.data(), *acc.batch);
      if (st.code == StatsStatus::Ok) acc.state.merge(*acc.batch);
    }
  }
  return as_tuple(st);
}

// A numpy array over v's memory, which it takes over (given back to the block cache with the array).
template <class T>
py::array_t<double> hand_over(CachedVector<T>&& v, const std::vector<py::ssize_t>& shape) {
  static_assert(sizeof(T) == sizeof(double), "the array's memory holds float64 values");
  auto* owner = new CachedVector<T>(std::move(v));
  py::capsule free(owner, [](void* o) { delete static_cast<CachedVector<T>*>(o); });
  return py::array_t<double>(shape, reinterpret_cast<double*>(owner->data()), free);
}

// (count, mean, std, max, active) of raw moments as new arrays (finalize_moments).
py::tuple statistics(int64_t k, int64_t c, const int64_t* count, const double* mean, const double* m2,
                     const double* max, const int64_t* active) {
  const std::vector<py::ssize_t> kc{k, c};
  py::array_t<int64_t> n(std::vector<py::ssize_t>{k});
  std::copy(count, count + k, n.mutable_data());
  py::array_t<double> out_mean(kc), out_std(kc), out_max(kc), out_active(kc);
  finalize_moments(k, c, count, mean, m2, max, active, out_mean.mutable_data(), out_std.mutable_data(),
                   out_max.mutable_data(), out_active.mutable_data());
  return py::make_tuple(n, out_mean, out_std, out_max, out_active);
}

py::tuple update_cpu(Accumulator& acc, const py::array& x, const Labels& labels) {
  return run_batch(acc, host_view(x), labels, class_moments_cpu);
}

// x is described by its device pointer and element strides; `host_input` marks a C-contiguous host array.
py::tuple update_cuda(Accumulator& acc, std::uintptr_t ptr, const std::string& dtype, int64_t n, int64_t c,
                      int64_t s, int64_t stride_n, int64_t stride_c, const Labels& labels,
                      std::uintptr_t stream, bool host_input) {
#ifdef CNNVIS_WITH_CUDA
  ActivationView v;
  v.dtype = parse_dtype(dtype);
  v.data = reinterpret_cast<const void*>(ptr);
  v.n = n, v.c = c, v.s = s, v.stride_n = stride_n, v.stride_c = stride_c;
  return run_batch(acc, v, labels, [&](const ActivationView& view, const int64_t* lab, ClassMoments& out) {
    return class_moments_cuda(view, lab, out, stream, host_input);
  });
#else
  (void)acc, (void)ptr, (void)dtype, (void)n, (void)c, (void)s, (void)stride_n, (void)stride_c;
  (void)labels, (void)stream, (void)host_input;
  throw CudaError("cnnvis._core was built without CUDA");
#endif
}

}  // namespace

void register_stats(py::module_& m) {
  py::class_<Accumulator>(m, "ClassMoments",
                          "Running per-class moments of channel activations (see cnnvis.stats).")
      .def(py::init<int64_t, int64_t>(), py::arg("n_classes"), py::arg("n_channels"))
      .def_property_readonly("n_classes", [](const Accumulator& a) { return a.state.n_classes; })
      .def_property_readonly("n_channels", [](const Accumulator& a) { return a.state.n_channels; })
      .def("update_cpu", &update_cpu, py::arg("x"), py::arg("labels"),
           "Add a host batch x (N, C, S) float32/float64, spatial axis contiguous; labels int64 (N,).\n"
           "Returns (code, index, value): 0 ok, 1 bad label (position, value), 2 non-finite (image, channel).")
      .def("update_cuda", &update_cuda, py::arg("ptr"), py::arg("dtype"), py::arg("n"), py::arg("c"),
           py::arg("s"), py::arg("stride_n"), py::arg("stride_c"), py::arg("labels"), py::arg("stream") = 0,
           py::arg("host_input") = false,
           "Add a device batch given by pointer, 'f4'/'f8', shape and element strides (spatial axis\n"
           "contiguous); labels int64 on the host. Same return value as update_cpu.")
      .def("merge", [](Accumulator& a, const Accumulator& b) {
        live(a), live(b);
        if (a.state.n_classes != b.state.n_classes || a.state.n_channels != b.state.n_channels)
          throw InvalidArgument("merge: shapes differ");
        a.state.merge(b.state);
      })
      .def_static("from_state", [](const CArray<int64_t>& count, const CArray<double>& mean, const CArray<double>& m2,
                                   const CArray<double>& max, const CArray<int64_t>& active) {
        if (count.ndim() != 1 || count.shape(0) < 1) throw InvalidArgument("from_state: count must be (K,)");
        const int64_t k = count.shape(0), c = mean.ndim() == 2 ? mean.shape(1) : 0;
        for (const py::array* a : {static_cast<const py::array*>(&mean), static_cast<const py::array*>(&m2),
                                   static_cast<const py::array*>(&max), static_cast<const py::array*>(&active)})
          if (a->ndim() != 2 || a->shape(0) != k || a->shape(1) != c || c < 1)
            throw InvalidArgument("from_state: mean, m2, max and active must be (K, C) with count (K,)");
        Accumulator acc(k, c);
        auto& s = acc.state;
        std::copy(count.data(), count.data() + k, s.count.begin());
        std::copy(mean.data(), mean.data() + k * c, s.mean.begin());
        std::copy(m2.data(), m2.data() + k * c, s.m2.begin());
        std::copy(max.data(), max.data() + k * c, s.max.begin());
        std::copy(active.data(), active.data() + k * c, s.active.begin());
        return acc;
      }, py::arg("count"), py::arg("mean"), py::arg("m2"), py::arg("max"), py::arg("active"),
         "A ClassMoments holding a raw state as state() returns it (merge() then combines such states).")
      .def("result", [](const Accumulator& a) {
        const auto& s = live(a).state;
        return statistics(s.n_classes, s.n_channels, s.count.data(), s.mean.data(), s.m2.data(), s.max.data(),
                          s.active.data());
      }, "(count, mean, std, max, active): the statistics of the running state (NaN rows for empty classes).")
      .def("take_result", [](Accumulator& a) {
        live(a);
        auto& s = a.state;
        s.finalize_in_place();
        const std::vector<py::ssize_t> kc{s.n_classes, s.n_channels};
        py::array_t<int64_t> n(std::vector<py::ssize_t>{s.n_classes});
        std::copy(s.count.begin(), s.count.end(), n.mutable_data());
        return py::make_tuple(n, hand_over(std::move(s.mean), kc), hand_over(std::move(s.m2), kc),
                              hand_over(std::move(s.max), kc), hand_over(std::move(s.active), kc));
      }, "result() without copies, for a one-shot accumulator: its arrays become the result's (no further\n"
         "use of this ClassMoments).")
      .def_static("finalize", [](const CArray<int64_t>& count, const CArray<double>& mean, const CArray<double>& m2,
                                 const CArray<double>& max, const CArray<int64_t>& active) {
        if (count.ndim() != 1) throw InvalidArgument("finalize: count must be (K,)");
        const int64_t k = count.shape(0), c = mean.ndim() == 2 ? mean.shape(1) : -1;
        for (const py::array* a : {static_cast<const py::array*>(&mean), static_cast<const py::array*>(&m2),
                                   static_cast<const py::array*>(&max), static_cast<const py::array*>(&active)})
          if (a->ndim() != 2 || a->shape(0) != k || a->shape(1) != c)
            throw InvalidArgument("finalize: mean, m2, max and active must be (K, C) with count (K,)");
        return statistics(k, c, count.data(), mean.data(), m2.data(), max.data(), active.data());
      }, py::arg("count"), py::arg("mean"), py::arg("m2"), py::arg("max"), py::arg("active"),
         "(count, mean, std, max, active) of a raw state as state() returns it (the same arithmetic as result()).")
      .def("state", [](const Accumulator& a) {
        const auto& s = live(a).state;
        const std::vector<py::ssize_t> kc{s.n_classes, s.n_channels};
        return py::make_tuple(to_array(s.count, {s.n_classes}), to_array(s.mean, kc), to_array(s.m2, kc),
                              to_array(s.max, kc), to_array(s.active, kc));
      }, "(count, mean, m2, max, active): copies of the raw running state.");
}

}  // namespace cnnvis
