// Batch normalization kernels: a statistics pass (per-channel sums), the per-channel constants,
// and one fused element-wise pass (y = x*scale + shift, or dx = a*dy + b*x + c, the mean folded
// into the constants), both passes in memory order, the three phases in one parallel region.
// - S >= kRowMin (image planes; see row_sums_path for the exception): both passes by (n, c)
//   rows, with per-channel constants. Training outputs larger than the cache can hold are
//   written with non-temporal stores.
// - S < kRowMin ((N, C) input, small planes): both passes by rows of the (N, C*S) view, column
//   sums (a reduction per short row costs more than its loads), and per-column constants, or
//   per-channel ones by (n, c) rows for planes of kRowApplyMin or more; with wide enough rows
//   the threads split the channels instead.
// Gathering a channel's rows instead (stride C*H*W floats, often a power of two) was 3-4x
// slower: the rows collide in the same cache sets. Tried and dropped after measuring (no gain
// on this machine): channel groups sized to stay in L3 between the passes, non-temporal stores
// in the eval pass (slower), walking pass 2 backwards, column statistics for all planes of
// 64-255 (14x14, 16x16: 1.13-1.29x; only short planes in large batches gain), the constants of
// 128 columns held in registers for the (N, C) forward pass, the channels split between the
// threads for rows shorter than 1024 columns per thread, the horizontal sums of 4 or 8 short
// rows in one shuffle tree (8x8 planes: 0.96-1.05x; 14x14: 1.05x), and for (N, C) input the
// statistics of 128-column tiles held in registers down each 64-row block with float32 partial
// rows and the channels split evenly between the threads (alternating A/B in one process:
// (256, 1024) 1.00x, (512, 512) 0.91x, (256, 3000) 0.84x, but (64, 2000) 1.45x and (65, 33)
// 2.2x the time; no difference visible in bench_batchnorm.py).
//
// Sums: float32 SIMD lanes over short fixed blocks (at most kBlock values per lane group, or
// kRowBlock rows per column), each block added to a float64 total, all shifted by a
// per-channel constant k so that the one-pass variance does not cancel when |mean| >> std.
// Block boundaries and the order of every addition depend on the shape only, so results do
// not depend on the thread count.
#include "norm/batchnorm.h"
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <vector>
#if defined(__SSE2__)
#include <immintrin.h>
#endif

