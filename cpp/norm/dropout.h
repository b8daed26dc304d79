// Inverted dropout with a counter-based generator: the mask of element i depends on (seed, i)
// only, so it is the same at any thread count and at every ISA level.
#pragma once
#include <cstdint>

#include "common/common.h"

namespace fastnn {

// mask[i] = u_i >= p ? scale : 0 and y[i] = x[i] * mask[i] for i < n, where u_i is a float32
// uniform on [0, 1) with 24 random bits: element pair j = i / 2 takes the SplitMix64 output
// for the counter seed + (j + 1) * 0x9E3779B97F4A7C15, its top 24 bits for element 2j and
// bits 8-31 for element 2j + 1. p in [0, 1); scale is normally 1 / (1 - p).
void dropout_forward(const float* x, float* y, float* mask, index_t n, float p, float scale,
                     std::uint64_t seed);

// dx[i] = dy[i] * mask[i] for i < n (the mask the forward returned).
void dropout_backward(const float* dy, const float* mask, float* dx, index_t n);

}  // namespace fastnn
