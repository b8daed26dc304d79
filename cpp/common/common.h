// Shared definitions for fastnn kernels: index type, checks, thread helpers.
// Kernels take raw pointers and explicit dimensions; they know nothing about Python.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <algorithm>
#include <omp.h>

namespace fastnn {

using index_t = std::int64_t;

// Thrown for bad arguments that reach C++ (mapped to ValueError by the bindings).
#define FASTNN_CHECK(cond, msg)                                           \
  do {                                                                    \
    if (!(cond)) throw std::invalid_argument(std::string(msg));          \
  } while (0)

inline int num_threads() { return std::max(1, omp_get_max_threads()); }

inline index_t ceil_div(index_t a, index_t b) { return (a + b - 1) / b; }
inline index_t round_up(index_t a, index_t b) { return ceil_div(a, b) * b; }

// Runs f(begin, end) over [0, n) in chunks of `grain`. The partition depends on n and grain
// only, never on the thread count, so any reduction done per chunk is reproducible.
template <class F>
void parallel_chunks(index_t n, index_t grain, F&& f) {
  if (n <= 0) return;
  grain = std::max<index_t>(grain, 1);
  const index_t nchunks = ceil_div(n, grain);
  const int nt = num_threads();
  if (nchunks == 1 || nt == 1 || omp_in_parallel()) {
    for (index_t c = 0; c < nchunks; ++c) f(c * grain, std::min(n, (c + 1) * grain));
    return;
  }
#pragma omp parallel for schedule(static) num_threads(nt)
  for (index_t c = 0; c < nchunks; ++c) f(c * grain, std::min(n, (c + 1) * grain));
}

// Same, but chunks are handed out dynamically (for uneven work such as small GEMM panels).
template <class F>
void parallel_chunks_dynamic(index_t n, index_t grain, F&& f) {
  if (n <= 0) return;
  grain = std::max<index_t>(grain, 1);
  const index_t nchunks = ceil_div(n, grain);
  const int nt = num_threads();
  if (nchunks == 1 || nt == 1 || omp_in_parallel()) {
    for (index_t c = 0; c < nchunks; ++c) f(c * grain, std::min(n, (c + 1) * grain));
    return;
  }
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
  for (index_t c = 0; c < nchunks; ++c) f(c * grain, std::min(n, (c + 1) * grain));
}

// Element-wise kernels: 32K floats per chunk keeps each chunk in L2 and the overhead small.
constexpr index_t kElemGrain = 1 << 15;

}  // namespace fastnn
