// conv2d forward/backward. 3x3 stride-1 layers with >= 16 channels go to Winograd
// F(2x2,3x3) (winograd.cpp); the rest: per sample block, im2col (through a zero-bordered copy
// of the sample) into a reused per-thread workspace, then one Eigen GEMM per group
// (fastnn::gemm_serial) inside a parallel loop over blocks.
//
// Workspace of this path (never freed, grown on demand, so nothing is allocated per call
// once warm):
//  - per OpenMP thread: col (cin*kh*kw x nb*ho*wo floats), one (cout x nb*ho*wo) buffer for
//    a multi-sample forward output block / gathered dy block (nb > 1 only), and the padded
//    sample (cin*(h+2ph)*(w+2pw)). nb is 1 when ho*wo >= kBlockCols/2, else up to
//    kBlockCols/(ho*wo) samples; a 1x1 stride-1 unpadded layer with nb = 1 needs no col.
//  - on the calling thread, backward only: (kRanges-1) partial weight gradients
//    (cout * cin/groups * kh*kw floats each) and kRanges*cout doubles for db.
// Largest among the benchmark shapes on this path: cifar_s2, 0.84 MiB per thread and
// 1.98 MiB on the calling thread.
#include "conv/conv2d.h"
#include "common/gemm.h"
#include "conv/winograd.h"
#include <cstring>
#include <vector>

