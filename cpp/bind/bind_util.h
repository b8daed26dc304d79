// Helpers shared by the binding files (the only files that include pybind11).
// Arrays reach C++ already converted by python/fastnn/_checks.py; these helpers bind them
// with noconvert (so an in-place update can never land in a silent copy) and re-check
// sizes, so that a wrong call raises ValueError instead of touching memory out of bounds.
#pragma once
#include <pybind11/pybind11.h>
#include <pybind11/numpy.h>
#include <pybind11/stl.h>
#include <string>
#include <vector>
#include "common/common.h"

namespace py = pybind11;

namespace fastnn {

using farr = py::array_t<float, py::array::c_style>;
using larr = py::array_t<std::int64_t, py::array::c_style>;

inline void check_numel(const py::array& a, index_t n, const char* name) {
  if (index_t(a.size()) != n)
    throw py::value_error(std::string(name) + ": expected " + std::to_string(n) +
                          " elements, got " + std::to_string(a.size()));
}

inline void check_ndim(const py::array& a, int nd, const char* name) {
  if (a.ndim() != nd)
    throw py::value_error(std::string(name) + ": expected a " + std::to_string(nd) +
                          "-d array, got " + std::to_string(a.ndim()) + "-d");
}

inline void check_writeable(const py::array& a, const char* name) {
  if (!a.writeable()) throw py::value_error(std::string(name) + ": array is read-only");
}

inline farr new_array(std::vector<py::ssize_t> shape) { return farr(shape); }

inline float* wptr(farr& a) { return a.mutable_data(); }
inline const float* rptr(const farr& a) { return a.data(); }

}  // namespace fastnn

// Register the functions of one kernel family on the module.
void bind_core(py::module_& m);
void bind_conv(py::module_& m);
void bind_norm(py::module_& m);
void bind_optim(py::module_& m);
void bind_augment(py::module_& m);

namespace fastnn {

// An optional float32 C-contiguous array argument (None -> null pointer). Never converts.
inline const float* optional_ptr(const py::object& o, index_t n, const char* name,
                                 farr& keep) {
  if (o.is_none()) return nullptr;
  if (!py::isinstance<farr>(o))
    throw py::type_error(std::string(name) + ": expected a C-contiguous float32 array or None");
  keep = py::reinterpret_borrow<farr>(o);
  check_numel(keep, n, name);
  return keep.data();
}

}  // namespace fastnn