namespace fastnn {
namespace {

// Planes (S = H*W) with at least this many floats are summed row by row; smaller ones (S = 1
// for 2-d input, 7x7 maps, ...) by columns of the (N, C*S) view.
constexpr index_t kRowMin = 64;
// ... except planes of fewer than kColPlaneMax floats in batches of at least kColBatchMin,
// which are summed by columns too: with many rows the column sums amortise their per-block
// costs, and the per-row reduction of a short row costs more than its loads ((128, 64, 8, 8)
// 0.83x, (256, 32, 8, 8) 0.89x, (64, 64, 9, 9) 0.90-0.98x, (64, 128, 64) 0.88x, and with
// outputs past the streaming threshold (512, 128, 8, 8) 0.95x the time of the rows;
// (32, 64, 8, 8) 1.0x, (4, 64, 8, 8) 2.4x, 10x10 planes 1.0-1.05x, 14x14 1.13-1.27x).
constexpr index_t kColPlaneMax = 96;
constexpr index_t kColBatchMin = 64;
inline bool row_sums_path(index_t N, index_t S) {
  return S >= kRowMin && !(S < kColPlaneMax && N >= kColBatchMin);
}
// The element-wise pass goes by (n, c) rows with per-channel constants for planes of at least
// this many floats (a whole vector per row); smaller planes use per-column constants instead.
// For 4x4-7x7 planes the rows took 0.78-0.87x the time of the per-column constants ((64, 64,
// 7, 7): 3136 columns, whose two constant arrays alone fill most of the 32 KiB L1), for 3x3
// planes 1.5x; the statistics stay by columns below kRowMin (by rows: 1.2-2.2x the time).
constexpr index_t kRowApplyMin = 16;
// A float32 partial sum never covers more than this many values of a row (64 per lane)...
constexpr index_t kBlock = 2048;
// ... or, in the column path, more than this many rows, before it is added to float64.
constexpr index_t kRowBlock = 64;

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

// Per-thread scratch, grown on demand and kept: a kernel call allocates nothing (a fresh
// std::vector of 128 KiB or more is an mmap, and its pages fault in on every call). Slots are
// distinct per use within one call; a Python thread calling in with the GIL released has its own.
template <class T, int kSlot>
T* scratch(index_t n) {
  thread_local std::vector<T> buf;
  if (index_t(buf.size()) < n) buf.resize(std::size_t(n));
  return buf.data();
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

// ---------------------------------------------------------------------------------------------
// Per-channel constants from the sums, for the channels [c0, c1) (all arrays indexed by channel).

struct TrainOut {
  const float* gamma;   // may be null (1)
  const float* beta;    // may be null (0)
  float* save_mean;
  float* save_invstd;
  float* running_mean;  // may be null
  float* running_var;   // may be null
  double momentum, eps, M;
};

// Batch mean / biased variance from the shifted sums; scale = gamma*invstd and
// shift = beta - mean*scale (in float64, as PyTorch's CPU kernel: y = x*scale + shift);
// running statistics r = (1 - momentum)*r + momentum*batch (running_var unbiased). Overwrites
// s1 with the mean and s2 with the variance, then 1/sqrt(var + eps). Each loop is free of
// branches (optional arrays are tested outside), so all of them vectorize (C can be large).
inline void finalize_train(const TrainOut& o, const float* k, double* s1, double* s2,
                           float* scale, float* shift, index_t c0, index_t c1) {
  const double inv_m = 1.0 / o.M, unbias = o.M / (o.M - 1.0), mom = o.momentum, eps = o.eps;
#pragma omp simd
  for (index_t c = c0; c < c1; ++c) {
    const double d = s1[c] * inv_m;
    s2[c] = std::max(s2[c] * inv_m - d * d, 0.0);
    s1[c] = double(k[c]) + d;
  }
  if (float* rm = o.running_mean)
#pragma omp simd
    for (index_t c = c0; c < c1; ++c) rm[c] = float((1.0 - mom) * double(rm[c]) + mom * s1[c]);
  if (float* rv = o.running_var)
#pragma omp simd
    for (index_t c = c0; c < c1; ++c)
      rv[c] = float((1.0 - mom) * double(rv[c]) + mom * s2[c] * unbias);
#pragma omp simd
  for (index_t c = c0; c < c1; ++c) {
    const double invstd = 1.0 / std::sqrt(s2[c] + eps);
    o.save_mean[c] = float(s1[c]);
    o.save_invstd[c] = float(invstd);
    s2[c] = invstd;
  }
  if (const float* gamma = o.gamma)
#pragma omp simd
    for (index_t c = c0; c < c1; ++c) s2[c] *= double(gamma[c]);
  if (const float* beta = o.beta)
#pragma omp simd
    for (index_t c = c0; c < c1; ++c) shift[c] = float(double(beta[c]) - s1[c] * s2[c]);
  else
#pragma omp simd
    for (index_t c = c0; c < c1; ++c) shift[c] = float(-s1[c] * s2[c]);
#pragma omp simd
  for (index_t c = c0; c < c1; ++c) scale[c] = float(s2[c]);
}

// dbeta = sum(dy), dgamma = sum(dy*xhat); dx = a*dy + b*x + cc per channel, i.e.
// invstd/M * (M*g*dy - g*sum(dy) - xhat*g*sum(dy*xhat)) expanded, the mean folded into cc in
// float64 (inv_m = 0: eval mode).
template <bool kGamma>
inline void finalize_backward_loop(const float* gamma, const float* save_mean,
                                   const float* save_invstd, const double* s1, const double* s2,
                                   float* dgamma, float* dbeta, float* a, float* b, float* cc,
                                   double inv_m, index_t c0, index_t c1) {
#pragma omp simd
  for (index_t c = c0; c < c1; ++c) {
    const double is = double(save_invstd[c]);
    const double g = kGamma ? double(gamma[c]) : 1.0;
    dbeta[c] = float(s1[c]);
    dgamma[c] = float(s2[c] * is);
    a[c] = float(g * is);
    const double bc = -g * is * is * is * s2[c] * inv_m;
    b[c] = float(bc);
    cc[c] = float(-g * is * s1[c] * inv_m - bc * double(save_mean[c]));
  }
}

inline void finalize_backward(const float* gamma, const float* save_mean,
                              const float* save_invstd, const double* s1,
                              const double* s2, float* dgamma, float* dbeta, float* a, float* b,
                              float* cc, double inv_m, index_t c0, index_t c1) {
  if (gamma)
    finalize_backward_loop<true>(gamma, save_mean, save_invstd, s1, s2, dgamma, dbeta, a, b, cc,
                                 inv_m, c0, c1);
  else
    finalize_backward_loop<false>(gamma, save_mean, save_invstd, s1, s2, dgamma, dbeta, a, b, cc,
                                  inv_m, c0, c1);
}

// ---------------------------------------------------------------------------------------------
// The element-wise pass over one row of n values: y = x*p + q, or with dy = g (kGrad)
// y = p*g + q*x + r; constants per row (affine_row) or per column (affine_cols).
template <bool kGrad>
inline void affine_row(const float* __restrict g, const float* __restrict x, float* __restrict y,
                       index_t n, float p, float q, float r) {
  if (kGrad) {
#pragma omp simd
    for (index_t j = 0; j < n; ++j) y[j] = p * g[j] + q * x[j] + r;
  } else {
#pragma omp simd
    for (index_t j = 0; j < n; ++j) y[j] = x[j] * p + q;
  }
}

// The same pass with non-temporal stores (the output goes to memory without being read into
// the cache first, and without evicting the inputs), for outputs too large to stay in the L3.
// Row path only (rows of >= kRowMin floats); y is aligned to 64 bytes by a scalar head.
inline void stream16(float* y, v16f v) {
#if defined(__AVX512F__)
  __m512 m;
  std::memcpy(&m, &v, sizeof m);
  _mm512_stream_ps(y, m);
#elif defined(__AVX__)
  __m256 lo, hi;
  std::memcpy(&lo, &v, sizeof lo);
  std::memcpy(&hi, reinterpret_cast<const char*>(&v) + sizeof lo, sizeof hi);
  _mm256_stream_ps(y, lo);
  _mm256_stream_ps(y + 8, hi);
#elif defined(__SSE2__)
  for (int k = 0; k < 16; k += 4) {
    __m128 q;
    std::memcpy(&q, reinterpret_cast<const char*>(&v) + 4 * k, sizeof q);
    _mm_stream_ps(y + k, q);
  }
#else
  std::memcpy(y, &v, sizeof v);
#endif
}

template <bool kGrad>
inline void affine_row_stream(const float* __restrict g, const float* __restrict x,
                              float* __restrict y, index_t n, float p, float q, float r) {
  // head up to the first 64-byte line of y and the tail: the plain pass
  const index_t head =
      std::min<index_t>(n, (64 - reinterpret_cast<std::uintptr_t>(y) % 64) % 64 / sizeof(float));
  affine_row<kGrad>(g, x, y, head, p, q, r);
  const v16f pv = v16f{} + p, qv = v16f{} + q, rv = v16f{} + r;
  index_t j = head;
  for (; j + 16 <= n; j += 16)
    stream16(y + j, kGrad ? pv * load16(g + j) + qv * load16(x + j) + rv : load16(x + j) * pv + qv);
  affine_row<kGrad>(kGrad ? g + j : nullptr, x + j, y + j, n - j, p, q, r);
}

// Outputs of at least this many bytes are streamed: a quarter of the L3 (8 MiB at least), so
// that input and output together exceed half of it. Measured on a 32 MiB L3 (A/B, alternating,
// with a pass reading the output after each call): 8-32 MiB tensors 0.81-0.92x the time of
// forward and backward, 4 MiB 1.04-1.27x (there the output would still have been in the cache).
// The L3 is the one cpu0 shares (Linux sysfs); sysconf's figure is the whole package's (10x
// too large on this EPYC), so it is not used; 32 MiB when sysfs does not say.
inline std::size_t stream_min_bytes() {
  static const std::size_t v = [] {
    std::size_t l3 = std::size_t(32) << 20;
    if (std::FILE* f = std::fopen("/sys/devices/system/cpu/cpu0/cache/index3/size", "r")) {
      unsigned long kib = 0;
      char unit = 0;
      if (std::fscanf(f, "%lu%c", &kib, &unit) >= 1 && kib > 0)
        l3 = unit == 'M' ? std::size_t(kib) << 20 : std::size_t(kib) << 10;
      std::fclose(f);
    }
    return std::max<std::size_t>(std::size_t(8) << 20, l3 / 4);
  }();
  return v;
}

inline void stream_fence() {
#if defined(__SSE2__)
  _mm_sfence();  // streamed stores are weakly ordered: complete them before the barrier
#endif
}

template <bool kGrad>
inline void affine_cols(const float* __restrict g, const float* __restrict x, float* __restrict y,
                        index_t n, const float* __restrict p, const float* __restrict q,
                        const float* __restrict r) {
  if (kGrad) {
#pragma omp simd
    for (index_t j = 0; j < n; ++j) y[j] = p[j] * g[j] + q[j] * x[j] + r[j];
  } else {
#pragma omp simd
    for (index_t j = 0; j < n; ++j) y[j] = x[j] * p[j] + q[j];
  }
}

// affine_cols over the rows [n0, n1) of an (N, D) view, columns [j0, j0 + w), in tiles of at
// most kColTile columns, each down all the rows: the constants of one tile (8-12 KiB) stay in
// the L1, where those of a whole row (2 or 3 arrays of D floats) did not ((128, 4096),
// (64, 3136), (32, 8192): forward and backward 0.90x the time; tiles of 512: 0.91x).
constexpr index_t kColTile = 1024;

template <bool kGrad>
inline void affine_cols_rows(const float* g, const float* x, float* y, index_t D, index_t n0,
                             index_t n1, index_t j0, index_t w, const float* p, const float* q,
                             const float* r) {
  for (index_t jt = j0; jt < j0 + w; jt += kColTile) {
    const index_t wt = std::min(kColTile, j0 + w - jt);
    for (index_t n = n0; n < n1; ++n) {
      const index_t o = n * D + jt;
      affine_cols<kGrad>(kGrad ? g + o : nullptr, x + o, y + o, wt, p + jt, q + jt,
                         kGrad ? r + jt : nullptr);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// One parallel region in three phases (statistics, per-channel constants, element-wise pass),
// each over its own chunks with a static schedule, with barriers between them: one fork per
// call instead of one per pass, and the per-channel work is split between the threads too.
// Serial when one thread or one chunk per phase is all there is.
constexpr index_t kChannelBlock = 256;

template <class F1, class F2, class F3>
void three_phases(index_t n1, const F1& f1, index_t n2, const F2& f2, index_t n3, const F3& f3) {
  if (num_threads() == 1 || omp_in_parallel() || (n1 <= 1 && n3 <= 1)) {
    for (index_t i = 0; i < n1; ++i) f1(i);
    for (index_t i = 0; i < n2; ++i) f2(i);
    for (index_t i = 0; i < n3; ++i) f3(i);
    return;
  }
#pragma omp parallel num_threads(num_threads())
  {
#pragma omp for schedule(static)
    for (index_t i = 0; i < n1; ++i) f1(i);
#pragma omp for schedule(static)
    for (index_t i = 0; i < n2; ++i) f2(i);
#pragma omp for schedule(static)
    for (index_t i = 0; i < n3; ++i) f3(i);
  }
}

// ---------------------------------------------------------------------------------------------
// Row path (S >= kRowMin): (n, c) rows. Each row is summed on its own (r1, r2: N*C partials)
// and a channel's rows are added in order of n. The element-wise pass uses per-channel
// constants: y = x*p + q, or with dy (kGrad) y = p*dy + q*x + r.
// a, b: x (forward) or dy, x (kGrad); k the per-channel shift of the sums; finalize(c0, c1)
// turns s1, s2 into the constants p, q, r of the channels [c0, c1).
template <bool kGrad, class Finalize>
void row_path(const float* a, const float* b, const float* k, float* out, index_t N, index_t C,
              index_t S, double* s1, double* s2, const Finalize& finalize, const float* p,
              const float* q, const float* r) {
  double *r1 = scratch<double, 4>(N * C), *r2 = scratch<double, 5>(N * C);
  const index_t rows = N * C, grain = std::max<index_t>(1, kElemGrain / S),
                chunks = ceil_div(rows, grain);
  auto sums = [&](index_t i) {
    const index_t q1 = std::min(rows, (i + 1) * grain);
    for (index_t t = i * grain, c = t % C; t < q1; ++t, c = c + 1 == C ? 0 : c + 1)
      row_sums<kGrad>(a + t * S, kGrad ? b + t * S : nullptr, S, k[c], r1[t], r2[t]);
  };
  auto channels = [&](index_t i) {
    const index_t c0 = i * kChannelBlock, c1 = std::min(C, c0 + kChannelBlock);
    std::fill(s1 + c0, s1 + c1, 0.0);
    std::fill(s2 + c0, s2 + c1, 0.0);
    for (index_t n = 0; n < N; ++n)
#pragma omp simd
      for (index_t c = c0; c < c1; ++c) {
        s1[c] += r1[n * C + c];
        s2[c] += r2[n * C + c];
      }
    finalize(c0, c1);
  };
  const bool stream = std::size_t(rows * S) * sizeof(float) >= stream_min_bytes();
  auto apply = [&](index_t i) {
    const index_t t1 = std::min(rows, (i + 1) * grain);
    for (index_t t = i * grain, c = t % C; t < t1; ++t, c = c + 1 == C ? 0 : c + 1) {
      const float* g = kGrad ? a + t * S : nullptr;
      const float* x = (kGrad ? b : a) + t * S;
      if (stream)
        affine_row_stream<kGrad>(g, x, out + t * S, S, p[c], q[c], kGrad ? r[c] : 0.f);
      else
        affine_row<kGrad>(g, x, out + t * S, S, p[c], q[c], kGrad ? r[c] : 0.f);
    }
    if (stream) stream_fence();
  };
  three_phases(chunks, sums, ceil_div(C, kChannelBlock), channels, chunks, apply);
}

// ---------------------------------------------------------------------------------------------
// Column path (S < kRowMin: (N, C) input and small planes). The (N, D = C*S) view is walked
// row by row in memory order, which the hardware prefetcher follows; walking a tile of columns
// down the rows instead touches a new page per row (D = 1024: 4 KiB apart), which it does not
// follow (3-4x slower). Column sums accumulate in float32 over blocks of at most kRowBlock rows
// and kColChunk columns, then in float64; the rows are split into fixed chunks (the same
// partition at any thread count), each with its own float64 partial row, added in order.
// When every thread gets runs of at least kColMin columns, the threads split the channels
// instead and each does all three phases on its own columns, with no barrier and nothing read
// from the other core ((64, 128, 7, 7) 0.71-0.76x, (128, 3136) 0.74x, (256, 3000) 0.86x the
// time of the row chunks), unless a row is a whole number of 4 KiB pages: then each thread's
// runs start at the same offsets in every page, and the row chunks (with the element-wise pass
// in tiles of kColTile columns) were faster ((256, 2048) 0.82x, (64, 2048) 0.92x, (32, 4096)
// 0.87x the time of the split). Each column is summed over the same row chunks into the same
// partial rows either way, so the results do not depend on the thread count.
constexpr index_t kColChunk = 2048;
// Fewest columns per thread for splitting the columns between the threads (below, each row's
// run is shorter than a 4 KiB page and the prefetcher restarts on every row: (256, 1024) split
// into runs of 512 columns measured 1.2-2.8x the time of the row chunks, once 0.85x).
constexpr index_t kColMin = 1024;
// Row chunks of the column statistics hold at least this many floats: every chunk leaves a
// float64 partial row that the per-channel phase reads back, half of it from the other core
// ((256, 1024): 4 partial rows instead of 8, 0.7-0.9x the time).
constexpr index_t kStatGrain = 2 * kElemGrain;

inline index_t column_chunk_rows(index_t N, index_t D) {
  return std::max(ceil_div(kElemGrain, std::max<index_t>(D, 1)), ceil_div(N, 64));
}

// t1, t2 (w floats) = sums over rows [r0, r1) of columns [j0, j0 + w): forward d = a - k,
// (sum d, sum d^2); backward (kGrad) (sum a, sum a*(b - k)). k is per column. Two rows at a
// time: the accumulators are loaded and stored once per two rows, and with a power-of-two row
// stride (C = 1024: 4 KiB, the L1's set period) the lines touched per step still fit the L1's
// 8 ways (four rows of dy and x plus k, t1, t2 did not: the backward took 1.4x as long).
template <bool kGrad>
void column_block(const float* __restrict a, const float* __restrict b, const float* __restrict k,
                  float* __restrict t1, float* __restrict t2, index_t r0, index_t r1, index_t D,
                  index_t j0, index_t w) {
  const float* kj = k + j0;
  for (index_t j = 0; j < w; ++j) t1[j] = t2[j] = 0.f;
  index_t n = r0;
  for (; n + 2 <= r1; n += 2) {
    const float *a0 = a + n * D + j0, *a1 = a0 + D;
    if (kGrad) {
      const float *b0 = b + n * D + j0, *b1 = b0 + D;
#pragma omp simd
      for (index_t j = 0; j < w; ++j) {
        t1[j] += a0[j] + a1[j];
        t2[j] += a0[j] * (b0[j] - kj[j]) + a1[j] * (b1[j] - kj[j]);
      }
    } else {
#pragma omp simd
      for (index_t j = 0; j < w; ++j) {
        const float d0 = a0[j] - kj[j], d1 = a1[j] - kj[j];
        t1[j] += d0 + d1;
        t2[j] += d0 * d0 + d1 * d1;
      }
    }
  }
  if (n < r1) {
    const float* ar = a + n * D + j0;
    const float* br = kGrad ? b + n * D + j0 : nullptr;
#pragma omp simd
    for (index_t j = 0; j < w; ++j) {
      if (kGrad) {
        t1[j] += ar[j];
        t2[j] += ar[j] * (br[j] - kj[j]);
      } else {
        const float d = ar[j] - kj[j];
        t1[j] += d;
        t2[j] += d * d;
      }
    }
  }
}

// The column path's three phases; arguments as for row_path.
template <bool kGrad, class Finalize>
void column_path(const float* a, const float* b, const float* k, float* out, index_t N,
                 index_t C, index_t S, double* s1, double* s2, const Finalize& finalize,
                 const float* p, const float* q, const float* r) {
  const index_t D = C * S;
  // Wide rows: the statistics chunks are column chunks over all rows (one partial row);
  // otherwise fixed chunks of rows, each with its own partial row.
  const bool wide = D >= 2 * kColChunk;
  // Split by columns between the threads when each gets runs of >= kColMin floats per row:
  // whole channels per thread, boundaries on multiples of `unit` channels (16 columns).
  const index_t unit = 16 / std::gcd<index_t>(S, 16);
  const bool by_columns = num_threads() > 1 && !omp_in_parallel() &&
                          D >= kColMin * num_threads() && C >= unit * num_threads() &&
                          D * index_t(sizeof(float)) % 4096 != 0;
  const index_t nb =
      std::max(column_chunk_rows(N, D), ceil_div(kStatGrain, std::max<index_t>(D, 1)));
  const index_t nch = wide ? 1 : ceil_div(N, nb);
  double* p1 = scratch<double, 0>(nch * D);  // every element written below
  double* p2 = scratch<double, 1>(nch * D);
  const float* kp = k;
  if (S > 1) {  // one shift per column; plain loops, not a fill_n call per channel (~10 ns each)
    float* kc = scratch<float, 0>(D);
    for (index_t c = 0; c < C; ++c)
      for (index_t s = 0; s < S; ++s) kc[c * S + s] = k[c];
    kp = kc;
  }
  // Planes of kRowApplyMin floats or more: the element-wise pass by (n, c) rows with the
  // per-channel constants; smaller ones (S > 1) with the constants expanded to one per column
  // (filled per channel block).
  const bool row_apply = S >= kRowApplyMin;
  const float *pp = p, *qp = q, *rp = r;
  float* ex = S > 1 && !row_apply ? scratch<float, 1>(3 * D) : nullptr;
  if (ex) {
    pp = ex;
    qp = ex + D;
    rp = ex + 2 * D;
  }
  // Rows [n0, n1), columns [jb, je) into the partial row q1, q2 (overwritten there).
  auto range = [&](index_t n0, index_t n1, index_t jb, index_t je, double* q1, double* q2) {
    alignas(64) float t1[kColChunk], t2[kColChunk];
    for (index_t r0 = n0; r0 < n1; r0 += kRowBlock) {
      const index_t r1 = std::min(n1, r0 + kRowBlock);
      for (index_t j0 = jb; j0 < je; j0 += kColChunk) {
        const index_t w = std::min(kColChunk, je - j0);
        column_block<kGrad>(a, b, kp, t1, t2, r0, r1, D, j0, w);
        if (r0 == n0) {
#pragma omp simd
          for (index_t j = 0; j < w; ++j) {
            q1[j0 + j] = double(t1[j]);
            q2[j0 + j] = double(t2[j]);
          }
        } else {
#pragma omp simd
          for (index_t j = 0; j < w; ++j) {
            q1[j0 + j] += double(t1[j]);
            q2[j0 + j] += double(t2[j]);
          }
        }
      }
    }
  };
  // Row chunk i (all rows when wide), columns [jb, je), into partial row i.
  auto chunk_stats = [&](index_t i, index_t jb, index_t je) {
    range(wide ? 0 : i * nb, wide ? N : std::min(N, (i + 1) * nb), jb, je, p1 + i * D,
          p2 + i * D);
  };
  auto sums = [&](index_t i) {
    if (wide)
      chunk_stats(0, i * kColChunk, std::min(D, (i + 1) * kColChunk));
    else
      chunk_stats(i, 0, D);
  };
  // Channels [c0, c1): the partial rows added in order, the constants (expanded per column
  // unless row_apply).
  auto channel_range = [&](index_t c0, index_t c1) {
    if (S == 1) {
      std::fill(s1 + c0, s1 + c1, 0.0);
      std::fill(s2 + c0, s2 + c1, 0.0);
      for (index_t ch = 0; ch < nch; ++ch) {
        const double* q1 = p1 + ch * D;
        const double* q2 = p2 + ch * D;
#pragma omp simd
        for (index_t c = c0; c < c1; ++c) {
          s1[c] += q1[c];
          s2[c] += q2[c];
        }
      }
    } else {
      // Per column, the partial rows added in chunk order into the first (nothing reads it
      // afterwards, and the threads' channel ranges are disjoint) ...
      for (index_t ch = 1; ch < nch; ++ch) {
        const double* q1 = p1 + ch * D;
        const double* q2 = p2 + ch * D;
#pragma omp simd
        for (index_t j = c0 * S; j < c1 * S; ++j) {
          p1[j] += q1[j];
          p2[j] += q2[j];
        }
      }
      // ... then each channel's S columns in four interleaved sums, added pairwise: one chain
      // of dependent float64 additions per channel took ~4 cycles an addition ((64, 64, 7, 7),
      // 4 partial rows: ~15 us of a 109 us forward).
      for (index_t c = c0; c < c1; ++c) {
        const double* q1 = p1 + c * S;
        const double* q2 = p2 + c * S;
        double u[4] = {0.0, 0.0, 0.0, 0.0}, v[4] = {0.0, 0.0, 0.0, 0.0};
        index_t s = 0;
        for (; s + 4 <= S; s += 4)
          for (int l = 0; l < 4; ++l) {
            u[l] += q1[s + l];
            v[l] += q2[s + l];
          }
        for (int l = 0; s < S; ++s, ++l) {
          u[l] += q1[s];
          v[l] += q2[s];
        }
        s1[c] = (u[0] + u[1]) + (u[2] + u[3]);
        s2[c] = (v[0] + v[1]) + (v[2] + v[3]);
      }
    }
    finalize(c0, c1);
    if (ex)
      for (index_t c = c0; c < c1; ++c)
        for (index_t s = 0; s < S; ++s) {
          ex[c * S + s] = p[c];
          ex[D + c * S + s] = q[c];
          ex[2 * D + c * S + s] = kGrad ? r[c] : 0.f;
        }
  };
  auto channels = [&](index_t i) {
    channel_range(i * kChannelBlock, std::min(C, (i + 1) * kChannelBlock));
  };
  // The element-wise pass by the row chunks of the statistics (not wide): with the static
  // schedule each thread reads back the rows it summed.
  // Rows [n0, n1), columns [j0, j0 + w).
  auto apply_rows = [&](index_t n0, index_t n1, index_t j0, index_t w) {
    if (row_apply) {
      const index_t ca = j0 / S, cb = (j0 + w) / S;
      for (index_t n = n0; n < n1; ++n)
        for (index_t c = ca; c < cb; ++c) {
          const index_t o = n * D + c * S;
          affine_row<kGrad>(kGrad ? a + o : nullptr, (kGrad ? b : a) + o, out + o, S, p[c], q[c],
                            kGrad ? r[c] : 0.f);
        }
      return;
    }
    affine_cols_rows<kGrad>(kGrad ? a : nullptr, kGrad ? b : a, out, D, n0, n1, j0, w, pp, qp,
                            rp);
  };
  auto apply = [&](index_t i) { apply_rows(i * nb, std::min(N, (i + 1) * nb), 0, D); };
  if (by_columns) {
    // Each thread owns the channels [c0, c1), whose columns start on a multiple of 16 (one
    // 64-byte line apart when the rows are aligned), and does all three phases on them.
#pragma omp parallel num_threads(num_threads())
    {
      const index_t t = omp_get_thread_num(), nt = omp_get_num_threads();
      const index_t c0 = std::min(C, C * t / nt / unit * unit);
      const index_t c1 = t + 1 == nt ? C : std::min(C, C * (t + 1) / nt / unit * unit);
      if (c0 < c1) {
        // the same row chunks and partial rows as the row-chunk statistics: identical sums
        for (index_t i = 0; i < nch; ++i) chunk_stats(i, c0 * S, c1 * S);
        channel_range(c0, c1);
        apply_rows(0, N, c0 * S, (c1 - c0) * S);
      }
    }
    return;
  }
  three_phases(wide ? ceil_div(D, kColChunk) : nch, sums, ceil_div(C, kChannelBlock), channels,
               ceil_div(N, nb), apply);
}

}  // namespace

std::size_t batchnorm_stream_min_bytes() { return stream_min_bytes(); }

void batchnorm_forward_train(const float* x, const float* gamma, const float* beta, float* y,
                             float* save_mean, float* save_invstd, float* running_mean,
                             float* running_var, index_t N, index_t C, index_t S,
                             float momentum, float eps) {
  FASTNN_CHECK(N * S >= 2, "batchnorm_forward_train: expected more than one value per channel");
  const TrainOut o{gamma, beta, save_mean, save_invstd, running_mean, running_var,
                   double(momentum), double(eps), double(N) * double(S)};
  float *k = scratch<float, 2>(C), *scale = scratch<float, 3>(C), *shift = scratch<float, 4>(C);
  double *s1 = scratch<double, 2>(C), *s2 = scratch<double, 3>(C);
  for (index_t c = 0; c < C; ++c) k[c] = x[c * S];
  auto finalize = [&](index_t c0, index_t c1) { finalize_train(o, k, s1, s2, scale, shift, c0, c1); };
  if (row_sums_path(N, S))
    row_path<false>(x, nullptr, k, y, N, C, S, s1, s2, finalize, scale, shift, nullptr);
  else
    column_path<false>(x, nullptr, k, y, N, C, S, s1, s2, finalize, scale, shift, nullptr);
}

void batchnorm_forward_eval(const float* x, const float* gamma, const float* beta,
                            const float* running_mean, const float* running_var, float* y,
                            float* save_mean, float* save_invstd, index_t N, index_t C,
                            index_t S, float eps) {
  const index_t D = C * S;
  const bool columns = S > 1 && S < kRowApplyMin;  // one constant per column of the (N, C*S) view
  float* scale = scratch<float, 3>(columns ? D : C);
  float* shift = scratch<float, 4>(columns ? D : C);
  std::copy(running_mean, running_mean + C, save_mean);
#pragma omp simd
  for (index_t c = 0; c < C; ++c) {
    const double invstd = 1.0 / std::sqrt(double(running_var[c]) + double(eps));
    const double sc = gamma ? double(gamma[c]) * invstd : invstd;
    save_invstd[c] = float(invstd);
    scale[c] = float(sc);
    shift[c] = float((beta ? double(beta[c]) : 0.0) - double(running_mean[c]) * sc);
  }
  if (columns)  // expanded in place, from the last channel down
    for (index_t c = C - 1; c >= 0; --c)
      for (index_t s = S - 1; s >= 0; --s) {
        scale[c * S + s] = scale[c];
        shift[c * S + s] = shift[c];
      }
  if (S >= kRowApplyMin) {
    parallel_chunks(N * C, std::max<index_t>(1, kElemGrain / S), [&](index_t t0, index_t t1) {
      for (index_t t = t0, c = t0 % C; t < t1; ++t, c = c + 1 == C ? 0 : c + 1)
        affine_row<false>(nullptr, x + t * S, y + t * S, S, scale[c], shift[c], 0.f);
    });
  } else {
    parallel_chunks(N, column_chunk_rows(N, D), [&](index_t n0, index_t n1) {
      affine_cols_rows<false>(nullptr, x, y, D, n0, n1, 0, D, scale, shift, nullptr);
    });
  }
}

void batchnorm_backward(const float* dy, const float* x, const float* gamma,
                        const float* save_mean, const float* save_invstd, float* dx,
                        float* dgamma, float* dbeta, index_t N, index_t C, index_t S,
                        bool training) {
  const double M = double(N) * double(S);
  const double inv_m = training && M > 0 ? 1.0 / M : 0.0;
  double *s1 = scratch<double, 2>(C), *s2 = scratch<double, 3>(C);
  float *a = scratch<float, 2>(C), *b = scratch<float, 3>(C), *cc = scratch<float, 4>(C);
  auto finalize = [&](index_t c0, index_t c1) {
    finalize_backward(gamma, save_mean, save_invstd, s1, s2, dgamma, dbeta, a, b, cc, inv_m, c0, c1);
  };
  if (row_sums_path(N, S))
    row_path<true>(dy, x, save_mean, dx, N, C, S, s1, s2, finalize, a, b, cc);
  else
    column_path<true>(dy, x, save_mean, dx, N, C, S, s1, s2, finalize, a, b, cc);
}

}  // namespace fastnn
