// Adaptive per-weight gains (Jacobs' delta-bar-delta as in Hinton's lecture 6), one pass:
// reads p, g, gain, prev_grad; writes all but g.
#include <cmath>
#include "optim/optim.h"

namespace fastnn {

namespace {

// Scalars by value, pointers __restrict: the loop vectorises (see sgd.cpp).
void gains_range(float* __restrict p, const float* __restrict g, float* __restrict gain,
                 float* __restrict prev, index_t b, index_t e, float lr, float inc, float dec,
                 float lo, float hi, float sign) {
#pragma omp simd
  for (index_t i = b; i < e; ++i) {
    const float d = sign * g[i];
    const float s = d * prev[i];
    // Branch-free (blends): at most one of the two factors differs from identity.
    const float add = s > 0.f ? inc : 0.f;
    const float mul = s < 0.f ? dec : 1.f;
    const float k = std::min(std::max((gain[i] + add) * mul, lo), hi);
    gain[i] = k;
    prev[i] = d;
    p[i] -= lr * (k * d);
  }
}

}  // namespace

void adaptive_gains_step(float* p, const float* g, float* gain, float* prev, index_t n,
                         const GainsParams& h) {
  const float lr = float(h.lr), inc = float(h.increase), dec = float(h.decrease);
  const float lo = float(h.min_gain), hi = float(h.max_gain), sign = h.maximize ? -1.f : 1.f;
  parallel_chunks(n, kElemGrain, [=](index_t b, index_t e) {
    gains_range(p, g, gain, prev, b, e, lr, inc, dec, lo, hi, sign);
  });
}

}  // namespace fastnn
