/*
 * conv.c -- the glue of the Conv2d operator: _C.conv2d and _C.conv2d_pack.
 * Converts the arguments (the dtype rule of convert.c), calls
 * sb_op_conv2d_* (see csrc/ops/conv2d.c), returns the array.
 */
#include "glue.h"

static sb_status conv2d_run(const void *plan, const void *args, const sb_tensor *out,
                            void *workspace)
{
    return sb_op_conv2d_run(plan, args, out, workspace);
}

static sb_status conv2d_pack_run(const void *plan, const void *args, const sb_tensor *out,
                                 void *workspace)
{
    return sb_op_conv2d_pack_run(plan, args, out->data, workspace);
}

static void tensor_or_null(sb_tensor *t, PyArrayObject *arr, const sb_tensor **slot)
{
    if (arr == NULL) {
        *slot = NULL;
        return;
    }
    sb_glue_tensor_of(t, arr);
    *slot = t;
}

PyDoc_STRVAR(conv2d_doc,
"conv2d($module, layer, input, weight, bias, stride, padding, dilation, groups, out=None,\n"
"       packed=None, in_scale=None, in_shift=None, in_relu=False, residual=None,\n"
"       relu=False, padding_extra=(0, 0), in_blocked=False, out_blocked=False)\n"
"--\n\n"
"torch.nn.functional.conv2d with zero padding, and skipblocks' fusions, in\n"
"float32 or float64: the input's dtype (after conversion) is the result's, and\n"
"every other array must have it too, else torch's error for the mix.\n"
"float32 and float64 arrays keep their dtype; other real input is converted to\n"
"float64 when an array argument is float64, else to float32.\n\n"
"layer: the name errors start with. input: (N, C_in, H, W) or (C_in, H, W).\n"
"weight: (C_out, C_in/groups, kH, kW). bias: (C_out,) or None.\n"
"stride, padding, dilation: pairs of ints; groups: int.\n"
"out: an array of the result's dtype and the output's shape to write (a 4-D\n"
"  input only).\n"
"packed: weights from conv2d_pack, of the input's dtype (they hold the bias,\n"
"  maybe a folded BatchNorm); None packs them for this call.\n"
"in_scale, in_shift: (C_in,) each; every input value x of channel c is used as\n"
"  x * in_scale[c] + in_shift[c], then max(., 0) when in_relu.\n"
"residual: an array of the output's shape added to the result, then max(., 0)\n"
"  when relu.\n"
"padding_extra: zeros added after the input (bottom, right) besides padding, as\n"
"  torch's padding='same' with an even total does.\n"
"in_blocked, out_blocked: the input, or the output and residual, are\n"
"  channel-blocked maps (N, ceil(C/B), H, W, B), B = 16 float32 or 8 float64\n"
"  values, the lanes past C zero (skipblocks' planned networks; see\n"
"  conv2d_blocked_ok, to_blocked, from_blocked).");

static PyObject *py_conv2d(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"layer", "input", "weight", "bias", "stride", "padding",
                               "dilation", "groups", "out", "packed",
                               "in_scale", "in_shift", "in_relu", "residual", "relu",
                               "padding_extra", "in_blocked", "out_blocked", NULL};
    const char *layer;
    PyObject *input_obj, *weight_obj, *bias_obj, *out_obj = Py_None, *packed_obj = Py_None;
    PyObject *in_scale_obj = Py_None, *in_shift_obj = Py_None, *residual_obj = Py_None;
    Py_ssize_t sh, sw, ph, pw, dh, dw, groups, eh = 0, ew = 0;
    int in_relu = 0, relu = 0, in_blocked = 0, out_blocked = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sOOO(nn)(nn)(nn)n|OOOOpOp(nn)pp", keywords,
                                     &layer, &input_obj, &weight_obj, &bias_obj,
                                     &sh, &sw, &ph, &pw, &dh, &dw, &groups,
                                     &out_obj, &packed_obj, &in_scale_obj,
                                     &in_shift_obj, &in_relu, &residual_obj, &relu, &eh, &ew,
                                     &in_blocked, &out_blocked))
        return NULL;

    enum { WEIGHT, BIAS, INPUT, IN_SCALE, IN_SHIFT, RESIDUAL, N_ARGS };
    sb_glue_arg arg[N_ARGS] = {
        {weight_obj, layer, "weight", 0, NULL},
        {SB_GLUE_OPTIONAL(bias_obj), layer, "bias", 0, NULL},
        {input_obj, layer, "input", SB_GLUE_BLOCKED_OK, NULL},
        {SB_GLUE_OPTIONAL(in_scale_obj), layer, "in_scale", 0, NULL},
        {SB_GLUE_OPTIONAL(in_shift_obj), layer, "in_shift", 0, NULL},
        {SB_GLUE_OPTIONAL(residual_obj), layer, "residual", SB_GLUE_BLOCKED_OK, NULL},
    };
    PyArrayObject *out = NULL;
    PyObject *result = NULL;
    sb_error err;

    if (sb_glue_convert(arg, N_ARGS, sb_glue_is_float64(packed_obj)) < 0)
        return NULL;
    PyArrayObject *input = arg[INPUT].arr, *weight = arg[WEIGHT].arr, *bias = arg[BIAS].arr;
    PyArrayObject *in_scale = arg[IN_SCALE].arr, *in_shift = arg[IN_SHIFT].arr;
    PyArrayObject *residual = arg[RESIDUAL].arr;
    sb_conv2d_args a;
    memset(&a, 0, sizeof a);
    if (sb_glue_packed(packed_obj, layer, &a.packed, &a.packed_numel, &a.packed_dtype) < 0)
        goto done;
    sb_tensor t_input, t_weight, t_bias, t_scale, t_shift, t_residual;
    sb_glue_tensor_of(&t_input, input);
    sb_glue_tensor_of(&t_weight, weight);
    a.input = &t_input;
    a.weight = &t_weight;
    tensor_or_null(&t_bias, bias, &a.bias);
    tensor_or_null(&t_scale, in_scale, &a.in_scale);
    tensor_or_null(&t_shift, in_shift, &a.in_shift);
    tensor_or_null(&t_residual, residual, &a.residual);
    a.stride[0] = sh; a.stride[1] = sw;
    a.padding[0] = ph; a.padding[1] = pw;
    a.dilation[0] = dh; a.dilation[1] = dw;
    a.groups = groups;
    a.padding_extra[0] = eh; a.padding_extra[1] = ew;
    a.in_relu = in_relu;
    a.out_relu = relu;
    a.in_blocked = in_blocked;
    a.out_blocked = out_blocked;
    a.num_threads = sb_get_num_threads();

    sb_conv2d_plan plan;
    if (sb_op_conv2d_plan(&plan, &a, &err) != SB_OK) {
        sb_glue_raise(&err, layer);
        goto done;
    }
    if (out_obj != Py_None) {
        if (plan.out_ndim != 4) {
            memset(&err, 0, sizeof err);
            err.code = SB_E_CONV_OUT_UNBATCHED;
            sb_glue_raise(&err, layer);
            goto done;
        }
        out = sb_glue_out_array(out_obj, layer, 4, plan.out_dims, 1, input, 0, t_input.dtype);
    } else {
        out = sb_glue_new_array(plan.out_ndim, plan.out_dims, t_input.dtype);
    }
    result = sb_glue_run(conv2d_run, &plan, &a, out, plan.workspace_bytes, layer);
