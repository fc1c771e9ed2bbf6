/*
 * module.c -- skipblocks._C, the one file of skipblocks that includes Python.h.
 *
 * This is the boundary layer of STYLE.md: it turns array-likes into float32
 * NumPy arrays, checks shapes once (with the kernels' own output-size
 * helpers, and with the wording of torch's error messages, prefixed by the
 * name of the skipblocks layer that called it), allocates outputs and
 * scratch, releases the GIL around the kernel and maps an sb_status to a
 * Python exception at one cleanup label. Argument conveniences (int-or-pair,
 * 'same' padding, defaults) live in Python (skipblocks/functional.py), which
 * passes already-normalised integers here.
 *
 * Input policy (issue 2, item 7): float32 input is used as it is when each
 * image is contiguous (a C-contiguous array, or a channel slice of one);
 * anything else real-valued (float64, float16, ints, bool, other layouts,
 * lists, torch CPU tensors through __array__) is converted as
 * np.asarray(x, np.float32) would. Complex, object, string and other
 * non-numeric dtypes raise TypeError. Inputs are never written, except the
 * explicit `out=` arrays the Python layer passes for inplace=True and for
 * BatchNorm's running statistics.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define PY_ARRAY_UNIQUE_SYMBOL skipblocks_ARRAY_API
#include <numpy/arrayobject.h>

#include <math.h>
#include <string.h>

#include "skipblocks.h"
#include "sb_parallel.h"

/* ------------------------------------------------------------------ */
/* Conversion helpers                                                  */
/* ------------------------------------------------------------------ */

/* "[1, 3, 100, 100]": torch prints tensor sizes this way in its errors. */
static PyObject *shape_string(PyArrayObject *arr)
{
    int ndim = PyArray_NDIM(arr);
    npy_intp *dims = PyArray_DIMS(arr);
    PyObject *parts = PyList_New(ndim);
    if (parts == NULL) return NULL;
    for (int i = 0; i < ndim; i++) {
        PyObject *s = PyUnicode_FromFormat("%zd", (Py_ssize_t)dims[i]);
        if (s == NULL) { Py_DECREF(parts); return NULL; }
        PyList_SET_ITEM(parts, i, s);
    }
    PyObject *sep = PyUnicode_FromString(", ");
    if (sep == NULL) { Py_DECREF(parts); return NULL; }
    PyObject *joined = PyUnicode_Join(sep, parts);
    Py_DECREF(sep);
    Py_DECREF(parts);
    if (joined == NULL) return NULL;
    PyObject *result = PyUnicode_FromFormat("[%U]", joined);
    Py_DECREF(joined);
    return result;
}

/* True when each image (the last three axes of a 4-D array) is contiguous
 * and images are a non-negative whole number of floats apart: the layout an
 * sb_fmap describes. Axes of extent 1 may have any stride (NumPy's rule). */
static int has_fmap_layout(PyArrayObject *arr)
{
    if (PyArray_NDIM(arr) != 4) return 0;
    npy_intp *d = PyArray_DIMS(arr);
    npy_intp *s = PyArray_STRIDES(arr);
    npy_intp expect = (npy_intp)sizeof(float);
    for (int axis = 3; axis >= 1; axis--) {
        if (d[axis] != 1 && s[axis] != expect) return 0;
        expect *= d[axis];
    }
    if (d[0] > 1 && (s[0] < expect || s[0] % (npy_intp)sizeof(float) != 0)) return 0;
    return 1;
}

/* Returns a new reference to a float32 array holding `obj`: obj itself when
 * it already is a well-behaved float32 array in the layout the kernels take
 * (C-contiguous, or an fmap when fmap_ok), otherwise a converted copy.
 * `what` names the argument in the TypeError for non-real dtypes. */
static PyArrayObject *as_float_array(PyObject *obj, const char *layer,
                                     const char *what, int fmap_ok)
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
                         "got an array of dtype %U; skipblocks computes in float32",
                         layer, what, dtype_repr);
            Py_DECREF(dtype_repr);
        }
        Py_DECREF(arr);
        return NULL;
    }
    int usable = PyArray_TYPE(arr) == NPY_FLOAT32 && PyArray_ISALIGNED(arr) &&
                 PyArray_ISNOTSWAPPED(arr) &&
                 (PyArray_IS_C_CONTIGUOUS(arr) || (fmap_ok && has_fmap_layout(arr)));
    if (usable) return arr;
    PyArrayObject *converted = (PyArrayObject *)PyArray_FromAny(
        (PyObject *)arr, PyArray_DescrFromType(NPY_FLOAT32), 0, 0,
        NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED | NPY_ARRAY_FORCECAST, NULL);
    Py_DECREF(arr);
    return converted;
}

/* Optional parameter array (bias, weight): None gives NULL without error. */
static int as_optional_float_array(PyObject *obj, const char *layer, const char *what,
                                   PyArrayObject **out)
{
    *out = NULL;
    if (obj == NULL || obj == Py_None) return 0;
    *out = as_float_array(obj, layer, what, 0);
    return *out == NULL ? -1 : 0;
}

/* An sb_fmap for a 4-D array in fmap layout (see has_fmap_layout). */
static sb_fmap fmap_of(PyArrayObject *arr)
{
    sb_fmap m;
    npy_intp *d = PyArray_DIMS(arr);
    m.n = d[0]; m.c = d[1]; m.h = d[2]; m.w = d[3];
    m.batch_stride = d[0] > 1 ? PyArray_STRIDES(arr)[0] / (npy_intp)sizeof(float)
                              : m.c * m.h * m.w;
    return m;
}

/* A 4-D view of a 3-D (unbatched C x H x W) array: batch of one. */
static PyArrayObject *add_batch_axis(PyArrayObject *arr)
{
    npy_intp *d = PyArray_DIMS(arr);
    npy_intp dims4[4] = {1, d[0], d[1], d[2]};
    PyArray_Dims shape = {dims4, 4};
    return (PyArrayObject *)PyArray_Newshape(arr, &shape, NPY_CORDER);
}

