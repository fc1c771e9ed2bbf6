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
#ifndef SB_GLUE_MODULE_C
#define NO_IMPORT_ARRAY
#endif
#define PY_ARRAY_UNIQUE_SYMBOL skipblocks_ARRAY_API
#include <numpy/arrayobject.h>

#include "sb_ops.h"
#include "sb_parallel.h"

/* ---- conversions (convert.c) ---------------------------------------- */

/* A new reference to a float32 array holding obj: obj itself when it is a
 * well-behaved float32 array in a layout the kernels take (C-contiguous, or
 * images contiguous when fmap_ok), otherwise a converted copy, as
 * np.asarray(obj, np.float32) would give. Non-real dtypes raise TypeError
 * naming `layer` and `what`. Torch tensors are read through .detach(). */
PyArrayObject *sb_glue_as_float_array(PyObject *obj, const char *layer, const char *what,
                                      int fmap_ok);
/* The same for an optional argument: None gives NULL and returns 0. */
int sb_glue_as_optional(PyObject *obj, const char *layer, const char *what, int fmap_ok,
                        PyArrayObject **out);

/* The descriptor of an array sb_glue_as_float_array returned (or of any
 * aligned native float32 array in fmap or C-contiguous layout). */
void sb_glue_tensor_of(sb_tensor *t, PyArrayObject *arr);

/* A new float32 array of these dims. */
PyArrayObject *sb_glue_new_array(int ndim, const int64_t *dims);

/* Checks the caller's out= array: an aligned, native, writable float32
 * array of exactly `dims`, laid out as the kernels write (C-contiguous, or
 * images contiguous when fmap_ok), not overlapping `input` except as the
 * very same array when alias_ok (input NULL: no overlap check, for an
 * operator that has read its input before it writes out). Returns a new reference, or NULL with the
 * exception set. */
PyArrayObject *sb_glue_out_array(PyObject *out, const char *layer, int ndim,
                                 const int64_t *dims, int fmap_ok, PyArrayObject *input,
                                 int alias_ok);

/* A running statistic that training updates in place: the caller's own
 * writable, C-contiguous, native float32 array (anything else would update
 * a copy, silently). A new reference in *out, or -1 with the exception set. */
int sb_glue_running_stat(PyObject *obj, const char *layer, const char *what,
                         PyArrayObject **out);

/* Whether obj can be read as packed weights (sb_op_*_pack_run): a native,
 * aligned, C-contiguous float32 ndarray. */
int sb_glue_is_packed(PyObject *obj);
/* The data and element count of packed weights (None: NULL and 0), or -1
 * with SB_E_PACKED's error raised for `layer`. */
int sb_glue_packed(PyObject *obj, const char *layer, const void **data, int64_t *numel);

/* ---- scratch (convert.c) --------------------------------------------- */

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
extern PyMethodDef sb_glue_elementwise_methods[];
extern PyMethodDef sb_glue_linear_methods[];
extern PyMethodDef sb_glue_blocks_methods[];
extern PyMethodDef sb_glue_runtime_methods[];

#endif /* SB_GLUE_H */
