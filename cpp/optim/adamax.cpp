// Adamax, one pass: reads p, g, exp_avg, exp_inf; writes all but g.
#include <cmath>
#include "optim/optim.h"

namespace fastnn {

namespace {

// Scalars by value, pointers __restrict: the loop vectorises (see sgd.cpp).
void adamax_range(float* __restrict p, const float* __restrict g, float* __restrict m,
                  float* __restrict u, index_t b, index_t e, float clr, float one_b1, float b2,
                  float eps, float wd, float sign) {
#pragma omp simd
  for (index_t i = b; i < e; ++i) {
    const float d = sign * g[i] + wd * p[i];
    const float mi = m[i] + one_b1 * (d - m[i]);
    const float ui = std::max(b2 * u[i], std::fabs(d) + eps);
    m[i] = mi;
    u[i] = ui;
    p[i] -= clr * (mi / ui);
  }
}

}  // namespace

void adamax_step(float* p, const float* g, float* m, float* u, index_t n, const AdamaxParams& h) {
  const float clr = float(h.lr / (1.0 - std::pow(h.beta1, double(h.step))));
  const float one_b1 = float(1.0 - h.beta1), b2 = float(h.beta2), eps = float(h.eps);
  const float wd = float(h.weight_decay), sign = h.maximize ? -1.f : 1.f;
  parallel_chunks(n, kElemGrain, [=](index_t b, index_t e) {
    adamax_range(p, g, m, u, b, e, clr, one_b1, b2, eps, wd, sign);
  });
}

}  // namespace fastnn
