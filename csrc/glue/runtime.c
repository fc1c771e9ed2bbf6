/*
 * runtime.c -- the glue of the runtime: threads, instruction sets, the
 * input conversion Python shares with the operators (as_real), how the
 * extension was built (build_info), and the entry points used only by tests.
 */
#include "glue.h" /* first: Python.h must precede the system headers */

#include <string.h>

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
"as_real($module, layer, value, what='input', dtype=None)\n--\n\n"
"Returns the numpy.ndarray the operators compute on. dtype None: a float32 or float64 array\n"
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

/* ---- build_info ------------------------------------------------------ */

/* The compiler, named as CPython's Python/getcompiler.c names it (what
 * platform.python_compiler() shows). */
#if defined(__clang__)
#define SB_COMPILER "Clang " __clang_version__
#elif defined(__GNUC__)
#define SB_COMPILER "GCC " __VERSION__
#elif defined(_MSC_VER)
#define SB_STR2(x) #x
#define SB_STR(x) SB_STR2(x)
#define SB_COMPILER "MSC v." SB_STR(_MSC_VER)
#else
#define SB_COMPILER "unknown"
#endif

/* setup.py defines it (and SB_SANITIZE, glue.h); a build without it (another
 * build script) says so. */
#ifndef SB_BUILD_FLAGS
#define SB_BUILD_FLAGS "unknown"
#endif
#ifndef NPY_FEATURE_VERSION_STRING /* NumPy 1.x headers */
#define NPY_FEATURE_VERSION_STRING "unknown"
#endif

/* The instruction sets whose kernels this build holds: the condition of
 * SB_HAVE_AVX2_KERNELS in csrc/kernels/gemm_ukernel.h, which this file
 * cannot include (the glue sees csrc/include only). The AVX-512 kernels are
 * compiled whenever the AVX2 ones are (gemm_ukernel__avx512.c). The test
 * checks that available_isas() is a subset of these. */
#if (defined(__x86_64__) || defined(_M_X64) || defined(__i386__)) && \
    !defined(SB_PORTABLE_ONLY) && (defined(__GNUC__) || defined(__clang__))
static const char *const compiled_isas[] = {"scalar", "avx2", "avx512"};
#else
static const char *const compiled_isas[] = {"scalar"};
#endif

PyDoc_STRVAR(build_info_doc,
"build_info($module, /)\n--\n\n"
"Returns a new dict describing how this extension was built:\n\n"
"compiler: the C compiler and its version ('GCC 13.2.0').\n"
"build_flags: the compile flags setup.py passed ('unknown' for a build that\n"
"  did not define SB_BUILD_FLAGS).\n"
"sanitize: built with AddressSanitizer and UndefinedBehaviorSanitizer\n"
"  (SKIPBLOCKS_SANITIZE=1).\n"
"python: the version of the Python headers built against.\n"
"numpy_api_version: the NumPy C-API version of the headers built against\n"
"  (NPY_API_VERSION, 0x12 for NumPy 2.0).\n"
"numpy_feature_version: the oldest NumPy C-API the module runs with\n"
"  (NPY_FEATURE_VERSION); numpy_feature_version_string: that NumPy release.\n"
"numpy_abi_version: NPY_ABI_VERSION of the headers.\n"
"isas: the instruction sets whose kernels are compiled in (available_isas()\n"
"  is those this CPU can also run).");

static PyObject *py_build_info(PyObject *self, PyObject *unused)
{
    const Py_ssize_t n_isas = (Py_ssize_t)(sizeof compiled_isas / sizeof compiled_isas[0]);
    PyObject *isas = PyList_New(n_isas);
    if (isas == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < n_isas; i++) {
        PyObject *name = PyUnicode_FromString(compiled_isas[i]);
        if (name == NULL) {
            Py_DECREF(isas);
            return NULL;
        }
        PyList_SET_ITEM(isas, i, name);
    }
    /* "N" steals the list's reference, also when Py_BuildValue fails */
    return Py_BuildValue("{s:s,s:s,s:O,s:s,s:k,s:k,s:s,s:k,s:N}",
                         "compiler", SB_COMPILER,
                         "build_flags", SB_BUILD_FLAGS,
                         "sanitize", SB_SANITIZE ? Py_True : Py_False,
                         "python", PY_VERSION,
                         "numpy_api_version", (unsigned long)NPY_API_VERSION,
                         "numpy_feature_version", (unsigned long)NPY_FEATURE_VERSION,
                         "numpy_feature_version_string", NPY_FEATURE_VERSION_STRING,
                         "numpy_abi_version", (unsigned long)NPY_ABI_VERSION,
                         "isas", isas);
}

PyMethodDef sb_glue_runtime_methods[] = {
    {"get_num_threads", py_get_num_threads, METH_NOARGS,
     "get_num_threads($module, /)\n--\n\n"
     "Returns the number of threads the operators use."},
    {"set_num_threads", py_set_num_threads, METH_O,
     "set_num_threads($module, n, /)\n--\n\n"
     "Use n threads (an int, 1 <= n <= 1024; ValueError otherwise)."},
    {"get_isa", py_get_isa, METH_NOARGS,
     "get_isa($module, /)\n--\n\n"
     "Returns the name of the ISA in use: 'scalar', 'avx2' or 'avx512'."},
    {"set_isa", py_set_isa, METH_O,
     "set_isa($module, name, /)\n--\n\n"
     "Force 'scalar', 'avx2' or 'avx512', or 'auto' (the best); ValueError for\n"
     "an ISA this CPU or build cannot run, or an unknown name."},
    {"available_isas", py_available_isas, METH_NOARGS,
     "available_isas($module, /)\n--\n\n"
     "Returns a new list of the names of the ISAs this CPU and build can run."},
    {"as_real", (PyCFunction)(void (*)(void))py_as_real, METH_VARARGS | METH_KEYWORDS,
     as_real_doc},
    {"build_info", py_build_info, METH_NOARGS, build_info_doc},
    {"_test_avx512_source_on_avx2", py_test_avx512_source, METH_O,
     "_test_avx512_source_on_avx2($module, on, /)\n--\n\n"
     "Tests only: run the AVX-512 kernels' source compiled for AVX2 (with the\n"
     "avx2 ISA selected). Returns False (nothing changed) without AVX2."},
    {NULL, NULL, 0, NULL}};
