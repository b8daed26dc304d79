// Adadelta, one pass: reads p, g, square_avg, acc_delta; writes all but g.
#include <cmath>
#include "optim/optim.h"

namespace fastnn {

namespace {

// Scalars by value, pointers __restrict: the loop vectorises (see sgd.cpp).
void adadelta_range(float* __restrict p, const float* __restrict g, float* __restrict sq,
                    float* __restrict acc, index_t b, index_t e, float lr, float rho,
                    float one_rho, float eps, float wd, float sign) {
#pragma omp simd
  for (index_t i = b; i < e; ++i) {
    const float d = sign * g[i] + wd * p[i];
    const float s = rho * sq[i] + one_rho * (d * d);
    sq[i] = s;
    const float delta = std::sqrt(acc[i] + eps) / std::sqrt(s + eps) * d;
    acc[i] = rho * acc[i] + one_rho * (delta * delta);
    p[i] -= lr * delta;
  }
}

}  // namespace

void adadelta_step(float* p, const float* g, float* sq, float* acc, index_t n,
                   const AdadeltaParams& h) {
  const float lr = float(h.lr), rho = float(h.rho), one_rho = float(1.0 - h.rho);
  const float eps = float(h.eps), wd = float(h.weight_decay), sign = h.maximize ? -1.f : 1.f;
  parallel_chunks(n, kElemGrain, [=](index_t b, index_t e) {
    adadelta_range(p, g, sq, acc, b, e, lr, rho, one_rho, eps, wd, sign);
  });
}

}  // namespace fastnn
