// Winograd F(2x2, 3x3) (Lavin & Gray 2015): each 2x2 output tile comes from a 4x4 input
// tile; V = Bᵀ d B per input channel, U = G g Gᵀ per filter, M = Σ_c U ⊙ V as 16 GEMMs
// (Cout x Cin) · (Cin x tiles), then y = Aᵀ M A.
//
// Workspace (grown on demand, never freed; T = nb·th·tw tiles of a sample block, about
// kTiles; th, tw = ceil(ho/2), ceil(wo/2)). Per thread: the zero-bordered block
// (nb·C·(2th+2)·(2tw+2) floats, C = cin, or cout for dx), V (16·C·T), M or the transformed dy
// (16·C'·T, C' = cout, or cin for dx) and, for dw, an accumulator 16·cout·cin. On the calling
// thread: U (16·cout·cin), the flipped weights for dx (9·cout·cin) and the dw partials of
// ranges 1..3 (3·9·cout·cin). Largest among the benchmark shapes: cifar_c4, 8.8 MiB per
// thread plus 13.0 MiB on the calling thread; cifar_c2 2.5 + 0.8 MiB.
#include "conv/winograd.h"
#include "common/gemm.h"
#include <cstring>
#include <vector>

namespace fastnn {
namespace {

#ifndef FASTNN_WINO_DW_TILES
#define FASTNN_WINO_DW_TILES 128
#endif
#ifndef FASTNN_WINO_TILES
#define FASTNN_WINO_TILES 128
#endif
constexpr index_t kDwRanges = 4;  // fixed sample ranges of the dw reduction
constexpr index_t kTiles = FASTNN_WINO_TILES;  // tiles per block: 128 beat 256 on cifar_c3/c4

thread_local std::vector<float> t_xpad, t_v, t_m, t_row;
thread_local std::vector<float> t_u, t_wflip, t_dw_part;
thread_local std::vector<float> t_acc;  // per thread: 16 x cout x cin dw accumulator

float* grow(std::vector<float>& v, index_t n) {
  if (index_t(v.size()) < n) v.resize(size_t(n));
  return v.data();
}

// U[ξ][o][c] = (G g Gᵀ)[ξ] for the 3x3 filter g = w[o][c]: overwritten.
void transform_weights(const float* w, float* u, index_t cout, index_t cin) {
  const index_t oc = cout * cin;
  for (index_t i = 0; i < oc; ++i) {
    const float* g = w + i * 9;
    float t[4][3];  // G g
    for (int j = 0; j < 3; ++j) {
      t[0][j] = g[j];
      t[1][j] = 0.5f * (g[j] + g[3 + j] + g[6 + j]);
      t[2][j] = 0.5f * (g[j] - g[3 + j] + g[6 + j]);
      t[3][j] = g[6 + j];
    }
    for (int a = 0; a < 4; ++a) {  // (G g) Gᵀ
      u[(a * 4 + 0) * oc + i] = t[a][0];
      u[(a * 4 + 1) * oc + i] = 0.5f * (t[a][0] + t[a][1] + t[a][2]);
      u[(a * 4 + 2) * oc + i] = 0.5f * (t[a][0] - t[a][1] + t[a][2]);
      u[(a * 4 + 3) * oc + i] = t[a][2];
    }
  }
}

// Bᵀ over four padded input rows (unit stride): overwritten e0..e3.
void input_rows(const float* __restrict r0, const float* __restrict r1,
                const float* __restrict r2, const float* __restrict r3, index_t wp,
                float* __restrict e0, float* __restrict e1, float* __restrict e2,
                float* __restrict e3) {
  for (index_t k = 0; k < wp; ++k) {
    e0[k] = r0[k] - r2[k];
    e1[k] = r1[k] + r2[k];
    e2[k] = r2[k] - r1[k];
    e3[k] = r1[k] - r3[k];
  }
}

// B across the columns of each tile of one Bᵀ row: out[k·xi + tj], k = 0..3: overwritten.
void input_cols(const float* __restrict ea, index_t tw, float* __restrict out, index_t xi) {
  for (index_t tj = 0; tj < tw; ++tj) {
    const float d0 = ea[2 * tj], d1 = ea[2 * tj + 1], d2 = ea[2 * tj + 2], d3 = ea[2 * tj + 3];
    out[tj] = d0 - d2;
    out[xi + tj] = d1 + d2;
    out[2 * xi + tj] = d2 - d1;
    out[3 * xi + tj] = d1 - d3;
  }
}

// A over a dy row pair (q0, q1) of n values: f0 = q0, f1 = q0+q1, f2 = q0-q1, f3 = -q1.
void dy_rows(const float* __restrict q0, const float* __restrict q1, index_t n,
             float* __restrict f0, float* __restrict f1, float* __restrict f2,
             float* __restrict f3) {
  for (index_t k = 0; k < n; ++k) {
    f0[k] = q0[k];
    f1[k] = q0[k] + q1[k];
    f2[k] = q0[k] - q1[k];
    f3[k] = -q1[k];
  }
}

// Aᵀ across the 2 columns of each tile of one row: out[k·xi + tj]: overwritten.
void dy_cols(const float* __restrict fa, index_t tw, float* __restrict out, index_t xi) {
  for (index_t tj = 0; tj < tw; ++tj) {
    const float a = fa[2 * tj], b = fa[2 * tj + 1];
    out[tj] = a;
    out[xi + tj] = a + b;
    out[2 * xi + tj] = a - b;
    out[3 * xi + tj] = -b;
  }
}

// Aᵀ M A for one tile row: M rows ξ = 4a + k at mr + ξ·mx; z rows (0,0), (0,1), (1,0), (1,1)
// of tw floats each: overwritten. A separate function so gcc sees the restrict pointers
// (inside the parallel lambda it did not vectorise this loop).
void output_row(const float* __restrict mr, index_t mx, index_t tw, float bo,
                float* __restrict z) {
  for (index_t tj = 0; tj < tw; ++tj) {
    float s[4], t[4];
    for (int k = 0; k < 4; ++k) {
      s[k] = mr[k * mx + tj] + mr[(4 + k) * mx + tj] + mr[(8 + k) * mx + tj];
      t[k] = mr[(4 + k) * mx + tj] - mr[(8 + k) * mx + tj] - mr[(12 + k) * mx + tj];
    }
    z[tj] = s[0] + s[1] + s[2] + bo;
    z[tw + tj] = s[1] - s[2] - s[3] + bo;
    z[2 * tw + tj] = t[0] + t[1] + t[2] + bo;
    z[3 * tw + tj] = t[1] - t[2] - t[3] + bo;
  }
}

// V[ξ][c][tile] = Bᵀ d B for the 4x4 input tiles (stride 2, tiles ordered (sample, ti, tj))
// of nbk samples x (nbk, cin, h, w) with padding (ph, pw): returns the per-thread V buffer
// (16 matrices of cin x T). Vectorised over the tiles of one tile row: Bᵀ over whole padded
// rows (unit stride) first, then B across the columns of each tile.
float* transform_input(const float* x, index_t nbk, index_t cin, index_t h, index_t w,
                       index_t ph, index_t pw, index_t th, index_t tw, index_t T) {
  const index_t hp = 2 * th + 2, wp = 2 * tw + 2;
  // Zero-bordered copy: rows [ph, ph+h) and columns [pw, pw+w) hold x, the rest zeros
  // (including the extra bottom/right row a tile of an odd-sized output reaches).
  float* xp = grow(t_xpad, nbk * cin * hp * wp);
  for (index_t q = 0; q < nbk * cin; ++q) {
    float* d = xp + q * hp * wp;
    const float* src = x + q * h * w;
    std::memset(d, 0, sizeof(float) * hp * wp);
    for (index_t i = 0; i < h; ++i)
      std::memcpy(d + (i + ph) * wp + pw, src + i * w, sizeof(float) * w);
  }
  float* v = grow(t_v, 16 * cin * T);
  float* e = grow(t_row, 4 * wp + 8 * tw);
  const index_t xi = cin * T;  // stride between the 16 V matrices
  for (index_t i = 0; i < nbk; ++i)
    for (index_t c = 0; c < cin; ++c) {
      const float* plane = xp + (i * cin + c) * hp * wp;
      for (index_t ti = 0; ti < th; ++ti) {
        const float* r0 = plane + 2 * ti * wp;
        input_rows(r0, r0 + wp, r0 + 2 * wp, r0 + 3 * wp, wp, e, e + wp, e + 2 * wp, e + 3 * wp);
        float* out = v + c * T + (i * th + ti) * tw;
        for (int a = 0; a < 4; ++a) input_cols(e + a * wp, tw, out + a * 4 * xi, xi);
      }
    }
  return v;
}

// (A dy Aᵀ) for the 2x2 tiles of nbk samples of dy (nbk, cout, ho, wo), zeros past ho/wo:
// returns the per-thread buffer of 16 matrices cout x T (T = nbk·th·tw).
float* transform_dy(const float* dy, index_t nbk, index_t cout, index_t ho, index_t wo,
                    index_t th, index_t tw, index_t T) {
  float* g = grow(t_m, 16 * cout * T);
  float* f = grow(t_row, 4 * 2 * tw + 2 * 2 * tw);
  float* q0 = f + 8 * tw;  // one zero-extended dy row pair
  float* q1 = q0 + 2 * tw;
  const index_t xi = cout * T;
  for (index_t i = 0; i < nbk; ++i)
    for (index_t o = 0; o < cout; ++o) {
      const float* plane = dy + (i * cout + o) * ho * wo;
      for (index_t ti = 0; ti < th; ++ti) {
        std::memset(q0, 0, sizeof(float) * 4 * tw);
        std::memcpy(q0, plane + 2 * ti * wo, sizeof(float) * wo);
        if (2 * ti + 1 < ho) std::memcpy(q1, plane + (2 * ti + 1) * wo, sizeof(float) * wo);
        dy_rows(q0, q1, 2 * tw, f, f + 2 * tw, f + 4 * tw, f + 6 * tw);
        float* out = g + o * T + (i * th + ti) * tw;
        for (int a = 0; a < 4; ++a) dy_cols(f + a * 2 * tw, tw, out + a * 4 * xi, xi);
      }
    }
  return g;
}

// Winograd convolution of x (n, cin, h, w) with U, padding (ph, pw), 3x3, stride 1, into
// y (n, cout, ho, wo) (+ b): overwritten.
void run(const float* x, const float* u, const float* b, float* y, index_t n, index_t cin,
         index_t h, index_t w, index_t cout, index_t ph, index_t pw) {
  const index_t ho = h + 2 * ph - 2, wo = w + 2 * pw - 2;
  const index_t tiles_h = ceil_div(ho, 2), tiles_w = ceil_div(wo, 2), per = tiles_h * tiles_w;
  const index_t nb = std::max<index_t>(1, std::min<index_t>(n, kTiles / per));
  parallel_chunks_dynamic(n, nb, [&](index_t n0, index_t n1) {
    // Local copies, not the captured variables: stores through float pointers would
    // otherwise force reloads that stop the loops from vectorising.
    const index_t th = tiles_h, tw = tiles_w, wp = 2 * tiles_w + 2;
    const index_t nbk = n1 - n0, T = nbk * per;
    float* v = transform_input(x + n0 * cin * h * w, nbk, cin, h, w, ph, pw, th, tw, T);
    // M[ξ] = U[ξ] (cout x cin) · V[ξ] (cin x T).
    float* m = grow(t_m, 16 * cout * T);
    for (int xi = 0; xi < 16; ++xi)
      gemm_serial(false, false, cout, T, cin, 1.f, u + xi * cout * cin, cin, v + xi * cin * T, T,
                  0.f, m + xi * cout * T, T);
    // y = Aᵀ M A (+ b), clipped to (ho, wo): Aᵀ over the 16 M rows of a tile row (unit
    // stride over tiles), then the 2x2 outputs interleaved into y.
    const index_t mx = cout * T;
    // 4 rows of tw: outputs (0,0), (0,1), (1,0), (1,1) of each tile (t_row was sized by
    // transform_input for 4·wp + 8·tw floats).
    float* z = t_row.data() + 4 * wp;
    for (index_t i = 0; i < nbk; ++i)
      for (index_t o = 0; o < cout; ++o) {
        float* yp = y + ((n0 + i) * cout + o) * ho * wo;
        const float bo = b ? b[o] : 0.f;
        for (index_t ti = 0; ti < th; ++ti) {
          const float* __restrict mr = m + o * T + (i * th + ti) * tw;
          const float* z00 = z;
          const float* z01 = z + tw;
          const float* z10 = z + 2 * tw;
          const float* z11 = z + 3 * tw;
          output_row(mr, mx, tw, bo, z);
          float* y0 = yp + 2 * ti * wo;
          const index_t full = wo / 2;  // tiles whose two columns are both inside
          for (index_t tj = 0; tj < full; ++tj) { y0[2 * tj] = z00[tj]; y0[2 * tj + 1] = z01[tj]; }
          if (wo & 1) y0[wo - 1] = z00[full];
          if (2 * ti + 1 < ho) {
            float* y1 = y0 + wo;
            for (index_t tj = 0; tj < full; ++tj) { y1[2 * tj] = z10[tj]; y1[2 * tj + 1] = z11[tj]; }
            if (wo & 1) y1[wo - 1] = z10[full];
          }
        }
      }
  });
}

}  // namespace

bool winograd_applies(const Conv2dShape& s) {
  // Enough channels for the 16 GEMMs to pay for the transforms; padding <= 2 so that dx is
  // a Winograd convolution too (padding 2 - p).
  return s.kh == 3 && s.kw == 3 && s.sh == 1 && s.sw == 1 && s.dh == 1 && s.dw == 1 &&
         s.groups == 1 && s.cin >= 16 && s.cout >= 16 && s.ph <= 2 && s.pw <= 2 &&
         s.h + 2 * s.ph >= 4 && s.w + 2 * s.pw >= 4;
}

void winograd_forward(const float* x, const float* wgt, const float* b, float* y,
                      const Conv2dShape& s) {
  if (s.n <= 0) return;
  float* u = grow(t_u, 16 * s.cout * s.cin);
  transform_weights(wgt, u, s.cout, s.cin);
  run(x, u, b, y, s.n, s.cin, s.h, s.w, s.cout, s.ph, s.pw);
}

void winograd_backward_dx(const float* dy, const float* wgt, float* dx, const Conv2dShape& s) {
  if (s.n <= 0) return;
  // dx[c] = Σ_o dy[o] ⋆ rot180(w[o][c]): filters (cin, cout, 3, 3), flipped.
  float* wf = grow(t_wflip, s.cout * s.cin * 9);
  for (index_t o = 0; o < s.cout; ++o)
    for (index_t c = 0; c < s.cin; ++c)
      for (int k = 0; k < 9; ++k) wf[(c * s.cout + o) * 9 + k] = wgt[(o * s.cin + c) * 9 + 8 - k];
  float* u = grow(t_u, 16 * s.cout * s.cin);
  transform_weights(wf, u, s.cin, s.cout);
  run(dy, u, nullptr, dx, s.n, s.cout, s.ho(), s.wo(), s.cin, 2 - s.ph, 2 - s.pw);
}

}  // namespace fastnn