static PyArrayObject *new_float_array(int ndim, const npy_intp *dims)
{
    return (PyArrayObject *)PyArray_SimpleNew(ndim, (npy_intp *)dims, NPY_FLOAT32);
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

/* The caller's output array (DenseBlock's channel slices of one
 * preallocated output, inplace=True): an aligned, native, writable float32
 * array of exactly `dims`, laid out as the kernels write (C-contiguous, or
 * images contiguous when fmap_ok), not overlapping `input` (the array the
 * kernel reads) except as the very same array when alias_ok. */
static int check_out_array(PyObject *out, const char *layer, int ndim,
                           const npy_intp *dims, int fmap_ok, PyArrayObject *input,
                           int alias_ok)
{
    if (!PyArray_Check(out)) {
        PyErr_Format(PyExc_TypeError, "%s: out must be a numpy.ndarray", layer);
        return -1;
    }
    PyArrayObject *arr = (PyArrayObject *)out;
    int layout_ok = PyArray_IS_C_CONTIGUOUS(arr) || (fmap_ok && has_fmap_layout(arr));
    if (PyArray_TYPE(arr) != NPY_FLOAT32 || !PyArray_ISALIGNED(arr) ||
        !PyArray_ISNOTSWAPPED(arr) || !layout_ok) {
        PyErr_Format(PyExc_ValueError,
                     "%s: out must be an aligned native float32 array whose images "
                     "are contiguous", layer);
        return -1;
    }
    if (!PyArray_ISWRITEABLE(arr)) {
        PyErr_Format(PyExc_ValueError, "%s: out array is read-only", layer);
        return -1;
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
        return -1;
    }
    if (overlaps_input(arr, input, alias_ok)) {
        PyErr_Format(PyExc_ValueError, "%s: out overlaps the input%s", layer,
                     alias_ok ? " (other than being the very same array)" : "");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Scratch memory. Kernel workspaces (staged inputs, tile sums)        */
/* are often hundreds of KiB: a fresh malloc of that size is an mmap,   */
/* and touching its pages again costs tens of microseconds per call --  */
/* a tenth of a small convolution. One arena is kept and reused; it     */
/* grows to the largest workspace seen. Taken and given back with the   */
/* GIL held, so a second Python thread calling in meanwhile (the kernel */
/* runs without the GIL) simply gets a malloc of its own.               */
/* ------------------------------------------------------------------ */
static float *g_arena = NULL;
static size_t g_arena_floats = 0;
static int g_arena_busy = 0;

/* Returns `floats` floats of scratch (at least one), or NULL with
 * MemoryError set. *from_arena tells scratch_give how to release it. */
static float *scratch_take(int64_t floats, int *from_arena)
{
    *from_arena = 0;
    if ((uint64_t)floats > (uint64_t)PY_SSIZE_T_MAX / sizeof(float)) {
        PyErr_NoMemory(); /* more bytes than this address space has */
        return NULL;
    }
    size_t want = floats > 0 ? (size_t)floats : 1;
    if (!g_arena_busy) {
        if (g_arena_floats < want) {
            PyMem_RawFree(g_arena);
            g_arena = PyMem_RawMalloc(want * sizeof(float));
            g_arena_floats = g_arena != NULL ? want : 0;
        }
        if (g_arena != NULL) {
            g_arena_busy = 1;
            *from_arena = 1;
            return g_arena;
        }
    }
    float *p = PyMem_RawMalloc(want * sizeof(float));
    if (p == NULL)
        PyErr_NoMemory();
    return p;
}

/* The arena keeps at most this much between calls (64 MiB: the largest
 * workspace of the demos at batch 8 x 224 x 224 is about 13 MB); a larger
 * one, from an unusually large call, is given back to the system at once
 * rather than held for the life of the process. */
#define SCRATCH_KEEP_FLOATS ((size_t)16 << 20)

static void scratch_give(float *p, int from_arena)
{
    if (!from_arena) {
        PyMem_RawFree(p);
        return;
    }
    if (g_arena_floats > SCRATCH_KEEP_FLOATS) {
        PyMem_RawFree(g_arena);
        g_arena = NULL;
        g_arena_floats = 0;
    }
    g_arena_busy = 0;
}

/* One place maps kernel statuses to exceptions. A status other than SB_OK
 * after the glue's own checks is a bug in skipblocks, so say so. */
static PyObject *raise_status(sb_status status, const char *layer)
{
    PyErr_Format(PyExc_RuntimeError,
                 "%s: kernel failed with status %d (%s); the shapes passed the "
                 "checks, so this is a skipblocks bug: please report it",
                 layer, (int)status, sb_status_string(status));
    return NULL;
}

/* The result of a computation on a batch: the 4-D array, or its single
 * image when the input was unbatched (3-D). Steals `out`. */
static PyObject *finish_image_batch(PyArrayObject *out, int was_unbatched)
{
    if (!was_unbatched || out == NULL) return (PyObject *)out;
    npy_intp *d = PyArray_DIMS(out);
    npy_intp dims3[3] = {d[1], d[2], d[3]};
    PyArray_Dims shape = {dims3, 3};
    PyObject *result = PyArray_Newshape(out, &shape, NPY_CORDER);
    Py_DECREF(out);
    return result;
}

/* Whether obj can be read as packed weights of `floats` floats (from
 * conv2d_pack or linear_pack): a native-order, aligned, C-contiguous
 * float32 ndarray of exactly that size. The kernels read it in place, so
 * a byte-swapped or misaligned copy must be refused, not misread. */
static int is_packed_array(PyObject *obj, int64_t floats)
{
    if (!PyArray_Check(obj))
        return 0;
    PyArrayObject *arr = (PyArrayObject *)obj;
    return PyArray_TYPE(arr) == NPY_FLOAT32 && PyArray_ISNOTSWAPPED(arr) &&
           PyArray_ISALIGNED(arr) && PyArray_IS_C_CONTIGUOUS(arr) &&
           (int64_t)PyArray_SIZE(arr) == floats;
}

/* torch.nn.functional.batch_norm's eps checks, with its messages (a NaN
 * eps passes them, as in torch). functional.py checks first, with the same
 * wording; these keep every caller of the kernels behind the same rule. */
static int check_eps(const char *layer, double eps, int training)
{
    const char *rule = NULL;
    if (training && eps <= 0.0)
        rule = "must be positive during training";
    else if (eps < 0.0)
        rule = "must be non-negative";
    if (rule == NULL)
        return 0;
    PyObject *value = PyFloat_FromDouble(eps);
    if (value != NULL) {
        PyErr_Format(PyExc_ValueError, "%s: batch_norm eps %s, but got %R", layer, rule,
                     value);
        Py_DECREF(value);
    }
    return -1;
}

/* torch's check of a convolution weight's kernel (dims 2 and 3 of a 4-D
 * weight): -1 with RuntimeError set when either is not positive. */
static int check_kernel_size(const char *layer, const npy_intp *wd)
{
    if (wd[2] >= 1 && wd[3] >= 1)
        return 0;
    PyErr_Format(PyExc_RuntimeError, "%s: kernel size should be greater than zero, but got "
                 "kernel_height: %zd kernel_width: %zd", layer, (Py_ssize_t)wd[2],
                 (Py_ssize_t)wd[3]);
    return -1;
}

/* A per-channel vector argument (BatchNorm scale/shift for the fused
 * paths): None gives NULL; otherwise `count` float32 values. */
static int as_channel_vector(PyObject *obj, const char *layer, const char *what,
                             npy_intp count, PyArrayObject **out)
{
    if (as_optional_float_array(obj, layer, what, out) < 0) return -1;
    if (*out != NULL && PyArray_SIZE(*out) != count) {
        PyErr_Format(PyExc_RuntimeError, "%s: %s should contain %zd elements not %zd",
                     layer, what, (Py_ssize_t)count, (Py_ssize_t)PyArray_SIZE(*out));
        Py_CLEAR(*out);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* conv2d(layer, input, weight, bias, stride, padding, dilation, groups,*/
/*        out=None, reference=False, packed=None, in_scale=None,        */
/*        in_shift=None, in_relu=False, residual=None, relu=False)       */
/* stride, padding, dilation: pairs of ints (Python checked signs).     */
/* packed: weights packed by conv2d_pack (the layer's cache; it holds   */
/* the bias, and may hold a folded BatchNorm); without it the weights   */
/* are packed for this call. in_scale/in_shift/in_relu transform the    */
/* input on the fly; residual/relu form the epilogue (see skipblocks.h).*/
/* reference=True runs the direct reference kernel (tests), no fusion.  */
/* ------------------------------------------------------------------ */
static PyObject *py_conv2d(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"layer", "input", "weight", "bias", "stride", "padding",
                               "dilation", "groups", "out", "reference", "packed",
                               "in_scale", "in_shift", "in_relu", "residual", "relu", NULL};
    const char *layer;
    PyObject *input_obj, *weight_obj, *bias_obj, *out_obj = Py_None, *packed_obj = Py_None;
    PyObject *in_scale_obj = Py_None, *in_shift_obj = Py_None, *residual_obj = Py_None;
    Py_ssize_t sh, sw, ph, pw, dh, dw, groups;
    int reference = 0, in_relu = 0, relu = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sOOO(nn)(nn)(nn)n|OpOOOpOp", keywords,
                                     &layer, &input_obj, &weight_obj, &bias_obj,
                                     &sh, &sw, &ph, &pw, &dh, &dw, &groups,
                                     &out_obj, &reference, &packed_obj, &in_scale_obj,
                                     &in_shift_obj, &in_relu, &residual_obj, &relu))
        return NULL;

    PyArrayObject *input = NULL, *weight = NULL, *bias = NULL, *out = NULL, *packed = NULL;
    PyArrayObject *in_scale = NULL, *in_shift = NULL, *residual = NULL;
    PyObject *result = NULL, *shape_a = NULL, *shape_b = NULL;
    float *workspace = NULL, *own_packed = NULL;
    int was_unbatched = 0, workspace_from_arena = 0;

    weight = as_float_array(weight_obj, layer, "weight", 0);
    if (weight == NULL) goto done;
    if (as_optional_float_array(bias_obj, layer, "bias", &bias) < 0) goto done;
    input = as_float_array(input_obj, layer, "input", 1);
    if (input == NULL) goto done;

    if (PyArray_NDIM(input) != 3 && PyArray_NDIM(input) != 4) {
        if ((shape_a = shape_string(input)) != NULL)
            PyErr_Format(PyExc_RuntimeError,
                         "%s: Expected 3D (unbatched) or 4D (batched) input to conv2d, "
                         "but got input of size: %U", layer, shape_a);
        goto done;
    }
    if (PyArray_NDIM(weight) != 4) {
        if ((shape_a = shape_string(weight)) != NULL)
            PyErr_Format(PyExc_RuntimeError,
                         "%s: weight should be 4-D (out_channels, in_channels/groups, "
                         "kH, kW), but got weight of size %U", layer, shape_a);
        goto done;
    }
    if (PyArray_NDIM(input) == 3) {
        PyArrayObject *batched = add_batch_axis(input);
        Py_DECREF(input);
        input = batched;
        was_unbatched = 1;
        if (input == NULL) goto done;
    }

    npy_intp *wd = PyArray_DIMS(weight);
    npy_intp *xd = PyArray_DIMS(input);
    if (groups < 1) {
        PyErr_Format(PyExc_RuntimeError, "%s: non-positive groups is not supported", layer);
        goto done;
    }
    /* torch's wording for each. functional.conv2d checks some of these
     * first; the layers call this function directly, so all are checked here. */
    if (sh < 1 || sw < 1) {
        PyErr_Format(PyExc_RuntimeError, "%s: non-positive stride is not supported "
                     "(got stride (%zd, %zd))", layer, sh, sw);
        goto done;
    }
    if (ph < 0 || pw < 0) {
        PyErr_Format(PyExc_RuntimeError, "%s: negative padding is not supported "
                     "(got padding (%zd, %zd))", layer, ph, pw);
        goto done;
    }
    if (dh < 1 || dw < 1) {
        PyErr_Format(PyExc_RuntimeError, "%s: dilation should be greater than zero "
                     "(got dilation (%zd, %zd))", layer, dh, dw);
        goto done;
    }
    if (check_kernel_size(layer, wd) < 0) goto done;
    if (sh > SB_CONV_PARAM_MAX || sw > SB_CONV_PARAM_MAX || ph > SB_CONV_PARAM_MAX ||
        pw > SB_CONV_PARAM_MAX || dh > SB_CONV_PARAM_MAX || dw > SB_CONV_PARAM_MAX ||
        wd[2] > SB_CONV_PARAM_MAX || wd[3] > SB_CONV_PARAM_MAX) {
        PyErr_Format(PyExc_ValueError,
                     "%s: stride (%zd, %zd), padding (%zd, %zd), dilation (%zd, %zd) and kernel "
                     "size (%zd, %zd) must each be at most %lld", layer, sh, sw, ph, pw, dh, dw,
                     (Py_ssize_t)wd[2], (Py_ssize_t)wd[3], (long long)SB_CONV_PARAM_MAX);
        goto done;
    }
    if (wd[0] % groups != 0) {
        if ((shape_a = shape_string(weight)) != NULL)
            PyErr_Format(PyExc_RuntimeError,
                         "%s: Given groups=%zd, expected weight to be divisible by %zd at "
                         "dimension 0, but got weight of size %U instead",
                         layer, groups, groups, shape_a);
        goto done;
    }
    if (wd[0] == 0) {
        if ((shape_a = shape_string(weight)) != NULL)
            PyErr_Format(PyExc_RuntimeError,
                         "%s: Given groups=%zd, expected weight to be at least 1 at dimension "
                         "0, but got weight of size %U instead", layer, groups, shape_a);
        goto done;
    }
    if (xd[1] != wd[1] * groups) {
        shape_a = shape_string(weight);
        shape_b = shape_a ? shape_string(input) : NULL;
        if (shape_b != NULL)
            PyErr_Format(PyExc_RuntimeError,
                         "%s: Given groups=%zd, weight of size %U, expected input%U to "
                         "have %zd channels, but got %zd channels instead",
                         layer, groups, shape_a, shape_b, (Py_ssize_t)(wd[1] * groups),
                         (Py_ssize_t)xd[1]);
        goto done;
    }
    if (bias != NULL && (PyArray_NDIM(bias) != 1 || PyArray_DIMS(bias)[0] != wd[0])) {
        shape_a = shape_string(weight);
        shape_b = shape_a ? shape_string(bias) : NULL;
        if (shape_b != NULL)
            PyErr_Format(PyExc_RuntimeError,
                         "%s: Given weight of size %U, expected bias to be 1-dimensional "
                         "with %zd elements, but got bias of size %U instead",
                         layer, shape_a, (Py_ssize_t)wd[0], shape_b);
        goto done;
    }
    int64_t oh = sb_conv2d_out_size(xd[2], wd[2], sh, ph, dh);
    int64_t ow = sb_conv2d_out_size(xd[3], wd[3], sw, pw, dw);
    if (oh <= 0 || ow <= 0) {
        PyErr_Format(PyExc_RuntimeError,
                     "%s: Calculated padded input size per channel: (%zd x %zd). Kernel "
                     "size: (%zd x %zd). Kernel size can't be greater than actual input size",
                     layer, (Py_ssize_t)(xd[2] + 2 * ph), (Py_ssize_t)(xd[3] + 2 * pw),
                     (Py_ssize_t)((wd[2] - 1) * dh + 1), (Py_ssize_t)((wd[3] - 1) * dw + 1));
        goto done;
    }
    if ((xd[2] == 0 || xd[3] == 0) && xd[0] > 0 && xd[1] > 0) {
        if ((shape_a = shape_string(input)) != NULL)
            PyErr_Format(PyExc_RuntimeError,
                         "%s: Only zero batch or zero channel inputs are supported, but got "
                         "input shape: %U", layer, shape_a);
        goto done;
    }
    /* torch: an input with no channels gives an output with no channels
     * (whatever the weight's C_out), not C_out maps of bias */
    npy_intp out_dims[4] = {xd[0], xd[1] == 0 ? 0 : wd[0], oh, ow};

    /* Fusion arguments. */
    if (as_channel_vector(in_scale_obj, layer, "in_scale", xd[1], &in_scale) < 0) goto done;
    if (as_channel_vector(in_shift_obj, layer, "in_shift", xd[1], &in_shift) < 0) goto done;
    if ((in_scale == NULL) != (in_shift == NULL)) {
        PyErr_Format(PyExc_ValueError, "%s: in_scale and in_shift go together", layer);
        goto done;
    }
    if (residual_obj != Py_None) {
        residual = as_float_array(residual_obj, layer, "residual", 1);
        if (residual == NULL) goto done;
        int same = PyArray_NDIM(residual) == 4;
        for (int i = 0; same && i < 4; i++) same = PyArray_DIMS(residual)[i] == out_dims[i];
        if (!same) {
            if ((shape_a = shape_string(residual)) != NULL)
                PyErr_Format(PyExc_RuntimeError, "%s: the residual has size %U, but the "
                             "convolution's output is [%zd, %zd, %zd, %zd]", layer, shape_a,
                             (Py_ssize_t)out_dims[0], (Py_ssize_t)out_dims[1],
                             (Py_ssize_t)out_dims[2], (Py_ssize_t)out_dims[3]);
            goto done;
        }
    }
    if (reference && (in_scale || residual || in_relu || relu || packed_obj != Py_None)) {
        PyErr_Format(PyExc_ValueError, "%s: the reference kernel takes no fusion", layer);
        goto done;
    }

    if (out_obj != Py_None) {
        if (was_unbatched) {
            PyErr_Format(PyExc_ValueError, "%s: out= needs a 4-D (batched) input", layer);
            goto done;
        }
        if (check_out_array(out_obj, layer, 4, out_dims, 1, input, 0) < 0) goto done;
        Py_INCREF(out_obj);
        out = (PyArrayObject *)out_obj;
    } else {
        out = new_float_array(4, out_dims);
        if (out == NULL) goto done;
    }

    sb_fmap in_map = fmap_of(input), out_map = fmap_of(out);
    sb_conv2d_params params = {wd[2], wd[3], sh, sw, ph, pw, dh, dw, groups};
    const float *w_data = (const float *)PyArray_DATA(weight);
    const float *b_data = bias ? (const float *)PyArray_DATA(bias) : NULL;
    const float *packed_data = NULL;
    int64_t packed_floats = sb_conv2d_f32_packed_weights_floats(wd[0], wd[1], wd[2], wd[3],
                                                                groups);
    if (!reference) {
        if (packed_obj != Py_None) {
            if (!is_packed_array(packed_obj, packed_floats)) {
                PyErr_Format(PyExc_ValueError, "%s: packed weights do not match the weight "
                             "shape (repack them with conv2d_pack)", layer);
                goto done;
            }
            packed = (PyArrayObject *)packed_obj;
            Py_INCREF(packed);
            packed_data = (const float *)PyArray_DATA(packed);
        } else {
            own_packed = PyMem_RawMalloc((size_t)(packed_floats > 0 ? packed_floats : 1) *
                                         sizeof(float));
            if (own_packed == NULL) { PyErr_NoMemory(); goto done; }
            packed_data = own_packed;
        }
    }
    sb_conv2d_fusion fusion;
    memset(&fusion, 0, sizeof fusion);
    fusion.in_scale = in_scale ? (const float *)PyArray_DATA(in_scale) : NULL;
    fusion.in_shift = in_shift ? (const float *)PyArray_DATA(in_shift) : NULL;
    fusion.in_relu = in_relu;
    fusion.out_relu = relu;
    if (residual != NULL) {
        fusion.residual = (const float *)PyArray_DATA(residual);
        fusion.residual_map = fmap_of(residual);
    }
    int threads = sb_get_num_threads();
    int64_t workspace_floats = reference ? 0
        : sb_conv2d_f32_packed_workspace_floats(&out_map, &in_map, &params, &fusion, threads);
    if (!reference && workspace_floats == 0 && out_dims[0] > 0 && out_dims[1] > 0) {
        /* The arguments are valid (checked above), so the packed path's
         * staged input would be too large to address: a stride and dilation
         * near 2^31 stage that many phase planes per axis. The direct loop
         * needs no workspace and computes the same convolution (torch
         * accepts these parameters too); a fused call has no such loop. */
        if (in_scale || residual || in_relu || relu) {
            PyErr_Format(PyExc_ValueError,
                         "%s: stride (%zd, %zd), padding (%zd, %zd) and dilation (%zd, %zd) "
                         "make the fused convolution's workspace too large", layer,
                         sh, sw, ph, pw, dh, dw);
            goto done;
        }
        reference = 1;
    }
    if (workspace_floats > 0) {
        workspace = scratch_take(workspace_floats, &workspace_from_arena);
        if (workspace == NULL) goto done;
    }

    sb_status status = SB_OK;
    float *out_data = (float *)PyArray_DATA(out);
    const float *in_data = (const float *)PyArray_DATA(input);
    Py_BEGIN_ALLOW_THREADS
    if (reference) {
        status = sb_conv2d_f32__ref(out_data, &out_map, in_data, &in_map, w_data, b_data,
                                    &params);
    } else {
        if (own_packed != NULL)
            status = sb_conv2d_f32_pack_weights(own_packed, w_data, b_data, NULL, NULL,
                                                wd[0], wd[1], wd[2], wd[3], groups);
        if (status == SB_OK)
            status = sb_conv2d_f32_packed(out_data, &out_map, in_data, &in_map, packed_data,
                                          &params, &fusion, workspace, threads);
    }
    Py_END_ALLOW_THREADS
    if (status != SB_OK) { raise_status(status, layer); goto done; }

    result = finish_image_batch(out, was_unbatched);
    out = NULL; /* stolen */
done:
    if (workspace != NULL)
        scratch_give(workspace, workspace_from_arena);
    PyMem_RawFree(own_packed);
    Py_XDECREF(input); Py_XDECREF(weight); Py_XDECREF(bias); Py_XDECREF(out);
    Py_XDECREF(packed); Py_XDECREF(in_scale); Py_XDECREF(in_shift); Py_XDECREF(residual);
    Py_XDECREF(shape_a); Py_XDECREF(shape_b);
    return result;
}

/* ------------------------------------------------------------------ */
/* conv2d_pack(layer, weight, bias, groups, row_scale=None,             */
/*             row_shift=None) -> 1-D float32 array                      */
/* Packs weights for conv2d(packed=...); row_scale/row_shift fold a     */
/* following eval-mode BatchNorm (see sb_conv2d_f32_pack_weights).      */
/* ------------------------------------------------------------------ */
static PyObject *py_conv2d_pack(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"layer", "weight", "bias", "groups", "row_scale", "row_shift",
                               NULL};
    const char *layer;
    PyObject *weight_obj, *bias_obj, *scale_obj = Py_None, *shift_obj = Py_None;
    Py_ssize_t groups;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sOOn|OO", keywords, &layer, &weight_obj,
                                     &bias_obj, &groups, &scale_obj, &shift_obj))
        return NULL;
    PyArrayObject *weight = NULL, *bias = NULL, *scale = NULL, *shift = NULL, *packed = NULL;
    PyObject *result = NULL, *shape = NULL;
    weight = as_float_array(weight_obj, layer, "weight", 0);
    if (weight == NULL) goto done;
    if (PyArray_NDIM(weight) != 4 || groups < 1 || PyArray_DIMS(weight)[0] % groups != 0) {
        if ((shape = shape_string(weight)) != NULL)
            PyErr_Format(PyExc_RuntimeError, "%s: cannot pack a weight of size %U with "
                         "groups=%zd: it must be 4-D with out_channels divisible by groups",
                         layer, shape, groups);
        goto done;
    }
    npy_intp *wd = PyArray_DIMS(weight);
    if (check_kernel_size(layer, wd) < 0) goto done;
    if (as_channel_vector(bias_obj, layer, "bias", wd[0], &bias) < 0) goto done;
    if (as_channel_vector(scale_obj, layer, "row_scale", wd[0], &scale) < 0) goto done;
    if (as_channel_vector(shift_obj, layer, "row_shift", wd[0], &shift) < 0) goto done;
    if ((scale == NULL) != (shift == NULL)) {
        PyErr_Format(PyExc_ValueError, "%s: row_scale and row_shift go together", layer);
        goto done;
    }
    npy_intp size = sb_conv2d_f32_packed_weights_floats(wd[0], wd[1], wd[2], wd[3], groups);
    packed = new_float_array(1, &size);
    if (packed == NULL) goto done;
    sb_status status;
    float *packed_data = (float *)PyArray_DATA(packed);
    const float *w_data = (const float *)PyArray_DATA(weight);
    const float *b_data = bias ? (const float *)PyArray_DATA(bias) : NULL;
    const float *scale_data = scale ? (const float *)PyArray_DATA(scale) : NULL;
    const float *shift_data = shift ? (const float *)PyArray_DATA(shift) : NULL;
    Py_BEGIN_ALLOW_THREADS
    status = sb_conv2d_f32_pack_weights(packed_data, w_data, b_data, scale_data, shift_data,
                                        wd[0], wd[1], wd[2], wd[3], groups);
    Py_END_ALLOW_THREADS
    if (status != SB_OK) { raise_status(status, layer); goto done; }
    result = (PyObject *)packed;
    packed = NULL;
done:
    Py_XDECREF(weight); Py_XDECREF(bias); Py_XDECREF(scale); Py_XDECREF(shift);
    Py_XDECREF(packed); Py_XDECREF(shape);
    return result;
}

