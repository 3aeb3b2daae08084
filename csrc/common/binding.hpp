// Helpers shared by the bind_*.cpp files (pybind11 only; never included by a kernel): numpy conversions
// and the binding of plain option structs.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <string>
#include <vector>

#include "common/errors.hpp"

namespace cnnvis {

// A C-contiguous host array of T, not converted: the Python side casts (cnnvis/compute/_arrays.py).
template <typename T>
using CArray = pybind11::array_t<T, pybind11::array::c_style>;

// A new numpy array of the given shape holding a copy of v (row-major, v.size() == product of shape).
template <typename V, typename A>
pybind11::array_t<V> to_array(const std::vector<V, A>& v, std::vector<pybind11::ssize_t> shape) {
  pybind11::array_t<V> out(shape);
  std::copy(v.begin(), v.end(), out.mutable_data());
  return out;
}

inline void check_2d(const pybind11::array& a, const char* name) {
  if (a.ndim() != 2) throw InvalidArgument(std::string(name) + " must be 2-D");
}

// The fields of an option struct, read/write, given as (name, member pointer) pairs.
template <typename C>
void def_fields(pybind11::class_<C>&, std::vector<std::string>&) {}

template <typename C, typename M, typename... Rest>
void def_fields(pybind11::class_<C>& cls, std::vector<std::string>& names, const char* field, M C::*member,
                Rest... rest) {
  cls.def_readwrite(field, member);
  names.push_back(field);
  def_fields(cls, names, rest...);
}

// An option struct bound once: default-constructible (its C++ defaults are the only ones), each field
// read/write, and a repr listing them. Usage: bind_struct<KMeansOptions>(m, "KMeansOptions", doc,
// "k", &KMeansOptions::k, "n_init", &KMeansOptions::n_init, ...).
template <typename C, typename... Fields>
pybind11::class_<C> bind_struct(pybind11::module_& m, const char* name, const char* doc, Fields... fields) {
  pybind11::class_<C> cls(m, name, doc);
  cls.def(pybind11::init<>());
  std::vector<std::string> names;
  def_fields(cls, names, fields...);
  cls.def("__repr__", [name, names](pybind11::object self) {
    std::string out = std::string(name) + "(";
    for (size_t i = 0; i < names.size(); ++i)
      out += (i ? ", " : "") + names[i] + "=" + pybind11::repr(self.attr(names[i].c_str())).cast<std::string>();
    return out + ")";
  });
  return cls;
}

}  // namespace cnnvis
