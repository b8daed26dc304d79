// Adagrad, one pass: reads p, g, sum; writes p, sum.
#include <cmath>
#include "optim/optim.h"

namespace fastnn {

namespace {

// Scalars by value, pointers __restrict: the loop vectorises (see sgd.cpp).
void adagrad_range(float* __restrict p, const float* __restrict g, float* __restrict sum,
                   index_t b, index_t e, float clr, float wd, float eps, float sign) {
#pragma omp simd
  for (index_t i = b; i < e; ++i) {
    const float d = sign * g[i] + wd * p[i];
    const float s = sum[i] + d * d;
    sum[i] = s;
    p[i] -= clr * (d / (std::sqrt(s) + eps));
  }
}

}  // namespace

void adagrad_step(float* p, const float* g, float* sum, index_t n, const AdagradParams& h) {
  const float clr = float(h.lr / (1.0 + double(h.step - 1) * h.lr_decay));
  const float wd = float(h.weight_decay), eps = float(h.eps), sign = h.maximize ? -1.f : 1.f;
  parallel_chunks(n, kElemGrain, [=](index_t b, index_t e) {
    adagrad_range(p, g, sum, b, e, clr, wd, eps, sign);
  });
}

}  // namespace fastnn