/* ------------------------------------------------------------------ */
/* batch_norm(layer, input, running_mean, running_var, weight, bias,   */
/*            training, momentum, eps, relu=False, out=None)            */
/* Matches torch.nn.functional.batch_norm on 2-D..N-D input (N, C, ...): */
/* statistics are per channel over every axis but 1. With training, the */
/* batch statistics normalise and, when running_mean/var are given, they */
/* are updated in place (they must be writable contiguous float32 arrays */
/* of C elements: the Python layer guarantees that for module buffers).  */
/* ------------------------------------------------------------------ */
static int check_running_stat(PyObject *obj, const char *layer, const char *what,
                              npy_intp channels, int must_write)
{
    if (!PyArray_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s: %s must be a numpy.ndarray", layer, what);
        return -1;
    }
    PyArrayObject *arr = (PyArrayObject *)obj;
    if (PyArray_TYPE(arr) != NPY_FLOAT32 || !PyArray_IS_C_CONTIGUOUS(arr) ||
        !PyArray_ISALIGNED(arr) || !PyArray_ISNOTSWAPPED(arr)) {
        PyErr_Format(PyExc_TypeError,
                     "%s: %s must be a C-contiguous native float32 array, because "
                     "training updates it in place", layer, what);
        return -1;
    }
    if (PyArray_SIZE(arr) != channels) {
        PyErr_Format(PyExc_RuntimeError, "%s: %s should contain %zd elements not %zd",
                     layer, what, (Py_ssize_t)channels, (Py_ssize_t)PyArray_SIZE(arr));
        return -1;
    }
    if (must_write && !PyArray_ISWRITEABLE(arr)) {
        PyErr_Format(PyExc_ValueError,
                     "%s: %s is read-only, so training cannot update it in place "
                     "(pass a writable array, or training=False)", layer, what);
        return -1;
    }
    return 0;
}

