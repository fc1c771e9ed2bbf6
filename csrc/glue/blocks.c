/*
 * blocks.c -- the glue of the document's fused blocks: _C.se_attention,
 * _C.dense_layer and _C.residual_block (csrc/ops/se_attention.c,
 * dense_layer.c, residual_block.c).
 *
 * dense_layer and residual_block return None when their operator's plan
 * rejects the arguments (a user changed a layer so that the shapes, or the
 * dtypes, no longer fit): nothing has been touched then, and the Python
 * block runs its layers one by one, which raise torch's errors after
 * torch's side effects.
 *
 * Each call's arrays are converted together under convert.c's dtype rule
 * (float32 and float64 arrays keep their dtype); the operators compute in
 * the input's dtype.
 */
#include "glue.h"

/* A BatchNorm passed as (weight, bias, running_mean, running_var,
 * batch_stats, momentum, eps): its arguments, the arrays it holds and its
 * sb_batch_norm_state. Its parameters (and running statistics, unless
 * they are updated in place) are converted with the call's other arrays:
 * bn_parse, then bn_args' four sb_glue_arg in the call's list, then
 * bn_finish on them. */
typedef struct {
    PyObject *obj[4];         /* borrowed from the tuple */
    int update;               /* running statistics updated in place */
    PyArrayObject *stat[2];   /* then: the caller's own arrays */
    sb_tensor t[4];
    sb_batch_norm_state state;
} bn_holder;

static const char *bn_names[4] = {"weight", "bias", "running_mean", "running_var"};

static void bn_release(bn_holder *h)
{
    Py_CLEAR(h->stat[0]);
    Py_CLEAR(h->stat[1]);
}

static int bn_parse(PyObject *tuple, bn_holder *h)
{
    int batch_stats;
    memset(h, 0, sizeof *h);
    if (!PyArg_ParseTuple(tuple, "OOOOpdd", &h->obj[0], &h->obj[1], &h->obj[2], &h->obj[3],
                          &batch_stats, &h->state.momentum, &h->state.eps))
        return -1;
    h->state.batch_stats = batch_stats;
    h->update = batch_stats && h->obj[2] != Py_None && h->obj[3] != Py_None;
    return 0;
}

/* The four arguments to convert (running statistics updated in place are not). */
static void bn_args(const bn_holder *h, sb_glue_arg *arg)
{
    for (int i = 0; i < 4; i++) {
        PyObject *obj = h->update && i >= 2 ? NULL : SB_GLUE_OPTIONAL(h->obj[i]);
        arg[i] = (sb_glue_arg){obj, "BatchNorm2d", bn_names[i], 0, NULL};
    }
}

/* Whether running statistics updated in place are float64 (the dtype rule). */
static int bn_f64(const bn_holder *h)
{
    return h->update && (sb_glue_is_float64(h->obj[2]) || sb_glue_is_float64(h->obj[3]));
}

static int bn_finish(bn_holder *h, const sb_glue_arg *arg)
{
    PyArrayObject *arr[4] = {arg[0].arr, arg[1].arr, arg[2].arr, arg[3].arr};
    if (h->update) {
        for (int i = 0; i < 2; i++)
            if (sb_glue_running_stat(h->obj[2 + i], "BatchNorm2d", bn_names[2 + i],
                                     &h->stat[i]) < 0)
                return -1;
        arr[2] = h->stat[0];
        arr[3] = h->stat[1];
    }
    const sb_tensor **slot[4] = {&h->state.weight, &h->state.bias, &h->state.running_mean,
                                 &h->state.running_var};
    for (int i = 0; i < 4; i++) {
        *slot[i] = NULL;
        if (arr[i] != NULL) {
            sb_glue_tensor_of(&h->t[i], arr[i]);
            *slot[i] = &h->t[i];
        }
    }
    return 0;
}

/* A convolution passed as (weight, packed, stride, padding, dilation,
 * groups); its weight is converted with the call's other arrays (conv_parse,
 * then its sb_glue_arg in the call's list, then conv_finish). */
typedef struct {
    PyObject *weight_obj, *packed_obj;   /* borrowed from the tuple */
    sb_tensor t;
    sb_block_conv conv;
} conv_holder;

