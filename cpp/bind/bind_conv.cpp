// Bindings for the conv kernel family: conv2d forward/backward, max/avg/global pooling.
// Python (fastnn/functional/conv.py) validates first; these re-check every size so a direct
// call with inconsistent arguments raises ValueError instead of touching memory out of bounds.
#include "bind/bind_util.h"
#include "conv/conv2d.h"
#include "conv/pool2d.h"

using namespace fastnn;

namespace {

using Pair = std::pair<index_t, index_t>;

Conv2dShape conv_shape(const farr& x, const farr& w, Pair stride, Pair padding, Pair dilation,
                       index_t groups) {
  check_ndim(x, 4, "x");
  check_ndim(w, 4, "w");
  Conv2dShape s{};
  s.n = x.shape(0); s.cin = x.shape(1); s.h = x.shape(2); s.w = x.shape(3);
  s.cout = w.shape(0); s.kh = w.shape(2); s.kw = w.shape(3);
  s.sh = stride.first; s.sw = stride.second; s.ph = padding.first; s.pw = padding.second;
  s.dh = dilation.first; s.dw = dilation.second; s.groups = groups;
  if (s.sh < 1 || s.sw < 1) throw py::value_error("stride: expected values >= 1");
  if (s.dh < 1 || s.dw < 1) throw py::value_error("dilation: expected values >= 1");
  if (s.ph < 0 || s.pw < 0) throw py::value_error("padding: expected values >= 0");
  if (groups < 1 || s.cin % groups || s.cout % groups)
    throw py::value_error("groups: must divide in_channels and out_channels");
  if (w.shape(1) * groups != s.cin)
    throw py::value_error("w: expected shape[1] == in_channels / groups");
  if (s.kh < 1 || s.kw < 1) throw py::value_error("w: kernel size must be >= 1");
  if (s.h + 2 * s.ph < s.dh * (s.kh - 1) + 1 || s.w + 2 * s.pw < s.dw * (s.kw - 1) + 1)
    throw py::value_error("w: kernel larger than the padded input");
  return s;
}

Pool2dShape pool_shape(std::vector<index_t> xs, Pair k, Pair st, Pair pad) {
  if (xs.size() != 4) throw py::value_error("x: expected a 4-d shape");
  Pool2dShape s{xs[0], xs[1], xs[2], xs[3], k.first, k.second, st.first, st.second,
                pad.first, pad.second};
  for (auto v : xs) if (v < 0) throw py::value_error("x_shape: negative size");
  if (s.kh < 1 || s.kw < 1) throw py::value_error("kernel_size: expected values >= 1");
  if (s.sh < 1 || s.sw < 1) throw py::value_error("stride: expected values >= 1");
  if (s.ph < 0 || s.pw < 0 || 2 * s.ph > s.kh || 2 * s.pw > s.kw)
    throw py::value_error("padding: expected 0 <= padding <= kernel_size / 2");
  if (s.h + 2 * s.ph < s.kh || s.w + 2 * s.pw < s.kw)
    throw py::value_error("kernel_size: larger than the padded input");
  return s;
}

std::vector<index_t> shape_of(const py::array& a) {
  return std::vector<index_t>(a.shape(), a.shape() + a.ndim());
}

}  // namespace

