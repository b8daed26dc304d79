// Batch normalization kernels, two streaming passes each: (1) per-channel float64 sums, the
// data read in memory order; (2) one fused element-wise pass (y = (x - mean)*scale + shift,
// or dx = a*dy + b*(x - mean) + c). Gathering a channel's rows instead (stride C*H*W floats,
// often a power of two) was 3-4x slower: the rows collide in the same cache sets.
#include "norm/batchnorm.h"
#include <algorithm>
#include <cmath>
#include <vector>

namespace fastnn {
namespace {

// Planes (S = H*W) with at least this many floats are summed row by row; smaller ones
// (S = 1 for 2-d input) by columns of the (N, C*S) view.
constexpr index_t kRowMin = 32;
// float64 accumulators per running sum in a row: 2 AVX-512 registers per sum.
constexpr index_t kLanes = 16;
// Columns per block when summing columns: 2 x 64 float64 accumulators fill 16 AVX-512
// registers when the width is a compile-time constant.
constexpr index_t kColBlock = 64;

// Forward sums of d = a - k: (sum d, sum d^2). Backward sums (kGrad) of a = dy, b = x:
// (sum dy, sum dy * (x - k)) with k the mean. The shift k (the channel's first value in the
// forward) keeps the one-pass variance accurate when |mean| >> std.
template <bool kGrad>
inline void row_sums(const float* a, const float* b, index_t n, double k, double& out1,
                     double& out2) {
  double s1[kLanes] = {}, s2[kLanes] = {};
  index_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
#pragma omp simd
    for (index_t j = 0; j < kLanes; ++j) {
      if (kGrad) {
        const double g = double(a[i + j]);
        s1[j] += g;
        s2[j] += g * (double(b[i + j]) - k);
      } else {
        const double d = double(a[i + j]) - k;
        s1[j] += d;
        s2[j] += d * d;
      }
    }
  }
  double t1 = 0.0, t2 = 0.0;
  for (; i < n; ++i) {
    if (kGrad) {
      const double g = double(a[i]);
      t1 += g;
      t2 += g * (double(b[i]) - k);
    } else {
      const double d = double(a[i]) - k;
      t1 += d;
      t2 += d * d;
    }
  }
  for (index_t j = 0; j < kLanes; ++j) {
    t1 += s1[j];
    t2 += s2[j];
  }
  out1 = t1;
  out2 = t2;
}

// Column sums of rows [n0, n1) over columns [j0, j0 + w) of the (N, D) view into q1, q2
// (overwritten). kW > 0 fixes the width at compile time so the accumulators live in registers.
template <bool kGrad, index_t kW>
inline void column_block(const float* a, const float* b, const double* k, double* q1,
                         double* q2, index_t n0, index_t n1, index_t D, index_t j0, index_t w) {
  constexpr index_t kMax = kW > 0 ? kW : kColBlock;
  const index_t W = kW > 0 ? kW : w;
  double s1[kMax], s2[kMax], kk[kMax];
  for (index_t j = 0; j < W; ++j) {
    s1[j] = s2[j] = 0.0;
    kk[j] = k[j0 + j];
  }
  for (index_t n = n0; n < n1; ++n) {
    const float* ra = a + n * D + j0;
    const float* rb = kGrad ? b + n * D + j0 : nullptr;
#pragma omp simd
    for (index_t j = 0; j < W; ++j) {
      if (kGrad) {
        const double g = double(ra[j]);
        s1[j] += g;
        s2[j] += g * (double(rb[j]) - kk[j]);
      } else {
        const double d = double(ra[j]) - kk[j];
        s1[j] += d;
        s2[j] += d * d;
      }
    }
  }
  for (index_t j = 0; j < W; ++j) {
    q1[j0 + j] = s1[j];
    q2[j0 + j] = s2[j];
  }
}

// Per-channel sums over N and S into sum1, sum2 (C each, overwritten); k (C) is the shift.
// Every partial sum covers a fixed range and is combined in a fixed order, so the result
// does not depend on the thread count.
template <bool kGrad>
void channel_sums(const float* a, const float* b, const double* k, double* sum1, double* sum2,
                  index_t N, index_t C, index_t S) {
  const index_t D = C * S;
  std::fill(sum1, sum1 + C, 0.0);
  std::fill(sum2, sum2 + C, 0.0);
  if (S >= kRowMin) {
    std::vector<double> r1(N * C), r2(N * C);
    parallel_chunks(N * C, std::max<index_t>(1, kElemGrain / S), [&](index_t q0, index_t q1) {
      for (index_t r = q0; r < q1; ++r)
        row_sums<kGrad>(a + r * S, kGrad ? b + r * S : nullptr, S, k[r % C], r1[r], r2[r]);
    });
    for (index_t n = 0; n < N; ++n)
      for (index_t c = 0; c < C; ++c) {
        sum1[c] += r1[n * C + c];
        sum2[c] += r2[n * C + c];
      }
    return;
  }
  // Column sums over fixed blocks of rows; at most 64 blocks and 2^18 partial values.
  const index_t max_chunks = std::max<index_t>(1, std::min<index_t>(64, (index_t(1) << 18) / std::max<index_t>(D, 1)));
  const index_t nb = std::max(ceil_div(kElemGrain, std::max<index_t>(D, 1)), ceil_div(N, max_chunks));
  const index_t nch = ceil_div(N, nb);
  std::vector<double> p1(nch * D), p2(nch * D), kc(D);
  for (index_t j = 0; j < D; ++j) kc[j] = k[j / S];
  const double* kp = kc.data();
  parallel_chunks(N, nb, [&](index_t n0, index_t n1) {
    double* q1 = p1.data() + (n0 / nb) * D;
    double* q2 = p2.data() + (n0 / nb) * D;
    index_t j0 = 0;
    for (; j0 + kColBlock <= D; j0 += kColBlock)
      column_block<kGrad, kColBlock>(a, b, kp, q1, q2, n0, n1, D, j0, kColBlock);
    if (j0 < D) column_block<kGrad, 0>(a, b, kp, q1, q2, n0, n1, D, j0, D - j0);
  });
  for (index_t j = 0; j < D; ++j) {
    double t1 = 0.0, t2 = 0.0;
    for (index_t ch = 0; ch < nch; ++ch) {
      t1 += p1[ch * D + j];
      t2 += p2[ch * D + j];
    }
    sum1[j / S] += t1;
    sum2[j / S] += t2;
  }
}

// y = (x - mean[c]) * scale[c] + shift[c]; with dy given (kGrad): y = scale*dy + shift2*(x -
// mean) + shift, i.e. dx = a*dy + b*(x - mean) + c. Element-wise, any partition.
template <bool kGrad>
void apply_channels(const float* dy, const float* x, float* y, const float* mean,
                    const float* p, const float* q, const float* r, index_t N, index_t C,
                    index_t S) {
  if (S >= kRowMin) {
    parallel_chunks(N * C, std::max<index_t>(1, kElemGrain / S), [&](index_t r0, index_t r1) {
      for (index_t row = r0; row < r1; ++row) {
        const index_t c = row % C;
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
  // Small planes: expand the per-channel constants to one per column of the (N, C*S) view.
  const index_t D = C * S;
  std::vector<float> mc(D), pcv(D), qcv(D), rcv(kGrad ? D : 0);
  for (index_t j = 0; j < D; ++j) {
    mc[j] = mean[j / S];
    pcv[j] = p[j / S];
    qcv[j] = q[j / S];
    if (kGrad) rcv[j] = r[j / S];
  }
  const float *mp = mc.data(), *pp = pcv.data(), *qp = qcv.data(), *rp = rcv.data();
  parallel_chunks(N, std::max<index_t>(1, kElemGrain / std::max<index_t>(D, 1)),
                  [&](index_t n0, index_t n1) {
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
  std::vector<double> k(C), s1(C), s2(C);
  for (index_t c = 0; c < C; ++c) k[c] = double(x[c * S]);
  channel_sums<false>(x, nullptr, k.data(), s1.data(), s2.data(), N, C, S);
  std::vector<float> mean(C), scale(C), shift(C);
  for (index_t c = 0; c < C; ++c) {
    const double d = s1[c] / M;
    const double var = std::max(s2[c] / M - d * d, 0.0);
    const double mu = k[c] + d;
    const double invstd = 1.0 / std::sqrt(var + double(eps));
    save_mean[c] = float(mu);
    save_invstd[c] = float(invstd);
    if (running_mean)
      running_mean[c] = float((1.0 - momentum) * double(running_mean[c]) + momentum * mu);
    if (running_var)
      running_var[c] = float((1.0 - momentum) * double(running_var[c]) +
                             momentum * var * M / (M - 1.0));
    mean[c] = float(mu);
    scale[c] = float((gamma ? double(gamma[c]) : 1.0) * invstd);
    shift[c] = beta ? beta[c] : 0.f;
  }
  apply_channels<false>(nullptr, x, y, mean.data(), scale.data(), shift.data(), nullptr, N, C, S);
}

void batchnorm_forward_eval(const float* x, const float* gamma, const float* beta,
                            const float* running_mean, const float* running_var, float* y,
                            float* save_mean, float* save_invstd, index_t N, index_t C,
                            index_t S, float eps) {
  std::vector<float> scale(C), shift(C);
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
  std::vector<double> m(C), s1(C), s2(C);
  for (index_t c = 0; c < C; ++c) m[c] = double(save_mean[c]);
  channel_sums<true>(dy, x, m.data(), s1.data(), s2.data(), N, C, S);
  std::vector<float> a(C), b(C), cc(C);
  for (index_t c = 0; c < C; ++c) {
    const double is = double(save_invstd[c]);
    const double g = gamma ? double(gamma[c]) : 1.0;
    dbeta[c] = float(s1[c]);
    dgamma[c] = float(s2[c] * is);
    a[c] = float(g * is);
    // invstd/M * (M*g*dy - g*sum(dy) - xhat*g*sum(dy*xhat)), expanded per channel.
    b[c] = training && M > 0 ? float(-g * is * is * is * s2[c] / M) : 0.f;
    cc[c] = training && M > 0 ? float(-g * is * s1[c] / M) : 0.f;
  }
  apply_channels<true>(dy, x, dx, save_mean, a.data(), b.data(), cc.data(), N, C, S);
}

}  // namespace fastnn
