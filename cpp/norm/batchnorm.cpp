// Batch normalization kernels, two streaming passes each, both in memory order: (1) per-channel
// sums; (2) one fused element-wise pass (y = (x - mean)*scale + shift, or
// dx = a*dy + b*(x - mean) + c). Gathering a channel's rows instead (stride C*H*W floats, often
// a power of two) was 3-4x slower: the rows collide in the same cache sets. Walking pass (2)
// backwards to reuse the cache pass (1) left behind gained nothing measurable.
//
// Sums: float32 SIMD lanes over short fixed blocks (at most kBlock values per lane group),
// each block added to a float64 total, all shifted by a per-channel constant k so that the
// one-pass variance does not cancel when |mean| >> std. Block boundaries and the order of
// every addition depend on the shape only, so results do not depend on the thread count.
#include "norm/batchnorm.h"
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace fastnn {
namespace {

// Planes (S = H*W) with at least this many floats are summed row by row; smaller ones (S = 1
// for 2-d input, 7x7 maps, ...) by columns of the (N, C*S) view.
constexpr index_t kRowMin = 64;
// A float32 partial sum never covers more than this many values of a row (64 per lane)...
constexpr index_t kBlock = 2048;
// ... or, in the column path, more than this many rows, before it is added to float64.
constexpr index_t kRowBlock = 64;
// Columns per tile in the column path: 3 x 4 AVX-512 registers (two sums and the shift).
// A multiple of 16.
constexpr index_t kCols = 64;

// GCC/Clang vector extensions: one AVX-512 register at x86-64-v4, lowered to two or four
// narrower ones at v3 / v2, with the same arithmetic (and so the same results) everywhere.
typedef float v16f __attribute__((vector_size(64)));
typedef float v8f __attribute__((vector_size(32)));
typedef float v4f __attribute__((vector_size(16)));

inline v16f load16(const float* p) {
  v16f v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Sum of the 16 lanes in a fixed pairwise tree.
inline float hsum(v16f v) {
  const v8f a = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) +
                __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
  const v4f b = __builtin_shufflevector(a, a, 0, 1, 2, 3) + __builtin_shufflevector(a, a, 4, 5, 6, 7);
  return (b[0] + b[2]) + (b[1] + b[3]);
}

// Sums over one row of n values. Forward (kGrad false): d = a - k, (sum d, sum d^2).
// Backward (kGrad true): a = dy, b = x, k = mean: (sum dy, sum dy * (x - mean)).
template <bool kGrad>
inline void row_sums(const float* a, const float* b, index_t n, float k, double& out1,
                     double& out2) {
  double t1 = 0.0, t2 = 0.0;
  const v16f kv = v16f{} + k;
  for (index_t i0 = 0; i0 < n; i0 += kBlock) {
    const index_t m = std::min(kBlock, n - i0);
    const float* pa = a + i0;
    const float* pb = kGrad ? b + i0 : nullptr;
    v16f s1 = {}, s2 = {}, u1 = {}, u2 = {};
    index_t i = 0;
    for (; i + 32 <= m; i += 32) {
      if (kGrad) {
        const v16f g0 = load16(pa + i), g1 = load16(pa + i + 16);
        s1 += g0;
        u1 += g1;
        s2 += g0 * (load16(pb + i) - kv);
        u2 += g1 * (load16(pb + i + 16) - kv);
      } else {
        const v16f d0 = load16(pa + i) - kv, d1 = load16(pa + i + 16) - kv;
        s1 += d0;
        u1 += d1;
        s2 += d0 * d0;
        u2 += d1 * d1;
      }
    }
    if (i + 16 <= m) {
      if (kGrad) {
        const v16f g0 = load16(pa + i);
        s1 += g0;
        s2 += g0 * (load16(pb + i) - kv);
      } else {
        const v16f d0 = load16(pa + i) - kv;
        s1 += d0;
        s2 += d0 * d0;
      }
      i += 16;
    }
    float r1 = hsum(s1 + u1), r2 = hsum(s2 + u2);
    for (; i < m; ++i) {
      if (kGrad) {
        r1 += pa[i];
        r2 += pa[i] * (pb[i] - k);
      } else {
        const float d = pa[i] - k;
        r1 += d;
        r2 += d * d;
      }
    }
    t1 += double(r1);
    t2 += double(r2);
  }
  out1 = t1;
  out2 = t2;
}

// Column sums of rows [n0, n1) of the (N, D) view over columns [j0, j0 + w), added into
// q1, q2 (float64). The full-width tile (kCols columns) keeps its sums in registers.
template <bool kGrad>
inline void column_tile_full(const float* a, const float* b, const float* k, double* q1,
                             double* q2, index_t n0, index_t n1, index_t D, index_t j0) {
  constexpr int V = int(kCols / 16);
  v16f kk[V];
#pragma GCC unroll 4
  for (int v = 0; v < V; ++v) kk[v] = load16(k + j0 + 16 * v);
  for (index_t r0 = n0; r0 < n1; r0 += kRowBlock) {
    const index_t r1 = std::min(n1, r0 + kRowBlock);
    v16f s1[V] = {}, s2[V] = {};
    for (index_t n = r0; n < r1; ++n) {
      const float* ra = a + n * D + j0;
      const float* rb = kGrad ? b + n * D + j0 : nullptr;
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) {
        if (kGrad) {
          const v16f g = load16(ra + 16 * v);
          s1[v] += g;
          s2[v] += g * (load16(rb + 16 * v) - kk[v]);
        } else {
          const v16f d = load16(ra + 16 * v) - kk[v];
          s1[v] += d;
          s2[v] += d * d;
        }
      }
    }
    for (int v = 0; v < V; ++v)
      for (int l = 0; l < 16; ++l) {
        q1[j0 + 16 * v + l] += double(s1[v][l]);
        q2[j0 + 16 * v + l] += double(s2[v][l]);
      }
  }
}

// The same for a narrower tile of w < kCols columns.
template <bool kGrad>
inline void column_tile(const float* a, const float* b, const float* k, double* q1, double* q2,
                        index_t n0, index_t n1, index_t D, index_t j0, index_t w) {
  for (index_t r0 = n0; r0 < n1; r0 += kRowBlock) {
    const index_t r1 = std::min(n1, r0 + kRowBlock);
    float s1[kCols] = {}, s2[kCols] = {};
    for (index_t n = r0; n < r1; ++n) {
      const float* ra = a + n * D + j0;
      const float* rb = kGrad ? b + n * D + j0 : nullptr;
#pragma omp simd
      for (index_t j = 0; j < w; ++j) {
        if (kGrad) {
          s1[j] += ra[j];
          s2[j] += ra[j] * (rb[j] - k[j0 + j]);
        } else {
          const float d = ra[j] - k[j0 + j];
          s1[j] += d;
          s2[j] += d * d;
        }
      }
    }
    for (index_t j = 0; j < w; ++j) {
      q1[j0 + j] += double(s1[j]);
      q2[j0 + j] += double(s2[j]);
    }
  }
}

// Per-channel sums over N and S into sum1, sum2 (C each, overwritten); k (C) is the shift.
template <bool kGrad>
void channel_sums(const float* a, const float* b, const float* k, double* sum1, double* sum2,
                  index_t N, index_t C, index_t S) {
  const index_t D = C * S;
  std::fill(sum1, sum1 + C, 0.0);
  std::fill(sum2, sum2 + C, 0.0);
  if (S >= kRowMin) {
    std::vector<double> r1(N * C), r2(N * C);
    parallel_chunks(N * C, std::max<index_t>(1, kElemGrain / S), [&](index_t q0, index_t q1) {
      for (index_t r = q0, c = q0 % C; r < q1; ++r, c = c + 1 == C ? 0 : c + 1)
        row_sums<kGrad>(a + r * S, kGrad ? b + r * S : nullptr, S, k[c], r1[r], r2[r]);
    });
    for (index_t n = 0; n < N; ++n)
      for (index_t c = 0; c < C; ++c) {
        sum1[c] += r1[n * C + c];
        sum2[c] += r2[n * C + c];
      }
    return;
  }
  // Column sums over fixed blocks of rows (at most 64 blocks), one float64 row per block.
  const index_t nb = std::max(ceil_div(kElemGrain, std::max<index_t>(D, 1)), ceil_div(N, 64));
  const index_t nch = ceil_div(N, nb);
  std::vector<double> p1(nch * D, 0.0), p2(nch * D, 0.0);
  std::vector<float> kc(D);
  // Plain loops, not a std::fill_n call per channel: with S = 1 those calls cost ~10 ns each.
  for (index_t c = 0; c < C; ++c)
    for (index_t s = 0; s < S; ++s) kc[c * S + s] = k[c];
  const float* kp = kc.data();
  parallel_chunks(N, nb, [&](index_t n0, index_t n1) {
    double* q1 = p1.data() + (n0 / nb) * D;
    double* q2 = p2.data() + (n0 / nb) * D;
    index_t j0 = 0;
    for (; j0 + kCols <= D; j0 += kCols)
      column_tile_full<kGrad>(a, b, kp, q1, q2, n0, n1, D, j0);
    if (j0 < D) column_tile<kGrad>(a, b, kp, q1, q2, n0, n1, D, j0, D - j0);
  });
  for (index_t ch = 0; ch < nch; ++ch)
    for (index_t c = 0; c < C; ++c)
      for (index_t s = 0; s < S; ++s) {
        sum1[c] += p1[ch * D + c * S + s];
        sum2[c] += p2[ch * D + c * S + s];
      }
}

// y = (x - mean[c]) * p[c] + q[c]; with dy (kGrad): y = p*dy + q*(x - mean) + r.
// Element-wise, any partition.
template <bool kGrad>
void apply_channels(const float* dy, const float* x, float* y, const float* mean,
                    const float* p, const float* q, const float* r, index_t N, index_t C,
                    index_t S) {
  if (S >= kRowMin) {
    parallel_chunks(N * C, std::max<index_t>(1, kElemGrain / S), [&](index_t r0, index_t r1) {
      for (index_t row = r0, c = r0 % C; row < r1; ++row, c = c + 1 == C ? 0 : c + 1) {
        const float m = mean[c], pc = p[c], qc = q[c];
        const float* xr = x + row * S;
        float* yr = y + row * S;
        if (kGrad) {
          const float* gr = dy + row * S;
          const float rc = r[c];
#pragma omp simd
          for (index_t i = 0; i < S; ++i) yr[i] = pc * gr[i] + qc * (xr[i] - m) + rc;
        } else {
#pragma omp simd
          for (index_t i = 0; i < S; ++i) yr[i] = (xr[i] - m) * pc + qc;
        }
      }
    });
    return;
  }
  // Small planes: the per-channel constants expanded to one per column of the (N, C*S) view.
  const index_t D = C * S;
  std::vector<float> mc(D), pcv(D), qcv(D), rcv(kGrad ? D : 0);
  for (index_t c = 0; c < C; ++c)
    for (index_t s = 0; s < S; ++s) {
      mc[c * S + s] = mean[c];
      pcv[c * S + s] = p[c];
      qcv[c * S + s] = q[c];
      if (kGrad) rcv[c * S + s] = r[c];
    }
  const float *mp = mc.data(), *pp = pcv.data(), *qp = qcv.data(), *rp = rcv.data();
  const index_t nb = std::max(ceil_div(kElemGrain, std::max<index_t>(D, 1)), ceil_div(N, 64));
  parallel_chunks(N, nb, [&](index_t n0, index_t n1) {
    for (index_t n = n0; n < n1; ++n) {
      const float* xr = x + n * D;
      float* yr = y + n * D;
      if (kGrad) {
        const float* gr = dy + n * D;
#pragma omp simd
        for (index_t j = 0; j < D; ++j) yr[j] = pp[j] * gr[j] + qp[j] * (xr[j] - mp[j]) + rp[j];
      } else {
#pragma omp simd
        for (index_t j = 0; j < D; ++j) yr[j] = (xr[j] - mp[j]) * pp[j] + qp[j];
      }
    }
  });
}

}  // namespace

