/*
 * glue.h -- what the glue files of skipblocks._C share (csrc/glue/): the
 * conversions from Python objects to sb_tensor, the output arrays, the
 * scratch arena, and the turning of an sb_error into torch's exception.
 *
 * These files are the only C that includes Python.h. Each family file
 * (conv.c, batch_norm.c, ...) parses its arguments, converts them here,
 * calls one operator of csrc/ops/ (plan with the GIL, run without it) and
 * returns the result. The checks of shapes and parameters live in the
 * operators, their messages in errors.c; the glue itself checks only what
 * it converts (dtypes, out= and in-place arrays).
 */
#ifndef SB_GLUE_H
#define SB_GLUE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* 1 in the AddressSanitizer build (setup.py, SKIPBLOCKS_SANITIZE=1), which
 * poisons the unused part of the scratch arena (scratch.c); 0 otherwise. */
#ifndef SB_SANITIZE
#define SB_SANITIZE 0
#endif
#ifndef SB_GLUE_MODULE_C
#define NO_IMPORT_ARRAY
#endif
#define PY_ARRAY_UNIQUE_SYMBOL skipblocks_ARRAY_API
#include <numpy/arrayobject.h>

#include "sb_ops.h"
#include "sb_parallel.h"

/* ---- conversions (convert.c) ---------------------------------------- */

/* The dtype rule, one call at a time: float32 and float64 arrays keep their
 * dtype (copied only when their layout is not one the kernels take:
 * C-contiguous, or images contiguous when fmap_ok); any other real input
 * (integers, bool, float16, lists, Python numbers, torch tensors of other
 * dtypes) is converted to float64 when some array argument of the same
 * call is a float64 array, else to float32, as np.asarray(obj, dtype) would.
 * Lists, tuples and Python numbers do not count as float64 arrays. Non-real
 * dtypes raise TypeError naming the layer and the argument; torch tensors
 * are read through .detach(). */

/* One array argument of a call, for sb_glue_convert. */
typedef struct {
    PyObject *obj;        /* the argument; NULL: absent (arr stays NULL; an optional
                           * argument passes SB_GLUE_OPTIONAL(obj)) */
    const char *layer;    /* the name its errors start with */
    const char *what;     /* the argument's name in them */
    int fmap_ok;          /* a 4-D array whose images are contiguous will do;
                           * SB_GLUE_BLOCKED_OK: a 5-D channel-blocked one too */
    PyArrayObject *arr;   /* out: the array the operator takes (a new reference) */
    int untyped;          /* out: obj was a list, tuple or Python number */
} sb_glue_arg;

/* fmap_ok for the operators that take channel-blocked maps (conv2d,
 * dense_layer): a 5-D array whose images are contiguous will do too. */
#define SB_GLUE_BLOCKED_OK 2

/* NULL for None: an optional argument that was not given. */
#define SB_GLUE_OPTIONAL(obj) ((obj) == Py_None ? NULL : (obj))

/* Converts the array arguments of one call under the dtype rule; f64 set:
 * another array of the call (one not converted, such as a running
 * statistic updated in place, sb_glue_is_float64) is float64. Returns 0, or
 * -1 with the exception set and every arr NULL. */
int sb_glue_convert(sb_glue_arg *args, int count, int f64);
/* Releases the arrays sb_glue_convert gave (arr set to NULL). */
void sb_glue_release(sb_glue_arg *args, int count);

/* The rule's two steps, for callers with one array. sb_glue_read: obj as
 * an ndarray of its own dtype (a new reference; NumPy's for a list, tuple
 * or Python number, which sets *untyped), TypeError for non-real data; sets
 * *f64 (when f64 is not NULL) if obj is a float64 array. sb_glue_settle
 * (steals arr): float32 and float64 arrays keep their dtype unless `exact`
 * (pass it for an untyped obj), anything else becomes `other`; copied into a
 * layout the kernels take when needed. */
PyArrayObject *sb_glue_read(PyObject *obj, const char *layer, const char *what, int *f64,
                            int *untyped);
PyArrayObject *sb_glue_settle(PyArrayObject *arr, sb_dtype other, int exact, int fmap_ok);
/* Both for an operator's only array: other real input becomes float32. */
PyArrayObject *sb_glue_as_array(PyObject *obj, const char *layer, const char *what,
                                int fmap_ok);

/* Whether obj is a float64 ndarray. */
int sb_glue_is_float64(PyObject *obj);
/* NumPy's type number for an sb_dtype, and its name ("float32", "float64"). */
int sb_glue_npy_type(sb_dtype dtype);
const char *sb_glue_dtype_name(sb_dtype dtype);

/* The descriptor of an array these conversions returned (or of any aligned
 * native float32 or float64 array in fmap or C-contiguous layout). */
void sb_glue_tensor_of(sb_tensor *t, PyArrayObject *arr);

