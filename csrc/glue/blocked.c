/*
 * blocked.c -- the glue of the channel-blocked layout (csrc/ops/blocked.c):
 * _C.to_blocked, _C.from_blocked and _C.conv2d_blocked_ok.
 */
#include "glue.h"

static sb_status layout_run(const void *plan, const void *args, const sb_tensor *out,
                            void *workspace)
{
    return sb_op_layout_run(plan, args, out, workspace);
}

/* The converted array of input (a new reference), or NULL with the error set. */
static PyObject *convert_layout(const char *layer, PyObject *input_obj, int to_blocked,
                                Py_ssize_t channels)
{
    PyArrayObject *input = sb_glue_as_array(input_obj, layer, "input", 0);
    if (input == NULL)
        return NULL;
    sb_tensor t_input;
    sb_glue_tensor_of(&t_input, input);
    sb_layout_args a = {&t_input, to_blocked, channels};
    sb_layout_plan plan;
    sb_error err;
    PyObject *result = NULL;
    if (sb_op_layout_plan(&plan, &a, &err) != SB_OK)
        sb_glue_raise(&err, layer);
    else
        result = sb_glue_run(layout_run, &plan, &a,
                             sb_glue_new_array(plan.out_ndim, plan.out_dims, t_input.dtype),
                             plan.workspace_bytes, layer);
    Py_DECREF(input);
    return result;
}

PyDoc_STRVAR(to_blocked_doc,
"to_blocked($module, layer, input)\n"
"--\n\n"
"The (N, C, H, W) float32 or float64 input as a channel-blocked map (N,\n"
"ceil(C/B), H, W, B), B = 16 float32 or 8 float64 values: value (n, c, y, x)\n"
"at [n, c // B, y, x, c % B], the lanes past C zero.");

static PyObject *py_to_blocked(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"layer", "input", NULL};
    const char *layer;
    PyObject *input_obj;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sO", keywords, &layer, &input_obj))
        return NULL;
    return convert_layout(layer, input_obj, 1, 0);
}

PyDoc_STRVAR(from_blocked_doc,
"from_blocked($module, layer, input, channels)\n"
"--\n\n"
"The channel-blocked map input (N, ceil(channels/B), H, W, B) as an (N,\n"
"channels, H, W) array (see to_blocked).");

static PyObject *py_from_blocked(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"layer", "input", "channels", NULL};
    const char *layer;
    PyObject *input_obj;
    Py_ssize_t channels;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sOn", keywords, &layer, &input_obj,
                                     &channels))
        return NULL;
    return convert_layout(layer, input_obj, 0, channels);
}

PyDoc_STRVAR(conv2d_blocked_ok_doc,
"conv2d_blocked_ok($module, out_channels, groups, float64=False, /)\n"
"--\n\n"
"Whether conv2d takes in_blocked / out_blocked for a convolution with these\n"
"output channels and groups, in float32 (or float64).");

static PyObject *py_conv2d_blocked_ok(PyObject *self, PyObject *args)
{
    Py_ssize_t c_out, groups;
    int f64 = 0;
    if (!PyArg_ParseTuple(args, "nn|p", &c_out, &groups, &f64))
        return NULL;
    return PyBool_FromLong(
        sb_op_conv2d_blocked_ok(c_out, groups, f64 ? SB_DTYPE_F64 : SB_DTYPE_F32));
}

PyMethodDef sb_glue_blocked_methods[] = {
    {"to_blocked", (PyCFunction)(void (*)(void))py_to_blocked, METH_VARARGS | METH_KEYWORDS,
     to_blocked_doc},
    {"from_blocked", (PyCFunction)(void (*)(void))py_from_blocked,
     METH_VARARGS | METH_KEYWORDS, from_blocked_doc},
    {"conv2d_blocked_ok", (PyCFunction)(void (*)(void))py_conv2d_blocked_ok, METH_VARARGS,
     conv2d_blocked_ok_doc},
    {NULL, NULL, 0, NULL}};
