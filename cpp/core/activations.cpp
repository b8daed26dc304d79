// Element-wise activations. Transcendentals use Eigen's vectorized exp/tanh/logistic.
#include "core/activations.h"
#include <Eigen/Core>
#include <cmath>
#include <vector>

namespace fastnn {
namespace {
using Arr = Eigen::Array<float, Eigen::Dynamic, 1>;
using CA = Eigen::Map<const Arr>;
using MA = Eigen::Map<Arr>;
}  // namespace

void relu_forward(const float* x, float* y, index_t n) {
  parallel_chunks(n, kElemGrain, [&](index_t b, index_t e) {
#pragma omp simd
    for (index_t i = b; i < e; ++i) y[i] = x[i] < 0.f ? 0.f : x[i];  // NaN propagates
  });
}

void relu_backward(const float* dy, const float* x, float* dx, index_t n) {
  parallel_chunks(n, kElemGrain, [&](index_t b, index_t e) {
#pragma omp simd
    for (index_t i = b; i < e; ++i) dx[i] = x[i] > 0.f ? dy[i] : 0.f;
  });
}

void leaky_relu_forward(const float* x, float* y, index_t n, float slope) {
  parallel_chunks(n, kElemGrain, [&](index_t b, index_t e) {
#pragma omp simd
    for (index_t i = b; i < e; ++i) y[i] = x[i] > 0.f ? x[i] : x[i] * slope;
  });
}

void leaky_relu_backward(const float* dy, const float* x, float* dx, index_t n, float slope) {
  parallel_chunks(n, kElemGrain, [&](index_t b, index_t e) {
#pragma omp simd
    for (index_t i = b; i < e; ++i) dx[i] = x[i] > 0.f ? dy[i] : dy[i] * slope;
  });
}

void elu_forward(const float* x, float* y, index_t n, float alpha) {
  parallel_chunks(n, kElemGrain, [&](index_t b, index_t e) {
    for (index_t i = b; i < e; ++i) y[i] = x[i] > 0.f ? x[i] : alpha * std::expm1(x[i]);
  });
}

void elu_backward(const float* dy, const float* x, float* dx, index_t n, float alpha) {
  parallel_chunks(n, kElemGrain, [&](index_t b, index_t e) {
    for (index_t i = b; i < e; ++i) dx[i] = x[i] > 0.f ? dy[i] : dy[i] * alpha * std::exp(x[i]);
  });
}

void sigmoid_forward(const float* x, float* y, index_t n) {
  parallel_chunks(n, kElemGrain, [&](index_t b, index_t e) {
    // 1 / (1 + exp(-x)) with Eigen's vectorized exp (accurate to ~1 ulp; Eigen's logistic()
    // approximation loses relative accuracy for x < -6).
    MA(y + b, e - b) = (1.f + (-CA(x + b, e - b)).exp()).inverse();
  });
}

void sigmoid_backward(const float* dy, const float* x, float* dx, index_t n) {
  parallel_chunks(n, kElemGrain, [&](index_t b, index_t e) {
    Arr s = (1.f + (-CA(x + b, e - b)).exp()).inverse();
    MA(dx + b, e - b) = CA(dy + b, e - b) * s * (1.f - s);
  });
}

void tanh_forward(const float* x, float* y, index_t n) {
  parallel_chunks(n, kElemGrain, [&](index_t b, index_t e) {
    MA(y + b, e - b) = CA(x + b, e - b).tanh();
  });
}

void tanh_backward(const float* dy, const float* x, float* dx, index_t n) {
  parallel_chunks(n, kElemGrain, [&](index_t b, index_t e) {
    Arr t = CA(x + b, e - b).tanh();
    MA(dx + b, e - b) = CA(dy + b, e - b) * (1.f - t * t);
  });
}

void prelu_forward(const float* x, const float* slope, float* y, index_t rows, index_t inner,
                   index_t nslope) {
  parallel_chunks(rows, std::max<index_t>(1, kElemGrain / std::max<index_t>(inner, 1)),
                  [&](index_t r0, index_t r1) {
                    for (index_t r = r0; r < r1; ++r) {
                      const float a = slope[r % nslope];
                      const float* xr = x + r * inner;
                      float* yr = y + r * inner;
#pragma omp simd
                      for (index_t i = 0; i < inner; ++i) yr[i] = xr[i] > 0.f ? xr[i] : a * xr[i];
                    }
                  });
}

void prelu_backward(const float* dy, const float* x, const float* slope, float* dx,
                    float* dslope, index_t rows, index_t inner, index_t nslope) {
  std::vector<double> row_sums(rows);
  parallel_chunks(rows, std::max<index_t>(1, kElemGrain / std::max<index_t>(inner, 1)),
                  [&](index_t r0, index_t r1) {
                    for (index_t r = r0; r < r1; ++r) {
                      const float a = slope[r % nslope];
                      const float* xr = x + r * inner;
                      const float* gr = dy + r * inner;
                      float* dr = dx + r * inner;
                      double s = 0.0;
                      for (index_t i = 0; i < inner; ++i) {
                        const bool pos = xr[i] > 0.f;
                        dr[i] = pos ? gr[i] : a * gr[i];
                        if (!pos) s += double(xr[i]) * double(gr[i]);
                      }
                      row_sums[r] = s;
                    }
                  });
  std::vector<double> acc(nslope, 0.0);  // per-slope sums over rows, fixed order
  for (index_t r = 0; r < rows; ++r) acc[r % nslope] += row_sums[r];
  for (index_t c = 0; c < nslope; ++c) dslope[c] = float(acc[c]);
}

}  // namespace fastnn