static PyObject *py_batch_norm(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"layer", "input", "running_mean", "running_var", "weight",
                               "bias", "training", "momentum", "eps", "relu", "out",
                               "apply", "residual", NULL};
    const char *layer;
    PyObject *input_obj, *rm_obj, *rv_obj, *weight_obj, *bias_obj, *out_obj = Py_None;
    PyObject *residual_obj = Py_None;
    int training, relu = 0, apply = 1;
    double momentum, eps;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sOOOOOpdd|pOpO", keywords, &layer,
                                     &input_obj, &rm_obj, &rv_obj, &weight_obj, &bias_obj,
                                     &training, &momentum, &eps, &relu, &out_obj, &apply,
                                     &residual_obj))
        return NULL;
    if (check_eps(layer, eps, training) < 0)
        return NULL;

    PyArrayObject *input = NULL, *weight = NULL, *bias = NULL, *out = NULL, *residual = NULL;
    PyArrayObject *scale_arr = NULL, *shift_arr = NULL;
    PyArrayObject *running_mean_arr = NULL, *running_var_arr = NULL;
    PyObject *result = NULL, *shape_a = NULL;
    float *scratch = NULL;

    input = as_float_array(input_obj, layer, "input", 1);
    if (input == NULL) goto done;
    int ndim = PyArray_NDIM(input);
    if (ndim < 2) {
        if ((shape_a = shape_string(input)) != NULL)
            PyErr_Format(PyExc_ValueError, "%s: expected at least 2D input (got %dD input "
                         "of size %U)", layer, ndim, shape_a);
        goto done;
    }
    npy_intp *xd = PyArray_DIMS(input);
    npy_intp channels = xd[1];
    npy_intp spatial = 1;
    for (int i = 2; i < ndim; i++) spatial *= xd[i];

    int have_running = rm_obj != Py_None && rv_obj != Py_None;
    if ((rm_obj == Py_None) != (rv_obj == Py_None)) {
        PyErr_Format(PyExc_ValueError, "%s: running_mean and running_var must both be "
                     "given or both be None", layer);
        goto done;
    }
    if (!training && !have_running) {
        PyErr_Format(PyExc_RuntimeError, "%s: running_mean and running_var must be "
                     "defined in evaluation mode", layer);
        goto done;
    }
    if (have_running) {
        if (training) {
            /* updated in place: must be the caller's own writable arrays */
            if (check_running_stat(rm_obj, layer, "running_mean", channels, 1) < 0) goto done;
            if (check_running_stat(rv_obj, layer, "running_var", channels, 1) < 0) goto done;
            Py_INCREF(rm_obj);
            Py_INCREF(rv_obj);
            running_mean_arr = (PyArrayObject *)rm_obj;
            running_var_arr = (PyArrayObject *)rv_obj;
        } else {
            /* only read: any layout or real dtype, converted like the input */
            if (as_channel_vector(rm_obj, layer, "running_mean", channels,
                                  &running_mean_arr) < 0) goto done;
            if (as_channel_vector(rv_obj, layer, "running_var", channels,
                                  &running_var_arr) < 0) goto done;
        }
    }
    if (as_optional_float_array(weight_obj, layer, "weight", &weight) < 0) goto done;
    if (as_optional_float_array(bias_obj, layer, "bias", &bias) < 0) goto done;
    if (weight != NULL && PyArray_SIZE(weight) != channels) {
        PyErr_Format(PyExc_RuntimeError, "%s: weight should contain %zd elements not %zd",
                     layer, (Py_ssize_t)channels, (Py_ssize_t)PyArray_SIZE(weight));
        goto done;
    }
    if (bias != NULL && PyArray_SIZE(bias) != channels) {
        PyErr_Format(PyExc_RuntimeError, "%s: bias should contain %zd elements not %zd",
                     layer, (Py_ssize_t)channels, (Py_ssize_t)PyArray_SIZE(bias));
        goto done;
    }
    npy_intp count = xd[0] * spatial;
    /* torch.nn.functional.batch_norm's _verify_batch_size. */
    if (training && count == 1) {
        if ((shape_a = shape_string(input)) != NULL)
            PyErr_Format(PyExc_ValueError,
                         "%s: Expected more than 1 value per channel when training, got "
                         "input size %U", layer, shape_a);
        goto done;
    }

    if (residual_obj != Py_None) {
        /* ResidualBlock's train-mode tail: relu(bn(x) + residual). */
        residual = as_float_array(residual_obj, layer, "residual", 1);
        if (residual == NULL) goto done;
        int same = ndim == 4 && PyArray_NDIM(residual) == 4;
        for (int i = 0; same && i < 4; i++) same = PyArray_DIMS(residual)[i] == xd[i];
        if (!same) {
            PyErr_Format(PyExc_RuntimeError, "%s: the residual must have the shape of the "
                         "4-D input", layer);
            goto done;
        }
    }
    if (!apply) {
        /* Only the per-channel scale and shift (and the running-statistics
         * update): the caller applies them inside the next convolution. */
        npy_intp c_dims[1] = {channels};
        scale_arr = new_float_array(1, c_dims);
        shift_arr = new_float_array(1, c_dims);
        if (scale_arr == NULL || shift_arr == NULL) goto done;
    } else if (out_obj != Py_None) {
        if (check_out_array(out_obj, layer, ndim, xd, ndim == 4, input, 1) < 0) goto done;
        Py_INCREF(out_obj);
        out = (PyArrayObject *)out_obj;
    } else {
        out = new_float_array(ndim, xd);
        if (out == NULL) goto done;
    }

    /* Kernels see every input as N x C x (spatial) x 1. A non-4-D input is
     * C-contiguous here (as_float_array only keeps fmap layouts for 4-D). */
    sb_fmap in_map, out_map, residual_map;
    if (ndim == 4) {
        in_map = fmap_of(input);
        out_map = out ? fmap_of(out) : in_map;
    } else {
        sb_fmap m = {xd[0], channels, spatial, 1, channels * spatial};
        in_map = m;
        out_map = m;
    }
    residual_map = residual ? fmap_of(residual) : in_map;

    /* scratch: batch mean, batch sum of squares, scale, shift. */
    scratch = PyMem_RawMalloc(4 * (size_t)(channels > 0 ? channels : 1) * sizeof(float));
    if (scratch == NULL) { PyErr_NoMemory(); goto done; }
    float *batch_mean = scratch, *batch_var_sum = scratch + channels;
    float *scale = apply ? scratch + 2 * channels : (float *)PyArray_DATA(scale_arr);
    float *shift = apply ? scratch + 3 * channels : (float *)PyArray_DATA(shift_arr);
    float *running_mean = have_running ? (float *)PyArray_DATA(running_mean_arr) : NULL;
    float *running_var = have_running ? (float *)PyArray_DATA(running_var_arr) : NULL;
    const float *w_data = weight ? (const float *)PyArray_DATA(weight) : NULL;
    const float *b_data = bias ? (const float *)PyArray_DATA(bias) : NULL;
    const float *in_data = (const float *)PyArray_DATA(input);
    float *out_data = out ? (float *)PyArray_DATA(out) : NULL;
    const float *residual_data = residual ? (const float *)PyArray_DATA(residual) : NULL;

    sb_status status = SB_OK;
    Py_BEGIN_ALLOW_THREADS
    if (training && count == 0) {
        /* torch: an empty batch in train mode gives an empty output and
         * leaves the running statistics as they were. The scale and shift
         * of an empty batch are never used; make them the identity. */
        for (npy_intp c = 0; c < channels; c++) {
            scale[c] = 1.0f;
            shift[c] = 0.0f;
        }
    } else if (training) {
        status = sb_batch_norm_stats_f32(batch_mean, batch_var_sum, in_data, &in_map);
        if (status == SB_OK && have_running)
            status = sb_batch_norm_update_running_f32(running_mean, running_var, batch_mean,
                                                      batch_var_sum, count, momentum, channels);
        if (status == SB_OK)
            status = sb_batch_norm_fold_f32(scale, shift, batch_mean, batch_var_sum, w_data,
                                            b_data, eps, channels, count);
    } else {
        status = sb_batch_norm_fold_f32(scale, shift, running_mean, running_var, w_data,
                                        b_data, eps, channels, 0);
    }
    if (status == SB_OK && apply && count > 0) {
        if (residual_data != NULL)
            status = sb_batch_norm_add_relu_f32(out_data, &out_map, in_data, &in_map, scale,
                                                shift, residual_data, &residual_map);
        else
            status = sb_batch_norm_apply_f32(out_data, &out_map, in_data, &in_map, scale,
                                             shift, relu);
    }
    Py_END_ALLOW_THREADS
    if (status != SB_OK) { raise_status(status, layer); goto done; }
    if (apply) {
        result = (PyObject *)out;
        out = NULL;
    } else {
        result = PyTuple_Pack(2, (PyObject *)scale_arr, (PyObject *)shift_arr);
    }
