/*
 * convert.c -- Python objects to sb_tensor, output arrays and the run of an
 * operator (sb_glue_run), for every glue file of skipblocks._C.
 *
 * Input policy (the dtype rule, one call at a time): float32 and float64
 * arrays keep their dtype, used as they are when each image is contiguous
 * (a C-contiguous array, or a channel slice of one) and copied into that
 * layout otherwise; any other real input (ints, bool, float16, lists,
 * Python numbers, torch CPU tensors through __array__) is converted as
 * np.asarray(x, np.float64) would when some array argument of the same call
 * is a float64 array, else as np.asarray(x, np.float32) would. So a call
 * mixing float32 and float64 arrays reaches its operator mixed, which then
 * raises torch's error for that mix. Complex, object, string and other
 * non-numeric dtypes raise TypeError. Inputs are never written, except the
 * explicit out= arrays and BatchNorm's running statistics in train mode.
 */
#include "glue.h" /* first: Python.h must precede the system headers */

#include <string.h>

/* True when each image (the last three axes of a 4-D array) is contiguous
 * and images are a non-negative whole number of elements apart: the layout
 * an sb_tensor describes. Axes of extent 1 may have any stride (NumPy's
 * rule). */
static int has_fmap_layout(PyArrayObject *arr, int fmap_ok)
{
    /* 4-D maps; with SB_GLUE_BLOCKED_OK also 5-D channel-blocked ones (their
     * blocks a prefix or a slice of a larger map's, e.g. DenseBlock's),
     * which only the operators that take blocked maps read by their batch
     * stride */
    const int ndim = PyArray_NDIM(arr);
    if (ndim != 4 && (ndim != 5 || fmap_ok != SB_GLUE_BLOCKED_OK)) return 0;
    npy_intp *d = PyArray_DIMS(arr);
    npy_intp *s = PyArray_STRIDES(arr);
    const npy_intp item = PyArray_ITEMSIZE(arr);
    npy_intp expect = item;
    for (int axis = ndim - 1; axis >= 1; axis--) {
        if (d[axis] != 1 && s[axis] != expect) return 0;
        expect *= d[axis];
    }
    if (d[0] > 1 && (s[0] < expect || s[0] % item != 0)) return 0;
    return 1;
}

int sb_glue_npy_type(sb_dtype dtype)
{
    return dtype == SB_DTYPE_F64 ? NPY_FLOAT64 : NPY_FLOAT32;
}

const char *sb_glue_dtype_name(sb_dtype dtype)
{
    return dtype == SB_DTYPE_F64 ? "float64" : "float32";
}

/* The sb_dtype of a float32 or float64 array, -1 for any other. */
static int dtype_of(PyArrayObject *arr)
{
    switch (PyArray_TYPE(arr)) {
    case NPY_FLOAT32:
        return SB_DTYPE_F32;
    case NPY_FLOAT64:
        return SB_DTYPE_F64;
    }
    return -1;
}

int sb_glue_is_float64(PyObject *obj)
{
    return obj != NULL && PyArray_Check(obj) && PyArray_TYPE((PyArrayObject *)obj) == NPY_FLOAT64;
}

/* Python's own lists, tuples and numbers have no dtype of their own (NumPy
 * reads a float as float64): they do not make a call float64. */
static int is_untyped(PyObject *obj)
{
    /* exact types: NumPy's float64 scalar is a subclass of float, and typed */
    return PyList_Check(obj) || PyTuple_Check(obj) || PyFloat_CheckExact(obj) ||
           PyLong_CheckExact(obj) || PyBool_Check(obj);
}

