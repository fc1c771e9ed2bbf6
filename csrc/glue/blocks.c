/*
 * blocks.c -- the glue of the document's fused blocks: _C.se_attention,
 * _C.dense_layer and _C.residual_block (csrc/ops/se_attention.c,
 * dense_layer.c, residual_block.c).
 *
 * dense_layer and residual_block return None when their operator's plan
 * rejects the arguments (a user changed a layer so that the shapes no
 * longer fit): nothing has been touched then, and the Python block runs its
 * layers one by one, which raise torch's errors after torch's side effects.
 */
#include "glue.h"

/* A BatchNorm passed as (weight, bias, running_mean, running_var,
 * batch_stats, momentum, eps): the arrays it holds and its sb_batch_norm_state. */
typedef struct {
    PyArrayObject *arr[4];
    sb_tensor t[4];
    sb_batch_norm_state state;
} bn_holder;

static void bn_release(bn_holder *h)
{
    for (int i = 0; i < 4; i++)
        Py_CLEAR(h->arr[i]);
}

static int bn_parse(PyObject *tuple, bn_holder *h)
{
    static const char *names[4] = {"weight", "bias", "running_mean", "running_var"};
    PyObject *obj[4];
    int batch_stats;
    memset(h, 0, sizeof *h);
    if (!PyArg_ParseTuple(tuple, "OOOOpdd", &obj[0], &obj[1], &obj[2], &obj[3], &batch_stats,
                          &h->state.momentum, &h->state.eps))
        return -1;
    h->state.batch_stats = batch_stats;
    const int update = batch_stats && obj[2] != Py_None && obj[3] != Py_None;
    for (int i = 0; i < 4; i++) {
        if (obj[i] == Py_None)
            continue;
        if (update && i >= 2) {
            if (sb_glue_running_stat(obj[i], "BatchNorm2d", names[i], &h->arr[i]) < 0)
                return -1;
        } else if (sb_glue_as_optional(obj[i], "BatchNorm2d", names[i], 0, &h->arr[i]) < 0) {
            return -1;
        }
        sb_glue_tensor_of(&h->t[i], h->arr[i]);
    }
    h->state.weight = h->arr[0] ? &h->t[0] : NULL;
    h->state.bias = h->arr[1] ? &h->t[1] : NULL;
    h->state.running_mean = h->arr[2] ? &h->t[2] : NULL;
    h->state.running_var = h->arr[3] ? &h->t[3] : NULL;
    return 0;
}

/* A convolution passed as (weight, packed, stride, padding, dilation, groups). */
typedef struct {
    PyArrayObject *weight;
    sb_tensor t;
    sb_block_conv conv;
} conv_holder;

static int conv_parse(PyObject *tuple, conv_holder *h)
{
    PyObject *weight_obj, *packed_obj;
    Py_ssize_t sh, sw, ph, pw, dh, dw, groups;
    memset(h, 0, sizeof *h);
    if (!PyArg_ParseTuple(tuple, "OO(nn)(nn)(nn)n", &weight_obj, &packed_obj, &sh, &sw, &ph,
                          &pw, &dh, &dw, &groups))
        return -1;
    if ((h->weight = sb_glue_as_float_array(weight_obj, "Conv2d", "weight", 0)) == NULL)
        return -1;
    sb_glue_tensor_of(&h->t, h->weight);
    h->conv.weight = &h->t;
    if (sb_glue_packed(packed_obj, "Conv2d", &h->conv.packed, &h->conv.packed_numel) < 0)
        return -1;
    const int64_t v[7] = {sh, sw, ph, pw, dh, dw, groups};
    for (int i = 0; i < 2; i++) {
        h->conv.stride[i] = v[i];
        h->conv.padding[i] = v[2 + i];
        h->conv.dilation[i] = v[4 + i];
    }
    h->conv.groups = groups;
    return 0;
}

static sb_status se_run(const void *plan, const void *args, const sb_tensor *out, void *ws)
{
    return sb_op_se_attention_run(plan, args, out, ws);
}

static sb_status dense_run(const void *plan, const void *args, const sb_tensor *out, void *ws)
{
    return sb_op_dense_layer_run(plan, args, out, ws);
}

static sb_status residual_run(const void *plan, const void *args, const sb_tensor *out,
                              void *ws)
{
    return sb_op_residual_block_run(plan, args, out, ws);
}

