// 2-D max / average pooling and global average pooling (PyTorch semantics, floor mode).
#pragma once
#include "common/common.h"

namespace fastnn {

// x (n, c, h, w) -> y (n, c, ho, wo), ho = (h + 2ph - kh)/sh + 1 (floor).
struct Pool2dShape {
  index_t n, c, h, w, kh, kw, sh, sw, ph, pw;
  index_t ho() const { return (h + 2 * ph - kh) / sh + 1; }
  index_t wo() const { return (w + 2 * pw - kw) / sw + 1; }
};

// y and argmax (flat index ih*w + iw into each input plane): overwritten. As PyTorch, the first
// maximum wins, and a NaN beats numbers (the window's last NaN is taken).
void max_pool2d_forward(const float* x, float* y, std::int64_t* argmax, const Pool2dShape& s);

// dx (planes, plane): overwritten (zeros, then dy (planes, oplane) added at argmax).
// Returns false (dx unspecified) if an argmax entry lies outside [0, plane).
bool max_pool2d_backward(const float* dy, const std::int64_t* argmax, float* dx,
                         index_t planes, index_t plane, index_t oplane);

// y: overwritten; the divisor counts padding (count_include_pad=True).
void avg_pool2d_forward(const float* x, float* y, const Pool2dShape& s);

// dx: overwritten.
void avg_pool2d_backward(const float* dy, float* dx, const Pool2dShape& s);

// y (rows) = mean of each of `rows` planes of `plane` values: overwritten.
void global_avg_pool2d_forward(const float* x, float* y, index_t rows, index_t plane);

// dx (rows, plane) = dy[row] / plane: overwritten.
void global_avg_pool2d_backward(const float* dy, float* dx, index_t rows, index_t plane);

}  // namespace fastnn
