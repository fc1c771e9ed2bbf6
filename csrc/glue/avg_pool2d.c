/*
 * avg_pool2d.c -- the glue of _C.avg_pool2d (csrc/ops/avg_pool2d.c).
 */
#include "glue.h"

static sb_status avg_run(const void *plan, const void *args, const sb_tensor *out,
                         void *workspace)
{
    return sb_op_avg_pool2d_run(plan, args, out, workspace);
}

PyDoc_STRVAR(avg_pool2d_doc,
"avg_pool2d($module, layer, input, kernel_size, stride, padding, ceil_mode, count_include_pad,\n"
"           divisor_override, blocked_channels=0, bn=None, relu=False)\n"
"--\n\n"
"torch.nn.functional.avg_pool2d, torch's divisor rule.\n"
"float32 and float64 input give a result of their dtype; other real input is\n"
"converted to float32.\n\n"
"layer: the name errors start with. input: (N, C, H, W) or (C, H, W).\n"
"kernel_size, stride, padding: pairs of ints. ceil_mode, count_include_pad: bools.\n"
"divisor_override: an int or None.\n"
"blocked_channels nonzero: input is a channel-blocked map of that many channels,\n"
"  (N, ceil(C/B), H, W, B) (see conv2d's in_blocked), and so is the result.\n"
"bn, relu (blocked only): relu(bn(input)) is pooled, bn an eval-mode BatchNorm as\n"
"  (running_mean, running_var, weight, bias, eps) (weight, bias: None for none),\n"
"  with the bits of batch_norm(..., relu=relu) followed by the pool.");

static PyObject *py_avg_pool2d(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"layer", "input", "kernel_size", "stride", "padding",
                               "ceil_mode", "count_include_pad", "divisor_override",
                               "blocked_channels", "bn", "relu", NULL};
    const char *layer;
    PyObject *input_obj, *divisor_obj, *bn_obj = Py_None;
    Py_ssize_t kh, kw, sh, sw, ph, pw, blocked_channels = 0;
    int ceil_mode, count_include_pad, relu = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sO(nn)(nn)(nn)ppO|nOp", keywords, &layer,
                                     &input_obj, &kh, &kw, &sh, &sw, &ph, &pw, &ceil_mode,
                                     &count_include_pad, &divisor_obj, &blocked_channels,
                                     &bn_obj, &relu))
        return NULL;
    long long divisor = 0;
    if (divisor_obj != Py_None) {
        divisor = PyLong_AsLongLong(divisor_obj);
        if (divisor == -1 && PyErr_Occurred())
            return NULL;
    }
    enum { INPUT, BN, N_ARGS = BN + 4 };
    sb_glue_arg arg[N_ARGS];
    sb_glue_fold bn;
    arg[INPUT] = (sb_glue_arg){input_obj, layer, "input", 1, NULL};
    if (sb_glue_fold_parse(bn_obj, arg + BN, &bn) < 0 || sb_glue_convert(arg, N_ARGS, 0) < 0)
        return NULL;
    sb_tensor t_input;
    sb_glue_tensor_of(&t_input, arg[INPUT].arr);
    sb_avg_pool2d_args a = {&t_input, {kh, kw}, {sh, sw}, {ph, pw}, ceil_mode,
                            count_include_pad, divisor, divisor_obj != Py_None,
                            blocked_channels, sb_glue_fold_state(&bn, arg + BN), relu};
    sb_pool2d_plan plan;
    sb_error err;
    PyObject *result;
    if (sb_op_avg_pool2d_plan(&plan, &a, &err) != SB_OK)
        result = sb_glue_raise(&err, layer);
    else
        result = sb_glue_run(avg_run, &plan, &a,
                             sb_glue_new_array(plan.out_ndim, plan.out_dims, t_input.dtype),
                             plan.workspace_bytes, layer);
    sb_glue_release(arg, N_ARGS);
    return result;
}

PyMethodDef sb_glue_avg_pool2d_methods[] = {
    {"avg_pool2d", (PyCFunction)(void (*)(void))py_avg_pool2d, METH_VARARGS | METH_KEYWORDS,
     avg_pool2d_doc},
    {NULL, NULL, 0, NULL}};