namespace fastnn {

void winograd_backward_dw(const float* dy, const float* x, float* dw, const Conv2dShape& s) {
  const index_t cin = s.cin, cout = s.cout, oc = cout * cin;
  const index_t ho = s.ho(), wo = s.wo(), th = ceil_div(ho, 2), tw = ceil_div(wo, 2);
  const index_t per = th * tw;
  if (s.n <= 0) {
    std::memset(dw, 0, sizeof(float) * oc * 9);
    return;
  }
  // Fixed sample ranges (independent of the thread count), each summed in order into its
  // own 16 x cout x cin accumulator, transformed to 3x3, then the ranges added in order.
  const index_t per_range = ceil_div(s.n, kDwRanges), R = ceil_div(s.n, per_range);
  const index_t nb = std::max<index_t>(1, FASTNN_WINO_DW_TILES / per);
  float* parts = grow(t_dw_part, (R - 1) * oc * 9);
  parallel_chunks(R, 1, [&](index_t r0, index_t r1) {
    float* acc = grow(t_acc, 16 * oc);
    for (index_t r = r0; r < r1; ++r) {
      const index_t a = r * per_range, e = std::min(s.n, a + per_range);
      for (index_t n0 = a; n0 < e; n0 += nb) {
        const index_t nbk = std::min(nb, e - n0), T = nbk * per;
        const float* v = transform_input(x + n0 * cin * s.h * s.w, nbk, cin, s.h, s.w, s.ph,
                                         s.pw, th, tw, T);
        const float* g = transform_dy(dy + n0 * cout * ho * wo, nbk, cout, ho, wo, th, tw, T);
        // acc[ξ] (cout x cin) (+)= G[ξ] (cout x T) · V[ξ]ᵀ (T x cin)
        for (int xi = 0; xi < 16; ++xi)
          gemm_serial(false, true, cout, cin, T, 1.f, g + xi * cout * T, T, v + xi * cin * T, T,
                      n0 == a ? 0.f : 1.f, acc + xi * oc, cin);
      }
      // dw = Gᵀ acc G (4x4 -> 3x3) per filter; G = [[1,0,0],[½,½,½],[½,-½,½],[0,0,1]].
      float* out = r == 0 ? dw : parts + (r - 1) * oc * 9;
      for (index_t i = 0; i < oc; ++i) {
        float m[4][4], t[3][4];
        for (int k = 0; k < 16; ++k) m[k / 4][k % 4] = acc[k * oc + i];
        for (int b = 0; b < 4; ++b) {
          t[0][b] = m[0][b] + 0.5f * (m[1][b] + m[2][b]);
          t[1][b] = 0.5f * (m[1][b] - m[2][b]);
          t[2][b] = 0.5f * (m[1][b] + m[2][b]) + m[3][b];
        }
        float* d = out + i * 9;
        for (int a2 = 0; a2 < 3; ++a2) {
          d[a2 * 3 + 0] = t[a2][0] + 0.5f * (t[a2][1] + t[a2][2]);
          d[a2 * 3 + 1] = 0.5f * (t[a2][1] - t[a2][2]);
          d[a2 * 3 + 2] = 0.5f * (t[a2][1] + t[a2][2]) + t[a2][3];
        }
      }
    }
  });
  if (R > 1)
    parallel_chunks(oc * 9, kElemGrain, [&](index_t i0, index_t i1) {
      for (index_t r = 1; r < R; ++r) {
        const float* p = parts + (r - 1) * oc * 9;
        for (index_t i = i0; i < i1; ++i) dw[i] += p[i];
      }
    });
}

}  // namespace fastnn
