/* fastnn._cpu: which x86-64 ISA levels this CPU supports. Compiled with baseline flags. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *supported_levels(PyObject *self, PyObject *args) {
    (void)self; (void)args;
    PyObject *out = PyList_New(0);
    if (!out) return NULL;
#if defined(__x86_64__) && defined(__GNUC__) && (__GNUC__ >= 12 || defined(__clang__))
    __builtin_cpu_init();
    const char *names[3] = {"v2", "v3", "v4"};
    int ok[3] = {__builtin_cpu_supports("x86-64-v2"), __builtin_cpu_supports("x86-64-v3"),
                 __builtin_cpu_supports("x86-64-v4")};
    for (int i = 0; i < 3; ++i) {
        if (!ok[i]) continue;
        PyObject *s = PyUnicode_FromString(names[i]);
        if (!s || PyList_Append(out, s) < 0) { Py_XDECREF(s); Py_DECREF(out); return NULL; }
        Py_DECREF(s);
    }
#endif
    return out;
}

static PyMethodDef methods[] = {
    {"supported_levels", supported_levels, METH_NOARGS,
     "supported_levels() -> list of x86-64 ISA level names this CPU runs (e.g. ['v2', 'v3'])."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_cpu", NULL, -1, methods};

PyMODINIT_FUNC PyInit__cpu(void) { return PyModule_Create(&module); }
