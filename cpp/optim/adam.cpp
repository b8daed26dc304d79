// Adam, AdamW and AMSGrad, one pass: reads p, g, exp_avg, exp_avg_sq (, max_exp_avg_sq);
// writes all but g. Weight decay: decoupled (AdamW) scales p first, coupled adds wd p to g;
// both are folded into two loop-invariant factors so the loop body has no branch.
#include <cmath>
#include "optim/optim.h"

namespace fastnn {

template <bool Ams>
static void adam_impl(float* p, const float* g, float* m, float* v, float* vmax, index_t n,
                      const AdamParams& h) {
  const double bc1 = 1.0 - std::pow(h.beta1, double(h.step));
  const double bc2 = 1.0 - std::pow(h.beta2, double(h.step));
  const float step_size = float(h.lr / bc1), inv_bc2_sqrt = float(1.0 / std::sqrt(bc2));
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
      float vv = vi;
      if constexpr (Ams) {
        vv = std::max(vmax[i], vi);
        vmax[i] = vv;
      }
      p[i] = w - step_size * (mi / (std::sqrt(vv) * inv_bc2_sqrt + eps));
    }
  });
}

void adam_step(float* p, const float* g, float* exp_avg, float* exp_avg_sq,
               float* max_exp_avg_sq, index_t n, const AdamParams& h) {
  if (max_exp_avg_sq) adam_impl<true>(p, g, exp_avg, exp_avg_sq, max_exp_avg_sq, n, h);
  else adam_impl<false>(p, g, exp_avg, exp_avg_sq, nullptr, n, h);
}

}  // namespace fastnn
