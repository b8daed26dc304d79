// Bindings for the augment kernel family: affine warp, padded crop, colour jitter.
#include "bind/bind_util.h"
#include "augment/color.h"
#include "augment/warp.h"
#include <cmath>
#include <string>

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
    const float *xp = x.data(), *tp = theta.data();
    // The kernel turns coordinates into indices: NaN or inf would make that undefined.
    for (index_t i = 0; i < 6 * n; ++i)
      if (!std::isfinite(tp[i]))
        throw py::value_error("theta: expected finite values, got " + std::to_string(tp[i]) +
                              " in row " + std::to_string(i / 6));
    farr y({n, c, ho, wo});
    float* yp = y.mutable_data();
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
    // Windows must lie inside the padded image (this also keeps index arithmetic in range).
    const std::int64_t max_top = h + 2 * pad_top - ho, max_left = w + 2 * pad_left - wo;
    if (max_top < 0 || max_left < 0)
      throw py::value_error("crop_padded: a (" + std::to_string(ho) + ", " + std::to_string(wo) +
                            ") window does not fit the padded image (" + std::to_string(h + 2 * pad_top) +
                            ", " + std::to_string(w + 2 * pad_left) + ")");
    for (index_t i = 0; i < n; ++i)
      if (op[2 * i] < 0 || op[2 * i] > max_top || op[2 * i + 1] < 0 || op[2 * i + 1] > max_left)
        throw py::value_error("offsets: expected 0 <= top <= " + std::to_string(max_top) +
                              " and 0 <= left <= " + std::to_string(max_left) + ", got (" +
                              std::to_string(op[2 * i]) + ", " + std::to_string(op[2 * i + 1]) +
                              ") in row " + std::to_string(i));
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