done:
    PyMem_RawFree(scratch);
    Py_XDECREF(input); Py_XDECREF(weight); Py_XDECREF(bias); Py_XDECREF(out);
    Py_XDECREF(residual); Py_XDECREF(scale_arr); Py_XDECREF(shift_arr);
    Py_XDECREF(running_mean_arr); Py_XDECREF(running_var_arr);
    Py_XDECREF(shape_a);
    return result;
}


/* ------------------------------------------------------------------ */
/* batch_norm_fold(layer, mean, var, weight, bias, eps) -> (scale, shift)*/
/* An eval-mode BatchNorm as the per-channel x * scale + shift that torch */
/* computes; the layers fold it into the convolution next to it.        */
/* ------------------------------------------------------------------ */
static PyObject *py_batch_norm_fold(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"layer", "mean", "var", "weight", "bias", "eps", NULL};
    const char *layer;
    PyObject *mean_obj, *var_obj, *weight_obj, *bias_obj;
    double eps;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sOOOOd", keywords, &layer, &mean_obj,
                                     &var_obj, &weight_obj, &bias_obj, &eps))
        return NULL;
    if (check_eps(layer, eps, 0) < 0)
        return NULL;
    PyArrayObject *mean = NULL, *var = NULL, *weight = NULL, *bias = NULL;
    PyArrayObject *scale = NULL, *shift = NULL;
    PyObject *result = NULL;
    mean = as_float_array(mean_obj, layer, "running_mean", 0);
    if (mean == NULL) goto done;
    npy_intp channels = PyArray_SIZE(mean);
    if (as_channel_vector(var_obj, layer, "running_var", channels, &var) < 0) goto done;
    if (var == NULL) {
        PyErr_Format(PyExc_TypeError, "%s: running_var is required", layer);
        goto done;
    }
    if (as_channel_vector(weight_obj, layer, "weight", channels, &weight) < 0) goto done;
    if (as_channel_vector(bias_obj, layer, "bias", channels, &bias) < 0) goto done;
    scale = new_float_array(1, &channels);
    shift = new_float_array(1, &channels);
    if (scale == NULL || shift == NULL) goto done;
    sb_status status = sb_batch_norm_fold_f32(
        (float *)PyArray_DATA(scale), (float *)PyArray_DATA(shift),
        (const float *)PyArray_DATA(mean), (const float *)PyArray_DATA(var),
        weight ? (const float *)PyArray_DATA(weight) : NULL,
        bias ? (const float *)PyArray_DATA(bias) : NULL, eps, channels, 0);
    if (status != SB_OK) { raise_status(status, layer); goto done; }
    result = PyTuple_Pack(2, (PyObject *)scale, (PyObject *)shift);
done:
    Py_XDECREF(mean); Py_XDECREF(var); Py_XDECREF(weight); Py_XDECREF(bias);
    Py_XDECREF(scale); Py_XDECREF(shift);
    return result;
}

/* ------------------------------------------------------------------ */
/* max_pool2d(layer, input, kernel, stride, padding, dilation, ceil_mode)*/
/* ------------------------------------------------------------------ */
static PyObject *py_max_pool2d(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"layer", "input", "kernel_size", "stride", "padding",
                               "dilation", "ceil_mode", NULL};
    const char *layer;
    PyObject *input_obj;
    Py_ssize_t kh, kw, sh, sw, ph, pw, dh, dw;
    int ceil_mode;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sO(nn)(nn)(nn)(nn)p", keywords, &layer,
                                     &input_obj, &kh, &kw, &sh, &sw, &ph, &pw, &dh, &dw,
                                     &ceil_mode))
        return NULL;
    PyArrayObject *input = NULL, *out = NULL;
    PyObject *result = NULL;
    int was_unbatched = 0;

    input = as_float_array(input_obj, layer, "input", 1);
    if (input == NULL) goto done;
    int ndim = PyArray_NDIM(input);
    /* torch accepts an empty batch (N = 0) but no other empty axis. */
    int empty_non_batch = 0;
    for (int i = ndim == 4 ? 1 : 0; i < ndim; i++) empty_non_batch |= PyArray_DIMS(input)[i] == 0;
    if (ndim != 3 && ndim != 4) {
        PyErr_Format(PyExc_RuntimeError, "%s: non-empty 3D or 4D (batch mode) tensor "
                     "expected for input", layer);
        goto done;
    }
    if (empty_non_batch) {
        PyObject *shape = shape_string(input);
        if (shape != NULL) {
            PyErr_Format(PyExc_RuntimeError, "%s: Expected 3D or 4D (batch mode) tensor with "
                         "optional 0 dim batch size for input, but got:%U", layer, shape);
            Py_DECREF(shape);
        }
        goto done;
    }
    {
        /* torch keeps pooling parameters in an int */
        const Py_ssize_t all[8] = {kh, kw, sh, sw, ph, pw, dh, dw};
        for (int i = 0; i < 8; i++)
            if (all[i] > SB_POOL_PARAM_MAX || all[i] < -SB_POOL_PARAM_MAX - 1) {
                PyErr_Format(PyExc_RuntimeError, "%s: value cannot be converted to type int "
                             "without overflow (kernel_size (%zd, %zd), stride (%zd, %zd), "
                             "padding (%zd, %zd), dilation (%zd, %zd))",
                             layer, kh, kw, sh, sw, ph, pw, dh, dw);
                goto done;
            }
    }
    /* torch's checks in its order: per axis (height first) the stride is
     * not zero and the padding is non-negative and at most half the
     * effective (dilated) kernel; then kernel, stride and dilation are
     * positive; then both paddings are at most half the kernel itself. */
    for (int axis = 0; axis < 2; axis++) {
        const Py_ssize_t pad = axis ? pw : ph, k = axis ? kw : kh, d = axis ? dw : dh;
        if ((axis ? sw : sh) == 0) {
            PyErr_Format(PyExc_RuntimeError, "%s: stride should not be zero", layer);
            goto done;
        }
        if (pad < 0) {
            PyErr_Format(PyExc_RuntimeError, "%s: pad must be non-negative, but got pad: %zd",
                         layer, pad);
            goto done;
        }
        if (pad > ((k - 1) * d + 1) / 2) {
            PyErr_Format(PyExc_RuntimeError, "%s: pad should be at most half of effective "
                         "kernel size, but got pad=%zd, kernel_size=%zd and dilation=%zd",
                         layer, pad, k, d);
            goto done;
        }
    }
    if (kh <= 0 || kw <= 0) {
        PyErr_Format(PyExc_RuntimeError, "%s: kernel size should be greater than zero, but "
                     "got kH: %zd kW: %zd", layer, kh, kw);
        goto done;
    }
    if (sh <= 0 || sw <= 0) {
        PyErr_Format(PyExc_RuntimeError, "%s: stride should be greater than zero, but got "
                     "dH: %zd dW: %zd", layer, sh, sw);
        goto done;
    }
    if (dh <= 0 || dw <= 0) {
        PyErr_Format(PyExc_RuntimeError, "%s: dilation should be greater than zero, but got "
                     "dilationH: %zd dilationW: %zd", layer, dh, dw);
        goto done;
    }
    if (kw / 2 < pw || kh / 2 < ph) {
        PyErr_Format(PyExc_RuntimeError, "%s: pad should be smaller than or equal to half "
                     "of kernel size, but got padW = %zd, padH = %zd, kW = %zd, kH = %zd",
                     layer, pw, ph, kw, kh);
        goto done;
    }
    if (ndim == 3) {
        PyArrayObject *batched = add_batch_axis(input);
        Py_DECREF(input);
        input = batched;
        was_unbatched = 1;
        if (input == NULL) goto done;
    }
    npy_intp *xd = PyArray_DIMS(input);
    int64_t oh = sb_pool2d_out_size(xd[2], kh, sh, ph, dh, ceil_mode);
    int64_t ow = sb_pool2d_out_size(xd[3], kw, sw, pw, dw, ceil_mode);
    if (oh <= 0 || ow <= 0) {
        PyErr_Format(PyExc_RuntimeError, "%s: Given input size: (%zdx%zdx%zd). Calculated "
                     "output size: (%zdx%zdx%zd). Output size is too small", layer,
                     (Py_ssize_t)xd[1], (Py_ssize_t)xd[2], (Py_ssize_t)xd[3],
                     (Py_ssize_t)xd[1], (Py_ssize_t)oh, (Py_ssize_t)ow);
        goto done;
    }
    npy_intp out_dims[4] = {xd[0], xd[1], oh, ow};
    out = new_float_array(4, out_dims);
    if (out == NULL) goto done;
    sb_fmap in_map = fmap_of(input), out_map = fmap_of(out);
    sb_pool2d_params params = {kh, kw, sh, sw, ph, pw, dh, dw};
    sb_status status;
    Py_BEGIN_ALLOW_THREADS
    status = sb_max_pool2d_f32((float *)PyArray_DATA(out), &out_map,
                               (const float *)PyArray_DATA(input), &in_map, &params);
    Py_END_ALLOW_THREADS
    if (status != SB_OK) { raise_status(status, layer); goto done; }
    result = finish_image_batch(out, was_unbatched);
    out = NULL;
