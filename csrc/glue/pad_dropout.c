/*
 * pad_dropout.c -- the glue of the pad and dropout operators: _C.pad
 * (csrc/ops/pad.c) and _C.dropout (csrc/ops/dropout.c).
 */
#include "glue.h"

#include <string.h>

static sb_status pad_run(const void *plan, const void *args, const sb_tensor *out,
                         void *workspace)
{
    return sb_op_pad_run(plan, args, out, workspace);
}

static sb_status dropout_run(const void *plan, const void *args, const sb_tensor *out,
                             void *workspace)
{
    return sb_op_dropout_run(plan, args, out, workspace);
}

PyDoc_STRVAR(pad_doc,
"pad($module, layer, input, pad, mode, value)\n--\n\n"
"torch.nn.functional.pad with mode='constant': a copy of input with pad[2k]\n"
"elements of value before and pad[2k + 1] after dim -1-k (negative: cropped),\n"
"any rank. float32 and float64 input give a result of their dtype; other real\n"
"input is converted to float32. layer: the name errors start with.\n"
"pad: a tuple of ints. mode: 'constant', 'reflect', 'replicate' or 'circular'\n"
"(torch's argument checks; only 'constant' has a kernel, the others raise\n"
"NotImplementedError). value: a float, or None (0; torch's default).");

static PyObject *py_pad(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"layer", "input", "pad", "mode", "value", NULL};
    static const char *modes[] = {"constant", "reflect", "replicate", "circular"};
    const char *layer, *mode_name;
    PyObject *input_obj, *pad_obj, *value_obj;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sOO!sO", keywords, &layer, &input_obj,
                                     &PyTuple_Type, &pad_obj, &mode_name, &value_obj))
        return NULL;
    /* torch's pad() recognises the mode before it looks at anything else */
    int mode = -1;
    for (int i = 0; i < 4; i++)
        if (strcmp(mode_name, modes[i]) == 0)
            mode = i;
    if (mode < 0)
        return PyErr_Format(PyExc_NotImplementedError, "%s: Unrecognised padding mode %s",
                            layer, mode_name);
    double value = 0.0;
    if (value_obj != Py_None) {
        value = PyFloat_AsDouble(value_obj);
        if (value == -1.0 && PyErr_Occurred())
            return NULL;
    }
    /* Only a pad of at most 2 * SB_MAX_DIMS entries can be valid; a longer one
     * is the plan's length error, which needs no entry. */
    const Py_ssize_t npad = PyTuple_GET_SIZE(pad_obj);
    int64_t pad[2 * SB_MAX_DIMS];
    for (Py_ssize_t i = 0; i < npad && i < 2 * SB_MAX_DIMS; i++) {
        long long v = PyLong_AsLongLong(PyTuple_GET_ITEM(pad_obj, i));
        if (v == -1 && PyErr_Occurred())
            return NULL;
        pad[i] = v;
    }
    PyArrayObject *input = sb_glue_as_array(input_obj, layer, "input", 0);
    if (input == NULL)
        return NULL;
    sb_tensor t_input;
    sb_glue_tensor_of(&t_input, input);
    sb_pad_args a = {&t_input, pad, npad, (sb_pad_mode)mode, value_obj != Py_None, value};
    sb_pad_plan plan;
    sb_error err;
    PyObject *result = NULL;
    if (sb_op_pad_plan(&plan, &a, &err) != SB_OK)
        sb_glue_raise(&err, layer);
    else if (!plan.supported)
        PyErr_Format(PyExc_NotImplementedError,
                     "%s: padding mode '%s' is not supported by skipblocks (only 'constant' "
                     "is)", layer, mode_name);
    else
        result = sb_glue_run(pad_run, &plan, &a,
                             sb_glue_new_array(plan.out_ndim, plan.out_dims, t_input.dtype),
                             plan.workspace_bytes, layer);
    Py_DECREF(input);
    return result;
}

PyDoc_STRVAR(dropout_doc,
"dropout($module, layer, input, p, training, seed, out=None)\n--\n\n"
"torch.nn.functional.dropout: in training, each element is zeroed with\n"
"probability p and the others are scaled by 1 / (1 - p), the mask drawn from\n"
"seed (a 64-bit integer) by a counter-based generator: reproducible, and the\n"
"same for any thread count. p must be in [0, 1] (torch's RuntimeError; NaN\n"
"fails in every mode). Not training, p == 0, or an empty input: the input\n"
"itself is returned (an ndarray as it is; anything else converted).\n"
"float32 and float64 input give a result of their dtype; other real input is\n"
"converted to float32. layer: the name errors start with.\n"
"out: a writable C-contiguous array of the result's dtype and the input's shape\n"
"to write (may be the input itself: inplace=True).");

static PyObject *py_dropout(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"layer", "input", "p", "training", "seed", "out", NULL};
    const char *layer;
    PyObject *input_obj, *out_obj = Py_None;
    double p;
    int training;
    unsigned long long seed;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sOdpK|O", keywords, &layer, &input_obj,
                                     &p, &training, &seed, &out_obj))
        return NULL;
    sb_dropout_args a = {NULL, p, training, (uint64_t)seed};
    sb_dropout_plan plan;
    sb_error err;
    /* p first, without converting the input: the identity returns it as it is */
    if (sb_op_dropout_plan(&plan, &a, &err) != SB_OK)
        return sb_glue_raise(&err, layer);
    if (plan.identity && PyArray_Check(input_obj)) {
        Py_INCREF(input_obj);
        return input_obj;
    }
    PyArrayObject *input = sb_glue_as_array(input_obj, layer, "input", 0);
    if (input == NULL)
        return NULL;
    sb_tensor t_input;
    sb_glue_tensor_of(&t_input, input);
    a.input = &t_input;
    PyObject *result = NULL;
    if (sb_op_dropout_plan(&plan, &a, &err) != SB_OK) {
        sb_glue_raise(&err, layer);
    } else if (plan.identity) {
        result = PyArray_Check(input_obj) ? input_obj : (PyObject *)input;
        Py_INCREF(result);
    } else {
        result = sb_glue_run(dropout_run, &plan, &a,
                             out_obj != Py_None
                                 ? sb_glue_out_array(out_obj, layer, t_input.ndim, t_input.dims,
                                                     0, input, 1, t_input.dtype)
                                 : sb_glue_new_array(t_input.ndim, t_input.dims, t_input.dtype),
                             plan.workspace_bytes, layer);
    }
    Py_DECREF(input);
    return result;
}

PyMethodDef sb_glue_pad_dropout_methods[] = {
    {"pad", (PyCFunction)(void (*)(void))py_pad, METH_VARARGS | METH_KEYWORDS, pad_doc},
    {"dropout", (PyCFunction)(void (*)(void))py_dropout, METH_VARARGS | METH_KEYWORDS,
     dropout_doc},
    {NULL, NULL, 0, NULL}};
