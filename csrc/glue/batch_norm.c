/*
 * batch_norm.c -- the glue of the BatchNorm operator: _C.batch_norm.
 * Converts the arguments, calls sb_op_batch_norm_* (csrc/ops/batch_norm.c).
 */
#include "glue.h"

int sb_glue_fold_parse(PyObject *obj, sb_glue_arg arg[4], sb_glue_fold *fold)
{
    static const char *names[4] = {"running_mean", "running_var", "weight", "bias"};
    PyObject *a[4] = {Py_None, Py_None, Py_None, Py_None};
    memset(fold, 0, sizeof *fold);
    fold->given = obj != Py_None;
    if (fold->given && !PyArg_ParseTuple(obj, "OOOOd", &a[0], &a[1], &a[2], &a[3],
                                         &fold->state.eps))
        return -1;
    for (int i = 0; i < 4; i++)
        arg[i] = (sb_glue_arg){SB_GLUE_OPTIONAL(a[i]), "BatchNorm2d", names[i], 0, NULL};
    return 0;
}

const sb_batch_norm_state *sb_glue_fold_state(sb_glue_fold *fold, const sb_glue_arg arg[4])
{
    if (!fold->given)
        return NULL;
    const sb_tensor **slot[4] = {&fold->state.running_mean, &fold->state.running_var,
                                 &fold->state.weight, &fold->state.bias};
    for (int i = 0; i < 4; i++) {
        *slot[i] = NULL;
        if (arg[i].arr != NULL) {
            sb_glue_tensor_of(&fold->t[i], arg[i].arr);
            *slot[i] = &fold->t[i];
        }
    }
    return &fold->state;
}

static sb_status batch_norm_run(const void *plan, const void *args, const sb_tensor *out,
                                void *workspace)
{
    return sb_op_batch_norm_run(plan, args, out, workspace);
}

PyDoc_STRVAR(batch_norm_doc,
"batch_norm($module, layer, input, running_mean, running_var, weight, bias, training,\n"
"           momentum, eps, relu=False)\n"
"--\n\n"
"torch.nn.functional.batch_norm on (N, C, ...) input: statistics per channel\n"
"over every axis but 1, in float32 or float64: the input's dtype (after\n"
"conversion) is the result's, and the other arrays must have it too, else\n"
"torch's error for the mix. float32 and float64 arrays keep their dtype; other\n"
"real input is converted to float64 when an array argument is float64, else to\n"
"float32.\n\n"
"layer: the name errors start with. running_mean, running_var: (C,) arrays or\n"
"None; with training they are updated in place (writable C-contiguous arrays of\n"
"the input's dtype). weight, bias: (C,) or None. training: normalise with the\n"
"batch's statistics.\n"
"momentum: the running-statistics factor (a number). eps: added to the variance.\n"
"relu: apply max(., 0) to the result.");

static PyObject *py_batch_norm(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"layer", "input", "running_mean", "running_var", "weight",
                               "bias", "training", "momentum", "eps", "relu", NULL};
    const char *layer;
    PyObject *input_obj, *rm_obj, *rv_obj, *weight_obj, *bias_obj;
    int training, relu = 0;
    double momentum, eps;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sOOOOOpdd|p", keywords, &layer,
                                     &input_obj, &rm_obj, &rv_obj, &weight_obj, &bias_obj,
                                     &training, &momentum, &eps, &relu))
        return NULL;
    /* updated in place in training: the caller's own arrays (they count for
     * the dtype rule); only read otherwise: any layout or real dtype,
     * converted like the input */
    const int in_place = training && rm_obj != Py_None && rv_obj != Py_None;
    enum { INPUT, RM, RV, WEIGHT, BIAS, N_ARGS };
    sb_glue_arg arg[N_ARGS] = {
        {input_obj, layer, "input", 1, NULL},
        {in_place ? NULL : SB_GLUE_OPTIONAL(rm_obj), layer, "running_mean", 0, NULL},
        {in_place ? NULL : SB_GLUE_OPTIONAL(rv_obj), layer, "running_var", 0, NULL},
        {SB_GLUE_OPTIONAL(weight_obj), layer, "weight", 0, NULL},
        {SB_GLUE_OPTIONAL(bias_obj), layer, "bias", 0, NULL},
    };
    PyArrayObject *rm = NULL, *rv = NULL;
    PyObject *result = NULL;
    sb_error err;

    if (sb_glue_convert(arg, N_ARGS,
                        in_place && (sb_glue_is_float64(rm_obj) || sb_glue_is_float64(rv_obj))) <
        0)
        return NULL;
    PyArrayObject *input = arg[INPUT].arr, *weight = arg[WEIGHT].arr, *bias = arg[BIAS].arr;
    if (in_place) {
        if (sb_glue_running_stat(rm_obj, layer, "running_mean", &rm) < 0 ||
            sb_glue_running_stat(rv_obj, layer, "running_var", &rv) < 0)
            goto done;
    } else {
        rm = arg[RM].arr;
        rv = arg[RV].arr;
        arg[RM].arr = arg[RV].arr = NULL; /* released with rm and rv */
    }

    sb_tensor t_input, t_rm, t_rv, t_weight, t_bias;
    sb_batch_norm_args a;
    memset(&a, 0, sizeof a);
    sb_glue_tensor_of(&t_input, input);
    a.input = &t_input;
    if (rm != NULL) { sb_glue_tensor_of(&t_rm, rm); a.bn.running_mean = &t_rm; }
    if (rv != NULL) { sb_glue_tensor_of(&t_rv, rv); a.bn.running_var = &t_rv; }
    if (weight != NULL) { sb_glue_tensor_of(&t_weight, weight); a.bn.weight = &t_weight; }
    if (bias != NULL) { sb_glue_tensor_of(&t_bias, bias); a.bn.bias = &t_bias; }
    a.bn.batch_stats = training;
    a.bn.momentum = momentum;
    a.bn.eps = eps;
    a.relu = relu;

    sb_batch_norm_plan plan;
    if (sb_op_batch_norm_plan(&plan, &a, &err) != SB_OK) {
        sb_glue_raise(&err, layer);
        goto done;
    }
    result = sb_glue_run(batch_norm_run, &plan, &a,
                         sb_glue_new_array(t_input.ndim, t_input.dims, t_input.dtype),
                         plan.workspace_bytes, layer);
done:
    sb_glue_release(arg, N_ARGS);
    Py_XDECREF(rm); Py_XDECREF(rv);
    return result;
}

PyMethodDef sb_glue_batch_norm_methods[] = {
    {"batch_norm", (PyCFunction)(void (*)(void))py_batch_norm, METH_VARARGS | METH_KEYWORDS,
     batch_norm_doc},
    {NULL, NULL, 0, NULL}};
