// One pass over memory per step: reads p, g (and buf), writes p (and buf).
#include "optim/sgd.h"

namespace fastnn {

void sgd_step(float* p, const float* g, float* buf, index_t n, const SGDParams& h) {
  const float lr = h.lr, mom = h.momentum, damp = 1.f - h.dampening, wd = h.weight_decay;
  const float sign = h.maximize ? -1.f : 1.f;
  if (mom == 0.f || buf == nullptr) {
    parallel_chunks(n, kElemGrain, [&](index_t b, index_t e) {
#pragma omp simd
      for (index_t i = b; i < e; ++i) {
        const float d = sign * g[i] + wd * p[i];
        p[i] -= lr * d;
      }
    });
    return;
  }
  const bool first = h.first_step, nest = h.nesterov;
  parallel_chunks(n, kElemGrain, [&](index_t b, index_t e) {
#pragma omp simd
    for (index_t i = b; i < e; ++i) {
      const float d = sign * g[i] + wd * p[i];
      const float v = first ? d : mom * buf[i] + damp * d;
      buf[i] = v;
      p[i] -= lr * (nest ? d + mom * v : v);
    }
  });
}

}  // namespace fastnn
