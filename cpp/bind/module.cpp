// fastnn._C_<level>: the extension module. Each kernel family registers its functions.
#include "bind/bind_util.h"
#include <Eigen/Core>

#include "norm/batchnorm.h"

#define FASTNN_STR2(x) #x
#define FASTNN_STR(x) FASTNN_STR2(x)

PYBIND11_MODULE(FASTNN_MODULE_NAME, m) {
  m.doc() = "fastnn C++ kernels (" FASTNN_ISA_LEVEL " build)";
  m.def("build_info", []() {
    py::dict d;
    d["isa_level"] = FASTNN_ISA_LEVEL;
    d["eigen_version"] = std::to_string(EIGEN_WORLD_VERSION) + "." +
                         std::to_string(EIGEN_MAJOR_VERSION) + "." +
                         std::to_string(EIGEN_MINOR_VERSION);
    d["eigen_simd"] = std::string(Eigen::SimdInstructionSetsInUse());
#if defined(__clang__)
    d["compiler"] = std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
    d["compiler"] = std::string("gcc ") + __VERSION__;
#else
    d["compiler"] = "unknown";
#endif
    d["openmp"] = std::to_string(_OPENMP);
    d["num_threads"] = fastnn::num_threads();
    d["bn_stream_min_bytes"] = fastnn::batchnorm_stream_min_bytes();
    return d;
  }, "build_info() -> dict: ISA level, Eigen version and SIMD set, compiler, OpenMP, threads, "
     "the output size from which batch norm streams its stores.");
  m.def("set_num_threads", [](int n) {
    if (n < 1) throw py::value_error("n: expected a positive thread count, got " + std::to_string(n));
    omp_set_num_threads(n);
  }, py::arg("n"));
  m.def("get_num_threads", []() { return fastnn::num_threads(); });
  bind_core(m);
  bind_conv(m);
  bind_norm(m);
  bind_optim(m);
  bind_augment(m);
}
