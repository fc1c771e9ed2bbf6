/*
 * runtime.c -- the glue of the runtime: threads, instruction sets, the
 * input conversion Python shares with the operators (as_real),
 * and the entry points used only by tests.
 */
#include <string.h>

#include "glue.h"

static PyObject *py_get_num_threads(PyObject *self, PyObject *unused)
{
    return PyLong_FromLong(sb_get_num_threads());
}

static PyObject *py_set_num_threads(PyObject *self, PyObject *arg)
{
    long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred()) return NULL;
    int refused = n < 1 || n > SB_MAX_THREADS;
    if (!refused) {
        /* may wait for a loop another thread is running, then join the pool */
        Py_BEGIN_ALLOW_THREADS
        refused = sb_set_num_threads((int)n) != 0;
        Py_END_ALLOW_THREADS
    }
    if (refused) {
        PyErr_Format(PyExc_ValueError, "set_num_threads: expected 1 <= n <= %d, got %ld",
                     SB_MAX_THREADS, n);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *py_get_isa(PyObject *self, PyObject *unused)
{
    return PyUnicode_FromString(sb_isa_name(sb_get_isa()));
}

static const sb_isa all_isas[] = {SB_ISA_SCALAR, SB_ISA_AVX2, SB_ISA_AVX512};

static PyObject *py_available_isas(PyObject *self, PyObject *unused)
{
    PyObject *names = PyList_New(0);
    if (names == NULL) return NULL;
    for (size_t i = 0; i < sizeof all_isas / sizeof all_isas[0]; i++) {
        if (!sb_isa_available(all_isas[i])) continue;
        PyObject *name = PyUnicode_FromString(sb_isa_name(all_isas[i]));
        if (name == NULL || PyList_Append(names, name) < 0) {
            Py_XDECREF(name);
            Py_DECREF(names);
            return NULL;
        }
        Py_DECREF(name);
    }
    return names;
}

static PyObject *py_set_isa(PyObject *self, PyObject *arg)
{
    const char *name = PyUnicode_AsUTF8(arg);
    if (name == NULL) return NULL;
    if (strcmp(name, "auto") == 0) {
        sb_set_isa(sb_isa_best());
        Py_RETURN_NONE;
    }
    for (size_t i = 0; i < sizeof all_isas / sizeof all_isas[0]; i++) {
        if (strcmp(name, sb_isa_name(all_isas[i])) != 0) continue;
        if (sb_set_isa(all_isas[i]) != SB_OK) {
            PyErr_Format(PyExc_ValueError, "set_isa: this CPU (or build) cannot run %s", name);
            return NULL;
        }
        Py_RETURN_NONE;
    }
    PyErr_Format(PyExc_ValueError, "set_isa: unknown instruction set %R (expected 'auto', "
                 "'scalar', 'avx2' or 'avx512')", arg);
    return NULL;
}

PyDoc_STRVAR(as_real_doc,
"as_real(layer, value, what='input', dtype=None) -> numpy.ndarray\n--\n\n"
"The array the operators compute on. dtype None: a float32 or float64 array\n"
"keeps its dtype, any other real input (ints, bool, float16, lists, torch\n"
"tensors of other dtypes) becomes float32. dtype float32 or float64 (numpy.float32,\n"
"numpy.float64, 'float32', 'float64' or a numpy.dtype of them): exactly that\n"
"dtype. value itself is returned when it already is an aligned native array of\n"
"that dtype that is C-contiguous (or, 4-D, whose images are), else a converted\n"
"copy (np.asarray(value, dtype) in that layout). Non-real dtypes raise TypeError\n"
"naming layer and what; another dtype argument raises TypeError. The one input\n"
"conversion of skipblocks.");

/* The sb_dtype dtype names (None: -1, keep float32/float64), or -2 with
 * TypeError set. */
static int dtype_argument(PyObject *dtype)
{
    if (dtype == NULL || dtype == Py_None)
        return -1;
    PyArray_Descr *descr = NULL;
    if (PyArray_DescrConverter2(dtype, &descr) && descr != NULL) {
        const int type = descr->type_num;
        Py_DECREF(descr);
        if (type == NPY_FLOAT32)
            return SB_DTYPE_F32;
        if (type == NPY_FLOAT64)
            return SB_DTYPE_F64;
    }
    PyErr_Clear();
    PyErr_Format(PyExc_TypeError,
                 "as_real: dtype must be None, float32 or float64 (numpy.float32, "
                 "numpy.float64, 'float32', 'float64' or their numpy.dtype), got %R", dtype);
    return -2;
}

static PyObject *as_real(const char *layer, PyObject *value, const char *what, int dtype)
{
    int untyped = 0;
    PyArrayObject *arr = sb_glue_read(value, layer, what, NULL, &untyped);
    if (arr == NULL)
        return NULL;
    return (PyObject *)sb_glue_settle(arr, dtype >= 0 ? (sb_dtype)dtype : SB_DTYPE_F32,
                                      dtype >= 0 || untyped, 1);
}

static PyObject *py_as_real(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"layer", "value", "what", "dtype", NULL};
    const char *layer, *what = "input";
    PyObject *value, *dtype_obj = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sO|sO", keywords, &layer, &value, &what,
                                     &dtype_obj))
        return NULL;
    const int dtype = dtype_argument(dtype_obj);
    if (dtype == -2)
        return NULL;
    return as_real(layer, value, what, dtype);
}

/* Tests only: with on set and the avx2 ISA selected, the convolution's
 * 32-wide micro-kernels are the AVX-512 kernels' source compiled for AVX2
 * (see sb_test_use_avx512_source_on_avx2). */
static PyObject *py_test_avx512_source(PyObject *self, PyObject *arg)
{
    const int on = PyObject_IsTrue(arg);
    if (on < 0) return NULL;
    return PyBool_FromLong(sb_test_use_avx512_source_on_avx2(on) == 0);
}

PyMethodDef sb_glue_runtime_methods[] = {
    {"get_num_threads", py_get_num_threads, METH_NOARGS,
     "get_num_threads() -> the number of threads the operators use"},
    {"set_num_threads", py_set_num_threads, METH_O,
     "set_num_threads(n): use n threads (1 <= n <= 1024)"},
    {"get_isa", py_get_isa, METH_NOARGS, "get_isa() -> name of the ISA in use"},
    {"set_isa", py_set_isa, METH_O,
     "set_isa(name): force 'scalar', 'avx2' or 'avx512', or 'auto' (the best)"},
    {"available_isas", py_available_isas, METH_NOARGS,
     "available_isas() -> names of the ISAs this CPU and build can run"},
    {"as_real", (PyCFunction)(void (*)(void))py_as_real, METH_VARARGS | METH_KEYWORDS,
     as_real_doc},
    {"_test_avx512_source_on_avx2", py_test_avx512_source, METH_O,
     "_test_avx512_source_on_avx2(on) -> bool\n\nTests only: run the AVX-512 kernels' "
     "source compiled for AVX2 (with the avx2 ISA selected); False without AVX2."},
    {NULL, NULL, 0, NULL}};
