// The error types the core throws. bindings.cpp registers each as a Python exception of _core, and
// cnnvis/compute/_errors.py maps those to cnnvis.errors (the one place that turns core errors into
// CnnvisError types, with the caller's names for the inputs).
#pragma once
#include <stdexcept>
#include <string>

namespace cnnvis {

// An input holds NaN or infinity. Python: _core.NonFiniteError, reported as DataError("<input> contains
// NaN or infinity (<what>)"): the message, possibly empty, is only a detail, the caller names the input.
struct NonFiniteError : std::domain_error {
  using std::domain_error::domain_error;
};

// A parameter or shape the Python side should have rejected first. Python: ValueError, reported as
// CnnvisError with this message.
struct InvalidArgument : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// A CUDA runtime call failed (no device, out of memory, a host pointer where device memory was expected).
// Python: _core.CudaError, reported as DeviceError.
struct CudaError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace cnnvis