PyArrayObject *sb_glue_read(PyObject *obj, const char *layer, const char *what, int *f64,
                            int *untyped)
{
    PyArrayObject *arr;
    if (PyArray_Check(obj)) {
        Py_INCREF(obj);
        arr = (PyArrayObject *)obj;
    } else {
        /* A torch tensor that requires grad refuses __array__; skipblocks
         * never differentiates, so read its values through .detach() (duck
         * typing: torch is never imported). */
        PyObject *source = obj;
        Py_INCREF(source);
        if (PyObject_HasAttrString(obj, "detach") && PyObject_HasAttrString(obj, "requires_grad")) {
            PyObject *detached = PyObject_CallMethod(obj, "detach", NULL);
            if (detached == NULL) { Py_DECREF(source); return NULL; }
            Py_SETREF(source, detached);
        }
        arr = (PyArrayObject *)PyArray_FromAny(source, NULL, 0, 0, 0, NULL);
        Py_DECREF(source);
        if (arr == NULL) return NULL;
    }
    char kind = PyArray_DESCR(arr)->kind;
    if (kind != 'f' && kind != 'i' && kind != 'u' && kind != 'b') {
        PyObject *dtype_repr = PyObject_Str((PyObject *)PyArray_DESCR(arr));
        if (dtype_repr != NULL) {
            PyErr_Format(PyExc_TypeError,
                         "%s: %s must hold real numbers (float, int or bool), "
                         "got an array of dtype %U; skipblocks computes in float32 or float64",
                         layer, what, dtype_repr);
            Py_DECREF(dtype_repr);
        }
        Py_DECREF(arr);
        return NULL;
    }
    if (PyArray_NDIM(arr) > SB_MAX_DIMS) {
        PyErr_Format(PyExc_ValueError, "%s: %s has %d dimensions, more than %d", layer, what,
                     PyArray_NDIM(arr), SB_MAX_DIMS);
        Py_DECREF(arr);
        return NULL;
    }
    const int plain = is_untyped(obj);
    if (f64 != NULL && PyArray_TYPE(arr) == NPY_FLOAT64 && !plain)
        *f64 = 1;
    if (untyped != NULL)
        *untyped = plain;
    return arr;
}

PyArrayObject *sb_glue_settle(PyArrayObject *arr, sb_dtype other, int exact, int fmap_ok)
{
    const int own = dtype_of(arr);
    const sb_dtype want = own >= 0 && !exact ? (sb_dtype)own : other;
    int usable = own == (int)want && PyArray_ISALIGNED(arr) && PyArray_ISNOTSWAPPED(arr) &&
                 (PyArray_IS_C_CONTIGUOUS(arr) || (fmap_ok && has_fmap_layout(arr, fmap_ok)));
    if (usable) return arr;
    PyArrayObject *converted = (PyArrayObject *)PyArray_FromAny(
        (PyObject *)arr, PyArray_DescrFromType(sb_glue_npy_type(want)), 0, 0,
        NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED | NPY_ARRAY_FORCECAST, NULL);
    Py_DECREF(arr);
    return converted;
}

PyArrayObject *sb_glue_as_array(PyObject *obj, const char *layer, const char *what,
                                int fmap_ok)
{
    int untyped = 0;
    PyArrayObject *arr = sb_glue_read(obj, layer, what, NULL, &untyped);
    return arr == NULL ? NULL : sb_glue_settle(arr, SB_DTYPE_F32, untyped, fmap_ok);
}

void sb_glue_release(sb_glue_arg *args, int count)
{
    for (int i = 0; i < count; i++)
        Py_CLEAR(args[i].arr);
}

int sb_glue_convert(sb_glue_arg *args, int count, int f64)
{
    for (int i = 0; i < count; i++)
        args[i].arr = NULL;
    /* read every argument as it is (errors in the arguments' order), then
     * convert the ones of other dtypes to the call's */
    for (int i = 0; i < count; i++) {
        if (args[i].obj == NULL)
            continue;
        if ((args[i].arr = sb_glue_read(args[i].obj, args[i].layer, args[i].what, &f64,
                                        &args[i].untyped)) == NULL) {
            sb_glue_release(args, count);
            return -1;
        }
    }
    const sb_dtype other = f64 ? SB_DTYPE_F64 : SB_DTYPE_F32;
    for (int i = 0; i < count; i++) {
        if (args[i].arr == NULL)
            continue;
        if ((args[i].arr = sb_glue_settle(args[i].arr, other, args[i].untyped,
                                          args[i].fmap_ok)) == NULL) {
            sb_glue_release(args, count);
            return -1;
        }
    }
    return 0;
}

void sb_glue_tensor_of(sb_tensor *t, PyArrayObject *arr)
{
    const int ndim = PyArray_NDIM(arr);
    t->data = PyArray_DATA(arr);
    t->dtype = PyArray_TYPE(arr) == NPY_FLOAT64 ? SB_DTYPE_F64 : SB_DTYPE_F32;
    t->ndim = ndim;
    int64_t inner = 1;
    for (int i = 0; i < ndim; i++) {
        t->dims[i] = PyArray_DIMS(arr)[i];
        if (i > 0) inner *= t->dims[i];
    }
    t->batch_stride = inner;
    if ((ndim == 4 || ndim == 5) && t->dims[0] > 1)
        t->batch_stride = PyArray_STRIDES(arr)[0] / PyArray_ITEMSIZE(arr);
}

