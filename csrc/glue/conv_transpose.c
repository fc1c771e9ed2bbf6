/*
 * conv_transpose.c -- the glue of the ConvTranspose2d operator:
 * _C.conv_transpose2d and _C.conv_transpose2d_pack. Converts the arguments
 * (the dtype rule of convert.c), calls sb_op_conv_transpose2d_* (see
 * csrc/ops/conv_transpose2d.c), returns the array.
 */
#include "glue.h"

static sb_status conv_transpose2d_run(const void *plan, const void *args,
                                      const sb_tensor *out, void *workspace)
{
    return sb_op_conv_transpose2d_run(plan, args, out, workspace);
}

static sb_status conv_transpose2d_pack_run(const void *plan, const void *args,
                                           const sb_tensor *out, void *workspace)
{
    return sb_op_conv_transpose2d_pack_run(plan, args, out->data, workspace);
}

PyDoc_STRVAR(conv_transpose2d_doc,
"conv_transpose2d($module, layer, input, weight, bias, stride, padding, output_padding,\n"
"                 dilation, groups, packed=None)\n"
"--\n\n"
"torch.nn.functional.conv_transpose2d with zero padding, in float32 or float64:\n"
"the input's dtype (after conversion) is the result's; the weight must have it\n"
"too, else torch's error (a bias of the other dtype is added as torch adds it,\n"
"where torch accepts it). float32 and float64 arrays keep their dtype; other\n"
"real input is converted to float64 when an array argument is float64, else to\n"
"float32.\n\n"
"layer: the name errors start with. input: (N, C_in, H, W) or (C_in, H, W).\n"
"weight: (C_in, C_out/groups, kH, kW). bias: (C_out,) or None.\n"
"stride, padding, output_padding, dilation: pairs of ints; groups: int.\n"
"packed: weights from conv_transpose2d_pack, of the input's dtype; None packs\n"
"  them for this call.");

static PyObject *py_conv_transpose2d(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"layer", "input", "weight", "bias", "stride", "padding",
                               "output_padding", "dilation", "groups", "packed", NULL};
    const char *layer;
    PyObject *input_obj, *weight_obj, *bias_obj, *packed_obj = Py_None;
    Py_ssize_t sh, sw, ph, pw, oh, ow, dh, dw, groups;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sOOO(nn)(nn)(nn)(nn)n|O", keywords,
                                     &layer, &input_obj, &weight_obj, &bias_obj, &sh, &sw,
                                     &ph, &pw, &oh, &ow, &dh, &dw, &groups, &packed_obj))
        return NULL;
    enum { WEIGHT, BIAS, INPUT, N_ARGS };
    sb_glue_arg arg[N_ARGS] = {
        {weight_obj, layer, "weight", 0, NULL},
        {SB_GLUE_OPTIONAL(bias_obj), layer, "bias", 0, NULL},
        {input_obj, layer, "input", 1, NULL},
    };
    PyObject *result = NULL;
    sb_error err;
    if (sb_glue_convert(arg, N_ARGS, sb_glue_is_float64(packed_obj)) < 0)
        return NULL;
    sb_conv_transpose2d_args a;
    memset(&a, 0, sizeof a);
    if (sb_glue_packed(packed_obj, layer, &a.packed, &a.packed_numel, &a.packed_dtype) < 0)
        goto done;
    sb_tensor t_input, t_weight, t_bias;
    sb_glue_tensor_of(&t_input, arg[INPUT].arr);
    sb_glue_tensor_of(&t_weight, arg[WEIGHT].arr);
    a.input = &t_input;
    a.weight = &t_weight;
    if (arg[BIAS].arr != NULL) {
        sb_glue_tensor_of(&t_bias, arg[BIAS].arr);
        a.bias = &t_bias;
    }
    a.stride[0] = sh; a.stride[1] = sw;
    a.padding[0] = ph; a.padding[1] = pw;
    a.output_padding[0] = oh; a.output_padding[1] = ow;
    a.dilation[0] = dh; a.dilation[1] = dw;
    a.groups = groups;
    a.num_threads = sb_get_num_threads();
    sb_conv_transpose2d_plan plan;
    if (sb_op_conv_transpose2d_plan(&plan, &a, &err) != SB_OK) {
        sb_glue_raise(&err, layer);
        goto done;
    }
    result = sb_glue_run(conv_transpose2d_run, &plan, &a,
                         sb_glue_new_array(plan.out_ndim, plan.out_dims, t_input.dtype),
                         plan.workspace_bytes, layer);
done:
    sb_glue_release(arg, N_ARGS);
    return result;
}

PyDoc_STRVAR(conv_transpose2d_pack_doc,
"conv_transpose2d_pack($module, layer, weight, groups)\n"
"--\n\n"
"Returns a 1-D array: packs a transposed convolution's weight\n"
"(C_in, C_out/groups, kH, kW) for conv_transpose2d(packed=...): the weights\n"
"of the 1x1 convolution it runs, in the weight's dtype (float32 or float64,\n"
"after the dtype rule), for inputs of that dtype. The bias is not packed (the\n"
"gather adds it).");

static PyObject *py_conv_transpose2d_pack(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"layer", "weight", "groups", NULL};
    const char *layer;
    PyObject *weight_obj;
    Py_ssize_t groups;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sOn", keywords, &layer, &weight_obj,
                                     &groups))
        return NULL;
    sb_glue_arg arg[1] = {{weight_obj, layer, "weight", 0, NULL}};
    PyObject *result = NULL;
    sb_error err;
    if (sb_glue_convert(arg, 1, 0) < 0)
        return NULL;
    sb_tensor t_weight;
    sb_glue_tensor_of(&t_weight, arg[0].arr);
    sb_conv_transpose2d_pack_args a = {&t_weight, groups};
    sb_conv_transpose2d_pack_plan plan;
    if (sb_op_conv_transpose2d_pack_plan(&plan, &a, &err) != SB_OK) {
        sb_glue_raise(&err, layer);
        goto done;
    }
    result = sb_glue_run(conv_transpose2d_pack_run, &plan, &a,
                         sb_glue_new_array(1, &plan.packed_numel, t_weight.dtype),
                         plan.workspace_bytes, layer);
done:
    sb_glue_release(arg, 1);
    return result;
}

PyMethodDef sb_glue_conv_transpose_methods[] = {
    {"conv_transpose2d", (PyCFunction)(void (*)(void))py_conv_transpose2d,
     METH_VARARGS | METH_KEYWORDS, conv_transpose2d_doc},
    {"conv_transpose2d_pack", (PyCFunction)(void (*)(void))py_conv_transpose2d_pack,
     METH_VARARGS | METH_KEYWORDS, conv_transpose2d_pack_doc},
    {NULL, NULL, 0, NULL}};
