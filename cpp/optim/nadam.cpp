// NAdam, one pass: reads p, g, exp_avg, exp_avg_sq; writes all but g.
#include <cmath>
#include "optim/optim.h"

namespace fastnn {

void nadam_step(float* p, const float* g, float* m, float* v, index_t n, const NAdamParams& h) {
  const float inv_bc2 = float(1.0 / (1.0 - std::pow(h.beta2, double(h.step))));
  const float cg = float(-h.lr * (1.0 - h.mu) / (1.0 - h.mu_product));
  const float cm = float(-h.lr * h.mu_next / (1.0 - h.mu_product_next));
  const float one_b1 = float(1.0 - h.beta1), b2 = float(h.beta2), one_b2 = float(1.0 - h.beta2);
  const float eps = float(h.eps), sign = h.maximize ? -1.f : 1.f;
  const float decay = h.decoupled ? float(1.0 - h.lr * h.weight_decay) : 1.f;
  const float wd = h.decoupled ? 0.f : float(h.weight_decay);
  parallel_chunks(n, kElemGrain, [&](index_t b, index_t e) {
#pragma omp simd
    for (index_t i = b; i < e; ++i) {
      const float w = p[i] * decay;
      const float d = sign * g[i] + wd * w;
      const float mi = m[i] + one_b1 * (d - m[i]);
      const float vi = b2 * v[i] + one_b2 * (d * d);
      m[i] = mi;
      v[i] = vi;
      const float denom = std::sqrt(vi * inv_bc2) + eps;
      p[i] = w + (cg * d + cm * mi) / denom;
    }
  });
}

}  // namespace fastnn
