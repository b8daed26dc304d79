// 2-D convolution (cross-correlation, PyTorch semantics): forward and backward on im2col +
// Eigen GEMM or, for 3x3 stride-1 layers with >= 16 channels, Winograd F(2x2,3x3); parallel
// over sample blocks with partitions that ignore the thread count.
#pragma once
#include "common/common.h"

namespace fastnn {

// Geometry of one conv2d call. x (n, cin, h, w), weight (cout, cin/groups, kh, kw),
// y (n, cout, ho, wo) with ho = (h + 2ph - dh(kh-1) - 1)/sh + 1 (floor), likewise wo.
struct Conv2dShape {
  index_t n, cin, h, w, cout, kh, kw;
  index_t sh, sw, ph, pw, dh, dw;
  index_t groups;
  index_t ho() const { return (h + 2 * ph - dh * (kh - 1) - 1) / sh + 1; }
  index_t wo() const { return (w + 2 * pw - dw * (kw - 1) - 1) / sw + 1; }
};

// y: overwritten. b may be null (no bias).
void conv2d_forward(const float* x, const float* wgt, const float* b, float* y,
                    const Conv2dShape& s);

// dx (like x), dw (like weight), db (cout): all overwritten; any of them may be null
// (skipped). dw and db are summed over fixed sample ranges, then the ranges are added in
// order, so results are identical at every thread count.
void conv2d_backward(const float* dy, const float* x, const float* wgt, float* dx, float* dw,
                     float* db, const Conv2dShape& s);

// Workspace: reused per-thread buffers, sized in conv2d.cpp (im2col path) and winograd.cpp
// (Winograd path); nothing else is allocated per call once they have grown.

}  // namespace fastnn