PyDoc_STRVAR(se_attention_doc,
"se_attention(layer, input, fc1_packed, fc2_packed, hidden)\n--\n\n"
"SEAttention's forward in one call: global average pool -> Linear(C, hidden) ->\n"
"ReLU -> Linear(hidden, C) -> Sigmoid -> scale each channel of the input.\n\n"
"layer: the name errors start with. input: (N, C, H, W).\n"
"fc1_packed, fc2_packed: the two Linear layers' weights from linear_pack.\n"
"hidden: fc1's out_features.");

static PyObject *py_se_attention(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"layer", "input", "fc1_packed", "fc2_packed", "hidden", NULL};
    const char *layer;
    PyObject *input_obj, *fc1_obj, *fc2_obj;
    Py_ssize_t hidden;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sOOOn", keywords, &layer, &input_obj,
                                     &fc1_obj, &fc2_obj, &hidden))
        return NULL;
    PyArrayObject *input = sb_glue_as_float_array(input_obj, layer, "input", 1);
    if (input == NULL)
        return NULL;
    sb_tensor t_input;
    sb_glue_tensor_of(&t_input, input);
    sb_se_attention_args a = {&t_input, NULL, NULL, 0, 0, hidden, sb_get_num_threads()};
    if (sb_glue_is_packed(fc1_obj) && sb_glue_is_packed(fc2_obj)) {
        a.fc1_packed = PyArray_DATA((PyArrayObject *)fc1_obj);
        a.fc1_numel = PyArray_SIZE((PyArrayObject *)fc1_obj);
        a.fc2_packed = PyArray_DATA((PyArrayObject *)fc2_obj);
        a.fc2_numel = PyArray_SIZE((PyArrayObject *)fc2_obj);
    }
    sb_se_attention_plan plan;
    sb_error err;
    PyObject *result = NULL;
    if (sb_op_se_attention_plan(&plan, &a, &err) != SB_OK)
        sb_glue_raise(&err, layer);
    else
        result = sb_glue_run(se_run, &plan, &a, sb_glue_new_array(4, t_input.dims),
                             plan.workspace_bytes, layer);
    Py_DECREF(input);
    return result;
}

PyDoc_STRVAR(dense_layer_doc,
"dense_layer(layer, input, bn1, bn2, conv1, conv2, out=None)\n--\n\n"
"The document's DenseLayer: conv2(relu(bn2(conv1(relu(bn1(input)))))), each\n"
"BatchNorm + ReLU applied while the next convolution stages its input.\n\n"
"layer: the name errors start with. input: (N, C, H, W).\n"
"bn1, bn2: (weight, bias, running_mean, running_var, batch_stats, momentum, eps);\n"
"  with batch_stats the running statistics (if not None) are updated in place.\n"
"conv1, conv2: (weight, packed, stride, padding, dilation, groups), packed from\n"
"  conv2d_pack or None.\n"
"out: a float32 array of the output's shape to write (a channel slice of\n"
"  DenseBlock's output). Returns None, touching nothing, when the shapes do not\n"
"  fit (the caller then runs the layers one by one).");

static PyObject *py_dense_layer(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"layer", "input", "bn1", "bn2", "conv1", "conv2", "out", NULL};
    const char *layer;
    PyObject *input_obj, *bn1_obj, *bn2_obj, *conv1_obj, *conv2_obj, *out_obj = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sOOOOO|O", keywords, &layer, &input_obj,
                                     &bn1_obj, &bn2_obj, &conv1_obj, &conv2_obj, &out_obj))
        return NULL;
    bn_holder bn1, bn2;
    conv_holder conv1, conv2;
    memset(&bn1, 0, sizeof bn1); memset(&bn2, 0, sizeof bn2);
    memset(&conv1, 0, sizeof conv1); memset(&conv2, 0, sizeof conv2);
    PyArrayObject *input = NULL;
    PyObject *result = NULL;
    if ((input = sb_glue_as_float_array(input_obj, layer, "input", 1)) == NULL ||
        bn_parse(bn1_obj, &bn1) < 0 || bn_parse(bn2_obj, &bn2) < 0 ||
        conv_parse(conv1_obj, &conv1) < 0 || conv_parse(conv2_obj, &conv2) < 0)
        goto done;
    sb_tensor t_input;
    sb_glue_tensor_of(&t_input, input);
    sb_dense_layer_args a = {&t_input, bn1.state, bn2.state, conv1.conv, conv2.conv,
                             sb_get_num_threads()};
    sb_dense_layer_plan plan;
    sb_error err;
    if (sb_op_dense_layer_plan(&plan, &a, &err) != SB_OK) {
        Py_INCREF(Py_None);
        result = Py_None;
        goto done;
    }
    /* out may be the next channels of the buffer the input is a slice of
     * (DenseBlock): the operator reads the input only before conv2, which
     * reads conv1's output from the workspace, writes out. */
    result = sb_glue_run(dense_run, &plan, &a,
                         out_obj != Py_None
                             ? sb_glue_out_array(out_obj, layer, 4, plan.out_dims, 1, NULL, 0)
                             : sb_glue_new_array(4, plan.out_dims),
                         plan.workspace_bytes, layer);
