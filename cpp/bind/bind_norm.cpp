// Bindings for the norm kernel family.
#include "bind/bind_util.h"

void bind_norm(py::module_& m) { (void)m; }