static int conv_parse(PyObject *tuple, conv_holder *h)
{
    Py_ssize_t sh, sw, ph, pw, dh, dw, groups;
    memset(h, 0, sizeof *h);
    if (!PyArg_ParseTuple(tuple, "OO(nn)(nn)(nn)n", &h->weight_obj, &h->packed_obj, &sh, &sw,
                          &ph, &pw, &dh, &dw, &groups))
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

static sb_glue_arg conv_arg(const conv_holder *h)
{
    return (sb_glue_arg){h->weight_obj, "Conv2d", "weight", 0, NULL};
}

static int conv_finish(conv_holder *h, const sb_glue_arg *weight)
{
    sb_glue_tensor_of(&h->t, weight->arr);
    h->conv.weight = &h->t;
    return sb_glue_packed(h->packed_obj, "Conv2d", &h->conv.packed, &h->conv.packed_numel,
                          &h->conv.packed_dtype);
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
"se_attention($module, layer, input, fc1_packed, fc2_packed, hidden, blocked=False,\n"
"             channels=0, residual=None, relu=False)\n--\n\n"
"SEAttention's forward in one call: global average pool -> Linear(C, hidden) ->\n"
"ReLU -> Linear(hidden, C) -> Sigmoid -> scale each channel of the input, in\n"
"float32 or float64: the input's dtype (after conversion) is the result's.\n"
"A float32 or float64 input keeps its dtype; other real input is converted to\n"
"float64 when the packed weights are float64, else to float32.\n\n"
"layer: the name errors start with. input: (N, C, H, W).\n"
"fc1_packed, fc2_packed: the two Linear layers' weights from linear_pack, of the\n"
"input's dtype. hidden: fc1's out_features.\n"
"blocked: input, residual and the result are channel-blocked maps (N, ceil(C/B),\n"
"  H, W, B) of `channels` channels (see conv2d's in_blocked), and the result is\n"
"  relu?(input * gate (+ residual)): SEBottleneck's se, residual addition and\n"
"  ReLU, with the NCHW path's bits; eval-mode plans only.");

static PyObject *py_se_attention(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"layer", "input", "fc1_packed", "fc2_packed", "hidden",
                               "blocked", "channels", "residual", "relu", NULL};
    const char *layer;
    PyObject *input_obj, *fc1_obj, *fc2_obj, *residual_obj = Py_None;
    Py_ssize_t hidden, channels = 0;
    int blocked = 0, relu = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sOOOn|pnOp", keywords, &layer, &input_obj,
                                     &fc1_obj, &fc2_obj, &hidden, &blocked, &channels,
                                     &residual_obj, &relu))
        return NULL;
    const int fmap_ok = blocked ? SB_GLUE_BLOCKED_OK : 1;
    sb_glue_arg arg[2] = {{input_obj, layer, "input", fmap_ok, NULL},
                          {SB_GLUE_OPTIONAL(residual_obj), layer, "residual", fmap_ok, NULL}};
    if (sb_glue_convert(arg, 2, sb_glue_is_float64(fc1_obj) || sb_glue_is_float64(fc2_obj)) < 0)
        return NULL;
    PyArrayObject *input = arg[0].arr, *residual = arg[1].arr;
    sb_tensor t_input, t_residual;
    sb_glue_tensor_of(&t_input, input);
    sb_se_attention_args a;
    memset(&a, 0, sizeof a);
    a.input = &t_input;
    a.hidden = hidden;
    a.num_threads = sb_get_num_threads();
    a.blocked = blocked;
    a.channels = channels;
    a.relu = relu;
    if (residual != NULL) {
        sb_glue_tensor_of(&t_residual, residual);
        a.residual = &t_residual;
    }
    if (sb_glue_is_packed(fc1_obj) && sb_glue_is_packed(fc2_obj)) {
        a.fc1_packed = PyArray_DATA((PyArrayObject *)fc1_obj);
        a.fc1_numel = PyArray_SIZE((PyArrayObject *)fc1_obj);
        a.fc1_dtype = PyArray_TYPE((PyArrayObject *)fc1_obj) == NPY_FLOAT64 ? SB_DTYPE_F64
                                                                            : SB_DTYPE_F32;
        a.fc2_packed = PyArray_DATA((PyArrayObject *)fc2_obj);
        a.fc2_numel = PyArray_SIZE((PyArrayObject *)fc2_obj);
        a.fc2_dtype = PyArray_TYPE((PyArrayObject *)fc2_obj) == NPY_FLOAT64 ? SB_DTYPE_F64
                                                                            : SB_DTYPE_F32;
    }
    sb_se_attention_plan plan;
    sb_error err;
    PyObject *result = NULL;
    if (sb_op_se_attention_plan(&plan, &a, &err) != SB_OK)
        sb_glue_raise(&err, layer);
    else
        result = sb_glue_run(se_run, &plan, &a,
                             sb_glue_new_array(plan.out_ndim, plan.out_dims, t_input.dtype),
                             plan.workspace_bytes, layer);
    Py_DECREF(input);
    Py_XDECREF(residual);
    return result;
}

