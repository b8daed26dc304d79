// Fused element-wise optimizer updates (PyTorch's rules), one pass over a flat buffer each.
// Every kernel: p (n) is updated in place; g (n) is read only; each state buffer (n) is
// updated in place (read, then overwritten). Bias corrections and other per-step scalars
// are computed once, in double, before the loop. No temporaries are allocated.
#pragma once
#include <cstdint>
#include "common/common.h"
#include "optim/sgd.h"

namespace fastnn {

// Adagrad: sum += g^2; p -= clr * g / (sqrt(sum) + eps), clr = lr / (1 + (step-1) lr_decay).
struct AdagradParams {
  double lr, lr_decay, weight_decay, eps;
  std::int64_t step;  // 1 at the first step
  bool maximize;
};
void adagrad_step(float* p, const float* g, float* sum, index_t n, const AdagradParams& h);

// RMSprop: square_avg = alpha sq + (1-alpha) g^2; centered: grad_avg = lerp(grad_avg, g, 1-alpha),
// avg = sqrt(sq - grad_avg^2) + eps else sqrt(sq) + eps; momentum > 0: buf = mom buf + g/avg,
// p -= lr buf; else p -= lr g/avg. grad_avg null unless centered, buf null unless momentum > 0.
struct RMSpropParams {
  double lr, alpha, eps, weight_decay, momentum;
  bool centered, maximize;
};
void rmsprop_step(float* p, const float* g, float* square_avg, float* grad_avg, float* buf,
                  index_t n, const RMSpropParams& h);

// Adadelta: sq = rho sq + (1-rho) g^2; delta = sqrt(acc + eps) / sqrt(sq + eps) * g;
// acc = rho acc + (1-rho) delta^2; p -= lr delta.
struct AdadeltaParams {
  double lr, rho, eps, weight_decay;
  bool maximize;
};
void adadelta_step(float* p, const float* g, float* square_avg, float* acc_delta, index_t n,
                   const AdadeltaParams& h);

// Adam / AdamW (decoupled: p *= 1 - lr wd first; else coupled g += wd p). eps is added to
// sqrt(v) / sqrt(1 - beta2^t), as torch.optim.Adam. AMSGrad when max_exp_avg_sq is not null.
struct AdamParams {
  double lr, beta1, beta2, eps, weight_decay;
  std::int64_t step;
  bool maximize, decoupled;
};
void adam_step(float* p, const float* g, float* exp_avg, float* exp_avg_sq,
               float* max_exp_avg_sq, index_t n, const AdamParams& h);

// Adamax: m = lerp(m, g, 1-beta1); u = max(beta2 u, |g| + eps) (eps inside the max, as
// PyTorch); p -= lr / (1 - beta1^t) * m / u.
struct AdamaxParams {
  double lr, beta1, beta2, eps, weight_decay;
  std::int64_t step;
  bool maximize;
};
void adamax_step(float* p, const float* g, float* exp_avg, float* exp_inf, index_t n,
                 const AdamaxParams& h);

// NAdam (Dozat; PyTorch's momentum-decay schedule). mu, mu_next and the products
// mu_product = prod_{i<=t} mu_i, mu_product_next = mu_product * mu_next come from the caller.
struct NAdamParams {
  double lr, beta1, beta2, eps, weight_decay, mu, mu_next, mu_product, mu_product_next;
  std::int64_t step;
  bool maximize, decoupled;
};
void nadam_step(float* p, const float* g, float* exp_avg, float* exp_avg_sq, index_t n,
                const NAdamParams& h);

// Adaptive per-weight gains: gain += increase if g*prev > 0, gain *= decrease if g*prev < 0,
// clipped to [min_gain, max_gain]; p -= lr gain g; prev = g.
struct GainsParams {
  double lr, increase, decrease, min_gain, max_gain;
  bool maximize;
};
void adaptive_gains_step(float* p, const float* g, float* gain, float* prev_grad, index_t n,
                         const GainsParams& h);

}  // namespace fastnn
