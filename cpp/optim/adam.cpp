// Adam, AdamW and AMSGrad, one pass: reads p, g, exp_avg, exp_avg_sq (, max_exp_avg_sq);
// writes all but g. Weight decay: decoupled (AdamW) scales p first, coupled adds wd p to g;
// both are folded into two loop-invariant factors so the loop body has no branch.
#include <cmath>
#include "optim/optim.h"

namespace fastnn {

namespace {

struct AdamScalars {
  float step_size, inv_bc2_sqrt, one_b1, b2, one_b2, eps, sign, decay, wd;
};

// Scalars by value, pointers __restrict: the loop vectorises (see sgd.cpp).
template <bool Ams>
void adam_range(float* __restrict p, const float* __restrict g, float* __restrict m,
                float* __restrict v, float* __restrict vmax, index_t b, index_t e,
                const AdamScalars c) {
  const float step_size = c.step_size, inv_bc2_sqrt = c.inv_bc2_sqrt, one_b1 = c.one_b1;
  const float b2 = c.b2, one_b2 = c.one_b2, eps = c.eps, sign = c.sign, decay = c.decay, wd = c.wd;
#pragma omp simd
  for (index_t i = b; i < e; ++i) {
    const float w = p[i] * decay;
    const float d = sign * g[i] + wd * w;
    const float mi = m[i] + one_b1 * (d - m[i]);
    const float vi = b2 * v[i] + one_b2 * (d * d);
    m[i] = mi;
    v[i] = vi;
    float vv = vi;
    if constexpr (Ams) {
      const float old = vmax[i];  // a copy: std::max on vmax[i] itself would not vectorise
      vv = old < vi ? vi : old;
      vmax[i] = vv;
    }
    p[i] = w - step_size * (mi / (std::sqrt(vv) * inv_bc2_sqrt + eps));
  }
}

}  // namespace

void adam_step(float* p, const float* g, float* exp_avg, float* exp_avg_sq,
               float* max_exp_avg_sq, index_t n, const AdamParams& h) {
  const double bc1 = 1.0 - std::pow(h.beta1, double(h.step));
  const double bc2 = 1.0 - std::pow(h.beta2, double(h.step));
  const AdamScalars c{float(h.lr / bc1), float(1.0 / std::sqrt(bc2)), float(1.0 - h.beta1),
                      float(h.beta2), float(1.0 - h.beta2), float(h.eps),
                      h.maximize ? -1.f : 1.f,
                      h.decoupled ? float(1.0 - h.lr * h.weight_decay) : 1.f,
                      h.decoupled ? 0.f : float(h.weight_decay)};
  float* vmax = max_exp_avg_sq;
  if (vmax) {
    parallel_chunks(n, kElemGrain, [=](index_t b, index_t e) {
      adam_range<true>(p, g, exp_avg, exp_avg_sq, vmax, b, e, c);
    });
  } else {
    parallel_chunks(n, kElemGrain, [=](index_t b, index_t e) {
      adam_range<false>(p, g, exp_avg, exp_avg_sq, nullptr, b, e, c);
    });
  }
}

}  // namespace fastnn
