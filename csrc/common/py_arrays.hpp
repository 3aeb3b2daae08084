// numpy conversions shared by the bind_*.cpp files (pybind11 only; never included by a kernel).
#pragma once
#include <pybind11/numpy.h>

#include <algorithm>
#include <string>
#include <vector>

#include "common/errors.hpp"

namespace cnnvis {

// A C-contiguous host array of T, not converted: the Python side casts (cnnvis/compute/_arrays.py).
template <typename T>
using CArray = pybind11::array_t<T, pybind11::array::c_style>;

// A new numpy array of the given shape holding a copy of v (row-major, v.size() == product of shape).
template <typename V>
pybind11::array_t<V> to_array(const std::vector<V>& v, std::vector<pybind11::ssize_t> shape) {
  pybind11::array_t<V> out(shape);
  std::copy(v.begin(), v.end(), out.mutable_data());
  return out;
}

inline void check_2d(const pybind11::array& a, const char* name) {
  if (a.ndim() != 2) throw InvalidArgument(std::string(name) + " must be 2-D");
}

}  // namespace cnnvis