void batchnorm_forward_train(const float* x, const float* gamma, const float* beta, float* y,
                             float* save_mean, float* save_invstd, float* running_mean,
                             float* running_var, index_t N, index_t C, index_t S,
                             float momentum, float eps) {
  FASTNN_CHECK(N * S >= 2, "batchnorm_forward_train: expected more than one value per channel");
  const double M = double(N) * double(S);
  std::vector<float> k(C);
  std::vector<double> s1(C), s2(C);
  for (index_t c = 0; c < C; ++c) k[c] = x[c * S];
  channel_sums<false>(x, nullptr, k.data(), s1.data(), s2.data(), N, C, S);
  // Division-free and branch-free per channel, so the loop vectorizes (C can be large).
  const double inv_m = 1.0 / M, unbias = M / (M - 1.0), mom = momentum;
  std::vector<float> scale(C), shift(C);
  std::vector<double> var(C);
#pragma omp simd
  for (index_t c = 0; c < C; ++c) {
    const double d = s1[c] * inv_m;
    const double v = std::max(s2[c] * inv_m - d * d, 0.0);
    const double invstd = 1.0 / std::sqrt(v + double(eps));
    var[c] = v;
    save_mean[c] = float(double(k[c]) + d);
    save_invstd[c] = float(invstd);
    scale[c] = float((gamma ? double(gamma[c]) : 1.0) * invstd);
    shift[c] = beta ? beta[c] : 0.f;
  }
  if (running_mean)
#pragma omp simd
    for (index_t c = 0; c < C; ++c)
      running_mean[c] = float((1.0 - mom) * double(running_mean[c]) + mom * (double(k[c]) + s1[c] * inv_m));
  if (running_var)
#pragma omp simd
    for (index_t c = 0; c < C; ++c)
      running_var[c] = float((1.0 - mom) * double(running_var[c]) + mom * var[c] * unbias);
  apply_channels<false>(nullptr, x, y, save_mean, scale.data(), shift.data(), nullptr, N, C, S);
}