/* A new array of these dims and dtype. */
PyArrayObject *sb_glue_new_array(int ndim, const int64_t *dims, sb_dtype dtype);

/* Checks the caller's out= array: an aligned, native, writable array of the
 * result's dtype and exactly `dims`, laid out as the kernels write
 * (C-contiguous, or images contiguous when fmap_ok), not overlapping
 * `input` except as the very same array when alias_ok (input NULL: no
 * overlap check, for an operator that has read its input before it writes
 * out). Returns a new reference, or NULL with the exception set. */
PyArrayObject *sb_glue_out_array(PyObject *out, const char *layer, int ndim,
                                 const int64_t *dims, int fmap_ok, PyArrayObject *input,
                                 int alias_ok, sb_dtype dtype);

/* A running statistic that training updates in place: the caller's own
 * writable, C-contiguous, native float32 or float64 array (anything else
 * would update a copy, silently; a dtype other than the input's is the
 * operator's error, torch's). A new reference in *out, or -1 with the
 * exception set. */
int sb_glue_running_stat(PyObject *obj, const char *layer, const char *what,
                         PyArrayObject **out);

/* Whether obj can be read as packed weights (sb_op_*_pack_run): a native,
 * aligned, C-contiguous float32 or float64 ndarray. */
int sb_glue_is_packed(PyObject *obj);
/* The data, element count and dtype of packed weights (None: NULL, 0 and
 * float32), or -1 with SB_E_PACKED's error raised for `layer`. */
int sb_glue_packed(PyObject *obj, const char *layer, const void **data, int64_t *numel,
                   sb_dtype *dtype);

/* An eval-mode BatchNorm passed as (running_mean, running_var, weight,
 * bias, eps), each array possibly None (BatchNorm2d._fold_args; conv2d_pack's
 * fold, avg_pool2d's bn) -- or None for none. sb_glue_fold_parse reads the
 * tuple and fills its four arrays' entries of the call's sb_glue_convert
 * list (absent for None); after the conversion sb_glue_fold_state gives the
 * sb_batch_norm_state of the converted arrays, or NULL for None
 * (batch_norm.c). */
typedef struct {
    int given;
    sb_tensor t[4];
    sb_batch_norm_state state;
} sb_glue_fold;

int sb_glue_fold_parse(PyObject *obj, sb_glue_arg arg[4], sb_glue_fold *fold);
const sb_batch_norm_state *sb_glue_fold_state(sb_glue_fold *fold, const sb_glue_arg arg[4]);

/* ---- scratch (scratch.c) ---------------------------------------------- */

/* `bytes` of scratch (at least one), from the kept arena when it is free;
 * NULL with MemoryError set. Taken and given back with the GIL held. */
typedef struct {
    void *ptr;
    int from_arena;
} sb_scratch;

int sb_glue_scratch_take(sb_scratch *s, size_t bytes);
void sb_glue_scratch_give(sb_scratch *s);

/* ---- running an operator (convert.c) ---------------------------------- */

/* An operator's run with its plan and arguments struct behind void
 * pointers (each family file wraps its sb_op_*_run in one). */
typedef sb_status (*sb_glue_run_fn)(const void *plan, const void *args, const sb_tensor *out,
                                    void *workspace);

/* Runs a planned operator call into `out` (stolen; NULL means an exception
 * is already set) with `workspace_bytes` of scratch, the GIL released.
 * Returns out, or NULL with the exception set. */
PyObject *sb_glue_run(sb_glue_run_fn run, const void *plan, const void *args,
                      PyArrayObject *out, size_t workspace_bytes, const char *layer);

/* ---- errors (errors.c) ----------------------------------------------- */

/* Raises the exception torch raises for the check `err` describes, its
 * message prefixed with the layer's name (err->layer when a fused block's
 * operator names the part, else `layer`). Returns NULL. */
PyObject *sb_glue_raise(const sb_error *err, const char *layer);
/* A failed run: after the plan's checks this is a skipblocks bug. */
PyObject *sb_glue_raise_status(sb_status status, const char *layer);

/* ---- the method tables of the family files, merged by module.c --------- */
extern PyMethodDef sb_glue_conv_methods[];
extern PyMethodDef sb_glue_batch_norm_methods[];
extern PyMethodDef sb_glue_pool_methods[];
extern PyMethodDef sb_glue_blocked_methods[];
extern PyMethodDef sb_glue_elementwise_methods[];
extern PyMethodDef sb_glue_linear_methods[];
extern PyMethodDef sb_glue_blocks_methods[];
extern PyMethodDef sb_glue_runtime_methods[];
/* conv_transpose2d */
extern PyMethodDef sb_glue_conv_transpose_methods[];
/* pad and dropout */
extern PyMethodDef sb_glue_pad_dropout_methods[];
/* avg_pool2d and interpolate */
extern PyMethodDef sb_glue_avg_pool2d_methods[];
extern PyMethodDef sb_glue_interpolate_methods[];

#endif /* SB_GLUE_H */