done:
    Py_XDECREF(input); Py_XDECREF(out);
    return result;
}

/* ------------------------------------------------------------------ */
/* adaptive_avg_pool2d(layer, input, output_size)                       */
/* output_size: a pair of positive ints (Python resolved None entries). */
/* ------------------------------------------------------------------ */
static PyObject *py_adaptive_avg_pool2d(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"layer", "input", "output_size", NULL};
    const char *layer;
    PyObject *input_obj;
    Py_ssize_t oh, ow;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sO(nn)", keywords, &layer, &input_obj,
                                     &oh, &ow))
        return NULL;
    PyArrayObject *input = NULL, *out = NULL;
    PyObject *result = NULL, *shape_a = NULL;
    int was_unbatched = 0;

    input = as_float_array(input_obj, layer, "input", 1);
    if (input == NULL) goto done;
    int ndim = PyArray_NDIM(input);
    if (ndim != 3 && ndim != 4) {
        if ((shape_a = shape_string(input)) != NULL)
            PyErr_Format(PyExc_RuntimeError, "%s: adaptive_avg_pool2d(): Expected 3D or 4D "
                         "tensor, but got %U", layer, shape_a);
        goto done;
    }
    /* torch computes a 1x1 output as a mean, which accepts empty axes (the
     * mean of nothing is NaN); any other output size rejects them. */
    const int global = oh == 1 && ow == 1;
    int empty_window = 0;
    for (int i = ndim - 3; i < ndim; i++) {
        if (PyArray_DIMS(input)[i] == 0 && global) {
            empty_window |= i >= ndim - 2;
        } else if (PyArray_DIMS(input)[i] == 0) {
            if ((shape_a = shape_string(input)) != NULL)
                PyErr_Format(PyExc_RuntimeError, "%s: adaptive_avg_pool2d(): Expected input "
                             "to have non-zero size for non-batch dimensions, but input has "
                             "sizes %U with dimension %d being empty", layer, shape_a, i);
            goto done;
        }
    }
    if (oh < 0 || ow < 0) {
        PyErr_Format(PyExc_RuntimeError, "%s: adaptive_avg_pool2d(): output_size must be "
                     "non-negative, got (%zd, %zd)", layer, oh, ow);
        goto done;
    }
    if (ndim == 3) {
        PyArrayObject *batched = add_batch_axis(input);
        Py_DECREF(input);
        input = batched;
        was_unbatched = 1;
        if (input == NULL) goto done;
    }
    npy_intp *xd = PyArray_DIMS(input);
    npy_intp out_dims[4] = {xd[0], xd[1], oh, ow};
    out = new_float_array(4, out_dims);
    if (out == NULL) goto done;
    sb_fmap in_map = fmap_of(input), out_map = fmap_of(out);
    sb_status status = SB_OK;
    /* An output size of 0 is an empty result in torch: nothing to compute. */
    if (empty_window) {
        float *o = (float *)PyArray_DATA(out);
        for (npy_intp i = 0; i < PyArray_SIZE(out); i++)
            o[i] = NAN;
    } else if (oh > 0 && ow > 0) {
        Py_BEGIN_ALLOW_THREADS
        status = sb_adaptive_avg_pool2d_f32((float *)PyArray_DATA(out), &out_map,
                                            (const float *)PyArray_DATA(input), &in_map);
        Py_END_ALLOW_THREADS
    }
    if (status != SB_OK) { raise_status(status, layer); goto done; }
    result = finish_image_batch(out, was_unbatched);
    out = NULL;
done:
    Py_XDECREF(input); Py_XDECREF(out); Py_XDECREF(shape_a);
    return result;
}

/* ------------------------------------------------------------------ */
/* Element-wise: relu / sigmoid (layer, input, out=None)               */
/* out, when given, is a writable C-contiguous float32 array of the    */
/* input's shape; the Python layer uses it for inplace=True.           */
/* ------------------------------------------------------------------ */
typedef sb_status (*unary_kernel)(float *, const float *, int64_t);

static PyObject *unary(PyObject *args, PyObject *kwargs, unary_kernel kernel)
{
    static char *keywords[] = {"layer", "input", "out", NULL};
    const char *layer;
    PyObject *input_obj, *out_obj = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sO|O", keywords, &layer, &input_obj,
                                     &out_obj))
        return NULL;
    PyArrayObject *input = as_float_array(input_obj, layer, "input", 0);
    if (input == NULL) return NULL;
    PyArrayObject *out;
    if (out_obj != Py_None) {
        if (check_out_array(out_obj, layer, PyArray_NDIM(input), PyArray_DIMS(input), 0,
                            input, 1) < 0) {
            Py_DECREF(input);
            return NULL;
        }
        Py_INCREF(out_obj);
        out = (PyArrayObject *)out_obj;
    } else {
        out = new_float_array(PyArray_NDIM(input), PyArray_DIMS(input));
        if (out == NULL) { Py_DECREF(input); return NULL; }
    }
    sb_status status;
    int64_t count = PyArray_SIZE(input);
    Py_BEGIN_ALLOW_THREADS
    status = kernel((float *)PyArray_DATA(out), (const float *)PyArray_DATA(input), count);
    Py_END_ALLOW_THREADS
    Py_DECREF(input);
    if (status != SB_OK) { Py_DECREF(out); return raise_status(status, layer); }
    return (PyObject *)out;
}

static PyObject *py_relu(PyObject *self, PyObject *args, PyObject *kwargs)
{
    return unary(args, kwargs, sb_relu_f32);
}

static PyObject *py_sigmoid(PyObject *self, PyObject *args, PyObject *kwargs)
{
    return unary(args, kwargs, sb_sigmoid_f32);
}

/* ------------------------------------------------------------------ */
/* add_relu(layer, a, b): relu(a + b) for two arrays of one shape.     */
/* ------------------------------------------------------------------ */
static PyObject *py_add_relu(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"layer", "a", "b", NULL};
    const char *layer;
    PyObject *a_obj, *b_obj;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sOO", keywords, &layer, &a_obj, &b_obj))
        return NULL;
    PyArrayObject *a = NULL, *b = NULL, *out = NULL;
    PyObject *result = NULL, *shape_a = NULL, *shape_b = NULL;
    a = as_float_array(a_obj, layer, "input", 0);
    if (a == NULL) goto done;
    b = as_float_array(b_obj, layer, "residual", 0);
    if (b == NULL) goto done;
    int same = PyArray_NDIM(a) == PyArray_NDIM(b);
    for (int i = 0; same && i < PyArray_NDIM(a); i++)
        same = PyArray_DIMS(a)[i] == PyArray_DIMS(b)[i];
    if (!same) {
        shape_a = shape_string(a);
        shape_b = shape_a ? shape_string(b) : NULL;
        if (shape_b != NULL)
            PyErr_Format(PyExc_RuntimeError, "%s: the output of the convolutions, of size %U, "
                         "and the residual, of size %U, must have the same size",
                         layer, shape_a, shape_b);
        goto done;
    }
    out = new_float_array(PyArray_NDIM(a), PyArray_DIMS(a));
    if (out == NULL) goto done;
    sb_status status;
    int64_t count = PyArray_SIZE(a);
    Py_BEGIN_ALLOW_THREADS
    status = sb_add_relu_f32((float *)PyArray_DATA(out), (const float *)PyArray_DATA(a),
                             (const float *)PyArray_DATA(b), count);
    Py_END_ALLOW_THREADS
    if (status != SB_OK) { raise_status(status, layer); goto done; }
    result = (PyObject *)out;
    out = NULL;
