// GEMM wrappers over Eigen's single-threaded kernels, with deterministic panel parallelism.
#include "common/gemm.h"
#include <Eigen/Core>

namespace fastnn {
namespace {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Stride = Eigen::OuterStride<>;
using CMap = Eigen::Map<const RowMat, 0, Stride>;
using MMap = Eigen::Map<RowMat, 0, Stride>;

template <class LA, class LB>
void run(const LA& a, const LB& b, float alpha, float beta, MMap& c) {
  if (beta == 0.f) {
    c.noalias() = alpha * (a * b);
  } else {
    if (beta != 1.f) c *= beta;
    c.noalias() += alpha * (a * b);
  }
}

}  // namespace

void gemm_serial(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, float alpha,
                 const float* A, index_t lda, const float* B, index_t ldb, float beta,
                 float* C, index_t ldc) {
  if (m <= 0 || n <= 0) return;
  MMap c(C, m, n, Stride(ldc));
  if (k <= 0) {
    if (beta == 0.f) c.setZero(); else if (beta != 1.f) c *= beta;
    return;
  }
  // Stored shapes: A is (m x k) or, transposed, (k x m); likewise B.
  CMap a(A, trans_a ? k : m, trans_a ? m : k, Stride(lda));
  CMap b(B, trans_b ? n : k, trans_b ? k : n, Stride(ldb));
  if (!trans_a && !trans_b) run(a, b, alpha, beta, c);
  else if (!trans_a && trans_b) run(a, b.transpose(), alpha, beta, c);
  else if (trans_a && !trans_b) run(a.transpose(), b, alpha, beta, c);
  else run(a.transpose(), b.transpose(), alpha, beta, c);
}

void gemm(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, float alpha,
          const float* A, index_t lda, const float* B, index_t ldb, float beta, float* C,
          index_t ldc) {
  // Small products run as one call; larger ones always take the same panel partition
  // (whatever the thread count), so 1 and 2 threads give identical numbers.
  const double flops = 2.0 * double(m) * double(n) * double(k);
  if (flops < 4e6) {
    gemm_serial(trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  if (n >= m) {
    const index_t panel = std::max<index_t>(64, round_up(ceil_div(n, 8), 16));
    parallel_chunks_dynamic(n, panel, [&](index_t j0, index_t j1) {
      const float* Bp = trans_b ? B + j0 * ldb : B + j0;
      gemm_serial(trans_a, trans_b, m, j1 - j0, k, alpha, A, lda, Bp, ldb, beta, C + j0, ldc);
    });
  } else {
    const index_t panel = std::max<index_t>(32, round_up(ceil_div(m, 8), 16));
    parallel_chunks_dynamic(m, panel, [&](index_t i0, index_t i1) {
      const float* Ap = trans_a ? A + i0 : A + i0 * lda;
      gemm_serial(trans_a, trans_b, i1 - i0, n, k, alpha, Ap, lda, B, ldb, beta, C + i0 * ldc,
                  ldc);
    });
  }
}

}  // namespace fastnn
