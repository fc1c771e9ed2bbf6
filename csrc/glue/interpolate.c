/*
 * interpolate.c -- the glue of _C.interpolate (csrc/ops/interpolate.c):
 * the kernels behind torch.nn.functional.interpolate's 'nearest' and
 * 'bilinear' modes, on the output size and scales skipblocks/functional.py
 * resolved as torch's Python does.
 */
#include "glue.h"

static sb_status interp_run(const void *plan, const void *args, const sb_tensor *out,
                            void *workspace)
{
    return sb_op_interpolate_run(plan, args, out, workspace);
}

PyDoc_STRVAR(interpolate_doc,
"interpolate($module, layer, input, mode, size, scales, align_corners)\n"
"--\n\n"
"torch's upsample_nearest1d / upsample_nearest2d (mode 0; 3-D or 4-D input) and\n"
"upsample_bilinear2d (mode 1; 4-D input) kernels.\n"
"float32 and float64 input give a result of their dtype; other real input is\n"
"converted to float32.\n\n"
"layer: the name errors start with. size: (H, W) of the output (1-D: (1, W)).\n"
"scales: (scale_h, scale_w), the scale factors torch passes on to its kernel\n"
"(<= 0: none). align_corners: bool (bilinear).");

static PyObject *py_interpolate(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"layer", "input", "mode", "size", "scales", "align_corners",
                               NULL};
    const char *layer;
    PyObject *input_obj;
    int mode, align_corners;
    Py_ssize_t oh, ow;
    double sh, sw;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sOi(nn)(dd)p", keywords, &layer,
                                     &input_obj, &mode, &oh, &ow, &sh, &sw, &align_corners))
        return NULL;
    PyArrayObject *input = sb_glue_as_array(input_obj, layer, "input", 1);
    if (input == NULL)
        return NULL;
    sb_tensor t_input;
    sb_glue_tensor_of(&t_input, input);
    sb_interpolate_args a = {&t_input, mode ? SB_INTERP_BILINEAR : SB_INTERP_NEAREST,
                             {oh, ow}, {sh, sw}, align_corners, 0};
    sb_interpolate_plan plan;
    sb_error err;
    PyObject *result;
    if (sb_op_interpolate_plan(&plan, &a, &err) != SB_OK)
        result = sb_glue_raise(&err, layer);
    else
        result = sb_glue_run(interp_run, &plan, &a,
                             sb_glue_new_array(plan.out_ndim, plan.out_dims, t_input.dtype),
                             plan.workspace_bytes, layer);
    Py_DECREF(input);
    return result;
}

PyMethodDef sb_glue_interpolate_methods[] = {
    {"interpolate", (PyCFunction)(void (*)(void))py_interpolate, METH_VARARGS | METH_KEYWORDS,
     interpolate_doc},
    {NULL, NULL, 0, NULL}};