void batchnorm_forward_eval(const float* x, const float* gamma, const float* beta,
                            const float* running_mean, const float* running_var, float* y,
                            float* save_mean, float* save_invstd, index_t N, index_t C,
                            index_t S, float eps) {
  std::vector<float> scale(C), shift(C);
#pragma omp simd
  for (index_t c = 0; c < C; ++c) {
    const double invstd = 1.0 / std::sqrt(double(running_var[c]) + double(eps));
    save_mean[c] = running_mean[c];
    save_invstd[c] = float(invstd);
    scale[c] = float((gamma ? double(gamma[c]) : 1.0) * invstd);
    shift[c] = beta ? beta[c] : 0.f;
  }
  apply_channels<false>(nullptr, x, y, save_mean, scale.data(), shift.data(), nullptr, N, C, S);
}

void batchnorm_backward(const float* dy, const float* x, const float* gamma,
                        const float* save_mean, const float* save_invstd, float* dx,
                        float* dgamma, float* dbeta, index_t N, index_t C, index_t S,
                        bool training) {
  const double M = double(N) * double(S);
  std::vector<double> s1(C), s2(C);
  channel_sums<true>(dy, x, save_mean, s1.data(), s2.data(), N, C, S);
  const double inv_m = training && M > 0 ? 1.0 / M : 0.0;
  std::vector<float> a(C), b(C), cc(C);
#pragma omp simd
  for (index_t c = 0; c < C; ++c) {
    const double is = double(save_invstd[c]);
    const double g = gamma ? double(gamma[c]) : 1.0;
    dbeta[c] = float(s1[c]);
    dgamma[c] = float(s2[c] * is);
    a[c] = float(g * is);
    // invstd/M * (M*g*dy - g*sum(dy) - xhat*g*sum(dy*xhat)), expanded per channel.
    b[c] = float(-g * is * is * is * s2[c] * inv_m);
    cc[c] = float(-g * is * s1[c] * inv_m);
  }
  apply_channels<true>(dy, x, dx, save_mean, a.data(), b.data(), cc.data(), N, C, S);
}

}  // namespace fastnn