PyDoc_STRVAR(dense_layer_doc,
"dense_layer($module, layer, input, bn1, bn2, conv1, conv2, out=None, blocked=False)\n--\n\n"
"The document's DenseLayer: conv2(relu(bn2(conv1(relu(bn1(input)))))), each\n"
"BatchNorm + ReLU applied while the next convolution stages its input.\n\n"
"In float32 or float64: the input's dtype (after conversion) is the result's and\n"
"every array's (float32 and float64 arrays keep their dtype; other real input is\n"
"converted to float64 when an array argument is float64, else to float32).\n\n"
"layer: the name errors start with. input: (N, C, H, W).\n"
"bn1, bn2: (weight, bias, running_mean, running_var, batch_stats, momentum, eps);\n"
"  with batch_stats the running statistics (if not None) are updated in place.\n"
"conv1, conv2: (weight, packed, stride, padding, dilation, groups), packed from\n"
"  conv2d_pack or None.\n"
"out: an array of the result's dtype and the output's shape to write (a channel\n"
"  slice of DenseBlock's output). Returns None, touching nothing, when the shapes\n"
"  or dtypes do not fit (the caller then runs the layers one by one).\n"
"blocked: input, out and the result are channel-blocked maps (N, ceil(C/B), H,\n"
"  W, B) (see conv2d's in_blocked), input and out possibly block slices of a\n"
"  larger one; eval mode only.");

static PyObject *py_dense_layer(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"layer", "input", "bn1", "bn2", "conv1", "conv2", "out",
                               "blocked", NULL};
    const char *layer;
    PyObject *input_obj, *bn1_obj, *bn2_obj, *conv1_obj, *conv2_obj, *out_obj = Py_None;
    int blocked = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sOOOOO|Op", keywords, &layer, &input_obj,
                                     &bn1_obj, &bn2_obj, &conv1_obj, &conv2_obj, &out_obj,
                                     &blocked))
        return NULL;
    bn_holder bn1, bn2;
    conv_holder conv1, conv2;
    memset(&bn1, 0, sizeof bn1); memset(&bn2, 0, sizeof bn2);
    memset(&conv1, 0, sizeof conv1); memset(&conv2, 0, sizeof conv2);
    PyObject *result = NULL;
    /* input, bn1's four arrays, bn2's, conv1's weight, conv2's */
    enum { INPUT = 0, BN1 = 1, BN2 = 5, CONV1 = 9, CONV2 = 10, N_ARGS = 11 };
    sb_glue_arg arg[N_ARGS];
    memset(arg, 0, sizeof arg);
    if (bn_parse(bn1_obj, &bn1) < 0 || bn_parse(bn2_obj, &bn2) < 0 ||
        conv_parse(conv1_obj, &conv1) < 0 || conv_parse(conv2_obj, &conv2) < 0)
        return NULL;
    arg[INPUT] = (sb_glue_arg){input_obj, layer, "input", SB_GLUE_BLOCKED_OK, NULL};
    bn_args(&bn1, arg + BN1);
    bn_args(&bn2, arg + BN2);
    arg[CONV1] = conv_arg(&conv1);
    arg[CONV2] = conv_arg(&conv2);
    const int f64 = bn_f64(&bn1) || bn_f64(&bn2) || sb_glue_is_float64(conv1.packed_obj) ||
                    sb_glue_is_float64(conv2.packed_obj);
    if (sb_glue_convert(arg, N_ARGS, f64) < 0)
        return NULL;
    if (bn_finish(&bn1, arg + BN1) < 0 || bn_finish(&bn2, arg + BN2) < 0 ||
        conv_finish(&conv1, arg + CONV1) < 0 || conv_finish(&conv2, arg + CONV2) < 0)
        goto done;
    sb_tensor t_input;
    sb_glue_tensor_of(&t_input, arg[INPUT].arr);
    sb_dense_layer_args a = {&t_input, bn1.state, bn2.state, conv1.conv, conv2.conv,
                             sb_get_num_threads(), blocked};
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
                             ? sb_glue_out_array(out_obj, layer, plan.out_ndim, plan.out_dims,
                                                 SB_GLUE_BLOCKED_OK, NULL, 0, t_input.dtype)
                             : sb_glue_new_array(plan.out_ndim, plan.out_dims, t_input.dtype),
                         plan.workspace_bytes, layer);