namespace fastnn {
namespace {

#ifndef FASTNN_CONV_BLOCK_COLS
#define FASTNN_CONV_BLOCK_COLS 512
#endif
constexpr index_t kBlockCols = FASTNN_CONV_BLOCK_COLS;  // columns per GEMM: amortizes packing W
constexpr index_t kRanges = 8;       // fixed sample ranges for the dw/db reduction

float* grow(std::vector<float>& v, index_t n) {
  if (index_t(v.size()) < n) v.resize(size_t(n));
  return v.data();
}

thread_local std::vector<float> t_col, t_buf;  // per-thread blocks (see header comment)
thread_local std::vector<float> t_pad;         // per-thread padded sample (im2col/col2im)
thread_local std::vector<float> t_dw_part;     // calling thread: partial dw of ranges 1..R-1
thread_local std::vector<double> t_db_part;    // calling thread: partial db per range

// Sum of n floats in double, in a fixed order: 32 interleaved partial sums (vectorisable,
// not bound by the add latency as one running sum is), then combined in index order.
inline double row_sum(const float* r, index_t n) {
  constexpr int L = 32;
  double acc[L] = {};
  index_t p = 0;
  for (; p + L <= n; p += L)
    for (int j = 0; j < L; ++j) acc[j] += r[p + j];
  double s = 0.0;
  for (int j = 0; j < L; ++j) s += acc[j];
  for (; p < n; ++p) s += r[p];
  return s;
}

struct Geo {
  index_t P, K, Kg, coutg, cing, ho, wo;
  bool direct;  // 1x1, stride 1, no padding: the input plane is already the col matrix
};

Geo geometry(const Conv2dShape& s) {
  Geo g;
  g.ho = s.ho(); g.wo = s.wo(); g.P = g.ho * g.wo;
  g.cing = s.cin / s.groups; g.coutg = s.cout / s.groups;
  g.Kg = g.cing * s.kh * s.kw; g.K = s.cin * s.kh * s.kw;
  g.direct = s.kh == 1 && s.kw == 1 && s.sh == 1 && s.sw == 1 && s.ph == 0 && s.pw == 0;
  return g;
}

index_t block_samples(const Conv2dShape& s, const Geo& g) {
  if (g.P >= kBlockCols / 2) return 1;
  return std::max<index_t>(1, std::min<index_t>(s.n, kBlockCols / g.P));
}

// x of one sample with its zero border (cin x (h+2ph) x (w+2pw)), so that im2col and
// col2im need no bounds tests: every (oh, ki) / (ow, kj) pair lands inside. Without padding,
// x itself. The copy is one pass over x, k² times smaller than the col matrix.
const float* padded(const float* x, const Conv2dShape& s) {
  if (s.ph == 0 && s.pw == 0) return x;
  const index_t hp = s.h + 2 * s.ph, wp = s.w + 2 * s.pw;
  float* xp = grow(t_pad, s.cin * hp * wp);
  for (index_t c = 0; c < s.cin; ++c) {
    float* d = xp + c * hp * wp;
    std::memset(d, 0, sizeof(float) * s.ph * wp);
    for (index_t i = 0; i < s.h; ++i) {
      float* r = d + (i + s.ph) * wp;
      for (index_t j = 0; j < s.pw; ++j) r[j] = r[s.pw + s.w + j] = 0.f;
      std::memcpy(r + s.pw, x + (c * s.h + i) * s.w, sizeof(float) * s.w);
    }
    std::memset(d + (s.ph + s.h) * wp, 0, sizeof(float) * s.ph * wp);
  }
  return xp;
}

// col rows (c, ki, kj), columns (oh, ow) of one sample, row stride ld: overwritten.
void im2col(const float* x, float* col, index_t ld, const Conv2dShape& s, const Geo& g) {
  const float* src = padded(x, s);
  const index_t hp = s.h + 2 * s.ph, wp = s.w + 2 * s.pw, wo = g.wo, sw = s.sw;
  for (index_t c = 0; c < s.cin; ++c)
    for (index_t ki = 0; ki < s.kh; ++ki)
      for (index_t kj = 0; kj < s.kw; ++kj) {
        float* __restrict dst = col + ((c * s.kh + ki) * s.kw + kj) * ld;
        const float* base = src + (c * hp + ki * s.dh) * wp + kj * s.dw;
        for (index_t oh = 0; oh < g.ho; ++oh) {
          const float* __restrict r = base + oh * s.sh * wp;
          float* __restrict d = dst + oh * wo;
          if (sw == 1) {
            for (index_t ow = 0; ow < wo; ++ow) d[ow] = r[ow];
          } else {
            for (index_t ow = 0; ow < wo; ++ow) d[ow] = r[ow * sw];
          }
        }
      }
}

// dx (one sample) = scatter-add of col (the adjoint of im2col): overwritten. Accumulates
// in a fixed order, into a padded buffer whose interior is then copied out.
void col2im(const float* col, index_t ld, float* dx, const Conv2dShape& s, const Geo& g) {
  const bool pad = s.ph != 0 || s.pw != 0;
  const index_t hp = s.h + 2 * s.ph, wp = s.w + 2 * s.pw, wo = g.wo, sw = s.sw;
  float* dst = pad ? grow(t_pad, s.cin * hp * wp) : dx;
  std::memset(dst, 0, sizeof(float) * s.cin * hp * wp);
  for (index_t c = 0; c < s.cin; ++c)
    for (index_t ki = 0; ki < s.kh; ++ki)
      for (index_t kj = 0; kj < s.kw; ++kj) {
        const float* src = col + ((c * s.kh + ki) * s.kw + kj) * ld;
        float* base = dst + (c * hp + ki * s.dh) * wp + kj * s.dw;
        for (index_t oh = 0; oh < g.ho; ++oh) {
          float* __restrict d = base + oh * s.sh * wp;
          const float* __restrict r = src + oh * wo;
          if (sw == 1) {
            for (index_t ow = 0; ow < wo; ++ow) d[ow] += r[ow];
          } else {
            for (index_t ow = 0; ow < wo; ++ow) d[ow * sw] += r[ow];  // distinct per ow
          }
        }
      }
  if (pad)
    for (index_t c = 0; c < s.cin; ++c)
      for (index_t i = 0; i < s.h; ++i)
        std::memcpy(dx + (c * s.h + i) * s.w, dst + (c * hp + i + s.ph) * wp + s.pw,
                    sizeof(float) * s.w);
}

// Builds the col matrix (K x nbk*P) of samples [n0, n0+nbk); returns it (and its row stride).
const float* make_col(const float* x, index_t n0, index_t nbk, const Conv2dShape& s,
                      const Geo& g, index_t& ld) {
  const index_t xs = s.cin * s.h * s.w;
  if (g.direct && nbk == 1) {
    ld = g.P;
    return x + n0 * xs;
  }
  ld = nbk * g.P;
  float* col = grow(t_col, g.K * ld);
  for (index_t i = 0; i < nbk; ++i) im2col(x + (n0 + i) * xs, col + i * g.P, ld, s, g);
  return col;
}

}  // namespace

void conv2d_forward(const float* x, const float* wgt, const float* b, float* y,
                    const Conv2dShape& s) {
  const Geo g = geometry(s);
  if (s.n <= 0 || g.P <= 0) return;
  if (winograd_applies(s)) {
    winograd_forward(x, wgt, b, y, s);
    return;
  }
  const index_t nb = block_samples(s, g);
  const index_t ys = s.cout * g.P;
  parallel_chunks_dynamic(s.n, nb, [&](index_t n0, index_t n1) {
    const index_t nbk = n1 - n0;
    index_t ld;
    const float* col = make_col(x, n0, nbk, s, g, ld);
    // One sample: GEMM straight into y; several: into a block buffer, then scatter.
    float* out = nbk == 1 ? y + n0 * ys : grow(t_buf, s.cout * ld);
    for (index_t gr = 0; gr < s.groups; ++gr)
      gemm_serial(false, false, g.coutg, ld, g.Kg, 1.f, wgt + gr * g.coutg * g.Kg, g.Kg,
                  col + gr * g.Kg * ld, ld, 0.f, out + gr * g.coutg * ld, ld);
    for (index_t i = 0; i < nbk; ++i) {
      float* yn = y + (n0 + i) * ys;
      for (index_t o = 0; o < s.cout; ++o) {
        float* yr = yn + o * g.P;
        const float bo = b ? b[o] : 0.f;
        if (nbk == 1) {
          if (b) for (index_t p = 0; p < g.P; ++p) yr[p] += bo;
        } else {
          const float* r = out + o * ld + i * g.P;
          for (index_t p = 0; p < g.P; ++p) yr[p] = r[p] + bo;
        }
      }
    }
  });
}

void conv2d_backward(const float* dy, const float* x, const float* wgt, float* dx, float* dw,
                     float* db, const Conv2dShape& s) {
  const Geo g = geometry(s);
  const index_t wsize = s.cout * g.Kg;
  if (s.n <= 0 || g.P <= 0) {
    if (dw) std::memset(dw, 0, sizeof(float) * wsize);
    if (db) std::memset(db, 0, sizeof(float) * s.cout);
    if (dx) std::memset(dx, 0, sizeof(float) * s.n * s.cin * s.h * s.w);
    return;
  }
  if ((dx || dw) && winograd_applies(s)) {
    if (db) conv2d_backward(dy, x, wgt, nullptr, nullptr, db, s);
    if (dw) winograd_backward_dw(dy, x, dw, s);
    if (dx) winograd_backward_dx(dy, wgt, dx, s);
    return;
  }
  const index_t nb = block_samples(s, g);
  const index_t per_range = ceil_div(s.n, kRanges);
  const index_t R = ceil_div(s.n, per_range);
  float* dw_part = dw ? grow(t_dw_part, (R - 1) * wsize) : nullptr;
  if (index_t(t_db_part.size()) < R * s.cout) t_db_part.resize(size_t(R * s.cout));
  double* db_part = t_db_part.data();
  const index_t xs = s.cin * s.h * s.w, ys = s.cout * g.P;

  parallel_chunks(R, 1, [&](index_t r0, index_t r1) {
    for (index_t r = r0; r < r1; ++r) {
      const index_t a = r * per_range, e = std::min(s.n, a + per_range);
      float* dwr = dw ? (r == 0 ? dw : dw_part + (r - 1) * wsize) : nullptr;
      double* dbr = db_part + r * s.cout;
      for (index_t o = 0; o < s.cout; ++o) dbr[o] = 0.0;
      for (index_t n0 = a; n0 < e; n0 += nb) {
        const index_t nbk = std::min(nb, e - n0);
        index_t ld;
        const float* col = dw ? make_col(x, n0, nbk, s, g, ld) : nullptr;
        ld = nbk * g.P;
        // dy of the block as a (cout x nbk*P) matrix.
        const float* dyb;
        if (nbk == 1) {
          dyb = dy + n0 * ys;
        } else {
          float* buf = grow(t_buf, s.cout * ld);
          for (index_t i = 0; i < nbk; ++i)
            for (index_t o = 0; o < s.cout; ++o)
              std::memcpy(buf + o * ld + i * g.P, dy + (n0 + i) * ys + o * g.P,
                          sizeof(float) * g.P);
          dyb = buf;
        }
        if (dw) {
          const float beta = n0 == a ? 0.f : 1.f;
          for (index_t gr = 0; gr < s.groups; ++gr)
            gemm_serial(false, true, g.coutg, g.Kg, ld, 1.f, dyb + gr * g.coutg * ld, ld,
                        col + gr * g.Kg * ld, ld, beta, dwr + gr * g.coutg * g.Kg, g.Kg);
        }
        if (db)
          for (index_t o = 0; o < s.cout; ++o) dbr[o] += row_sum(dyb + o * ld, ld);
        if (dx) {
          if (g.direct && nbk == 1) {
            for (index_t gr = 0; gr < s.groups; ++gr)
              gemm_serial(true, false, g.Kg, g.P, g.coutg, 1.f, wgt + gr * g.coutg * g.Kg, g.Kg,
                          dyb + gr * g.coutg * g.P, g.P, 0.f, dx + n0 * xs + gr * g.Kg * g.P, g.P);
          } else {
            // dcol = Wᵀ dy overwrites the col block (already consumed by dw).
            float* dcol = grow(t_col, g.K * ld);
            for (index_t gr = 0; gr < s.groups; ++gr)
              gemm_serial(true, false, g.Kg, ld, g.coutg, 1.f, wgt + gr * g.coutg * g.Kg, g.Kg,
                          dyb + gr * g.coutg * ld, ld, 0.f, dcol + gr * g.Kg * ld, ld);
            for (index_t i = 0; i < nbk; ++i) col2im(dcol + i * g.P, ld, dx + (n0 + i) * xs, s, g);
          }
        }
      }
    }
  });

  if (dw && R > 1) {
    parallel_chunks(wsize, kElemGrain, [&](index_t i0, index_t i1) {
      for (index_t r = 1; r < R; ++r) {
        const float* p = dw_part + (r - 1) * wsize;
        for (index_t i = i0; i < i1; ++i) dw[i] += p[i];
      }
    });
  }
  if (db) {
    for (index_t o = 0; o < s.cout; ++o) {
      double acc = 0.0;
      for (index_t r = 0; r < R; ++r) acc += db_part[r * s.cout + o];
      db[o] = float(acc);
    }
  }
}

}  // namespace fastnn
