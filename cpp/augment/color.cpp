// Colour jitter: brightness, contrast and saturation blends with clamping, one sample per task.
#include "augment/color.h"
#include <algorithm>

namespace fastnn {

namespace {
constexpr float kR = 0.299f, kG = 0.587f, kB = 0.114f;
inline float clamp01(float v) { return v < 0.f ? 0.f : (v > 1.f ? 1.f : v); }
}  // namespace

void color_jitter(const float* x, const float* factors, float* y, index_t n, index_t c,
                  index_t hw, bool brightness, bool contrast, bool saturation) {
  // ~1M elements per chunk: a few ms of streaming work, so a typical batch stays on one
  // thread (waking a second one costs more than it saves, and on a busy machine much more).
  const index_t grain = std::max<index_t>(1, (index_t(1) << 20) / std::max<index_t>(1, c * hw));
  parallel_chunks(n, grain, [&](index_t i0, index_t i1) {
    for (index_t i = i0; i < i1; ++i) {
      const float fb = factors[3 * i], fc = factors[3 * i + 1], fs = factors[3 * i + 2];
      const float* xs = x + i * c * hw;
      float* ys = y + i * c * hw;
      if (brightness) {
        for (index_t k = 0; k < c * hw; ++k) ys[k] = clamp01(fb * xs[k]);
      } else {
        for (index_t k = 0; k < c * hw; ++k) ys[k] = xs[k];
      }
      if (contrast) {
        double acc = 0.0;
        if (c == 3) {
          for (index_t k = 0; k < hw; ++k)
            acc += double(kR * ys[k] + kG * ys[hw + k] + kB * ys[2 * hw + k]);
        } else {
          for (index_t k = 0; k < hw; ++k) acc += double(ys[k]);
        }
        const float m = hw > 0 ? float(acc / double(hw)) : 0.f;
        const float add = (1.f - fc) * m;
        for (index_t k = 0; k < c * hw; ++k) ys[k] = clamp01(fc * ys[k] + add);
      }
      if (saturation && c == 3) {
        float* r = ys; float* g = ys + hw; float* b = ys + 2 * hw;
        const float keep = 1.f - fs;
        for (index_t k = 0; k < hw; ++k) {
          const float grey = keep * (kR * r[k] + kG * g[k] + kB * b[k]);
          r[k] = clamp01(fs * r[k] + grey);
          g[k] = clamp01(fs * g[k] + grey);
          b[k] = clamp01(fs * b[k] + grey);
        }
      }
    }
  });
}

}  // namespace fastnn
