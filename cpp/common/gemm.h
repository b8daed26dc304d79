// Row-major single-precision GEMM on Eigen: C = alpha * op(A) * op(B) + beta * C.
#pragma once
#include "common/common.h"

namespace fastnn {

// Single-threaded; for use inside a caller's parallel region (one level of parallelism).
// A is (m x k) after op, B is (k x n) after op; lda/ldb/ldc are row strides of the stored
// matrices. beta == 0 overwrites C (its old contents may be garbage); otherwise accumulates.
void gemm_serial(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, float alpha,
                 const float* A, index_t lda, const float* B, index_t ldb, float beta,
                 float* C, index_t ldc);

// Parallel over output panels whose size depends on (m, n, k) only, so the result is the
// same at every thread count.
void gemm(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, float alpha,
          const float* A, index_t lda, const float* B, index_t ldb, float beta, float* C,
          index_t ldc);

}  // namespace fastnn
