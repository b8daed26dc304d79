// Fused SGD update (PyTorch's rule: coupled weight decay, momentum with dampening, Nesterov).
#pragma once
#include "common/common.h"

namespace fastnn {

struct SGDParams {
  float lr, momentum, dampening, weight_decay;
  bool nesterov, maximize, first_step;  // first_step: buf := grad (PyTorch clones it)
};

// p (n): updated in place. buf (n): momentum buffer, updated in place (null if momentum == 0).
// g (n): read only.
void sgd_step(float* p, const float* g, float* buf, index_t n, const SGDParams& h);

}  // namespace fastnn
