// Geometric warps of NCHW float32 batches with per-sample parameters: bilinear affine
// sampling and padded crops. Parallel over samples, so results do not depend on the thread count.
#pragma once
#include "common/common.h"

namespace fastnn {

// y (n, c, ho, wo) is overwritten. theta (n, 6), row-major 2x3 per sample, maps output
// coordinates to input coordinates, both measured from the pixel-grid centre:
//   xc = xo - (wo-1)/2, yc = yo - (ho-1)/2,
//   u = theta0*xc + theta1*yc + theta2 + (w-1)/2,  v = theta3*xc + theta4*yc + theta5 + (h-1)/2,
// and y = bilinear interpolation of x at (u, v) where taps outside the image read `fill`.
// (This is torchvision's affine grid with grid_sample(align_corners=False); for fill=0 it
// equals its padding_mode="zeros".) theta must be finite.
void affine_warp_bilinear(const float* x, const float* theta, float* y, index_t n, index_t c,
                          index_t h, index_t w, index_t ho, index_t wo, float fill);

// y (n, c, ho, wo) is overwritten with a window of x padded by (pad_top, pad_left) with
// `fill`: y[i, :, r, s] = xpad[i, :, offsets[2i] + r, offsets[2i+1] + s], where
// xpad[.., r, s] = x[.., r - pad_top, s - pad_left] inside x and fill outside. Offsets must
// keep the window inside xpad: 0 <= top <= h + 2*pad_top - ho, 0 <= left <= w + 2*pad_left - wo.
void crop_padded(const float* x, const std::int64_t* offsets, float* y, index_t n, index_t c,
                 index_t h, index_t w, index_t ho, index_t wo, index_t pad_top,
                 index_t pad_left, float fill);

}  // namespace fastnn
