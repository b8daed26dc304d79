// Fully connected layer: y = x W^T + b (PyTorch layout, W is (out, in)).
#pragma once
#include "common/common.h"

namespace fastnn {

// y (n, out): overwritten. b may be null.
void linear_forward(const float* x, const float* w, const float* b, float* y, index_t n,
                    index_t in, index_t out);

// dx (n, in), dw (out, in), db (out): all overwritten. Any output may be null (skipped).
void linear_backward(const float* dy, const float* x, const float* w, float* dx, float* dw,
                     float* db, index_t n, index_t in, index_t out);

// db[j] = sum over rows i of dy[i, j] for dy (rows, cols): overwritten. Fixed order.
void column_sums(const float* dy, float* db, index_t rows, index_t cols);

}  // namespace fastnn