done:
    bn_release(&bn1); bn_release(&bn2);
    sb_glue_release(arg, N_ARGS);
    return result;
}

PyDoc_STRVAR(residual_block_doc,
"residual_block($module, layer, input, residual, bn, momentum2, folded, conv1, conv2)\n--\n\n"
"The document's ResidualBlock: relu(bn(conv2(relu(bn(conv1(input))))) + residual)\n"
"with one BatchNorm bn after both convolutions.\n\n"
"Dtypes as dense_layer's (the residual too).\n\n"
"layer: the name errors start with. input: (N, C, H, W). residual: an array of\n"
"the output's shape. bn: as dense_layer's; its momentum is the first update's,\n"
"momentum2 the second's. folded: both packed weights hold bn's eval-mode fold\n"
"(bn is then not used). conv1, conv2: as dense_layer's. Returns None, touching\n"
"nothing, when the shapes or dtypes do not fit.");

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
    PyObject *result = NULL;
    /* input, residual, bn's four arrays, conv1's weight, conv2's */
    enum { INPUT = 0, RESIDUAL = 1, BN = 2, CONV1 = 6, CONV2 = 7, N_ARGS = 8 };
    sb_glue_arg arg[N_ARGS];
    memset(arg, 0, sizeof arg);
    if (bn_parse(bn_obj, &bn) < 0 || conv_parse(conv1_obj, &conv1) < 0 ||
        conv_parse(conv2_obj, &conv2) < 0)
        return NULL;
    arg[INPUT] = (sb_glue_arg){input_obj, layer, "input", 1, NULL};
    arg[RESIDUAL] = (sb_glue_arg){residual_obj, layer, "residual", 1, NULL};
    bn_args(&bn, arg + BN);
    arg[CONV1] = conv_arg(&conv1);
    arg[CONV2] = conv_arg(&conv2);
    const int f64 = bn_f64(&bn) || sb_glue_is_float64(conv1.packed_obj) ||
                    sb_glue_is_float64(conv2.packed_obj);
    if (sb_glue_convert(arg, N_ARGS, f64) < 0)
        return NULL;
    if (bn_finish(&bn, arg + BN) < 0 || conv_finish(&conv1, arg + CONV1) < 0 ||
        conv_finish(&conv2, arg + CONV2) < 0)
        goto done;
    sb_tensor t_input, t_residual;
    sb_glue_tensor_of(&t_input, arg[INPUT].arr);
    sb_glue_tensor_of(&t_residual, arg[RESIDUAL].arr);
    sb_residual_block_args a = {&t_input, &t_residual, bn.state, momentum2, folded,
                                conv1.conv, conv2.conv, sb_get_num_threads()};
    sb_residual_block_plan plan;
    sb_error err;
    if (sb_op_residual_block_plan(&plan, &a, &err) != SB_OK) {
        Py_INCREF(Py_None);
        result = Py_None;
        goto done;
    }
    result = sb_glue_run(residual_run, &plan, &a,
                         sb_glue_new_array(4, plan.out_dims, t_input.dtype), plan.workspace_bytes,
                         layer);
done:
    bn_release(&bn);
    sb_glue_release(arg, N_ARGS);
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
