// NAdam, one pass: reads p, g, exp_avg, exp_avg_sq; writes all but g.
#include <cmath>
#include "optim/optim.h"

namespace fastnn {

namespace {

struct NAdamScalars {
  float inv_bc2, cg, cm, one_b1, b2, one_b2, eps, sign, decay, wd;
};

// Scalars by value, pointers __restrict: the loop vectorises (see sgd.cpp).
void nadam_range(float* __restrict p, const float* __restrict g, float* __restrict m,
                 float* __restrict v, index_t b, index_t e, const NAdamScalars c) {
  const float inv_bc2 = c.inv_bc2, cg = c.cg, cm = c.cm, one_b1 = c.one_b1, b2 = c.b2;
  const float one_b2 = c.one_b2, eps = c.eps, sign = c.sign, decay = c.decay, wd = c.wd;
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
}

}  // namespace

void nadam_step(float* p, const float* g, float* m, float* v, index_t n, const NAdamParams& h) {
  const NAdamScalars c{float(1.0 / (1.0 - std::pow(h.beta2, double(h.step)))),
                       float(-h.lr * (1.0 - h.mu) / (1.0 - h.mu_product)),
                       float(-h.lr * h.mu_next / (1.0 - h.mu_product_next)),
                       float(1.0 - h.beta1), float(h.beta2), float(1.0 - h.beta2), float(h.eps),
                       h.maximize ? -1.f : 1.f,
                       h.decoupled ? float(1.0 - h.lr * h.weight_decay) : 1.f,
                       h.decoupled ? 0.f : float(h.weight_decay)};
  parallel_chunks(n, kElemGrain, [=](index_t b, index_t e) { nadam_range(p, g, m, v, b, e, c); });
}

}  // namespace fastnn