done:
    Py_XDECREF(a); Py_XDECREF(b); Py_XDECREF(out); Py_XDECREF(shape_a); Py_XDECREF(shape_b);
    return result;
}

/* ------------------------------------------------------------------ */
/* channel_scale(layer, input, scale): input (N, C, H, W) times scale   */
/* (N, C) broadcast over H and W -- SEAttention's x * y.expand_as(x).   */
/* ------------------------------------------------------------------ */
static PyObject *py_channel_scale(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"layer", "input", "scale", NULL};
    const char *layer;
    PyObject *input_obj, *scale_obj;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sOO", keywords, &layer, &input_obj,
                                     &scale_obj))
        return NULL;
    PyArrayObject *input = NULL, *scale = NULL, *out = NULL;
    PyObject *result = NULL;
    input = as_float_array(input_obj, layer, "input", 1);
    if (input == NULL) goto done;
    scale = as_float_array(scale_obj, layer, "scale", 0);
    if (scale == NULL) goto done;
    if (PyArray_NDIM(input) != 4 ||
        PyArray_SIZE(scale) != PyArray_DIMS(input)[0] * PyArray_DIMS(input)[1]) {
        PyErr_Format(PyExc_RuntimeError, "%s: channel_scale needs a 4-D input and one scale "
                     "per (image, channel)", layer);
        goto done;
    }
    out = new_float_array(4, PyArray_DIMS(input));
    if (out == NULL) goto done;
    sb_fmap in_map = fmap_of(input), out_map = fmap_of(out);
    sb_status status;
    Py_BEGIN_ALLOW_THREADS
    status = sb_channel_scale_f32((float *)PyArray_DATA(out), &out_map,
                                  (const float *)PyArray_DATA(input), &in_map,
                                  (const float *)PyArray_DATA(scale));
    Py_END_ALLOW_THREADS
    if (status != SB_OK) { raise_status(status, layer); goto done; }
    result = (PyObject *)out;
    out = NULL;
done:
    Py_XDECREF(input); Py_XDECREF(scale); Py_XDECREF(out);
    return result;
}

/* ------------------------------------------------------------------ */
/* linear(layer, input, weight, bias, reference=False)                  */
/* input (..., in_features) -> (..., out_features), torch.nn.functional */
/* ------------------------------------------------------------------ */
static PyObject *py_linear(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"layer", "input", "weight", "bias", "reference", "packed",
                               NULL};
    const char *layer;
    PyObject *input_obj, *weight_obj, *bias_obj, *packed_obj = Py_None;
    int reference = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sOOO|pO", keywords, &layer, &input_obj,
                                     &weight_obj, &bias_obj, &reference, &packed_obj))
        return NULL;
    float *workspace = NULL;
    int workspace_from_arena = 0;
    PyArrayObject *input = NULL, *weight = NULL, *bias = NULL, *out = NULL;
    PyObject *result = NULL, *shape_a = NULL;

    weight = as_float_array(weight_obj, layer, "weight", 0);
    if (weight == NULL) goto done;
    if (as_optional_float_array(bias_obj, layer, "bias", &bias) < 0) goto done;
    input = as_float_array(input_obj, layer, "input", 0);
    if (input == NULL) goto done;
    if (PyArray_NDIM(weight) != 2) {
        if ((shape_a = shape_string(weight)) != NULL)
            PyErr_Format(PyExc_RuntimeError, "%s: weight should be 2-D (out_features, "
                         "in_features), but got weight of size %U", layer, shape_a);
        goto done;
    }
    int ndim = PyArray_NDIM(input);
    if (ndim < 1) {
        PyErr_Format(PyExc_RuntimeError, "%s: input must have at least 1 dimension, "
                     "got a 0-d array", layer);
        goto done;
    }
    npy_intp *xd = PyArray_DIMS(input);
    npy_intp out_features = PyArray_DIMS(weight)[0], in_features = PyArray_DIMS(weight)[1];
    npy_intp rows = 1;
    for (int i = 0; i < ndim - 1; i++) rows *= xd[i];
    if (xd[ndim - 1] != in_features) {
        PyErr_Format(PyExc_RuntimeError, "%s: mat1 and mat2 shapes cannot be multiplied "
                     "(%zdx%zd and %zdx%zd)", layer, (Py_ssize_t)rows,
                     (Py_ssize_t)xd[ndim - 1], (Py_ssize_t)in_features,
                     (Py_ssize_t)out_features);
        goto done;
    }
    if (bias != NULL && PyArray_SIZE(bias) != out_features) {
        PyErr_Format(PyExc_RuntimeError, "%s: bias should contain %zd elements not %zd",
                     layer, (Py_ssize_t)out_features, (Py_ssize_t)PyArray_SIZE(bias));
        goto done;
    }
    npy_intp out_dims[NPY_MAXDIMS];
    for (int i = 0; i < ndim - 1; i++) out_dims[i] = xd[i];
    out_dims[ndim - 1] = out_features;
    out = new_float_array(ndim, out_dims);
    if (out == NULL) goto done;
    sb_status status;
    float *out_data = (float *)PyArray_DATA(out);
    const float *in_data = (const float *)PyArray_DATA(input);
    const float *w_data = (const float *)PyArray_DATA(weight);
    const float *b_data = bias ? (const float *)PyArray_DATA(bias) : NULL;
    /* packed: the Linear layer's cached weights and bias (linear_pack): the
     * packed-GEMM fast path. */
    const float *packed_data = NULL;
    int threads = sb_get_num_threads();
    if (packed_obj != Py_None) {
        PyArrayObject *packed = (PyArrayObject *)packed_obj;
        if (reference || !is_packed_array(packed_obj,
                                          sb_linear_f32_packed_weights_floats(out_features,
                                                                              in_features))) {
            PyErr_Format(PyExc_ValueError, "%s: packed weights do not match the weight "
                         "shape (repack them with linear_pack)", layer);
            goto done;
        }
        packed_data = (const float *)PyArray_DATA(packed);
        int64_t floats = sb_linear_f32_packed_workspace_floats(rows, in_features,
                                                               out_features, threads);
        workspace = scratch_take(floats, &workspace_from_arena);
        if (workspace == NULL) goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    if (reference)
        status = sb_linear_f32__ref(out_data, in_data, w_data, b_data, rows, in_features,
                                    out_features);
    else if (packed_data != NULL)
        status = sb_linear_f32_packed(out_data, in_data, packed_data, rows, in_features,
                                      out_features, workspace, threads);
    else
        status = sb_linear_f32(out_data, in_data, w_data, b_data, rows, in_features,
                               out_features);
    Py_END_ALLOW_THREADS
    if (status != SB_OK) { raise_status(status, layer); goto done; }
    result = (PyObject *)out;
    out = NULL;
done:
    if (workspace != NULL)
        scratch_give(workspace, workspace_from_arena);
    Py_XDECREF(input); Py_XDECREF(weight); Py_XDECREF(bias); Py_XDECREF(out);
    Py_XDECREF(shape_a);
    return result;
}


/* ------------------------------------------------------------------ */
/* linear_pack(layer, weight, bias) -> 1-D float32 array for            */
/* linear(packed=...): weight (out x in) and bias packed once.          */
/* ------------------------------------------------------------------ */
static PyObject *py_linear_pack(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"layer", "weight", "bias", NULL};
    const char *layer;
    PyObject *weight_obj, *bias_obj;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sOO", keywords, &layer, &weight_obj,
                                     &bias_obj))
        return NULL;
    PyArrayObject *weight = NULL, *bias = NULL, *packed = NULL;
    PyObject *result = NULL, *shape = NULL;
    weight = as_float_array(weight_obj, layer, "weight", 0);
    if (weight == NULL) goto done;
    if (PyArray_NDIM(weight) != 2) {
        if ((shape = shape_string(weight)) != NULL)
            PyErr_Format(PyExc_RuntimeError, "%s: cannot pack a weight of size %U: it must be "
                         "2-D", layer, shape);
        goto done;
    }
    npy_intp out_features = PyArray_DIMS(weight)[0], in_features = PyArray_DIMS(weight)[1];
    if (as_channel_vector(bias_obj, layer, "bias", out_features, &bias) < 0) goto done;
    npy_intp size = sb_linear_f32_packed_weights_floats(out_features, in_features);
    packed = new_float_array(1, &size);
    if (packed == NULL) goto done;
    sb_status status;
    float *packed_data = (float *)PyArray_DATA(packed);
    const float *w_data = (const float *)PyArray_DATA(weight);
    const float *b_data = bias ? (const float *)PyArray_DATA(bias) : NULL;
    Py_BEGIN_ALLOW_THREADS
    status = sb_linear_f32_pack_weights(packed_data, w_data, b_data, out_features,
                                        in_features);
    Py_END_ALLOW_THREADS
    if (status != SB_OK) { raise_status(status, layer); goto done; }
    result = (PyObject *)packed;
    packed = NULL;
done:
    Py_XDECREF(weight); Py_XDECREF(bias); Py_XDECREF(packed); Py_XDECREF(shape);
    return result;
}


