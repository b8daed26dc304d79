// Bindings for the norm kernel family: batch normalization forward (train / eval) and backward.
#include <algorithm>
#include <string>

#include "bind/bind_util.h"
#include "norm/batchnorm.h"
#include "norm/dropout.h"

using namespace fastnn;

namespace {

// x (N, C, *spatial) -> N, C, S = prod(spatial).
void nc_s(const farr& x, index_t& N, index_t& C, index_t& S) {
  if (x.ndim() < 2 || x.ndim() > 4)
    throw py::value_error("x: expected an (N, C), (N, C, L) or (N, C, H, W) array, got " +
                          std::to_string(x.ndim()) + "-d");
  N = x.shape(0);
  C = x.shape(1);
  S = 1;
  for (py::ssize_t d = 2; d < x.ndim(); ++d) S *= x.shape(d);
}

std::vector<py::ssize_t> shape_of(const farr& a) {
  return std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim());
}

// A per-channel array: 1-d with C values (as the Python layer, which rejects (1, C)).
void check_channels(const py::array& a, index_t C, const char* name) {
  check_ndim(a, 1, name);
  check_numel(a, C, name);
}

const float* channel_ptr(const py::object& o, index_t C, const char* name, farr& keep) {
  const float* p = optional_ptr(o, C, name, keep);
  if (p) check_ndim(keep, 1, name);
  return p;
}

// dy must have the shape of `other` (x, or the dropout mask), not only its size.
void check_same_shape(const farr& dy, const farr& other, const char* other_name) {
  if (dy.ndim() != other.ndim() ||
      !std::equal(other.shape(), other.shape() + other.ndim(), dy.shape()))
    throw py::value_error(std::string("dy: expected the shape of ") + other_name);
}

// An optional per-channel array updated in place: float32, C-contiguous, writeable, C values.
float* optional_inout(const py::object& o, index_t n, const char* name, farr& keep) {
  if (o.is_none()) return nullptr;
  if (!py::isinstance<farr>(o))
    throw py::type_error(std::string(name) + ": expected a C-contiguous float32 array or None");
  keep = py::reinterpret_borrow<farr>(o);
  check_channels(keep, n, name);
  check_writeable(keep, name);
  return keep.mutable_data();
}

}  // namespace

