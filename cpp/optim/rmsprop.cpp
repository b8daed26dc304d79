// RMSprop (plain, centered, with momentum), one pass: reads p, g and the state; writes p and
// the state. The four variants are template instances so the loop body has no branches.
#include <cmath>
#include "optim/optim.h"

namespace fastnn {

namespace {

// Scalars by value, pointers __restrict: the loop vectorises (see sgd.cpp).
template <bool Centered, bool Momentum>
void rmsprop_range(float* __restrict p, const float* __restrict g, float* __restrict sq,
                   float* __restrict ga, float* __restrict buf, index_t b, index_t e, float lr,
                   float a, float one_a, float eps, float wd, float mom, float sign) {
#pragma omp simd
  for (index_t i = b; i < e; ++i) {
    const float d = sign * g[i] + wd * p[i];
    const float s = a * sq[i] + one_a * (d * d);
    sq[i] = s;
    float avg;
    if constexpr (Centered) {
      const float m = ga[i] + one_a * (d - ga[i]);
      ga[i] = m;
      avg = std::sqrt(s - m * m) + eps;
    } else {
      avg = std::sqrt(s) + eps;
    }
    if constexpr (Momentum) {
      const float v = mom * buf[i] + d / avg;
      buf[i] = v;
      p[i] -= lr * v;
    } else {
      p[i] -= lr * (d / avg);
    }
  }
}

template <bool Centered, bool Momentum>
void rmsprop_all(float* p, const float* g, float* sq, float* ga, float* buf, index_t n,
                 const RMSpropParams& h) {
  const float lr = float(h.lr), a = float(h.alpha), one_a = float(1.0 - h.alpha);
  const float eps = float(h.eps), wd = float(h.weight_decay), mom = float(h.momentum);
  const float sign = h.maximize ? -1.f : 1.f;
  parallel_chunks(n, kElemGrain, [=](index_t b, index_t e) {
    rmsprop_range<Centered, Momentum>(p, g, sq, ga, buf, b, e, lr, a, one_a, eps, wd, mom, sign);
  });
}

}  // namespace

void rmsprop_step(float* p, const float* g, float* square_avg, float* grad_avg, float* buf,
                  index_t n, const RMSpropParams& h) {
  const bool c = h.centered && grad_avg, m = h.momentum > 0 && buf;
  if (c && m) rmsprop_all<true, true>(p, g, square_avg, grad_avg, buf, n, h);
  else if (c) rmsprop_all<true, false>(p, g, square_avg, grad_avg, buf, n, h);
  else if (m) rmsprop_all<false, true>(p, g, square_avg, grad_avg, buf, n, h);
  else rmsprop_all<false, false>(p, g, square_avg, grad_avg, buf, n, h);
}

}  // namespace fastnn
