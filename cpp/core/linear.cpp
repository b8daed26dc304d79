// Linear layer forward/backward on the deterministic GEMM.
#include "core/linear.h"
#include "common/gemm.h"
#include <cstring>
#include <vector>

namespace fastnn {

void linear_forward(const float* x, const float* w, const float* b, float* y, index_t n,
                    index_t in, index_t out) {
  float beta = 0.f;
  if (b) {
    parallel_chunks(n, std::max<index_t>(1, kElemGrain / std::max<index_t>(out, 1)),
                    [&](index_t i0, index_t i1) {
                      for (index_t i = i0; i < i1; ++i)
                        std::memcpy(y + i * out, b, sizeof(float) * out);
                    });
    beta = 1.f;
  }
  gemm(false, true, n, out, in, 1.f, x, in, w, in, beta, y, out);
}

void column_sums(const float* dy, float* db, index_t rows, index_t cols) {
  constexpr index_t kCols = 256;
  parallel_chunks(cols, kCols, [&](index_t j0, index_t j1) {
    double acc[kCols];
    const index_t w = j1 - j0;
    for (index_t j = 0; j < w; ++j) acc[j] = 0.0;
    for (index_t i = 0; i < rows; ++i) {
      const float* r = dy + i * cols + j0;
      for (index_t j = 0; j < w; ++j) acc[j] += r[j];
    }
    for (index_t j = 0; j < w; ++j) db[j0 + j] = float(acc[j]);
  });
}

void linear_backward(const float* dy, const float* x, const float* w, float* dx, float* dw,
                     float* db, index_t n, index_t in, index_t out) {
  if (dx) gemm(false, false, n, in, out, 1.f, dy, out, w, in, 0.f, dx, in);
  if (dw) gemm(true, false, out, in, n, 1.f, dy, out, x, in, 0.f, dw, in);
  if (db) column_sums(dy, db, n, out);
}

}  // namespace fastnn