done:
    sb_glue_release(arg, N_ARGS);
    return result;
}

PyDoc_STRVAR(conv2d_pack_doc,
"conv2d_pack($module, layer, weight, bias, groups, fold=None)\n"
"--\n\n"
"Returns a 1-D array: packs a convolution's weight (C_out, C_in/groups, kH, kW)\n"
"and bias ((C_out,) or None) for conv2d(packed=...). fold: an eval-mode\n"
"BatchNorm after the convolution, (running_mean, running_var, weight, bias,\n"
"eps) with weight and bias possibly None,\n"
"folded into the packed weights as torch's eval-mode batch_norm computes it.\n"
"The packed array has the weight's dtype (float32 or float64, after the dtype\n"
"rule of conv2d), for inputs of that dtype; the other arrays must have it too.");

static PyObject *py_conv2d_pack(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"layer", "weight", "bias", "groups", "fold", NULL};
    const char *layer;
    PyObject *weight_obj, *bias_obj, *fold_obj = Py_None;
    Py_ssize_t groups;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sOOn|O", keywords, &layer, &weight_obj,
                                     &bias_obj, &groups, &fold_obj))
        return NULL;
    enum { WEIGHT, BIAS, FOLD, N_ARGS = FOLD + 4 };
    sb_glue_arg arg[N_ARGS];
    sb_glue_fold fold;
    arg[WEIGHT] = (sb_glue_arg){weight_obj, layer, "weight", 0, NULL};
    arg[BIAS] = (sb_glue_arg){SB_GLUE_OPTIONAL(bias_obj), layer, "bias", 0, NULL};
    if (sb_glue_fold_parse(fold_obj, arg + FOLD, &fold) < 0)
        return NULL;
    PyObject *result = NULL;
    sb_error err;
    if (sb_glue_convert(arg, N_ARGS, 0) < 0)
        return NULL;
    sb_tensor t_weight, t_bias;
    sb_conv2d_pack_args a;
    memset(&a, 0, sizeof a);
    sb_glue_tensor_of(&t_weight, arg[WEIGHT].arr);
    a.weight = &t_weight;
    tensor_or_null(&t_bias, arg[BIAS].arr, &a.bias);
    a.groups = groups;
    a.fold = sb_glue_fold_state(&fold, arg + FOLD);
    sb_conv2d_pack_plan plan;
    if (sb_op_conv2d_pack_plan(&plan, &a, &err) != SB_OK) {
        sb_glue_raise(&err, layer);
        goto done;
    }
    result = sb_glue_run(conv2d_pack_run, &plan, &a,
                         sb_glue_new_array(1, &plan.packed_numel, t_weight.dtype),
                         plan.workspace_bytes, layer);
done:
    sb_glue_release(arg, N_ARGS);
    return result;
}

PyMethodDef sb_glue_conv_methods[] = {
    {"conv2d", (PyCFunction)(void (*)(void))py_conv2d, METH_VARARGS | METH_KEYWORDS,
     conv2d_doc},
    {"conv2d_pack", (PyCFunction)(void (*)(void))py_conv2d_pack, METH_VARARGS | METH_KEYWORDS,
     conv2d_pack_doc},
    {NULL, NULL, 0, NULL}};
