// Bindings for the fused optimizer updates. Every array is updated in place, so every array
// argument is bound with noconvert: a float64 or strided array raises instead of being copied.
#include "bind/bind_util.h"
#include "optim/sgd.h"

using namespace fastnn;

void bind_optim(py::module_& m) {
  m.def("sgd_step", [](farr& p, const farr& g, py::object buf, float lr, float momentum,
                       float dampening, float weight_decay, bool nesterov, bool maximize,
                       bool first_step) {
    check_writeable(p, "param");
    const index_t n = p.size();
    check_numel(g, n, "grad");
    float* bp = nullptr;
    farr keep;
    if (!buf.is_none()) {
      if (!py::isinstance<farr>(buf)) throw py::type_error("momentum_buffer: expected float32 C-contiguous");
      keep = py::reinterpret_borrow<farr>(buf);
      check_numel(keep, n, "momentum_buffer");
      check_writeable(keep, "momentum_buffer");
      bp = keep.mutable_data();
    }
    SGDParams h{lr, momentum, dampening, weight_decay, nesterov, maximize, first_step};
    float* pp = p.mutable_data(); const float* gp = g.data();
    { py::gil_scoped_release nogil; sgd_step(pp, gp, bp, n, h); }
  }, py::arg("param").noconvert(), py::arg("grad").noconvert(), py::arg("momentum_buffer"),
     py::arg("lr"), py::arg("momentum"), py::arg("dampening"), py::arg("weight_decay"),
     py::arg("nesterov"), py::arg("maximize"), py::arg("first_step"),
     "sgd_step(param, grad, momentum_buffer or None, ...): PyTorch's SGD rule, in place.");
}
