// Bindings for the conv kernel family.
#include "bind/bind_util.h"

void bind_conv(py::module_& m) { (void)m; }
