// Bindings for the core family: linear layer, activations, reductions.
#include "bind/bind_util.h"
#include "core/activations.h"
#include "core/linear.h"

using namespace fastnn;

namespace {

using UnaryFwd = void (*)(const float*, float*, index_t);
using UnaryBwd = void (*)(const float*, const float*, float*, index_t);

void def_unary(py::module_& m, const char* name, UnaryFwd f, const char* bname, UnaryBwd b) {
  m.def(name, [f](const farr& x) {
    farr y(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
    const float* xp = x.data(); float* yp = y.mutable_data(); index_t n = x.size();
    { py::gil_scoped_release nogil; f(xp, yp, n); }
    return y;
  }, py::arg("x").noconvert());
  m.def(bname, [b](const farr& dy, const farr& x) {
    check_numel(dy, x.size(), "dy");
    farr dx(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
    const float* gp = dy.data(); const float* xp = x.data(); float* dp = dx.mutable_data();
    index_t n = x.size();
    { py::gil_scoped_release nogil; b(gp, xp, dp, n); }
    return dx;
  }, py::arg("dy").noconvert(), py::arg("x").noconvert());
}

using ParamFwd = void (*)(const float*, float*, index_t, float);
using ParamBwd = void (*)(const float*, const float*, float*, index_t, float);

void def_param(py::module_& m, const char* name, ParamFwd f, const char* bname, ParamBwd b,
               const char* pname) {
  m.def(name, [f](const farr& x, float a) {
    farr y(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
    const float* xp = x.data(); float* yp = y.mutable_data(); index_t n = x.size();
    { py::gil_scoped_release nogil; f(xp, yp, n, a); }
    return y;
  }, py::arg("x").noconvert(), py::arg(pname));
  m.def(bname, [b](const farr& dy, const farr& x, float a) {
    check_numel(dy, x.size(), "dy");
    farr dx(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
    const float* gp = dy.data(); const float* xp = x.data(); float* dp = dx.mutable_data();
    index_t n = x.size();
    { py::gil_scoped_release nogil; b(gp, xp, dp, n, a); }
    return dx;
  }, py::arg("dy").noconvert(), py::arg("x").noconvert(), py::arg(pname));
}

}  // namespace

void bind_core(py::module_& m) {
  m.def("linear_forward", [](const farr& x, const farr& w, const py::object& b) {
    check_ndim(x, 2, "x"); check_ndim(w, 2, "w");
    const index_t n = x.shape(0), in = x.shape(1), out = w.shape(0);
    if (w.shape(1) != in) throw py::value_error("w: expected (out, " + std::to_string(in) + ")");
    farr keep; const float* bp = optional_ptr(b, out, "b", keep);
    farr y({n, out});
    const float* xp = x.data(); const float* wp = w.data(); float* yp = y.mutable_data();
    { py::gil_scoped_release nogil; linear_forward(xp, wp, bp, yp, n, in, out); }
    return y;
  }, py::arg("x").noconvert(), py::arg("w").noconvert(), py::arg("b") = py::none(),
  "linear_forward(x (N, in), w (out, in), b (out,) or None) -> y (N, out)");

  m.def("linear_backward", [](const farr& dy, const farr& x, const farr& w) {
    check_ndim(x, 2, "x"); check_ndim(w, 2, "w"); check_ndim(dy, 2, "dy");
    const index_t n = x.shape(0), in = x.shape(1), out = w.shape(0);
    if (w.shape(1) != in || dy.shape(0) != n || dy.shape(1) != out)
      throw py::value_error("linear_backward: inconsistent shapes");
    farr dx({n, in}), dw({out, in}), db({out});
    const float *gp = dy.data(), *xp = x.data(), *wp = w.data();
    float *dxp = dx.mutable_data(), *dwp = dw.mutable_data(), *dbp = db.mutable_data();
    { py::gil_scoped_release nogil; linear_backward(gp, xp, wp, dxp, dwp, dbp, n, in, out); }
    return py::make_tuple(dx, dw, db);
  }, py::arg("dy").noconvert(), py::arg("x").noconvert(), py::arg("w").noconvert(),
  "linear_backward(dy (N, out), x (N, in), w (out, in)) -> (dx, dw, db)");

  m.def("column_sums", [](const farr& a) {
    check_ndim(a, 2, "a");
    const index_t r = a.shape(0), c = a.shape(1);
    farr out({c});
    const float* ap = a.data(); float* op = out.mutable_data();
    { py::gil_scoped_release nogil; column_sums(ap, op, r, c); }
    return out;
  }, py::arg("a").noconvert(), "column_sums(a (R, C)) -> (C,) summed in a fixed order (float64 accumulation)");

  def_unary(m, "relu", relu_forward, "relu_backward", relu_backward);
  def_unary(m, "sigmoid", sigmoid_forward, "sigmoid_backward", sigmoid_backward);
  def_unary(m, "tanh", tanh_forward, "tanh_backward", tanh_backward);
  def_param(m, "leaky_relu", leaky_relu_forward, "leaky_relu_backward", leaky_relu_backward,
            "negative_slope");
  def_param(m, "elu", elu_forward, "elu_backward", elu_backward, "alpha");

  // x (N, C, ...) with one slope per channel (axis 1), or any shape with one shared slope.
  auto prelu_dims = [](const farr& x, const farr& slope, index_t& rows, index_t& inner) {
    if (x.ndim() < 1) throw py::value_error("x: expected at least a 1-d array");
    const index_t ch = x.ndim() >= 2 ? x.shape(1) : 1;
    if (slope.size() == 1) {
      rows = x.ndim() >= 1 ? x.shape(0) * ch : 1;
    } else if (index_t(slope.size()) == ch) {
      rows = x.shape(0) * ch;
    } else {
      throw py::value_error("weight: expected 1 or " + std::to_string(ch) +
                            " slopes (x.shape[1]), got " + std::to_string(slope.size()));
    }
    inner = rows == 0 ? 0 : index_t(x.size()) / rows;
  };
  m.def("prelu", [prelu_dims](const farr& x, const farr& slope) {
    index_t rows, inner; prelu_dims(x, slope, rows, inner);
    farr y(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
    const float *xp = x.data(), *sp = slope.data(); float* yp = y.mutable_data();
    const index_t ns = slope.size();
    { py::gil_scoped_release nogil; prelu_forward(xp, sp, yp, rows, inner, ns); }
    return y;
  }, py::arg("x").noconvert(), py::arg("weight").noconvert(),
  "prelu(x (N, C, ...), weight (C,) or (1,)) -> y");

  m.def("prelu_backward", [prelu_dims](const farr& dy, const farr& x, const farr& slope) {
    check_numel(dy, x.size(), "dy");
    index_t rows, inner; prelu_dims(x, slope, rows, inner);
    farr dx(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
    farr dslope({py::ssize_t(slope.size())});
    const float *gp = dy.data(), *xp = x.data(), *sp = slope.data();
    float *dxp = dx.mutable_data(), *dsp = dslope.mutable_data();
    const index_t ns = slope.size();
    { py::gil_scoped_release nogil; prelu_backward(gp, xp, sp, dxp, dsp, rows, inner, ns); }
    return py::make_tuple(dx, dslope);
  }, py::arg("dy").noconvert(), py::arg("x").noconvert(), py::arg("weight").noconvert(),
  "prelu_backward(dy, x, weight) -> (dx, dweight)");
}
