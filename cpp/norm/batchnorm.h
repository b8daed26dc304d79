// Batch normalization (PyTorch's numerics) over x viewed as (N, C, S): S = H*W for NCHW input,
// S = 1 for (N, C). Statistics are per channel over N and S: float32 partial sums over short
// fixed blocks, combined in float64 in a fixed order, so results do not depend on the thread count.
#pragma once
#include <cstddef>

#include "common/common.h"

namespace fastnn {

// Training forward. Overwrites y (N*C*S), save_mean (C) and save_invstd (C) = 1/sqrt(var + eps)
// with the biased batch variance. running_mean / running_var (C), when non-null, are updated
// in place: r = (1 - momentum) * r + momentum * batch (running_var takes the unbiased
// variance). gamma / beta may be null (1 and 0). Requires N*S >= 2.
void batchnorm_forward_train(const float* x, const float* gamma, const float* beta, float* y,
                             float* save_mean, float* save_invstd, float* running_mean,
                             float* running_var, index_t N, index_t C, index_t S,
                             float momentum, float eps);

// Eval forward with the running statistics. Overwrites y, save_mean (= running_mean) and
// save_invstd (= 1/sqrt(running_var + eps)). gamma / beta may be null.
void batchnorm_forward_eval(const float* x, const float* gamma, const float* beta,
                            const float* running_mean, const float* running_var, float* y,
                            float* save_mean, float* save_invstd, index_t N, index_t C,
                            index_t S, float eps);

// Backward. Overwrites dx (N*C*S), dgamma (C) = sum(dy * xhat), dbeta (C) = sum(dy).
// training: the statistics came from this batch, so dx = invstd/M * (M*dyhat - sum(dyhat)
// - xhat*sum(dyhat*xhat)) with dyhat = dy*gamma and M = N*S; otherwise (eval, fixed
// statistics) dx = dy * gamma * invstd. gamma may be null (1).
void batchnorm_backward(const float* dy, const float* x, const float* gamma,
                        const float* save_mean, const float* save_invstd, float* dx,
                        float* dgamma, float* dbeta, index_t N, index_t C, index_t S,
                        bool training);

// Training outputs (y, dx) of at least this many bytes are written with non-temporal stores on
// the row path (planes of >= 64 floats): max(8 MiB, L3 / 4).
std::size_t batchnorm_stream_min_bytes();

}  // namespace fastnn
