// Winograd F(2x2, 3x3) convolution for 3x3, stride-1, undilated, ungrouped layers with enough
// channels: 2.25x fewer multiplications than im2col + GEMM (16 GEMMs per block of tiles).
#pragma once
#include "conv/conv2d.h"

namespace fastnn {

// True when conv2d_forward / the dx part of conv2d_backward take the Winograd path.
bool winograd_applies(const Conv2dShape& s);

// y = conv(x, w) + b (b may be null), PyTorch cross-correlation: y overwritten.
// Parallel over blocks of samples (no reductions across blocks), so results do not depend on
// the thread count.
void winograd_forward(const float* x, const float* wgt, const float* b, float* y,
                      const Conv2dShape& s);

// dx = the input gradient of conv2d for dy: overwritten. A Winograd convolution of dy with
// the flipped, transposed weights (padding 2 - p).
void winograd_backward_dx(const float* dy, const float* wgt, float* dx, const Conv2dShape& s);

// dw (cout, cin, 3, 3) = the weight gradient: overwritten. Winograd F(3x3, 2x2) by the
// transposition of F(2x2, 3x3): dw = Gᵀ [Σ_tiles (A dy Aᵀ) ⊙ (Bᵀ d B)] G, the tile sums as
// 16 GEMMs; summed over a fixed partition of the samples, so identical at every thread count.
void winograd_backward_dw(const float* dy, const float* x, float* dw, const Conv2dShape& s);

}  // namespace fastnn
