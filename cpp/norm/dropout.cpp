// Inverted dropout: one pass that draws the mask, writes it and applies it. The uniforms come
// from SplitMix64 used as a counter-based generator (the output for counter k is a bijective
// mix of seed + k * golden gamma; Steele, Lea & Flood 2014, passes BigCrush), so any chunk of
// the array can be drawn on its own: the partition between the threads cannot change a mask.
// 64-bit multiplies vectorise at x86-64-v4 (AVX-512DQ); narrower levels run the same
// arithmetic in fewer lanes, with the same results.
#include "norm/dropout.h"

#include <algorithm>

namespace fastnn {
namespace {

constexpr std::uint64_t kGamma = 0x9E3779B97F4A7C15ull;

inline std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Pairs [j0, j1) of elements, i.e. elements [2*j0, min(n, 2*j1)).
void dropout_pairs(const float* __restrict x, float* __restrict y, float* __restrict mask,
                   index_t n, index_t j0, index_t j1, float p, float scale, std::uint64_t seed) {
  constexpr float kUnit = 1.0f / 16777216.0f;  // 2^-24
  const index_t full = std::min(j1, n / 2);    // pairs with both elements inside
#pragma omp simd
  for (index_t j = j0; j < full; ++j) {
    const std::uint64_t z = mix64(seed + std::uint64_t(j + 1) * kGamma);
    const float u0 = float(std::uint32_t(z >> 40)) * kUnit;
    const float u1 = float(std::uint32_t(z >> 8) & 0xFFFFFFu) * kUnit;
    const float m0 = u0 >= p ? scale : 0.0f, m1 = u1 >= p ? scale : 0.0f;
    mask[2 * j] = m0;
    mask[2 * j + 1] = m1;
    y[2 * j] = x[2 * j] * m0;
    y[2 * j + 1] = x[2 * j + 1] * m1;
  }
  if (full < j1 && 2 * full < n) {  // odd n: the last element, the top bits of its pair
    const std::uint64_t z = mix64(seed + std::uint64_t(full + 1) * kGamma);
    const float m0 = float(std::uint32_t(z >> 40)) * kUnit >= p ? scale : 0.0f;
    mask[2 * full] = m0;
    y[2 * full] = x[2 * full] * m0;
  }
}

}  // namespace

void dropout_forward(const float* x, float* y, float* mask, index_t n, float p, float scale,
                     std::uint64_t seed) {
  const index_t pairs = (n + 1) / 2;
  parallel_chunks(pairs, kElemGrain / 2, [&](index_t j0, index_t j1) {
    dropout_pairs(x, y, mask, n, j0, j1, p, scale, seed);
  });
}

void dropout_backward(const float* dy, const float* mask, float* dx, index_t n) {
  parallel_chunks(n, kElemGrain, [&](index_t i0, index_t i1) {
    const float* __restrict g = dy;
    const float* __restrict m = mask;
    float* __restrict o = dx;
#pragma omp simd
    for (index_t i = i0; i < i1; ++i) o[i] = g[i] * m[i];
  });
}

}  // namespace fastnn