done:
    bn_release(&bn1); bn_release(&bn2);
    Py_XDECREF(conv1.weight); Py_XDECREF(conv2.weight);
    Py_XDECREF(input);
    return result;
}

PyDoc_STRVAR(residual_block_doc,
"residual_block(layer, input, residual, bn, momentum2, folded, conv1, conv2)\n--\n\n"
"The document's ResidualBlock: relu(bn(conv2(relu(bn(conv1(input))))) + residual)\n"
"with one BatchNorm bn after both convolutions.\n\n"
"layer: the name errors start with. input: (N, C, H, W). residual: an array of\n"
"the output's shape. bn: as dense_layer's; its momentum is the first update's,\n"
"momentum2 the second's. folded: both packed weights hold bn's eval-mode fold\n"
"(bn is then not used). conv1, conv2: as dense_layer's. Returns None, touching\n"
"nothing, when the shapes do not fit.");

static PyObject *py_residual_block(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"layer", "input", "residual", "bn", "momentum2", "folded",
                               "conv1", "conv2", NULL};
    const char *layer;
    PyObject *input_obj, *residual_obj, *bn_obj, *conv1_obj, *conv2_obj;
    double momentum2;
    int folded;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sOOOdpOO", keywords, &layer, &input_obj,
                                     &residual_obj, &bn_obj, &momentum2, &folded, &conv1_obj,
                                     &conv2_obj))
        return NULL;
    bn_holder bn;
    conv_holder conv1, conv2;
    memset(&bn, 0, sizeof bn);
    memset(&conv1, 0, sizeof conv1); memset(&conv2, 0, sizeof conv2);
    PyArrayObject *input = NULL, *residual = NULL;
    PyObject *result = NULL;
    if ((input = sb_glue_as_float_array(input_obj, layer, "input", 1)) == NULL ||
        (residual = sb_glue_as_float_array(residual_obj, layer, "residual", 1)) == NULL ||
        bn_parse(bn_obj, &bn) < 0 || conv_parse(conv1_obj, &conv1) < 0 ||
        conv_parse(conv2_obj, &conv2) < 0)
        goto done;
    sb_tensor t_input, t_residual;
    sb_glue_tensor_of(&t_input, input);
    sb_glue_tensor_of(&t_residual, residual);
    sb_residual_block_args a = {&t_input, &t_residual, bn.state, momentum2, folded,
                                conv1.conv, conv2.conv, sb_get_num_threads()};
    sb_residual_block_plan plan;
    sb_error err;
    if (sb_op_residual_block_plan(&plan, &a, &err) != SB_OK) {
        Py_INCREF(Py_None);
        result = Py_None;
        goto done;
    }
    result = sb_glue_run(residual_run, &plan, &a, sb_glue_new_array(4, plan.out_dims),
                         plan.workspace_bytes, layer);
done:
    bn_release(&bn);
    Py_XDECREF(conv1.weight); Py_XDECREF(conv2.weight);
    Py_XDECREF(input); Py_XDECREF(residual);
    return result;
}

PyMethodDef sb_glue_blocks_methods[] = {
    {"se_attention", (PyCFunction)(void (*)(void))py_se_attention,
     METH_VARARGS | METH_KEYWORDS, se_attention_doc},
    {"dense_layer", (PyCFunction)(void (*)(void))py_dense_layer,
     METH_VARARGS | METH_KEYWORDS, dense_layer_doc},
    {"residual_block", (PyCFunction)(void (*)(void))py_residual_block,
     METH_VARARGS | METH_KEYWORDS, residual_block_doc},
    {NULL, NULL, 0, NULL}};
