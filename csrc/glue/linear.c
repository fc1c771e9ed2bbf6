/*
 * linear.c -- the glue of the Linear operator: _C.linear and _C.linear_pack
 * (csrc/ops/linear.c).
 */
#include "glue.h"

static sb_status linear_run(const void *plan, const void *args, const sb_tensor *out,
                            void *workspace)
{
    return sb_op_linear_run(plan, args, out, workspace);
}

static sb_status linear_pack_run(const void *plan, const void *args, const sb_tensor *out,
                                 void *workspace)
{
    return sb_op_linear_pack_run(plan, args, out->data, workspace);
}

PyDoc_STRVAR(linear_doc,
"linear($module, layer, input, weight, bias, packed=None)\n--\n\n"
"torch.nn.functional.linear: input (..., in_features) -> (..., out_features),\n"
"in float32 or float64: the input's dtype (after conversion) is the result's,\n"
"and the weight must have it too, else torch's error for the mix (so must the\n"
"bias where torch requires it). float32 and float64 arrays keep their dtype;\n"
"other real input is converted to float64 when an array argument is float64,\n"
"else to float32.\n\n"
"layer: the name errors start with. weight: (out_features, in_features).\n"
"bias: (out_features,) or None (or any shape torch expands to the output's).\n"
"packed: weights and bias from linear_pack, of the input's dtype (the\n"
"packed-GEMM fast path).");

static PyObject *py_linear(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"layer", "input", "weight", "bias", "packed", NULL};
    const char *layer;
    PyObject *input_obj, *weight_obj, *bias_obj, *packed_obj = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sOOO|O", keywords, &layer, &input_obj,
                                     &weight_obj, &bias_obj, &packed_obj))
        return NULL;
    enum { WEIGHT, BIAS, INPUT, N_ARGS };
    sb_glue_arg arg[N_ARGS] = {
        {weight_obj, layer, "weight", 0, NULL},
        {SB_GLUE_OPTIONAL(bias_obj), layer, "bias", 0, NULL},
        {input_obj, layer, "input", 0, NULL},
    };
    PyObject *result = NULL;
    sb_error err;
    memset(&err, 0, sizeof err);
    if (sb_glue_convert(arg, N_ARGS, sb_glue_is_float64(packed_obj)) < 0)
        return NULL;
    PyArrayObject *bias = arg[BIAS].arr;
    sb_tensor t_input, t_weight, t_bias;
    sb_glue_tensor_of(&t_input, arg[INPUT].arr);
    sb_glue_tensor_of(&t_weight, arg[WEIGHT].arr);
    if (bias != NULL)
        sb_glue_tensor_of(&t_bias, bias);
    sb_linear_args a;
    memset(&a, 0, sizeof a);
    a.input = &t_input;
    a.weight = &t_weight;
    a.bias = bias ? &t_bias : NULL;
    a.num_threads = sb_get_num_threads();
    if (sb_glue_packed(packed_obj, layer, &a.packed, &a.packed_numel, &a.packed_dtype) < 0)
        goto done;
    sb_linear_plan plan;
    if (sb_op_linear_plan(&plan, &a, &err) != SB_OK) {
        sb_glue_raise(&err, layer);
        goto done;
    }
    result = sb_glue_run(linear_run, &plan, &a,
                         sb_glue_new_array(plan.out_ndim, plan.out_dims, t_input.dtype),
                         plan.workspace_bytes, layer);
done:
    sb_glue_release(arg, N_ARGS);
    return result;
}

PyDoc_STRVAR(linear_pack_doc,
"linear_pack($module, layer, weight, bias)\n--\n\n"
"Returns a 1-D array: packs weight (out_features, in_features) and bias\n"
"((out_features,) or None) once, for linear(packed=...) and se_attention.\n"
"The packed array has the weight's dtype (float32 or float64, after the dtype\n"
"rule of linear), for inputs of that dtype; the bias must have it too.");

static PyObject *py_linear_pack(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"layer", "weight", "bias", NULL};
    const char *layer;
    PyObject *weight_obj, *bias_obj;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sOO", keywords, &layer, &weight_obj,
                                     &bias_obj))
        return NULL;
    enum { WEIGHT, BIAS, N_ARGS };
    sb_glue_arg arg[N_ARGS] = {
        {weight_obj, layer, "weight", 0, NULL},
        {SB_GLUE_OPTIONAL(bias_obj), layer, "bias", 0, NULL},
    };
    PyObject *result = NULL;
    sb_error err;
    if (sb_glue_convert(arg, N_ARGS, 0) < 0)
        return NULL;
    PyArrayObject *bias = arg[BIAS].arr;
    sb_tensor t_weight, t_bias;
    sb_glue_tensor_of(&t_weight, arg[WEIGHT].arr);
    if (bias != NULL)
        sb_glue_tensor_of(&t_bias, bias);
    sb_linear_pack_args a = {&t_weight, bias ? &t_bias : NULL};
    sb_linear_pack_plan plan;
    if (sb_op_linear_pack_plan(&plan, &a, &err) != SB_OK) {
        sb_glue_raise(&err, layer);
        goto done;
    }
    result = sb_glue_run(linear_pack_run, &plan, &a,
                         sb_glue_new_array(1, &plan.packed_numel, t_weight.dtype),
                         plan.workspace_bytes, layer);
done:
    sb_glue_release(arg, N_ARGS);
    return result;
}

PyMethodDef sb_glue_linear_methods[] = {
    {"linear", (PyCFunction)(void (*)(void))py_linear, METH_VARARGS | METH_KEYWORDS,
     linear_doc},
    {"linear_pack", (PyCFunction)(void (*)(void))py_linear_pack, METH_VARARGS | METH_KEYWORDS,
     linear_pack_doc},
    {NULL, NULL, 0, NULL}};
