// Bindings for the augment kernel family.
#include "bind/bind_util.h"

void bind_augment(py::module_& m) { (void)m; }
