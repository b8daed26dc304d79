// Colour jitter of NCHW float32 batches with per-sample factors (torchvision's ColorJitter
// for float images). Parallel over samples; per-sample sums in a fixed order.
#pragma once
#include "common/common.h"

namespace fastnn {

// y (n, c, hw) is overwritten; x is only read. factors (n, 3) per sample: brightness,
// contrast, saturation. The enabled operations run in that order, each followed by a
// clamp to [0, 1]:
//   brightness  y = f*y;  contrast  y = f*y + (1-f)*mean(grey(y));
//   saturation  y = f*y + (1-f)*grey(y),  grey = 0.299 R + 0.587 G + 0.114 B (ITU-R 601-2).
// c is 1 or 3 (grey of one channel is the channel itself); saturation needs c == 3.
void color_jitter(const float* x, const float* factors, float* y, index_t n, index_t c,
                  index_t hw, bool brightness, bool contrast, bool saturation);

}  // namespace fastnn
