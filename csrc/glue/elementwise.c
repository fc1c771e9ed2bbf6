/*
 * elementwise.c -- the glue of the element-wise operators: _C.relu,
 * _C.sigmoid, _C.add_relu and _C.channel_scale (csrc/ops/elementwise.c).
 */
#include "glue.h"

static sb_status unary_run(const void *plan, const void *args, const sb_tensor *out,
                           void *workspace)
{
    return sb_op_unary_run(plan, args, out, workspace);
}

static sb_status add_relu_run(const void *plan, const void *args, const sb_tensor *out,
                              void *workspace)
{
    return sb_op_add_relu_run(plan, args, out, workspace);
}

static sb_status channel_scale_run(const void *plan, const void *args, const sb_tensor *out,
                                   void *workspace)
{
    return sb_op_channel_scale_run(plan, args, out, workspace);
}

/* A new array of `like`'s shape and dtype from a plan that passed its
 * checks, or the check's error. */
static PyObject *binary_result(sb_status planned, const sb_error *err, sb_glue_run_fn run,
                               const sb_elementwise_plan *plan, const void *args,
                               const sb_tensor *like, const char *layer)
{
    if (planned != SB_OK)
        return sb_glue_raise(err, layer);
    return sb_glue_run(run, plan, args, sb_glue_new_array(like->ndim, like->dims, like->dtype),
                       plan->workspace_bytes, layer);
}

static PyObject *unary(PyObject *args, PyObject *kwargs, sb_unary_kind kind)
{
    static char *keywords[] = {"layer", "input", "out", NULL};
    const char *layer;
    PyObject *input_obj, *out_obj = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sO|O", keywords, &layer, &input_obj,
                                     &out_obj))
        return NULL;
    PyArrayObject *input = sb_glue_as_array(input_obj, layer, "input", 0);
    if (input == NULL)
        return NULL;
    sb_tensor t_input;
    sb_glue_tensor_of(&t_input, input);
    sb_unary_args a = {&t_input, kind};
    sb_elementwise_plan plan;
    sb_error err;
    PyObject *result = NULL;
    if (sb_op_unary_plan(&plan, &a, &err) != SB_OK)
        sb_glue_raise(&err, layer);
    else
        result = sb_glue_run(unary_run, &plan, &a,
                             out_obj != Py_None
                                 ? sb_glue_out_array(out_obj, layer, t_input.ndim, t_input.dims,
                                                     0, input, 1, t_input.dtype)
                                 : sb_glue_new_array(t_input.ndim, t_input.dims, t_input.dtype),
                             plan.workspace_bytes, layer);
    Py_DECREF(input);
    return result;
}

PyDoc_STRVAR(relu_doc,
"relu($module, layer, input, out=None)\n--\n\n"
"torch.relu: max(x, 0), NaN stays NaN. layer: the name errors start with.\n"
"float32 and float64 input give a result of their dtype; other real input is\n"
"converted to float32.\n"
"out: a writable C-contiguous array of the result's dtype and the input's shape\n"
"to write (may be the input itself: inplace=True).");

static PyObject *py_relu(PyObject *self, PyObject *args, PyObject *kwargs)
{
    return unary(args, kwargs, SB_UNARY_RELU);
}

PyDoc_STRVAR(sigmoid_doc,
"sigmoid($module, layer, input, out=None)\n--\n\n"
"torch.sigmoid: 1 / (1 + exp(-x)). layer: the name errors start with.\n"
"dtypes and out: as relu's.");

static PyObject *py_sigmoid(PyObject *self, PyObject *args, PyObject *kwargs)
{
    return unary(args, kwargs, SB_UNARY_SIGMOID);
}

PyDoc_STRVAR(add_relu_doc,
"add_relu($module, layer, a, b)\n--\n\n"
"relu(a + b) for two arrays of one shape and dtype (ResidualBlock's \"out +\n"
"residual, then relu\"), float32 or float64 (the dtype rule of conv2d).\n"
"layer: the name errors start with.");

/* The two arrays of a binary operator's call (layer, x, y), converted by
 * the dtype rule into arg[] and t[]; -1 with the exception set. The caller
 * releases arg[] (sb_glue_release). */
static int binary_args(PyObject *args, PyObject *kwargs, char **keywords, const char *what_y,
                       int fmap_x, const char **layer, sb_glue_arg arg[2], sb_tensor t[2])
{
    PyObject *x_obj, *y_obj;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sOO", keywords, layer, &x_obj, &y_obj))
        return -1;
    arg[0] = (sb_glue_arg){x_obj, *layer, "input", fmap_x, NULL};
    arg[1] = (sb_glue_arg){y_obj, *layer, what_y, 0, NULL};
    if (sb_glue_convert(arg, 2, 0) < 0)
        return -1;
    sb_glue_tensor_of(&t[0], arg[0].arr);
    sb_glue_tensor_of(&t[1], arg[1].arr);
    return 0;
}

static PyObject *py_add_relu(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"layer", "a", "b", NULL};
    const char *layer;
    sb_glue_arg arg[2];
    sb_tensor t[2];
    if (binary_args(args, kwargs, keywords, "residual", 0, &layer, arg, t) < 0)
        return NULL;
    sb_add_relu_args op = {&t[0], &t[1]};
    sb_elementwise_plan plan;
    sb_error err;
    PyObject *result = binary_result(sb_op_add_relu_plan(&plan, &op, &err), &err,
                                     add_relu_run, &plan, &op, &t[0], layer);
    sb_glue_release(arg, 2);
    return result;
}

PyDoc_STRVAR(channel_scale_doc,
"channel_scale($module, layer, input, scale)\n--\n\n"
"input (N, C, H, W) times scale (N * C values) broadcast over H and W:\n"
"SEAttention's x * y.expand_as(x), float32 or float64 (both of one dtype, the\n"
"dtype rule of conv2d). layer: the name errors start with.");

static PyObject *py_channel_scale(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"layer", "input", "scale", NULL};
    const char *layer;
    sb_glue_arg arg[2];
    sb_tensor t[2];
    if (binary_args(args, kwargs, keywords, "scale", 1, &layer, arg, t) < 0)
        return NULL;
    sb_channel_scale_args op = {&t[0], &t[1]};
    sb_elementwise_plan plan;
    sb_error err;
    PyObject *result = binary_result(sb_op_channel_scale_plan(&plan, &op, &err), &err,
                                     channel_scale_run, &plan, &op, &t[0], layer);
    sb_glue_release(arg, 2);
    return result;
}

PyMethodDef sb_glue_elementwise_methods[] = {
    {"relu", (PyCFunction)(void (*)(void))py_relu, METH_VARARGS | METH_KEYWORDS, relu_doc},
    {"sigmoid", (PyCFunction)(void (*)(void))py_sigmoid, METH_VARARGS | METH_KEYWORDS,
     sigmoid_doc},
    {"add_relu", (PyCFunction)(void (*)(void))py_add_relu, METH_VARARGS | METH_KEYWORDS,
     add_relu_doc},
    {"channel_scale", (PyCFunction)(void (*)(void))py_channel_scale,
     METH_VARARGS | METH_KEYWORDS, channel_scale_doc},
    {NULL, NULL, 0, NULL}};
