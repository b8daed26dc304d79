// Pooling kernels: direct loops, parallel over (sample, channel) planes (no reductions
// across planes, so results do not depend on the thread count). No workspace.
#include "conv/pool2d.h"
#include <cmath>
#include <cstring>
#include <limits>

namespace fastnn {
namespace {

// Planes per parallel chunk: about kElemGrain input values.
index_t plane_grain(index_t plane) { return std::max<index_t>(1, kElemGrain / std::max<index_t>(plane, 1)); }

}  // namespace

void max_pool2d_forward(const float* x, float* y, std::int64_t* argmax, const Pool2dShape& s) {
  const index_t ho = s.ho(), wo = s.wo(), plane = s.h * s.w, oplane = ho * wo;
  parallel_chunks(s.n * s.c, plane_grain(plane), [&](index_t p0, index_t p1) {
    for (index_t p = p0; p < p1; ++p) {
      const float* xp = x + p * plane;
      float* yp = y + p * oplane;
      std::int64_t* ap = argmax + p * oplane;
      for (index_t oh = 0; oh < ho; ++oh) {
        const index_t h0 = std::max<index_t>(oh * s.sh - s.ph, 0);
        const index_t h1 = std::min<index_t>(oh * s.sh - s.ph + s.kh, s.h);
        for (index_t ow = 0; ow < wo; ++ow) {
          const index_t w0 = std::max<index_t>(ow * s.sw - s.pw, 0);
          const index_t w1 = std::min<index_t>(ow * s.sw - s.pw + s.kw, s.w);
          // As PyTorch: start at -inf with the window's first index; NaN is taken and kept.
          float best = -std::numeric_limits<float>::infinity();
          index_t bi = h0 * s.w + w0;
          for (index_t ih = h0; ih < h1; ++ih) {
            for (index_t iw = w0; iw < w1; ++iw) {
              const float v = xp[ih * s.w + iw];
              if (v > best || std::isnan(v)) {
                best = v;
                bi = ih * s.w + iw;
                if (std::isnan(v)) goto done;
              }
            }
          }
        done:
          yp[oh * wo + ow] = best;
          ap[oh * wo + ow] = bi;
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
      float* yp = y + p * oplane;
      for (index_t oh = 0; oh < ho; ++oh) {
        index_t h0 = oh * s.sh - s.ph;
        index_t h1 = std::min<index_t>(h0 + s.kh, s.h + s.ph);
        for (index_t ow = 0; ow < wo; ++ow) {
          index_t w0 = ow * s.sw - s.pw;
          index_t w1 = std::min<index_t>(w0 + s.kw, s.w + s.pw);
          const float div = float((h1 - h0) * (w1 - w0));  // padding counted
          const index_t a0 = std::max<index_t>(h0, 0), a1 = std::min<index_t>(h1, s.h);
          const index_t b0 = std::max<index_t>(w0, 0), b1 = std::min<index_t>(w1, s.w);
          float acc = 0.f;
          for (index_t ih = a0; ih < a1; ++ih)
            for (index_t iw = b0; iw < b1; ++iw) acc += xp[ih * s.w + iw];
          yp[oh * wo + ow] = acc / div;
        }
      }
    }
  });
}

void avg_pool2d_backward(const float* dy, float* dx, const Pool2dShape& s) {
  const index_t ho = s.ho(), wo = s.wo(), plane = s.h * s.w, oplane = ho * wo;
  parallel_chunks(s.n * s.c, plane_grain(plane), [&](index_t p0, index_t p1) {
    for (index_t p = p0; p < p1; ++p) {
      float* dp = dx + p * plane;
      std::memset(dp, 0, sizeof(float) * plane);
      const float* gp = dy + p * oplane;
      for (index_t oh = 0; oh < ho; ++oh) {
        index_t h0 = oh * s.sh - s.ph;
        index_t h1 = std::min<index_t>(h0 + s.kh, s.h + s.ph);
        for (index_t ow = 0; ow < wo; ++ow) {
          index_t w0 = ow * s.sw - s.pw;
          index_t w1 = std::min<index_t>(w0 + s.kw, s.w + s.pw);
          const float g = gp[oh * wo + ow] / float((h1 - h0) * (w1 - w0));
          const index_t a0 = std::max<index_t>(h0, 0), a1 = std::min<index_t>(h1, s.h);
          const index_t b0 = std::max<index_t>(w0, 0), b1 = std::min<index_t>(w1, s.w);
          for (index_t ih = a0; ih < a1; ++ih)
            for (index_t iw = b0; iw < b1; ++iw) dp[ih * s.w + iw] += g;
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
