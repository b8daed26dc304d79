// Element-wise activations and their backward passes (backward takes dy and the forward input x).
// Every output is overwritten; n is the element count.
#pragma once
#include "common/common.h"

namespace fastnn {

void relu_forward(const float* x, float* y, index_t n);
void relu_backward(const float* dy, const float* x, float* dx, index_t n);
void leaky_relu_forward(const float* x, float* y, index_t n, float slope);
void leaky_relu_backward(const float* dy, const float* x, float* dx, index_t n, float slope);
void elu_forward(const float* x, float* y, index_t n, float alpha);
void elu_backward(const float* dy, const float* x, float* dx, index_t n, float alpha);
void sigmoid_forward(const float* x, float* y, index_t n);
void sigmoid_backward(const float* dy, const float* x, float* dx, index_t n);
void tanh_forward(const float* x, float* y, index_t n);
void tanh_backward(const float* dy, const float* x, float* dx, index_t n);

// PReLU: x is viewed as (rows, inner) with rows = batch * channels (channel = axis 1); row r
// uses slope[r % nslope] (nslope is 1 for a shared slope, else the channel count).
// dslope (nslope) is overwritten, summed in a fixed order.
void prelu_forward(const float* x, const float* slope, float* y, index_t rows, index_t inner,
                   index_t nslope);
void prelu_backward(const float* dy, const float* x, const float* slope, float* dx,
                    float* dslope, index_t rows, index_t inner, index_t nslope);

}  // namespace fastnn