PyArrayObject *sb_glue_new_array(int ndim, const int64_t *dims, sb_dtype dtype)
{
    npy_intp d[SB_MAX_DIMS];
    for (int i = 0; i < ndim; i++) d[i] = (npy_intp)dims[i];
    return (PyArrayObject *)PyArray_SimpleNew(ndim, d, sb_glue_npy_type(dtype));
}

/* The bytes [lo, hi) that arr's elements span (lo == hi when empty). */
static void byte_extent(PyArrayObject *arr, char **lo, char **hi)
{
    char *a = PyArray_BYTES(arr), *b = a;
    for (int i = 0; i < PyArray_NDIM(arr); i++) {
        const npy_intp d = PyArray_DIMS(arr)[i], st = PyArray_STRIDES(arr)[i];
        if (d == 0) { *lo = *hi = a; return; }
        if (st < 0) a += (d - 1) * st; else b += (d - 1) * st;
    }
    *lo = a;
    *hi = b + PyArray_ITEMSIZE(arr);
}

/* Whether out may share memory with input, other than being exactly the
 * same array (same start, shape and strides), which element-wise kernels
 * (alias_ok) handle: each element is read before it is written, by the
 * same thread. A convolution reads input pixels after other tiles have
 * stored outputs, so for it any overlap is refused. Conservative: two
 * disjoint interleaved views of one buffer count as overlapping. */
static int overlaps_input(PyArrayObject *out, PyArrayObject *input, int alias_ok)
{
    char *olo, *ohi, *ilo, *ihi;
    byte_extent(out, &olo, &ohi);
    byte_extent(input, &ilo, &ihi);
    if (olo >= ihi || ilo >= ohi)
        return 0;
    if (alias_ok && PyArray_BYTES(out) == PyArray_BYTES(input) &&
        PyArray_NDIM(out) == PyArray_NDIM(input)) {
        int same = 1;
        for (int i = 0; same && i < PyArray_NDIM(out); i++)
            same = PyArray_DIMS(out)[i] == PyArray_DIMS(input)[i] &&
                   PyArray_STRIDES(out)[i] == PyArray_STRIDES(input)[i];
        if (same)
            return 0;
    }
    return 1;
}

/* "[1, 3, 100, 100]": torch prints tensor sizes this way in its errors. */
static PyObject *shape_string(PyArrayObject *arr)
{
    PyObject *parts = PyList_New(PyArray_NDIM(arr));
    if (parts == NULL) return NULL;
    for (int i = 0; i < PyArray_NDIM(arr); i++) {
        PyObject *s = PyUnicode_FromFormat("%zd", (Py_ssize_t)PyArray_DIMS(arr)[i]);
        if (s == NULL) { Py_DECREF(parts); return NULL; }
        PyList_SET_ITEM(parts, i, s);
    }
    PyObject *sep = PyUnicode_FromString(", ");
    PyObject *joined = sep ? PyUnicode_Join(sep, parts) : NULL;
    Py_XDECREF(sep);
    Py_DECREF(parts);
    if (joined == NULL) return NULL;
    PyObject *result = PyUnicode_FromFormat("[%U]", joined);
    Py_DECREF(joined);
    return result;
}

