// Bindings for the augment kernel family: affine warp, padded crop, colour jitter.
#include "bind/bind_util.h"
#include "augment/color.h"
#include "augment/warp.h"

using namespace fastnn;

namespace {

void check_nchw(const farr& x, index_t& n, index_t& c, index_t& h, index_t& w) {
  check_ndim(x, 4, "x");
  n = x.shape(0); c = x.shape(1); h = x.shape(2); w = x.shape(3);
}

}  // namespace

void bind_augment(py::module_& m) {
  m.def("affine_warp_bilinear", [](const farr& x, const farr& theta, index_t ho, index_t wo,
                                   float fill) {
    index_t n, c, h, w; check_nchw(x, n, c, h, w);
    check_ndim(theta, 2, "theta");
    if (theta.shape(0) != n || theta.shape(1) != 6)
      throw py::value_error("theta: expected shape (" + std::to_string(n) + ", 6), got (" +
                            std::to_string(theta.shape(0)) + ", " + std::to_string(theta.shape(1)) + ")");
    if (ho < 0 || wo < 0) throw py::value_error("output size: expected non-negative ho, wo");
    farr y({n, c, ho, wo});
    const float *xp = x.data(), *tp = theta.data(); float* yp = y.mutable_data();
    { py::gil_scoped_release nogil; affine_warp_bilinear(xp, tp, yp, n, c, h, w, ho, wo, fill); }
    return y;
  }, py::arg("x").noconvert(), py::arg("theta").noconvert(), py::arg("ho"), py::arg("wo"),
  py::arg("fill") = 0.f,
  "affine_warp_bilinear(x (N, C, H, W), theta (N, 6), ho, wo, fill) -> y (N, C, ho, wo); "
  "theta maps centred output coordinates to centred input coordinates");

  m.def("crop_padded", [](const farr& x, const larr& offsets, index_t ho, index_t wo,
                          index_t pad_top, index_t pad_left, float fill) {
    index_t n, c, h, w; check_nchw(x, n, c, h, w);
    check_ndim(offsets, 2, "offsets");
    if (offsets.shape(0) != n || offsets.shape(1) != 2)
      throw py::value_error("offsets: expected shape (" + std::to_string(n) + ", 2)");
    if (ho < 0 || wo < 0 || pad_top < 0 || pad_left < 0)
      throw py::value_error("crop_padded: sizes and paddings must be non-negative");
    const std::int64_t* op = offsets.data();
    for (index_t i = 0; i < 2 * n; ++i)
      if (op[i] < 0) throw py::value_error("offsets: expected non-negative offsets");
    farr y({n, c, ho, wo});
    const float* xp = x.data(); float* yp = y.mutable_data();
    { py::gil_scoped_release nogil; crop_padded(xp, op, yp, n, c, h, w, ho, wo, pad_top, pad_left, fill); }
    return y;
  }, py::arg("x").noconvert(), py::arg("offsets").noconvert(), py::arg("ho"), py::arg("wo"),
  py::arg("pad_top"), py::arg("pad_left"), py::arg("fill") = 0.f,
  "crop_padded(x (N, C, H, W), offsets (N, 2) int64 (top, left) in the padded image, ho, wo, "
  "pad_top, pad_left, fill) -> y (N, C, ho, wo)");

  m.def("color_jitter", [](const farr& x, const farr& factors, bool brightness, bool contrast,
                           bool saturation) {
    index_t n, c, h, w; check_nchw(x, n, c, h, w);
    if (c != 1 && c != 3)
      throw py::value_error("x: expected 1 or 3 channels, got " + std::to_string(c));
    if (saturation && c != 3)
      throw py::value_error("x: saturation needs 3 (RGB) channels, got " + std::to_string(c));
    check_numel(factors, 3 * n, "factors");
    farr y({n, c, h, w});
    const float *xp = x.data(), *fp = factors.data(); float* yp = y.mutable_data();
    { py::gil_scoped_release nogil; color_jitter(xp, fp, yp, n, c, h * w, brightness, contrast, saturation); }
    return y;
  }, py::arg("x").noconvert(), py::arg("factors").noconvert(), py::arg("brightness"),
  py::arg("contrast"), py::arg("saturation"),
  "color_jitter(x (N, C, H, W), factors (N, 3), brightness, contrast, saturation) -> y");
}