void bind_norm(py::module_& m) {
  m.def("batchnorm_forward_train",
        [](const farr& x, const py::object& gamma, const py::object& beta,
           const py::object& running_mean, const py::object& running_var, float momentum,
           float eps) {
          index_t N, C, S;
          nc_s(x, N, C, S);
          if (N * S < 2)
            throw py::value_error("x: expected more than 1 value per channel when training");
          farr kg, kb, krm, krv;
          const float* gp = channel_ptr(gamma, C, "gamma", kg);
          const float* bp = channel_ptr(beta, C, "beta", kb);
          float* rmp = optional_inout(running_mean, C, "running_mean", krm);
          float* rvp = optional_inout(running_var, C, "running_var", krv);
          farr y(shape_of(x)), mean({C}), invstd({C});
          const float* xp = x.data();
          float *yp = y.mutable_data(), *mp = mean.mutable_data(), *ip = invstd.mutable_data();
          {
            py::gil_scoped_release nogil;
            batchnorm_forward_train(xp, gp, bp, yp, mp, ip, rmp, rvp, N, C, S, momentum, eps);
          }
          return py::make_tuple(y, mean, invstd);
        },
        py::arg("x").noconvert(), py::arg("gamma"), py::arg("beta"), py::arg("running_mean"),
        py::arg("running_var"), py::arg("momentum"), py::arg("eps"),
        "batchnorm_forward_train(x (N, C, ...), gamma, beta, running_mean, running_var, "
        "momentum, eps) -> (y, save_mean (C,), save_invstd (C,)); running stats updated in place");

  m.def("batchnorm_forward_eval",
        [](const farr& x, const py::object& gamma, const py::object& beta,
           const farr& running_mean, const farr& running_var, float eps) {
          index_t N, C, S;
          nc_s(x, N, C, S);
          check_channels(running_mean, C, "running_mean");
          check_channels(running_var, C, "running_var");
          farr kg, kb;
          const float* gp = channel_ptr(gamma, C, "gamma", kg);
          const float* bp = channel_ptr(beta, C, "beta", kb);
          farr y(shape_of(x)), mean({C}), invstd({C});
          const float *xp = x.data(), *rmp = running_mean.data(), *rvp = running_var.data();
          float *yp = y.mutable_data(), *mp = mean.mutable_data(), *ip = invstd.mutable_data();
          {
            py::gil_scoped_release nogil;
            batchnorm_forward_eval(xp, gp, bp, rmp, rvp, yp, mp, ip, N, C, S, eps);
          }
          return py::make_tuple(y, mean, invstd);
        },
        py::arg("x").noconvert(), py::arg("gamma"), py::arg("beta"),
        py::arg("running_mean").noconvert(), py::arg("running_var").noconvert(), py::arg("eps"),
        "batchnorm_forward_eval(x, gamma, beta, running_mean, running_var, eps) -> "
        "(y, save_mean, save_invstd)");

  m.def("batchnorm_backward",
        [](const farr& dy, const farr& x, const py::object& gamma, const farr& save_mean,
           const farr& save_invstd, bool training) {
          index_t N, C, S;
          nc_s(x, N, C, S);
          check_same_shape(dy, x, "x");
          check_channels(save_mean, C, "save_mean");
          check_channels(save_invstd, C, "save_invstd");
          farr kg;
          const float* gp = channel_ptr(gamma, C, "gamma", kg);
          farr dx(shape_of(x)), dgamma({C}), dbeta({C});
          const float *gyp = dy.data(), *xp = x.data(), *mp = save_mean.data(),
                      *ip = save_invstd.data();
          float *dxp = dx.mutable_data(), *dgp = dgamma.mutable_data(), *dbp = dbeta.mutable_data();
          {
            py::gil_scoped_release nogil;
            batchnorm_backward(gyp, xp, gp, mp, ip, dxp, dgp, dbp, N, C, S, training);
          }
          return py::make_tuple(dx, dgamma, dbeta);
        },
        py::arg("dy").noconvert(), py::arg("x").noconvert(), py::arg("gamma"),
        py::arg("save_mean").noconvert(), py::arg("save_invstd").noconvert(),
        py::arg("training") = true,
        "batchnorm_backward(dy, x, gamma, save_mean, save_invstd, training=True) -> "
        "(dx, dgamma (C,), dbeta (C,))");

  m.def("dropout_forward",
        [](const farr& x, double p, std::uint64_t seed) {
          if (!(p >= 0.0 && p < 1.0))
            throw py::value_error("p: expected a probability in [0, 1), got " + std::to_string(p));
          farr y(shape_of(x)), mask(shape_of(x));
          const float* xp = x.data();
          float *yp = y.mutable_data(), *mp = mask.mutable_data();
          const index_t n = x.size();
          const float pf = float(p), scale = float(1.0 / (1.0 - p));
          {
            py::gil_scoped_release nogil;
            dropout_forward(xp, yp, mp, n, pf, scale, seed);
          }
          return py::make_tuple(y, mask);
        },
        py::arg("x").noconvert(), py::arg("p"), py::arg("seed"),
        "dropout_forward(x, p, seed) -> (y like x, mask like x): mask = (u >= p) / (1 - p), "
        "u uniform from (seed, element index); y = x * mask");

  m.def("dropout_backward",
        [](const farr& dy, const farr& mask) {
          check_same_shape(dy, mask, "mask");
          farr dx(shape_of(dy));
          const float *gp = dy.data(), *mp = mask.data();
          float* dxp = dx.mutable_data();
          const index_t n = dy.size();
          {
            py::gil_scoped_release nogil;
            dropout_backward(gp, mp, dxp, n);
          }
          return dx;
        },
        py::arg("dy").noconvert(), py::arg("mask").noconvert(),
        "dropout_backward(dy, mask) -> dx = dy * mask");
}
