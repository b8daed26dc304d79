// One pass over memory per step: reads p, g (and buf), writes p (and buf).
#include "optim/sgd.h"

namespace fastnn {

namespace {

// The loop bodies take every scalar by value and every pointer __restrict: read through a
// lambda's by-reference captures, the scalars could alias the float stores and gcc would
// not vectorise the loop.
void sgd_plain(float* __restrict p, const float* __restrict g, index_t b, index_t e, float lr,
               float wd, float sign) {
#pragma omp simd
  for (index_t i = b; i < e; ++i) p[i] -= lr * (sign * g[i] + wd * p[i]);
}

template <bool First, bool Nesterov>
void sgd_momentum(float* __restrict p, const float* __restrict g, float* __restrict buf,
                  index_t b, index_t e, float lr, float mom, float damp, float wd, float sign) {
#pragma omp simd
  for (index_t i = b; i < e; ++i) {
    const float d = sign * g[i] + wd * p[i];
    float v;
    if constexpr (First) v = d;  // PyTorch clones the gradient into a new buffer
    else v = mom * buf[i] + damp * d;
    buf[i] = v;
    if constexpr (Nesterov) p[i] -= lr * (d + mom * v);
    else p[i] -= lr * v;
  }
}

template <bool First, bool Nesterov>
void sgd_momentum_all(float* p, const float* g, float* buf, index_t n, float lr, float mom,
                      float damp, float wd, float sign) {
  parallel_chunks(n, kElemGrain, [=](index_t b, index_t e) {
    sgd_momentum<First, Nesterov>(p, g, buf, b, e, lr, mom, damp, wd, sign);
  });
}

}  // namespace

void sgd_step(float* p, const float* g, float* buf, index_t n, const SGDParams& h) {
  const float lr = h.lr, mom = h.momentum, damp = 1.f - h.dampening, wd = h.weight_decay;
  const float sign = h.maximize ? -1.f : 1.f;
  if (mom == 0.f || buf == nullptr) {
    parallel_chunks(n, kElemGrain, [=](index_t b, index_t e) { sgd_plain(p, g, b, e, lr, wd, sign); });
    return;
  }
  if (h.first_step) {
    if (h.nesterov) sgd_momentum_all<true, true>(p, g, buf, n, lr, mom, damp, wd, sign);
    else sgd_momentum_all<true, false>(p, g, buf, n, lr, mom, damp, wd, sign);
  } else {
    if (h.nesterov) sgd_momentum_all<false, true>(p, g, buf, n, lr, mom, damp, wd, sign);
    else sgd_momentum_all<false, false>(p, g, buf, n, lr, mom, damp, wd, sign);
  }
}

}  // namespace fastnn
