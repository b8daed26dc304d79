// Per-sample affine warp (bilinear) and padded crops of NCHW batches.
#include "augment/warp.h"
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace fastnn {

void affine_warp_bilinear(const float* x, const float* theta, float* y, index_t n, index_t c,
                          index_t h, index_t w, index_t ho, index_t wo, float fill) {
  const index_t plane = h * w, oplane = ho * wo;
  const double cxi = 0.5 * double(w - 1), cyi = 0.5 * double(h - 1);
  const double cxo = 0.5 * double(wo - 1), cyo = 0.5 * double(ho - 1);
  // ~256K outputs (about 0.5 ms) per chunk; the partition depends on the sizes only.
  const index_t grain = std::max<index_t>(1, (index_t(1) << 18) / std::max<index_t>(1, c * oplane));
  parallel_chunks(n, grain, [&](index_t i0, index_t i1) {
    for (index_t i = i0; i < i1; ++i) {
      const float* t = theta + 6 * i;
      const double a = t[0], b = t[1], tx = t[2] + cxi, d = t[3], e = t[4], ty = t[5] + cyi;
      const float* xs = x + i * c * plane;
      float* ys = y + i * c * oplane;
      for (index_t r = 0; r < ho; ++r) {
        const double yc = double(r) - cyo;
        for (index_t s = 0; s < wo; ++s) {
          const double xc = double(s) - cxo;
          // Clamping keeps the float->int conversion defined for far-away points; anything
          // beyond one pixel outside reads only `fill` either way.
          const double u = std::min(std::max(a * xc + b * yc + tx, -2.0), double(w) + 1.0);
          const double v = std::min(std::max(d * xc + e * yc + ty, -2.0), double(h) + 1.0);
          const double uf = std::floor(u), vf = std::floor(v);
          const index_t x0 = index_t(uf), y0 = index_t(vf);
          const float fx = float(u - uf), fy = float(v - vf);
          const float w00 = (1.f - fx) * (1.f - fy), w01 = fx * (1.f - fy);
          const float w10 = (1.f - fx) * fy, w11 = fx * fy;
          const bool in_x0 = x0 >= 0 && x0 < w, in_x1 = x0 + 1 >= 0 && x0 + 1 < w;
          const bool in_y0 = y0 >= 0 && y0 < h, in_y1 = y0 + 1 >= 0 && y0 + 1 < h;
          const index_t o = r * wo + s;
          if (in_x0 && in_x1 && in_y0 && in_y1) {
            const index_t p = y0 * w + x0;
            for (index_t ch = 0; ch < c; ++ch) {
              const float* q = xs + ch * plane + p;
              ys[ch * oplane + o] = w00 * q[0] + w01 * q[1] + w10 * q[w] + w11 * q[w + 1];
            }
          } else {
            for (index_t ch = 0; ch < c; ++ch) {
              const float* q = xs + ch * plane;
              const float v00 = (in_y0 && in_x0) ? q[y0 * w + x0] : fill;
              const float v01 = (in_y0 && in_x1) ? q[y0 * w + x0 + 1] : fill;
              const float v10 = (in_y1 && in_x0) ? q[(y0 + 1) * w + x0] : fill;
              const float v11 = (in_y1 && in_x1) ? q[(y0 + 1) * w + x0 + 1] : fill;
              ys[ch * oplane + o] = w00 * v00 + w01 * v01 + w10 * v10 + w11 * v11;
            }
          }
        }
      }
    }
  });
}

void crop_padded(const float* x, const std::int64_t* offsets, float* y, index_t n, index_t c,
                 index_t h, index_t w, index_t ho, index_t wo, index_t pad_top,
                 index_t pad_left, float fill) {
  const index_t plane = h * w, oplane = ho * wo;
  // A copy: ~1M elements per chunk, so a typical batch is one memcpy-bound pass on one thread.
  const index_t grain = std::max<index_t>(1, (index_t(1) << 20) / std::max<index_t>(1, c * oplane));
  parallel_chunks(n, grain, [&](index_t i0, index_t i1) {
    for (index_t i = i0; i < i1; ++i) {
      const index_t r0 = offsets[2 * i] - pad_top, s0 = offsets[2 * i + 1] - pad_left;
      // Columns [s_lo, s_hi) of the output row come from inside x; the rest is fill.
      const index_t s_lo = std::min(wo, std::max<index_t>(0, -s0));
      const index_t s_hi = std::max(s_lo, std::min(wo, w - s0));
      for (index_t ch = 0; ch < c; ++ch) {
        const float* xs = x + (i * c + ch) * plane;
        float* ys = y + (i * c + ch) * oplane;
        for (index_t r = 0; r < ho; ++r) {
          float* yr = ys + r * wo;
          const index_t rin = r0 + r;
          if (rin < 0 || rin >= h) {
            for (index_t s = 0; s < wo; ++s) yr[s] = fill;
            continue;
          }
          for (index_t s = 0; s < s_lo; ++s) yr[s] = fill;
          if (s_hi > s_lo)
            std::memcpy(yr + s_lo, xs + rin * w + s0 + s_lo, sizeof(float) * (s_hi - s_lo));
          for (index_t s = s_hi; s < wo; ++s) yr[s] = fill;
        }
      }
    }
  });
}

}  // namespace fastnn
