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
"linear(layer, input, weight, bias, packed=None)\n--\n\n"
"torch.nn.functional.linear: input (..., in_features) -> (..., out_features).\n\n"
"layer: the name errors start with. weight: (out_features, in_features).\n"
"bias: (out_features,) or None.\n"
"packed: weights and bias from linear_pack (the packed-GEMM fast path).");

static PyObject *py_linear(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"layer", "input", "weight", "bias", "packed", NULL};
    const char *layer;
    PyObject *input_obj, *weight_obj, *bias_obj, *packed_obj = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sOOO|O", keywords, &layer, &input_obj,
                                     &weight_obj, &bias_obj, &packed_obj))
        return NULL;
    PyArrayObject *input = NULL, *weight = NULL, *bias = NULL;
    PyObject *result = NULL;
    sb_error err;
    memset(&err, 0, sizeof err);
    if ((weight = sb_glue_as_float_array(weight_obj, layer, "weight", 0)) == NULL ||
        sb_glue_as_optional(bias_obj, layer, "bias", 0, &bias) < 0 ||
        (input = sb_glue_as_float_array(input_obj, layer, "input", 0)) == NULL)
        goto done;
    sb_tensor t_input, t_weight, t_bias;
    sb_glue_tensor_of(&t_input, input);
    sb_glue_tensor_of(&t_weight, weight);
    if (bias != NULL)
        sb_glue_tensor_of(&t_bias, bias);
    sb_linear_args a = {&t_input, &t_weight, bias ? &t_bias : NULL, NULL, 0, 0,
                        sb_get_num_threads()};
    if (sb_glue_packed(packed_obj, layer, &a.packed, &a.packed_numel) < 0)
        goto done;
    sb_linear_plan plan;
    if (sb_op_linear_plan(&plan, &a, &err) != SB_OK) {
        sb_glue_raise(&err, layer);
        goto done;
    }
    result = sb_glue_run(linear_run, &plan, &a, sb_glue_new_array(plan.out_ndim, plan.out_dims),
                         plan.workspace_bytes, layer);
done:
    Py_XDECREF(input); Py_XDECREF(weight); Py_XDECREF(bias);
    return result;
}

PyDoc_STRVAR(linear_pack_doc,
"linear_pack(layer, weight, bias) -> 1-D float32 array\n--\n\n"
"Packs weight (out_features, in_features) and bias ((out_features,) or None)\n"
"once, for linear(packed=...) and se_attention.");

static PyObject *py_linear_pack(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"layer", "weight", "bias", NULL};
    const char *layer;
    PyObject *weight_obj, *bias_obj;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sOO", keywords, &layer, &weight_obj,
                                     &bias_obj))
        return NULL;
    PyArrayObject *weight = NULL, *bias = NULL;
    PyObject *result = NULL;
    sb_error err;
    if ((weight = sb_glue_as_float_array(weight_obj, layer, "weight", 0)) == NULL ||
        sb_glue_as_optional(bias_obj, layer, "bias", 0, &bias) < 0)
        goto done;
    sb_tensor t_weight, t_bias;
    sb_glue_tensor_of(&t_weight, weight);
    if (bias != NULL)
        sb_glue_tensor_of(&t_bias, bias);
    sb_linear_pack_args a = {&t_weight, bias ? &t_bias : NULL};
    sb_linear_pack_plan plan;
    if (sb_op_linear_pack_plan(&plan, &a, &err) != SB_OK) {
        sb_glue_raise(&err, layer);
        goto done;
    }
    result = sb_glue_run(linear_pack_run, &plan, &a, sb_glue_new_array(1, &plan.packed_numel),
                         plan.workspace_bytes, layer);
done:
    Py_XDECREF(weight); Py_XDECREF(bias);
    return result;
}

PyMethodDef sb_glue_linear_methods[] = {
    {"linear", (PyCFunction)(void (*)(void))py_linear, METH_VARARGS | METH_KEYWORDS,
     linear_doc},
    {"linear_pack", (PyCFunction)(void (*)(void))py_linear_pack, METH_VARARGS | METH_KEYWORDS,
     linear_pack_doc},
    {NULL, NULL, 0, NULL}};