void bind_conv(py::module_& m) {
  m.def("conv2d_forward", [](const farr& x, const farr& w, const py::object& b, Pair stride,
                             Pair padding, Pair dilation, index_t groups) {
    const Conv2dShape s = conv_shape(x, w, stride, padding, dilation, groups);
    farr keep; const float* bp = optional_ptr(b, s.cout, "b", keep);
    farr y({s.n, s.cout, s.ho(), s.wo()});
    const float *xp = x.data(), *wp = w.data(); float* yp = y.mutable_data();
    { py::gil_scoped_release nogil; conv2d_forward(xp, wp, bp, yp, s); }
    return y;
  }, py::arg("x").noconvert(), py::arg("w").noconvert(), py::arg("b") = py::none(),
  py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("groups"),
  "conv2d_forward(x (N,Cin,H,W), w (Cout,Cin/g,kh,kw), b, stride, padding, dilation, groups) -> y");

  m.def("conv2d_backward", [](const farr& dy, const farr& x, const farr& w, Pair stride,
                              Pair padding, Pair dilation, index_t groups) {
    const Conv2dShape s = conv_shape(x, w, stride, padding, dilation, groups);
    check_ndim(dy, 4, "dy");
    if (dy.shape(0) != s.n || dy.shape(1) != s.cout || dy.shape(2) != s.ho() || dy.shape(3) != s.wo())
      throw py::value_error("dy: expected shape (N, Cout, Ho, Wo) of the forward output");
    farr dx(shape_of(x)), dw(shape_of(w)), db({s.cout});
    const float *gp = dy.data(), *xp = x.data(), *wp = w.data();
    float *dxp = dx.mutable_data(), *dwp = dw.mutable_data(), *dbp = db.mutable_data();
    { py::gil_scoped_release nogil; conv2d_backward(gp, xp, wp, dxp, dwp, dbp, s); }
    return py::make_tuple(dx, dw, db);
  }, py::arg("dy").noconvert(), py::arg("x").noconvert(), py::arg("w").noconvert(),
  py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("groups"),
  "conv2d_backward(dy, x, w, stride, padding, dilation, groups) -> (dx, dw, db)");

  m.def("max_pool2d_forward", [](const farr& x, Pair k, Pair st, Pair pad) {
    check_ndim(x, 4, "x");
    const Pool2dShape s = pool_shape(shape_of(x), k, st, pad);
    farr y({s.n, s.c, s.ho(), s.wo()});
    larr am({s.n, s.c, s.ho(), s.wo()});
    const float* xp = x.data(); float* yp = y.mutable_data(); std::int64_t* ap = am.mutable_data();
    { py::gil_scoped_release nogil; max_pool2d_forward(xp, yp, ap, s); }
    return py::make_tuple(y, am);
  }, py::arg("x").noconvert(), py::arg("kernel_size"), py::arg("stride"), py::arg("padding"),
  "max_pool2d_forward(x, kernel_size, stride, padding) -> (y, argmax int64)");

  m.def("max_pool2d_backward", [](const farr& dy, const larr& argmax, std::vector<index_t> xs) {
    if (xs.size() != 4) throw py::value_error("x_shape: expected 4 sizes");
    for (auto v : xs) if (v < 0) throw py::value_error("x_shape: negative size");
    check_ndim(argmax, 4, "argmax");
    if (shape_of(dy) != shape_of(argmax)) throw py::value_error("dy: shape does not match argmax");
    if (argmax.shape(0) != xs[0] || argmax.shape(1) != xs[1])
      throw py::value_error("argmax: expected shape (N, C, Ho, Wo) with N, C of x_shape");
    farr dx(xs);
    const index_t planes = xs[0] * xs[1], plane = xs[2] * xs[3];
    const index_t oplane = argmax.shape(2) * argmax.shape(3);
    const float* gp = dy.data(); const std::int64_t* ap = argmax.data(); float* dp = dx.mutable_data();
    bool ok;
    { py::gil_scoped_release nogil; ok = max_pool2d_backward(gp, ap, dp, planes, plane, oplane); }
    if (!ok) throw py::value_error("argmax: entries must lie in [0, H*W) of each input plane");
    return dx;
  }, py::arg("dy").noconvert(), py::arg("argmax").noconvert(), py::arg("x_shape"),
  "max_pool2d_backward(dy, argmax, x_shape) -> dx (dy scattered to the argmax positions)");

  m.def("avg_pool2d_forward", [](const farr& x, Pair k, Pair st, Pair pad) {
    check_ndim(x, 4, "x");
    const Pool2dShape s = pool_shape(shape_of(x), k, st, pad);
    farr y({s.n, s.c, s.ho(), s.wo()});
    const float* xp = x.data(); float* yp = y.mutable_data();
    { py::gil_scoped_release nogil; avg_pool2d_forward(xp, yp, s); }
    return y;
  }, py::arg("x").noconvert(), py::arg("kernel_size"), py::arg("stride"), py::arg("padding"),
  "avg_pool2d_forward(x, kernel_size, stride, padding) -> y (padding counted)");

  m.def("avg_pool2d_backward", [](const farr& dy, std::vector<index_t> xs, Pair k, Pair st,
                                  Pair pad) {
    const Pool2dShape s = pool_shape(xs, k, st, pad);
    const std::vector<index_t> ys{s.n, s.c, s.ho(), s.wo()};
    if (shape_of(dy) != ys) throw py::value_error("dy: shape does not match the pooled output");
    farr dx(xs);
    const float* gp = dy.data(); float* dp = dx.mutable_data();
    { py::gil_scoped_release nogil; avg_pool2d_backward(gp, dp, s); }
    return dx;
  }, py::arg("dy").noconvert(), py::arg("x_shape"), py::arg("kernel_size"), py::arg("stride"),
  py::arg("padding"), "avg_pool2d_backward(dy, x_shape, kernel_size, stride, padding) -> dx");

  m.def("global_avg_pool2d_forward", [](const farr& x) {
    check_ndim(x, 4, "x");
    const index_t n = x.shape(0), c = x.shape(1), plane = x.shape(2) * x.shape(3);
    if (plane < 1) throw py::value_error("x: expected H, W >= 1");
    farr y({n, c});
    const float* xp = x.data(); float* yp = y.mutable_data();
    { py::gil_scoped_release nogil; global_avg_pool2d_forward(xp, yp, n * c, plane); }
    return y;
  }, py::arg("x").noconvert(), "global_avg_pool2d_forward(x (N,C,H,W)) -> y (N,C)");

  m.def("global_avg_pool2d_backward", [](const farr& dy, std::vector<index_t> xs) {
    if (xs.size() != 4) throw py::value_error("x_shape: expected 4 sizes");
    for (auto v : xs) if (v < 0) throw py::value_error("x_shape: negative size");
    const index_t plane = xs[2] * xs[3];
    if (plane < 1) throw py::value_error("x_shape: expected H, W >= 1");
    const std::vector<index_t> ys{xs[0], xs[1]};
    if (shape_of(dy) != ys) throw py::value_error("dy: expected shape (N, C)");
    farr dx(xs);
    const float* gp = dy.data(); float* dp = dx.mutable_data();
    { py::gil_scoped_release nogil; global_avg_pool2d_backward(gp, dp, xs[0] * xs[1], plane); }
    return dx;
  }, py::arg("dy").noconvert(), py::arg("x_shape"),
  "global_avg_pool2d_backward(dy (N,C), x_shape) -> dx");
}
