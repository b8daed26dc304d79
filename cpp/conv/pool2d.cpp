// Pooling kernels: direct loops, parallel over (sample, channel) planes (no reductions
// across planes, so results do not depend on the thread count). Rows of output are updated
// a (ki, kj) offset at a time so the loops vectorise over the output column. Workspace: one
// row of Wo floats per thread (average-pooling backward).
#include "conv/pool2d.h"
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

namespace fastnn {
namespace {

// Planes per parallel chunk: about kElemGrain input values.
index_t plane_grain(index_t plane) { return std::max<index_t>(1, kElemGrain / std::max<index_t>(plane, 1)); }

// Output columns [lo, hi) whose input column iw = ow*sw + off lies in [0, w).
inline void valid_cols(index_t wo, index_t w, index_t sw, index_t off, index_t& lo, index_t& hi) {
  lo = std::min(wo, off >= 0 ? index_t(0) : ceil_div(-off, sw));
  const index_t last = w - 1 - off;
  hi = std::max(lo, last < 0 ? index_t(0) : std::min<index_t>(wo, last / sw + 1));
}

// Width of the average-pooling window of output column ow, padding counted (PyTorch's
// count_include_pad: the window is clipped to the padded input only).
inline index_t window_cols(index_t ow, const Pool2dShape& s) {
  const index_t w0 = ow * s.sw - s.pw;
  return std::min<index_t>(w0 + s.kw, s.w + s.pw) - w0;
}

// One row of wo floats per thread (average-pooling backward), grown on demand, never freed.
float* grow_row(index_t wo) {
  thread_local std::vector<float> row;
  if (index_t(row.size()) < wo) row.resize(size_t(wo));
  return row.data();
}

}  // namespace

void max_pool2d_forward(const float* x, float* y, std::int64_t* argmax, const Pool2dShape& s) {
  const index_t ho = s.ho(), wo = s.wo(), plane = s.h * s.w, oplane = ho * wo;
  parallel_chunks(s.n * s.c, plane_grain(plane), [&](index_t p0, index_t p1) {
    for (index_t p = p0; p < p1; ++p) {
      const float* xp = x + p * plane;
      for (index_t oh = 0; oh < ho; ++oh) {
        float* yr = y + p * oplane + oh * wo;
        std::int64_t* ar = argmax + p * oplane + oh * wo;
        const index_t h0 = std::max<index_t>(oh * s.sh - s.ph, 0);
        const index_t h1 = std::min<index_t>(oh * s.sh - s.ph + s.kh, s.h);
        // As PyTorch: start at -inf with the window's first in-bounds index.
        for (index_t ow = 0; ow < wo; ++ow) {
          yr[ow] = -std::numeric_limits<float>::infinity();
          ar[ow] = h0 * s.w + std::max<index_t>(ow * s.sw - s.pw, 0);
        }
        // Visit each window in row-major order (ih, then kj), a whole output row at a time
        // so the update (selects, no branch) vectorises over ow. PyTorch's rule
        // `v > best || isnan(v)` keeps the first maximum and the last NaN of the window.
        for (index_t ih = h0; ih < h1; ++ih) {
          for (index_t kj = 0; kj < s.kw; ++kj) {
            const index_t off = kj - s.pw;  // iw = ow*sw + off
            index_t lo, hi;
            valid_cols(wo, s.w, s.sw, off, lo, hi);
            const float* __restrict xr = xp + ih * s.w + off;
            float* __restrict yv = yr;
            std::int64_t* __restrict av = ar;  // int64 stores could alias s: use locals
            const std::int64_t base = ih * s.w + off;
            const index_t sw = s.sw;
            for (index_t ow = lo; ow < hi; ++ow) {
              const float v = xr[ow * sw];
              const float b = yv[ow];
              const bool take = (v > b) || (v != v);
              yv[ow] = take ? v : b;
              av[ow] = take ? base + ow * sw : av[ow];
            }
          }
        }
      }
    }
  });
}

bool max_pool2d_backward(const float* dy, const std::int64_t* argmax, float* dx,
                         index_t planes, index_t plane, index_t oplane) {
  int bad = 0;
  parallel_chunks(planes, plane_grain(plane), [&](index_t p0, index_t p1) {
    bool ok = true;
    for (index_t p = p0; p < p1; ++p) {
      float* dp = dx + p * plane;
      std::memset(dp, 0, sizeof(float) * plane);
      const float* gp = dy + p * oplane;
      const std::int64_t* ap = argmax + p * oplane;
      for (index_t i = 0; i < oplane; ++i) {
        const std::int64_t a = ap[i];
        if (a < 0 || a >= plane) { ok = false; continue; }
        dp[a] += gp[i];
      }
    }
    if (!ok) {
#pragma omp atomic write
      bad = 1;
    }
  });
  return bad == 0;
}

void avg_pool2d_forward(const float* x, float* y, const Pool2dShape& s) {
  const index_t ho = s.ho(), wo = s.wo(), plane = s.h * s.w, oplane = ho * wo;
  parallel_chunks(s.n * s.c, plane_grain(plane), [&](index_t p0, index_t p1) {
    for (index_t p = p0; p < p1; ++p) {
      const float* xp = x + p * plane;
      for (index_t oh = 0; oh < ho; ++oh) {
        float* __restrict yr = y + p * oplane + oh * wo;
        const index_t h0 = oh * s.sh - s.ph, hd = std::min<index_t>(h0 + s.kh, s.h + s.ph) - h0;
        // Window sums a whole output row at a time (vectorises over ow), each window
        // visited in row-major order as PyTorch does.
        for (index_t ow = 0; ow < wo; ++ow) yr[ow] = 0.f;
        for (index_t ih = std::max<index_t>(h0, 0); ih < std::min<index_t>(h0 + s.kh, s.h); ++ih)
          for (index_t kj = 0; kj < s.kw; ++kj) {
            index_t lo, hi;
            const index_t off = kj - s.pw;
            valid_cols(wo, s.w, s.sw, off, lo, hi);
            const float* __restrict xr = xp + ih * s.w + off;
            const index_t sw = s.sw;
            for (index_t ow = lo; ow < hi; ++ow) yr[ow] += xr[ow * sw];
          }
        for (index_t ow = 0; ow < wo; ++ow) yr[ow] /= float(hd * window_cols(ow, s));
      }
    }
  });
}

void avg_pool2d_backward(const float* dy, float* dx, const Pool2dShape& s) {
  const index_t ho = s.ho(), wo = s.wo(), plane = s.h * s.w, oplane = ho * wo;
  parallel_chunks(s.n * s.c, plane_grain(plane), [&](index_t p0, index_t p1) {
    float* __restrict g = grow_row(wo);
    for (index_t p = p0; p < p1; ++p) {
      float* dp = dx + p * plane;
      std::memset(dp, 0, sizeof(float) * plane);
      for (index_t oh = 0; oh < ho; ++oh) {
        const float* gr = dy + p * oplane + oh * wo;
        const index_t h0 = oh * s.sh - s.ph, hd = std::min<index_t>(h0 + s.kh, s.h + s.ph) - h0;
        for (index_t ow = 0; ow < wo; ++ow) g[ow] = gr[ow] / float(hd * window_cols(ow, s));
        for (index_t ih = std::max<index_t>(h0, 0); ih < std::min<index_t>(h0 + s.kh, s.h); ++ih)
          for (index_t kj = 0; kj < s.kw; ++kj) {
            index_t lo, hi;
            const index_t off = kj - s.pw;
            valid_cols(wo, s.w, s.sw, off, lo, hi);
            float* __restrict dr = dp + ih * s.w + off;
            const index_t sw = s.sw;
            for (index_t ow = lo; ow < hi; ++ow) dr[ow * sw] += g[ow];  // distinct per ow
          }
      }
    }
  });
}

void global_avg_pool2d_forward(const float* x, float* y, index_t rows, index_t plane) {
  parallel_chunks(rows, plane_grain(plane), [&](index_t r0, index_t r1) {
    for (index_t r = r0; r < r1; ++r) {
      const float* xp = x + r * plane;
      double acc = 0.0;
      for (index_t i = 0; i < plane; ++i) acc += xp[i];
      y[r] = float(acc / double(plane));
    }
  });
}

void global_avg_pool2d_backward(const float* dy, float* dx, index_t rows, index_t plane) {
  parallel_chunks(rows, plane_grain(plane), [&](index_t r0, index_t r1) {
    for (index_t r = r0; r < r1; ++r) {
      const float g = dy[r] / float(plane);
      float* dp = dx + r * plane;
      for (index_t i = 0; i < plane; ++i) dp[i] = g;
    }
  });
}

}  // namespace fastnn
