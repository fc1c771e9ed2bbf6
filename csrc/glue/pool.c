/*
 * pool.c -- the glue of the pooling operators: _C.max_pool2d and
 * _C.adaptive_avg_pool2d (csrc/ops/pool.c).
 */
#include "glue.h"

static sb_status max_pool_run(const void *plan, const void *args, const sb_tensor *out,
                              void *workspace)
{
    return sb_op_max_pool2d_run(plan, args, out, workspace);
}

static sb_status adaptive_run(const void *plan, const void *args, const sb_tensor *out,
                              void *workspace)
{
    return sb_op_adaptive_avg_pool2d_run(plan, args, out, workspace);
}

/* The pooled array (of the input's dtype) of a plan that passed its
 * checks, or the check's error. */
static PyObject *pool_result(sb_status planned, const sb_error *err, sb_glue_run_fn run,
                             const sb_pool2d_plan *plan, const void *args,
                             const sb_tensor *input, const char *layer)
{
    if (planned != SB_OK)
        return sb_glue_raise(err, layer);
    return sb_glue_run(run, plan, args,
                       sb_glue_new_array(plan->out_ndim, plan->out_dims, input->dtype),
                       plan->workspace_bytes, layer);
}

PyDoc_STRVAR(max_pool2d_doc,
"max_pool2d($module, layer, input, kernel_size, stride, padding, dilation, ceil_mode,\n"
"           blocked_channels=0)\n"
"--\n\n"
"torch.nn.functional.max_pool2d: padding counts as -inf, NaN propagates.\n"
"float32 and float64 input give a result of their dtype; other real input is\n"
"converted to float32.\n\n"
"layer: the name errors start with. input: (N, C, H, W) or (C, H, W).\n"
"kernel_size, stride, padding, dilation: pairs of ints. ceil_mode: torch's rule.\n"
"blocked_channels nonzero: input is a channel-blocked map of that many channels,\n"
"  (N, ceil(C/B), H, W, B) (see conv2d's in_blocked), and so is the result.");

static PyObject *py_max_pool2d(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"layer", "input", "kernel_size", "stride", "padding",
                               "dilation", "ceil_mode", "blocked_channels", NULL};
    const char *layer;
    PyObject *input_obj;
    Py_ssize_t kh, kw, sh, sw, ph, pw, dh, dw, blocked_channels = 0;
    int ceil_mode;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sO(nn)(nn)(nn)(nn)p|n", keywords, &layer,
                                     &input_obj, &kh, &kw, &sh, &sw, &ph, &pw, &dh, &dw,
                                     &ceil_mode, &blocked_channels))
        return NULL;
    PyArrayObject *input = sb_glue_as_array(input_obj, layer, "input", 1);
    if (input == NULL)
        return NULL;
    sb_tensor t_input;
    sb_glue_tensor_of(&t_input, input);
    sb_max_pool2d_args a = {&t_input,  {kh, kw},  {sh, sw},        {ph, pw},
                            {dh, dw}, ceil_mode, blocked_channels};
    sb_pool2d_plan plan;
    sb_error err;
    PyObject *result = pool_result(sb_op_max_pool2d_plan(&plan, &a, &err), &err, max_pool_run,
                                   &plan, &a, &t_input, layer);
    Py_DECREF(input);
    return result;
}

PyDoc_STRVAR(adaptive_avg_pool2d_doc,
"adaptive_avg_pool2d($module, layer, input, output_size)\n"
"--\n\n"
"torch.nn.functional.adaptive_avg_pool2d: output cell (i, j) averages rows\n"
"floor(i*H/OH) .. ceil((i+1)*H/OH)-1 and the same for columns.\n"
"float32 and float64 input give a result of their dtype; other real input is\n"
"converted to float32.\n\n"
"layer: the name errors start with. input: (N, C, H, W) or (C, H, W).\n"
"output_size: a pair of ints (Python resolves None entries).");

static PyObject *py_adaptive_avg_pool2d(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"layer", "input", "output_size", NULL};
    const char *layer;
    PyObject *input_obj;
    Py_ssize_t oh, ow;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sO(nn)", keywords, &layer, &input_obj,
                                     &oh, &ow))
        return NULL;
    PyArrayObject *input = sb_glue_as_array(input_obj, layer, "input", 1);
    if (input == NULL)
        return NULL;
    sb_tensor t_input;
    sb_glue_tensor_of(&t_input, input);
    sb_adaptive_avg_pool2d_args a = {&t_input, {oh, ow}};
    sb_pool2d_plan plan;
    sb_error err;
    PyObject *result = pool_result(sb_op_adaptive_avg_pool2d_plan(&plan, &a, &err), &err,
                                   adaptive_run, &plan, &a, &t_input, layer);
    Py_DECREF(input);
    return result;
}

PyMethodDef sb_glue_pool_methods[] = {
    {"max_pool2d", (PyCFunction)(void (*)(void))py_max_pool2d, METH_VARARGS | METH_KEYWORDS,
     max_pool2d_doc},
    {"adaptive_avg_pool2d", (PyCFunction)(void (*)(void))py_adaptive_avg_pool2d,
     METH_VARARGS | METH_KEYWORDS, adaptive_avg_pool2d_doc},
    {NULL, NULL, 0, NULL}};
