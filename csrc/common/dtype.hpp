// The element types the kernels read, and their tags across the binding: "f4" / "f8", the typestr of
// numpy and of __cuda_array_interface__ without the byte order (one tag style for every entry point).
#pragma once
#include <string>

#include "common/errors.hpp"

namespace cnnvis {

enum class DType { F32, F64 };

inline DType parse_dtype(const std::string& tag) {
  if (tag == "f4") return DType::F32;
  if (tag == "f8") return DType::F64;
  throw InvalidArgument("dtype tag must be 'f4' or 'f8', got '" + tag + "'");
}

// Calls f(float{}) or f(double{}): one instantiation per element type.
template <typename F>
auto with_dtype(DType t, F&& f) {
  return t == DType::F32 ? f(float{}) : f(double{});
}

}  // namespace cnnvis