PyArrayObject *sb_glue_out_array(PyObject *out, const char *layer, int ndim,
                                 const int64_t *dims, int fmap_ok, PyArrayObject *input,
                                 int alias_ok, sb_dtype dtype)
{
    if (!PyArray_Check(out)) {
        PyErr_Format(PyExc_TypeError, "%s: out must be a numpy.ndarray", layer);
        return NULL;
    }
    PyArrayObject *arr = (PyArrayObject *)out;
    int layout_ok = PyArray_IS_C_CONTIGUOUS(arr) || (fmap_ok && has_fmap_layout(arr, fmap_ok));
    if (PyArray_TYPE(arr) != sb_glue_npy_type(dtype) || !PyArray_ISALIGNED(arr) ||
        !PyArray_ISNOTSWAPPED(arr) || !layout_ok) {
        PyErr_Format(PyExc_ValueError,
                     "%s: out must be an aligned native %s array (the result's dtype) whose "
                     "images are contiguous", layer, sb_glue_dtype_name(dtype));
        return NULL;
    }
    if (!PyArray_ISWRITEABLE(arr)) {
        PyErr_Format(PyExc_ValueError, "%s: out array is read-only", layer);
        return NULL;
    }
    int same = PyArray_NDIM(arr) == ndim;
    for (int i = 0; same && i < ndim; i++) same = PyArray_DIMS(arr)[i] == dims[i];
    if (!same) {
        PyObject *shape = shape_string(arr);
        if (shape != NULL) {
            PyErr_Format(PyExc_ValueError, "%s: out has shape %U, which is not the "
                         "shape of the result", layer, shape);
            Py_DECREF(shape);
        }
        return NULL;
    }
    if (input != NULL && overlaps_input(arr, input, alias_ok)) {
        PyErr_Format(PyExc_ValueError, "%s: out overlaps the input%s", layer,
                     alias_ok ? " (other than being the very same array)" : "");
        return NULL;
    }
    Py_INCREF(out);
    return arr;
}

int sb_glue_running_stat(PyObject *obj, const char *layer, const char *what,
                         PyArrayObject **out)
{
    *out = NULL;
    if (!PyArray_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s: %s must be a numpy.ndarray", layer, what);
        return -1;
    }
    PyArrayObject *arr = (PyArrayObject *)obj;
    if (dtype_of(arr) < 0 || !PyArray_IS_C_CONTIGUOUS(arr) || !PyArray_ISALIGNED(arr) ||
        !PyArray_ISNOTSWAPPED(arr)) {
        PyErr_Format(PyExc_TypeError,
                     "%s: %s must be a C-contiguous native float32 or float64 array, "
                     "because training updates it in place", layer, what);
        return -1;
    }
    if (!PyArray_ISWRITEABLE(arr)) {
        PyErr_Format(PyExc_ValueError,
                     "%s: %s is read-only, so training cannot update it in place "
                     "(pass a writable array, or training=False)", layer, what);
        return -1;
    }
    Py_INCREF(obj);
    *out = arr;
    return 0;
}

int sb_glue_is_packed(PyObject *obj)
{
    if (!PyArray_Check(obj))
        return 0;
    PyArrayObject *arr = (PyArrayObject *)obj;
    return dtype_of(arr) >= 0 && PyArray_ISNOTSWAPPED(arr) && PyArray_ISALIGNED(arr) &&
           PyArray_IS_C_CONTIGUOUS(arr);
}

PyObject *sb_glue_run(sb_glue_run_fn run, const void *plan, const void *args,
                      PyArrayObject *out, size_t workspace_bytes, const char *layer)
{
    if (out == NULL)
        return NULL;
    sb_scratch scratch = {NULL, 0};
    if (sb_glue_scratch_take(&scratch, workspace_bytes) < 0) {
        Py_DECREF(out);
        return NULL;
    }
    sb_tensor t_out;
    sb_glue_tensor_of(&t_out, out);
    sb_status status;
    Py_BEGIN_ALLOW_THREADS
    status = run(plan, args, &t_out, scratch.ptr);
    Py_END_ALLOW_THREADS
    sb_glue_scratch_give(&scratch);
    if (status != SB_OK) {
        Py_DECREF(out);
        return sb_glue_raise_status(status, layer);
    }
    return (PyObject *)out;
}

int sb_glue_packed(PyObject *obj, const char *layer, const void **data, int64_t *numel,
                   sb_dtype *dtype)
{
    *data = NULL;
    *numel = 0;
    *dtype = SB_DTYPE_F32;
    if (obj == Py_None)
        return 0;
    if (!sb_glue_is_packed(obj)) {
        sb_error err;
        memset(&err, 0, sizeof err);
        err.code = SB_E_PACKED;
        sb_glue_raise(&err, layer);
        return -1;
    }
    *data = PyArray_DATA((PyArrayObject *)obj);
    *numel = PyArray_SIZE((PyArrayObject *)obj);
    *dtype = (sb_dtype)dtype_of((PyArrayObject *)obj);
    return 0;
}
