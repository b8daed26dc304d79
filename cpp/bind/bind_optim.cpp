// Bindings for the fused optimizer updates. Every array is updated in place, so every array
// argument is bound with noconvert: a float64 or strided array raises instead of being copied.
#include "bind/bind_util.h"
#include "optim/optim.h"

using namespace fastnn;

namespace {

// A writable float32 C-contiguous state buffer of n elements.
float* inout(farr& a, index_t n, const char* name) {
  check_numel(a, n, name);
  check_writeable(a, name);
  return a.mutable_data();
}

// Same for an optional buffer (None -> null).
float* optional_inout(const py::object& o, index_t n, const char* name, farr& keep) {
  if (o.is_none()) return nullptr;
  if (!py::isinstance<farr>(o) || !py::reinterpret_borrow<py::array>(o).dtype().is(py::dtype::of<float>()))
    throw py::type_error(std::string(name) + ": expected a C-contiguous float32 array or None");
  keep = py::reinterpret_borrow<farr>(o);
  return inout(keep, n, name);
}

void check_step(std::int64_t step) {
  if (step < 1) throw py::value_error("step: expected the 1-based step count (>= 1), got " + std::to_string(step));
}

}  // namespace

void bind_optim(py::module_& m) {
  m.def("sgd_step", [](farr& p, const farr& g, py::object buf, float lr, float momentum,
                       float dampening, float weight_decay, bool nesterov, bool maximize,
                       bool first_step) {
    const index_t n = p.size();
    float* pp = inout(p, n, "param");
    check_numel(g, n, "grad");
    farr keep;
    float* bp = optional_inout(buf, n, "momentum_buffer", keep);
    SGDParams h{lr, momentum, dampening, weight_decay, nesterov, maximize, first_step};
    const float* gp = g.data();
    { py::gil_scoped_release nogil; sgd_step(pp, gp, bp, n, h); }
  }, py::arg("param").noconvert(), py::arg("grad").noconvert(), py::arg("momentum_buffer"),
     py::arg("lr"), py::arg("momentum"), py::arg("dampening"), py::arg("weight_decay"),
     py::arg("nesterov"), py::arg("maximize"), py::arg("first_step"),
     "sgd_step(param, grad, momentum_buffer or None, ...): PyTorch's SGD rule, in place.");

  m.def("adagrad_step", [](farr& p, const farr& g, farr& sum, double lr, double lr_decay,
                           double weight_decay, double eps, std::int64_t step, bool maximize) {
    const index_t n = p.size();
    float* pp = inout(p, n, "param");
    check_numel(g, n, "grad");
    float* sp = inout(sum, n, "sum");
    check_step(step);
    AdagradParams h{lr, lr_decay, weight_decay, eps, step, maximize};
    const float* gp = g.data();
    { py::gil_scoped_release nogil; adagrad_step(pp, gp, sp, n, h); }
  }, py::arg("param").noconvert(), py::arg("grad").noconvert(), py::arg("sum").noconvert(),
     py::arg("lr"), py::arg("lr_decay"), py::arg("weight_decay"), py::arg("eps"),
     py::arg("step"), py::arg("maximize"),
     "adagrad_step(param, grad, sum, lr, lr_decay, weight_decay, eps, step, maximize): in place.");

  m.def("rmsprop_step", [](farr& p, const farr& g, farr& sq, py::object grad_avg,
                           py::object buf, double lr, double alpha, double eps,
                           double weight_decay, double momentum, bool centered, bool maximize) {
    const index_t n = p.size();
    float* pp = inout(p, n, "param");
    check_numel(g, n, "grad");
    float* sp = inout(sq, n, "square_avg");
    farr k1, k2;
    float* ga = optional_inout(grad_avg, n, "grad_avg", k1);
    float* bp = optional_inout(buf, n, "momentum_buffer", k2);
    if (centered && !ga) throw py::value_error("grad_avg: required when centered=True");
    if (momentum > 0 && !bp) throw py::value_error("momentum_buffer: required when momentum > 0");
    RMSpropParams h{lr, alpha, eps, weight_decay, momentum, centered, maximize};
    const float* gp = g.data();
    { py::gil_scoped_release nogil; rmsprop_step(pp, gp, sp, ga, bp, n, h); }
  }, py::arg("param").noconvert(), py::arg("grad").noconvert(), py::arg("square_avg").noconvert(),
     py::arg("grad_avg"), py::arg("momentum_buffer"), py::arg("lr"), py::arg("alpha"),
     py::arg("eps"), py::arg("weight_decay"), py::arg("momentum"), py::arg("centered"),
     py::arg("maximize"),
     "rmsprop_step(param, grad, square_avg, grad_avg or None, momentum_buffer or None, ...): in place.");

  m.def("adadelta_step", [](farr& p, const farr& g, farr& sq, farr& acc, double lr, double rho,
                            double eps, double weight_decay, bool maximize) {
    const index_t n = p.size();
    float* pp = inout(p, n, "param");
    check_numel(g, n, "grad");
    float* sp = inout(sq, n, "square_avg");
    float* ap = inout(acc, n, "acc_delta");
    AdadeltaParams h{lr, rho, eps, weight_decay, maximize};
    const float* gp = g.data();
    { py::gil_scoped_release nogil; adadelta_step(pp, gp, sp, ap, n, h); }
  }, py::arg("param").noconvert(), py::arg("grad").noconvert(), py::arg("square_avg").noconvert(),
     py::arg("acc_delta").noconvert(), py::arg("lr"), py::arg("rho"), py::arg("eps"),
     py::arg("weight_decay"), py::arg("maximize"),
     "adadelta_step(param, grad, square_avg, acc_delta, lr, rho, eps, weight_decay, maximize): in place.");

  m.def("adam_step", [](farr& p, const farr& g, farr& m1, farr& m2, py::object vmax, double lr,
                        double beta1, double beta2, double eps, double weight_decay,
                        std::int64_t step, bool maximize, bool decoupled) {
    const index_t n = p.size();
    float* pp = inout(p, n, "param");
    check_numel(g, n, "grad");
    float* mp = inout(m1, n, "exp_avg");
    float* vp = inout(m2, n, "exp_avg_sq");
    farr keep;
    float* xp = optional_inout(vmax, n, "max_exp_avg_sq", keep);
    check_step(step);
    AdamParams h{lr, beta1, beta2, eps, weight_decay, step, maximize, decoupled};
    const float* gp = g.data();
    { py::gil_scoped_release nogil; adam_step(pp, gp, mp, vp, xp, n, h); }
  }, py::arg("param").noconvert(), py::arg("grad").noconvert(), py::arg("exp_avg").noconvert(),
     py::arg("exp_avg_sq").noconvert(), py::arg("max_exp_avg_sq"), py::arg("lr"),
     py::arg("beta1"), py::arg("beta2"), py::arg("eps"), py::arg("weight_decay"),
     py::arg("step"), py::arg("maximize"), py::arg("decoupled"),
     "adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq or None, ...): Adam/AdamW/AMSGrad in place.");

  m.def("adamax_step", [](farr& p, const farr& g, farr& m1, farr& u, double lr, double beta1,
                          double beta2, double eps, double weight_decay, std::int64_t step,
                          bool maximize) {
    const index_t n = p.size();
    float* pp = inout(p, n, "param");
    check_numel(g, n, "grad");
    float* mp = inout(m1, n, "exp_avg");
    float* up = inout(u, n, "exp_inf");
    check_step(step);
    AdamaxParams h{lr, beta1, beta2, eps, weight_decay, step, maximize};
    const float* gp = g.data();
    { py::gil_scoped_release nogil; adamax_step(pp, gp, mp, up, n, h); }
  }, py::arg("param").noconvert(), py::arg("grad").noconvert(), py::arg("exp_avg").noconvert(),
     py::arg("exp_inf").noconvert(), py::arg("lr"), py::arg("beta1"), py::arg("beta2"),
     py::arg("eps"), py::arg("weight_decay"), py::arg("step"), py::arg("maximize"),
     "adamax_step(param, grad, exp_avg, exp_inf, ...): in place.");

  m.def("nadam_step", [](farr& p, const farr& g, farr& m1, farr& m2, double lr, double beta1,
                         double beta2, double eps, double weight_decay, double mu,
                         double mu_next, double mu_product, double mu_product_next,
                         std::int64_t step, bool maximize, bool decoupled) {
    const index_t n = p.size();
    float* pp = inout(p, n, "param");
    check_numel(g, n, "grad");
    float* mp = inout(m1, n, "exp_avg");
    float* vp = inout(m2, n, "exp_avg_sq");
    check_step(step);
    NAdamParams h{lr, beta1, beta2, eps, weight_decay, mu, mu_next, mu_product,
                  mu_product_next, step, maximize, decoupled};
    const float* gp = g.data();
    { py::gil_scoped_release nogil; nadam_step(pp, gp, mp, vp, n, h); }
  }, py::arg("param").noconvert(), py::arg("grad").noconvert(), py::arg("exp_avg").noconvert(),
     py::arg("exp_avg_sq").noconvert(), py::arg("lr"), py::arg("beta1"), py::arg("beta2"),
     py::arg("eps"), py::arg("weight_decay"), py::arg("mu"), py::arg("mu_next"),
     py::arg("mu_product"), py::arg("mu_product_next"), py::arg("step"), py::arg("maximize"),
     py::arg("decoupled"),
     "nadam_step(param, grad, exp_avg, exp_avg_sq, ...): in place (mu products from the caller).");

  m.def("adaptive_gains_step", [](farr& p, const farr& g, farr& gain, farr& prev, double lr,
                                  double increase, double decrease, double min_gain,
                                  double max_gain, bool maximize) {
    const index_t n = p.size();
    float* pp = inout(p, n, "param");
    check_numel(g, n, "grad");
    float* kp = inout(gain, n, "gain");
    float* qp = inout(prev, n, "prev_grad");
    GainsParams h{lr, increase, decrease, min_gain, max_gain, maximize};
    const float* gp = g.data();
    { py::gil_scoped_release nogil; adaptive_gains_step(pp, gp, kp, qp, n, h); }
  }, py::arg("param").noconvert(), py::arg("grad").noconvert(), py::arg("gain").noconvert(),
     py::arg("prev_grad").noconvert(), py::arg("lr"), py::arg("increase"), py::arg("decrease"),
     py::arg("min_gain"), py::arg("max_gain"), py::arg("maximize"),
     "adaptive_gains_step(param, grad, gain, prev_grad, ...): in place.");
}