/* ------------------------------------------------------------------ */
/* se_attention(layer, input, fc1_packed, fc2_packed, hidden)            */
/* SEAttention's forward in one call, one GIL release: global average    */
/* pool -> Linear(C, hidden) -> ReLU -> Linear(hidden, C) -> Sigmoid ->  */
/* scale each channel of the input. fc1/fc2_packed: the two Linear       */
/* layers' cached weights (linear_pack; no bias in the document, but     */
/* one packed in is applied). The Python layer takes this path only when */
/* its children are exactly that and the shapes agree; the same kernels  */
/* run as when the layers are called one by one.                         */
/* ------------------------------------------------------------------ */
static PyObject *py_se_attention(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"layer", "input", "fc1_packed", "fc2_packed", "hidden", NULL};
    const char *layer;
    PyObject *input_obj, *fc1_obj, *fc2_obj;
    Py_ssize_t hidden;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sOOOn", keywords, &layer, &input_obj,
                                     &fc1_obj, &fc2_obj, &hidden))
        return NULL;
    PyArrayObject *input = NULL, *out = NULL;
    PyObject *result = NULL, *shape = NULL;
    float *scratch = NULL;
    int scratch_from_arena = 0;
    input = as_float_array(input_obj, layer, "input", 1);
    if (input == NULL) goto done;
    if (PyArray_NDIM(input) != 4) {
        if ((shape = shape_string(input)) != NULL)
            PyErr_Format(PyExc_ValueError, "%s: expected a 4-D (N, C, H, W) input, got size "
                         "%U", layer, shape);
        goto done;
    }
    if (hidden < 0) {
        PyErr_Format(PyExc_ValueError, "%s: hidden features must be >= 0, got %zd", layer,
                     hidden);
        goto done;
    }
    npy_intp *xd = PyArray_DIMS(input);
    const int64_t n = xd[0], c = xd[1];
    /* The packed sizes saturate, so a hidden count too large for any real
     * array (2^60, say) can never match one and size the scratch below. */
    if (!is_packed_array(fc1_obj, sb_linear_f32_packed_weights_floats(hidden, c)) ||
        !is_packed_array(fc2_obj, sb_linear_f32_packed_weights_floats(c, hidden))) {
        PyErr_Format(PyExc_ValueError, "%s: packed fc weights do not match %zd channels and "
                     "%zd hidden features", layer, (Py_ssize_t)c, hidden);
        goto done;
    }
    out = new_float_array(4, xd);
    if (out == NULL) goto done;
    if (xd[2] == 0 || xd[3] == 0) {
        /* torch: the pooled mean of nothing is NaN, and x * NaN over an
         * empty map is the empty map */
        result = (PyObject *)out;
        out = NULL;
        goto done;
    }
    int threads = sb_get_num_threads();
    const int64_t ws1 = sb_linear_f32_packed_workspace_floats(n, c, hidden, threads);
    const int64_t ws2 = sb_linear_f32_packed_workspace_floats(n, hidden, c, threads);
    /* pooled (N x C), hidden (N x hidden), gate (N x C), linear workspace */
    const int64_t floats = 2 * n * c + n * hidden + (ws1 > ws2 ? ws1 : ws2);
    scratch = scratch_take(floats, &scratch_from_arena);
    if (scratch == NULL) goto done;
    float *pooled = scratch, *hid = pooled + n * c, *gate = hid + n * hidden;
    float *ws = gate + n * c;
    sb_fmap in_map = fmap_of(input), out_map = fmap_of(out);
    sb_fmap pooled_map = {n, c, 1, 1, c};
    const float *in_data = (const float *)PyArray_DATA(input);
    const float *fc1 = (const float *)PyArray_DATA((PyArrayObject *)fc1_obj);
    const float *fc2 = (const float *)PyArray_DATA((PyArrayObject *)fc2_obj);
    sb_status status = SB_OK;
    Py_BEGIN_ALLOW_THREADS
    if (n > 0 && c > 0) {
        status = sb_adaptive_avg_pool2d_f32(pooled, &pooled_map, in_data, &in_map);
        if (status == SB_OK)
            status = sb_linear_f32_packed(hid, pooled, fc1, n, c, hidden, ws, threads);
        if (status == SB_OK)
            status = sb_relu_f32(hid, hid, n * hidden);
        if (status == SB_OK)
            status = sb_linear_f32_packed(gate, hid, fc2, n, hidden, c, ws, threads);
        if (status == SB_OK)
            status = sb_sigmoid_f32(gate, gate, n * c);
        if (status == SB_OK)
            status = sb_channel_scale_f32((float *)PyArray_DATA(out), &out_map, in_data,
                                          &in_map, gate);
    }
    Py_END_ALLOW_THREADS
    if (status != SB_OK) { raise_status(status, layer); goto done; }
    result = (PyObject *)out;
    out = NULL;
done:
    if (scratch != NULL)
        scratch_give(scratch, scratch_from_arena);
    Py_XDECREF(input); Py_XDECREF(out); Py_XDECREF(shape);
    return result;
}

/* ------------------------------------------------------------------ */
/* output_size helpers, exposed so Python computes shapes with the      */
/* kernels' own arithmetic (e.g. for DenseBlock's preallocated output). */
/* ------------------------------------------------------------------ */
static PyObject *py_conv2d_out_size(PyObject *self, PyObject *args)
{
    Py_ssize_t in, k, s, p, d;
    if (!PyArg_ParseTuple(args, "nnnnn", &in, &k, &s, &p, &d)) return NULL;
    return PyLong_FromLongLong(sb_conv2d_out_size(in, k, s, p, d));
}


/* ------------------------------------------------------------------ */
/* Threads and instruction sets (skipblocks.set_num_threads, set_isa). */
/* ------------------------------------------------------------------ */
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

/* set_isa("scalar" | "avx2" | "avx512" | "auto") */
/* _test_avx512_source_on_avx2(on) -> bool: tests only (see skipblocks.h). */
static PyObject *py_test_avx512_source(PyObject *self, PyObject *arg)
{
    const int on = PyObject_IsTrue(arg);
    if (on < 0) return NULL;
    return PyBool_FromLong(sb_test_use_avx512_source_on_avx2(on) == 0);
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

static PyMethodDef methods[] = {
    {"conv2d", (PyCFunction)(void (*)(void))py_conv2d, METH_VARARGS | METH_KEYWORDS,
     "conv2d(layer, input, weight, bias, stride, padding, dilation, groups, out=None, "
     "reference=False)"},
    {"conv2d_pack", (PyCFunction)(void (*)(void))py_conv2d_pack, METH_VARARGS | METH_KEYWORDS,
     "conv2d_pack(layer, weight, bias, groups, row_scale=None, row_shift=None)"},
    {"batch_norm", (PyCFunction)(void (*)(void))py_batch_norm, METH_VARARGS | METH_KEYWORDS,
     "batch_norm(layer, input, running_mean, running_var, weight, bias, training, momentum, "
     "eps, relu=False, out=None)"},
    {"batch_norm_fold", (PyCFunction)(void (*)(void))py_batch_norm_fold,
     METH_VARARGS | METH_KEYWORDS, "batch_norm_fold(layer, mean, var, weight, bias, eps)"},
    {"max_pool2d", (PyCFunction)(void (*)(void))py_max_pool2d, METH_VARARGS | METH_KEYWORDS,
     "max_pool2d(layer, input, kernel_size, stride, padding, dilation, ceil_mode)"},
    {"adaptive_avg_pool2d", (PyCFunction)(void (*)(void))py_adaptive_avg_pool2d,
     METH_VARARGS | METH_KEYWORDS, "adaptive_avg_pool2d(layer, input, output_size)"},
    {"relu", (PyCFunction)(void (*)(void))py_relu, METH_VARARGS | METH_KEYWORDS,
     "relu(layer, input, out=None)"},
    {"sigmoid", (PyCFunction)(void (*)(void))py_sigmoid, METH_VARARGS | METH_KEYWORDS,
     "sigmoid(layer, input, out=None)"},
    {"add_relu", (PyCFunction)(void (*)(void))py_add_relu, METH_VARARGS | METH_KEYWORDS,
     "add_relu(layer, a, b): relu(a + b)"},
    {"channel_scale", (PyCFunction)(void (*)(void))py_channel_scale,
     METH_VARARGS | METH_KEYWORDS, "channel_scale(layer, input, scale)"},
    {"se_attention", (PyCFunction)(void (*)(void))py_se_attention,
     METH_VARARGS | METH_KEYWORDS, "se_attention(layer, input, fc1_packed, fc2_packed, hidden)"},
    {"linear_pack", (PyCFunction)(void (*)(void))py_linear_pack, METH_VARARGS | METH_KEYWORDS,
     "linear_pack(layer, weight, bias)"},
    {"linear", (PyCFunction)(void (*)(void))py_linear, METH_VARARGS | METH_KEYWORDS,
     "linear(layer, input, weight, bias, reference=False)"},
    {"conv2d_out_size", py_conv2d_out_size, METH_VARARGS,
     "conv2d_out_size(in, kernel, stride, pad, dilation)"},
    {"get_num_threads", py_get_num_threads, METH_NOARGS, "get_num_threads()"},
    {"set_num_threads", py_set_num_threads, METH_O, "set_num_threads(n)"},
    {"get_isa", py_get_isa, METH_NOARGS, "get_isa() -> name of the ISA in use"},
    {"set_isa", py_set_isa, METH_O, "set_isa(name): 'auto', 'scalar', 'avx2' or 'avx512'"},
    {"_test_avx512_source_on_avx2", py_test_avx512_source, METH_O,
     "tests only: run the AVX-512 kernels' source compiled for AVX2 (on an AVX2 ISA)"},
    {"available_isas", py_available_isas, METH_NOARGS, "available_isas() -> list of names"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "skipblocks._C",
    "C kernels of skipblocks (internal: use skipblocks.functional).", -1, methods};

PyMODINIT_FUNC PyInit__C(void)
{
    import_array();
    /* Choose the instruction set now, while one thread runs: later calls
     * only read the choice (or sb_set_isa changes it, from Python). */
    (void)sb_get_isa();
    return PyModule_Create(&module_def);
}
