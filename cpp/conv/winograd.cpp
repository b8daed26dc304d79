// Winograd F(2x2, 3x3) (Lavin & Gray 2015): each 2x2 output tile comes from a 4x4 input
// tile; V = Bᵀ d B per input channel, U = G g Gᵀ per filter, M = Σ_c U ⊙ V as 16 GEMMs
// (Cout x Cin) · (Cin x tiles), then y = Aᵀ M A.
//
// Workspace (grown on demand, never freed): per thread, the zero-bordered sample block
// (nb · cin · (2·th+2) · (2·tw+2) floats) and V, M (16 · (cin + cout) · T floats, T = nb·th·tw
// tiles of the block, about kTiles); on the calling thread U (16 · cout · cin floats) and, for
// dx, the flipped weights (cout · cin · 9 floats).
#include "conv/winograd.h"
#include "common/gemm.h"
#include <cstring>
#include <vector>

namespace fastnn {
namespace {

#ifndef FASTNN_WINO_TILES
#define FASTNN_WINO_TILES 256
#endif
constexpr index_t kTiles = FASTNN_WINO_TILES;  // tiles per block (V and M of a block stay near L2)

thread_local std::vector<float> t_xpad, t_v, t_m, t_row;
thread_local std::vector<float> t_u, t_wflip;

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

struct Tiles {
  index_t th, tw, hp, wp;  // tiles per column/row; padded height/width (2·th+2, 2·tw+2)
};

// Winograd convolution of x (n, cin, h, w) with U, padding (ph, pw), 3x3, stride 1, into
// y (n, cout, ho, wo) (+ b): overwritten.
void run(const float* x, const float* u, const float* b, float* y, index_t n, index_t cin,
         index_t h, index_t w, index_t cout, index_t ph, index_t pw) {
  const index_t ho = h + 2 * ph - 2, wo = w + 2 * pw - 2;
  Tiles t{ceil_div(ho, 2), ceil_div(wo, 2), 0, 0};
  t.hp = 2 * t.th + 2; t.wp = 2 * t.tw + 2;
  const index_t per = t.th * t.tw;
  const index_t nb = std::max<index_t>(1, std::min<index_t>(n, kTiles / per));
  parallel_chunks_dynamic(n, nb, [&](index_t n0, index_t n1) {
    // Locals, not members of a captured struct: stores through float pointers would
    // otherwise force reloads that stop the loops from vectorising.
    const index_t th = t.th, tw = t.tw, hp = t.hp, wp = t.wp;
    const index_t nbk = n1 - n0, T = nbk * per;
    // Zero-bordered copy: rows [ph, ph+h) and columns [pw, pw+w) hold x, the rest zeros
    // (including the extra bottom/right row a tile of an odd-sized output reaches).
    float* xp = grow(t_xpad, nbk * cin * hp * wp);
    for (index_t q = 0; q < nbk * cin; ++q) {
      float* d = xp + q * hp * wp;
      const float* src = x + (n0 * cin + q) * h * w;
      std::memset(d, 0, sizeof(float) * hp * wp);
      for (index_t i = 0; i < h; ++i)
        std::memcpy(d + (i + ph) * wp + pw, src + i * w, sizeof(float) * w);
    }
    // V[ξ][c][tile] = Bᵀ d B, vectorised over the tiles of one tile row: first Bᵀ over
    // whole padded rows (unit stride), then B across the columns of each tile.
    float* v = grow(t_v, 16 * cin * T);
    float* e = grow(t_row, 4 * wp + 8 * tw);
    const index_t xi = cin * T;  // stride between the 16 V matrices
    for (index_t i = 0; i < nbk; ++i)
      for (index_t c = 0; c < cin; ++c) {
        const float* plane = xp + (i * cin + c) * hp * wp;
        for (index_t ti = 0; ti < th; ++ti) {
          const float* __restrict r0 = plane + 2 * ti * wp;
          const float* __restrict r1 = r0 + wp;
          const float* __restrict r2 = r1 + wp;
          const float* __restrict r3 = r2 + wp;
          float* __restrict e0 = e;
          float* __restrict e1 = e + wp;
          float* __restrict e2 = e + 2 * wp;
          float* __restrict e3 = e + 3 * wp;
          input_rows(r0, r1, r2, r3, wp, e0, e1, e2, e3);
          float* __restrict out = v + c * T + (i * th + ti) * tw;
          for (int a2 = 0; a2 < 4; ++a2) {
            const float* __restrict ea = e + a2 * wp;
            float* __restrict o0 = out + (a2 * 4 + 0) * xi;
            float* __restrict o1 = out + (a2 * 4 + 1) * xi;
            float* __restrict o2 = out + (a2 * 4 + 2) * xi;
            float* __restrict o3 = out + (a2 * 4 + 3) * xi;
            for (index_t tj = 0; tj < tw; ++tj) {
              const float d0 = ea[2 * tj], d1 = ea[2 * tj + 1], d2 = ea[2 * tj + 2], d3 = ea[2 * tj + 3];
              o0[tj] = d0 - d2;
              o1[tj] = d1 + d2;
              o2[tj] = d2 - d1;
              o3[tj] = d1 - d3;
            }
          }
        }
      }
    // M[ξ] = U[ξ] (cout x cin) · V[ξ] (cin x T).
    float* m = grow(t_m, 16 * cout * T);
    for (int xi = 0; xi < 16; ++xi)
      gemm_serial(false, false, cout, T, cin, 1.f, u + xi * cout * cin, cin, v + xi * cin * T, T,
                  0.f, m + xi * cout * T, T);
    // y = Aᵀ M A (+ b), clipped to (ho, wo): Aᵀ over the 16 M rows of a tile row (unit
    // stride over tiles), then the 2x2 outputs interleaved into y.
    const index_t mx = cout * T;
    float* z = e + 4 * wp;  // 4 rows of tw: outputs (0,0), (0,1), (1,0), (1,1) of each tile
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
