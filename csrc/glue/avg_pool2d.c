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
"           divisor_override)\n"
"--\n\n"
"torch.nn.functional.avg_pool2d, torch's divisor rule.\n"
"float32 and float64 input give a result of their dtype; other real input is\n"
"converted to float32.\n\n"
"layer: the name errors start with. input: (N, C, H, W) or (C, H, W).\n"
"kernel_size, stride, padding: pairs of ints. ceil_mode, count_include_pad: bools.\n"
"divisor_override: an int or None.");

static PyObject *py_avg_pool2d(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"layer", "input", "kernel_size", "stride", "padding",
                               "ceil_mode", "count_include_pad", "divisor_override", NULL};
    const char *layer;
    PyObject *input_obj, *divisor_obj;
    Py_ssize_t kh, kw, sh, sw, ph, pw;
    int ceil_mode, count_include_pad;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sO(nn)(nn)(nn)ppO", keywords, &layer,
                                     &input_obj, &kh, &kw, &sh, &sw, &ph, &pw, &ceil_mode,
                                     &count_include_pad, &divisor_obj))
        return NULL;
    long long divisor = 0;
    if (divisor_obj != Py_None) {
        divisor = PyLong_AsLongLong(divisor_obj);
        if (divisor == -1 && PyErr_Occurred())
            return NULL;
    }
    PyArrayObject *input = sb_glue_as_array(input_obj, layer, "input", 1);
    if (input == NULL)
        return NULL;
    sb_tensor t_input;
    sb_glue_tensor_of(&t_input, input);
    sb_avg_pool2d_args a = {&t_input, {kh, kw}, {sh, sw}, {ph, pw}, ceil_mode,
                            count_include_pad, divisor, divisor_obj != Py_None};
    sb_pool2d_plan plan;
    sb_error err;
    PyObject *result;
    if (sb_op_avg_pool2d_plan(&plan, &a, &err) != SB_OK)
        result = sb_glue_raise(&err, layer);
    else
        result = sb_glue_run(avg_run, &plan, &a,
                             sb_glue_new_array(plan.out_ndim, plan.out_dims, t_input.dtype),
                             plan.workspace_bytes, layer);
    Py_DECREF(input);
    return result;
}

PyMethodDef sb_glue_avg_pool2d_methods[] = {
    {"avg_pool2d", (PyCFunction)(void (*)(void))py_avg_pool2d, METH_VARARGS | METH_KEYWORDS,
     avg_pool2d_doc},
    {NULL, NULL, 0, NULL}};
