/*
 * errors.c -- the one table of skipblocks' error messages: each check of
 * the operator tier (sb_error_code) with the exception torch raises for it
 * and torch's wording, prefixed by the skipblocks layer's name.
 *
 * In a message, {0}..{11} print err->value[i], {s0} and {s1} the shapes
 * err->dims[0] and [1] as torch prints sizes ("[1, 3, 100, 100]"), {a} the
 * argument err->arg, {f} err->real as Python's repr of a float; {{ prints {.
 * A value that is an sb_dtype prints as torch names that dtype in its
 * messages: {t0} as a ScalarType ("Float", "Double"), {c0} as a C type
 * ("float", "double"), {T0} as a tensor type ("torch.FloatTensor"), {d0}
 * as NumPy's name ("float32", "float64").
 *
 * The dtype-mismatch messages are torch 2.13's for the same call on tensors
 * of those dtypes (tests/ops/test_float64_ops.py computes each from torch).
 */
#include "glue.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    sb_error_code code;
    int type; /* 0 RuntimeError, 1 ValueError, 2 TypeError, 3 IndexError,
               * 4 NotImplementedError */
    const char *format;
} message;

enum { RUNTIME = 0, VALUE = 1, TYPE = 2, INDEX = 3, NOT_IMPLEMENTED = 4 };

static const message messages[] = {
    {SB_E_DTYPE, TYPE,
     "an array's dtype has no kernel; skipblocks computes in float32 or float64"},
    {SB_E_DTYPE_MISMATCH, RUNTIME,
     "{a} has dtype {d1} but the input has dtype {d0}; every array of a call must have "
     "the input's dtype"},
    {SB_E_NUMEL, RUNTIME, "{a} should contain {0} elements not {1}"},
    {SB_E_PAIRED, VALUE, "{a} go together"},
    {SB_E_PACKED, VALUE, "packed weights do not match the weight shape (repack them)"},
    /* conv2d: torch's ConvUtils.h and Convolution.cpp */
    {SB_E_CONV_INPUT_NDIM, RUNTIME,
     "Expected 3D (unbatched) or 4D (batched) input to conv2d, but got input of size: {s0}"},
    {SB_E_CONV_WEIGHT_NDIM, RUNTIME,
     "weight should be 4-D (out_channels, in_channels/groups, kH, kW), but got weight of "
     "size {s0}"},
    {SB_E_CONV_GROUPS, RUNTIME, "non-positive groups is not supported"},
    {SB_E_CONV_STRIDE, RUNTIME, "non-positive stride is not supported"},
    {SB_E_CONV_PADDING, RUNTIME, "negative padding is not supported"},
    {SB_E_CONV_DILATION, RUNTIME, "dilation should be greater than zero"},
    {SB_E_CONV_DILATION_ZERO, RUNTIME, "dilation should be greater than zero, but got [{0}, {1}]"},
    {SB_E_CONV_KERNEL_SIZE, RUNTIME,
     "kernel size should be greater than zero, but got kernel_height: {0} kernel_width: {1}"},
    {SB_E_CONV_PARAM_MAX, VALUE,
     "stride ({0}, {1}), padding ({2}, {3}), dilation ({4}, {5}) and kernel size ({6}, {7}) "
     "must each be at most {8}"},
    {SB_E_CONV_GROUPS_DIVIDE, RUNTIME,
     "Given groups={0}, expected weight to be divisible by {0} at dimension 0, but got "
     "weight of size [{s0}] instead"},
    {SB_E_CONV_NO_OUT_CHANNELS, RUNTIME,
     "Given groups={0}, expected weight to be at least 1 at dimension 0, but got weight of "
     "size {s0} instead"},
    {SB_E_CONV_CHANNELS, RUNTIME,
     "Given groups={0}, weight of size {s0}, expected input{s1} to have {1} channels, but "
     "got {2} channels instead"},
    {SB_E_CONV_BIAS, RUNTIME,
     "Given weight of size {s0}, expected bias to be 1-dimensional with {0} elements, but "
     "got bias of size {s1} instead"},
    {SB_E_CONV_TOO_SMALL, RUNTIME,
     "Calculated padded input size per channel: ({0} x {1}). Kernel size: ({2} x {3}). "
     "Kernel size can't be greater than actual input size"},
    {SB_E_CONV_EMPTY_PLANE, RUNTIME,
     "Only zero batch or zero channel inputs are supported, but got input shape: {s0}"},
    {SB_E_CONV_RESIDUAL, RUNTIME,
     "the residual has size {s0}, but the convolution's output is [{0}, {1}, {2}, {3}]"},
    {SB_E_CONV_REFERENCE_FUSED, VALUE, "the reference kernel takes no fusion"},
    {SB_E_CONV_FUSED_TOO_LARGE, VALUE,
     "stride ({0}, {1}), padding ({2}, {3}) and dilation ({4}, {5}) make the fused "
     "convolution's workspace too large"},
    {SB_E_CONV_PADDING_EXTRA, VALUE,
     "padding_extra must be non-negative and cannot go with an input transform"},
    {SB_E_CONV_PACK_WEIGHT, RUNTIME,
     "cannot pack a weight of size {s0} with groups={0}: it must be 4-D with out_channels "
     "divisible by groups"},
    {SB_E_CONV_OUT_UNBATCHED, VALUE, "out= needs a 4-D (batched) input"},
    {SB_E_CONV_BIAS_DTYPE, RUNTIME, "Input type ({c0}) and bias type ({c1}) should be the same"},
    {SB_E_CONV_WEIGHT_DTYPE, RUNTIME, "expected scalar type {t0} but found {t1}"},
    {SB_E_CONV_WEIGHT_DTYPE_MKLDNN, RUNTIME,
     "Input type ({T0}) and weight type ({T1}) should be the same or input should be a "
     "MKLDNN tensor and weight is a dense tensor"},
    {SB_E_CONV_BLOCKED, VALUE,
     "{a} of size {s0} is not a channel-blocked map: expected [N, {0}, H, W, {1}]"},
    {SB_E_CONV_BLOCKED_UNSUPPORTED, VALUE,
     "a channel-blocked layout needs groups=1, no padding_extra, the packed path and "
     "C_out tiled as pixel rows"},
    {SB_E_BLOCKED_CHANNELS, VALUE,
     "{a}: a channel-blocked map of {0} channels: expected 0 to {1} channels"},
    {SB_E_BLOCKED_NDIM, VALUE,
     "expected a 4-D (N, C, H, W) map to convert to the channel-blocked layout, got size "
     "{s0}"},
    /* batch_norm: torch.nn.functional.batch_norm and Normalization.cpp */
    {SB_E_BN_EPS_TRAIN, VALUE, "batch_norm eps must be positive during training, but got {f}"},
    {SB_E_BN_EPS, VALUE, "batch_norm eps must be non-negative, but got {f}"},
    {SB_E_BN_INPUT_NDIM, VALUE, "expected at least 2D input (got {0}D input of size {s0})"},
    {SB_E_BN_RUNNING_PAIR, VALUE,
     "running_mean and running_var must either both be None or neither be None"},
    {SB_E_BN_EVAL_NO_MEAN, RUNTIME, "running_mean must be defined in evaluation mode"},
    {SB_E_BN_EVAL_NO_VAR, RUNTIME, "running_var must be defined in evaluation mode"},
    {SB_E_BN_ONE_VALUE, VALUE,
     "Expected more than 1 value per channel when training, got input size torch.Size({s0})"},
    {SB_E_BN_PARAM_DTYPE, RUNTIME,
     "mixed dtype (CPU): expect parameter to have scalar type of Float"},
    {SB_E_BN_MIXED_DTYPE, RUNTIME, "mixed dtype (CPU): all inputs must share same datatype."},
    {SB_E_BN_SCALAR_TYPE, RUNTIME, "expected scalar type {t0} but found {t1}"},
    /* pooling: torch's Pool.h and AdaptiveAveragePooling.cpp */
    {SB_E_POOL_INPUT_NDIM, RUNTIME, "non-empty 3D or 4D (batch mode) tensor expected for input"},
    {SB_E_POOL_EMPTY, RUNTIME,
     "Expected 3D or 4D (batch mode) tensor with optional 0 dim batch size for input, but "
     "got:{s0}"},
    {SB_E_POOL_INT_OVERFLOW, RUNTIME, "value cannot be converted to type int without overflow"},
    {SB_E_POOL_STRIDE_ZERO, RUNTIME, "stride should not be zero"},
    {SB_E_POOL_PAD_NEGATIVE, RUNTIME, "pad must be non-negative, but got pad: {0}"},
    {SB_E_POOL_PAD_EFFECTIVE, RUNTIME,
     "pad should be at most half of effective kernel size, but got pad={0}, kernel_size={1} "
     "and dilation={2}"},
    {SB_E_POOL_KERNEL, RUNTIME,
     "kernel size should be greater than zero, but got kH: {0} kW: {1}"},
    {SB_E_POOL_STRIDE, RUNTIME, "stride should be greater than zero, but got dH: {0} dW: {1}"},
    {SB_E_POOL_DILATION, RUNTIME,
     "dilation should be greater than zero, but got dilationH: {0} dilationW: {1}"},
    {SB_E_POOL_PAD_HALF, RUNTIME,
     "pad should be smaller than or equal to half of kernel size, but got padW = {0}, "
     "padH = {1}, kW = {2}, kH = {3}"},
    {SB_E_POOL_TOO_SMALL, RUNTIME,
     "Given input size: ({0}x{1}x{2}). Calculated output size: ({3}x{4}x{5}). Output size "
     "is too small"},
    {SB_E_ADAPTIVE_NDIM, RUNTIME, "adaptive_avg_pool2d(): Expected 3D or 4D tensor, but got {s0}"},
    {SB_E_ADAPTIVE_EMPTY, RUNTIME,
     "adaptive_avg_pool2d(): Expected input to have non-zero size for non-batch dimensions, "
     "but input has sizes {s0} with dimension {0} being empty"},
    {SB_E_ADAPTIVE_NEGATIVE, RUNTIME,
     "adaptive_avg_pool2d: elements of output_size must be greater than or equal to 0 but "
     "received {{{0}, {1}}"},
    /* element-wise */
    {SB_E_ADD_SHAPES, RUNTIME,
     "the output of the convolutions, of size {s0}, and the residual, of size {s1}, must "
     "have the same size"},
    {SB_E_CHANNEL_SCALE, RUNTIME,
     "channel_scale needs a 4-D input and one scale per (image, channel)"},
    /* linear: torch's addmm */
    {SB_E_LINEAR_WEIGHT_NDIM, RUNTIME,
     "weight should be 2-D (out_features, in_features), but got weight of size {s0}"},
    {SB_E_LINEAR_1D, RUNTIME,
     "both arguments to linear need to be at least 1D, but they are {0}D and {1}D"},
    {SB_E_LINEAR_WEIGHT_T, RUNTIME, "t() expects a tensor with <= 2 dimensions, but self is {0}D"},
    {SB_E_LINEAR_BIAS, RUNTIME,
     "The expanded size of the tensor ({0}) must match the existing size ({1}) at "
     "non-singleton dimension {2}.  Target sizes: [{3}, {4}].  Tensor sizes: {s0}"},
    {SB_E_LINEAR_BIAS_NDIM, RUNTIME,
     "expand({T3}{{{s0}}, size=[{0}, {1}]): the number of sizes provided (2) must "
     "be greater or equal to the number of dimensions in the tensor ({2})"},
    {SB_E_LINEAR_SHAPES, RUNTIME,
     "mat1 and mat2 shapes cannot be multiplied ({0}x{1} and {2}x{3})"},
    {SB_E_LINEAR_PACK_WEIGHT, RUNTIME, "cannot pack a weight of size {s0}: it must be 2-D"},
    {SB_E_LINEAR_MM_DTYPE, RUNTIME,
     "expected m1 and m2 to have the same dtype, but got: {c0} != {c1}"},
    {SB_E_LINEAR_SELF_DTYPE, RUNTIME,
     "self and mat2 must have the same dtype, but got {t0} and {t1}"},
    {SB_E_LINEAR_MAT1_DTYPE, RUNTIME,
     "mat1 and mat2 must have the same dtype, but got {t0} and {t1}"},
    /* SEAttention */
    {SB_E_SE_INPUT_NDIM, VALUE, "expected a 4-D (N, C, H, W) input, got size {s0}"},
    {SB_E_SE_HIDDEN, VALUE, "hidden features must be >= 0, got {0}"},
    {SB_E_SE_PACKED, VALUE,
     "packed fc weights do not match {0} channels and {1} hidden features"},
    /* conv_transpose2d: torch's Convolution.cpp and NaiveConvolutionTranspose2d.cpp */
    {SB_E_CONVT_INPUT_NDIM, RUNTIME,
     "Expected 3D (unbatched) or 4D (batched) input to conv_transpose2d, but got input of "
     "size: {s0}"},
    {SB_E_CONVT_WEIGHT_FEW_DIMS, RUNTIME, "weight should have at least three dimensions"},
    {SB_E_CONVT_WEIGHT_NDIM, RUNTIME,
     "expected stride to be a single integer value or a list of {0} values to match the "
     "convolution dimensions, but got stride=[{1}, {2}]"},
    {SB_E_CONVT_OUTPUT_PADDING_NEG, RUNTIME, "negative output_padding is not supported"},
    {SB_E_CONVT_WEIGHT_GROUPS, RUNTIME,
     "Given groups={0}, expected weight to be at least {0} at dimension 0, but got weight of "
     "size {s0} instead"},
    {SB_E_CONVT_CHANNELS, RUNTIME,
     "Given transposed=1, weight of size {s0}, expected input{s1} to have {0} channels, but "
     "got {1} channels instead"},
    {SB_E_CONVT_BIAS, RUNTIME,
     "Given transposed=1, weight of size {s0}, expected bias to be 1-dimensional with {0} "
     "elements, but got bias of size {s1} instead"},
    {SB_E_CONVT_DILATION_ZERO, RUNTIME,
     "dilation should be greater than zero, but got dilation_height: {0}, dilation_width: {1}"},
    {SB_E_CONVT_OUTPUT_PADDING, RUNTIME,
     "output padding must be smaller than either stride or dilation, but got "
     "output_padding_height: {0} output_padding_width: {1} stride_height: {2} "
     "stride_width: {3} dilation_height: {4} dilation_width: {5}"},
    {SB_E_CONVT_WEIGHT_EMPTY, RUNTIME, "non-empty 2D or 4D weight tensor expected, but got: {s0}"},
    {SB_E_CONVT_TOO_SMALL, RUNTIME,
     "Given input size per channel: ({0} x {1}). Calculated output size per channel: "
     "({2} x {3}). Output size is too small"},
    {SB_E_CONVT_NEGATIVE_SHAPE, RUNTIME, "invalid shape dimension {0} at index {1} of shape {s0}"},
    {SB_E_CONVT_BIAS_DTYPE_MKLDNN, RUNTIME,
     "Input type ({T0}) and bias type ({T1}) should be the same or input should be a "
     "MKLDNN tensor and bias is a dense tensor"},
    {SB_E_CONVT_PACK_WEIGHT, RUNTIME,
     "cannot pack a weight of size {s0} with groups={0}: it must be 4-D with in_channels "
     "divisible by groups and a kernel of at least 1 x 1"},
    /* pad and dropout: torch's PadNd.cpp (_pad_enum, constant_pad_nd), its narrow,
     * its Scalar conversion, and its dropout */
    {SB_E_PAD_ODD, RUNTIME, "Padding length must be divisible by 2"},
    {SB_E_PAD_TOO_LONG, RUNTIME,
     "Padding length should be less than or equal to two times the input dimension but "
     "got padding length {0} and input of dimension {1}"},
    {SB_E_PAD_MODE_VALUE, RUNTIME, "Padding mode \"{a}\" doesn't take in value argument"},
    {SB_E_PAD_NARROW, RUNTIME, "narrow(): length must be non-negative."},
    {SB_E_PAD_NEGATIVE, RUNTIME,
     "The input size {0}, plus negative padding {1} and {2} resulted in a negative output "
     "size, which is invalid. Check dimension {3} of your input."},
    {SB_E_PAD_VALUE_OVERFLOW, RUNTIME,
     "value cannot be converted to type {c0} without overflow"},
    {SB_E_DROPOUT_P, RUNTIME, "dropout probability has to be between 0 and 1, but got {f}"},
    /* avg_pool2d and interpolate: torch's AveragePool2d.cpp, the IndexError of
     * input.size(-3), and UpSample.h's checks */
    {SB_E_AVG_DIVISOR_ZERO, RUNTIME, "divisor must be not zero"},
    {SB_E_AVG_NO_DIMS, INDEX, "Dimension specified as -3 but tensor has no dimensions"},
    {SB_E_AVG_DIM_RANGE, INDEX,
     "Dimension out of range (expected to be in range of [{0}, {1}], but got -3)"},
    {SB_E_AVG_BLOCKED_KERNEL, VALUE,
     "a channel-blocked average pool takes a kernel width of at most {1}, got {0}"},
    {SB_E_AVG_BLOCKED_BN, VALUE,
     "a BatchNorm or ReLU applied before an average pool needs a channel-blocked input, "
     "and the BatchNorm its running statistics (eval mode)"},
    {SB_E_INTERP_SIZES_1D, RUNTIME,
     "Input and output sizes should be greater than 0, but got input (W: {0}) and output "
     "(W: {1})"},
    {SB_E_INTERP_SIZES_2D, RUNTIME,
     "Input and output sizes should be greater than 0, but got input (H: {0}, W: {1}) "
     "output (H: {2}, W: {3})"},
    {SB_E_INTERP_EMPTY, RUNTIME,
     "Non-empty {0}D data tensor expected but got a tensor with sizes {s0}"},
    {SB_E_INTERP_NDIM, NOT_IMPLEMENTED,
     "interpolate has no kernel for a {0}-D input in this mode"},
};

/* Appends printf-formatted text to buf (of cap bytes) at *len. */
static void append(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
    if (*len >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (n > 0)
        *len = *len + (size_t)n < cap ? *len + (size_t)n : cap - 1;
}

/* An sb_dtype value as torch (or NumPy) names it; form: 't', 'c', 'T' or 'd'. */
static const char *dtype_word(int64_t value, char form)
{
    const int f64 = value == SB_DTYPE_F64;
    switch (form) {
    case 't':
        return f64 ? "Double" : "Float";
    case 'c':
        return f64 ? "double" : "float";
    case 'T':
        return f64 ? "torch.DoubleTensor" : "torch.FloatTensor";
    default:
        return f64 ? "float64" : "float32";
    }
}

static void append_shape(char *buf, size_t cap, size_t *len, const sb_error *err, int slot)
{
    append(buf, cap, len, "[");
    for (int i = 0; i < err->ndim[slot]; i++)
        append(buf, cap, len, i ? ", %lld" : "%lld", (long long)err->dims[slot][i]);
    append(buf, cap, len, "]");
}

PyObject *sb_glue_raise(const sb_error *err, const char *layer)
{
    const message *m = NULL;
    for (size_t i = 0; i < sizeof messages / sizeof messages[0]; i++)
        if (messages[i].code == err->code)
            m = &messages[i];
    if (m == NULL) {
        PyErr_Format(PyExc_RuntimeError, "%s: check %d failed (no message for it: a "
                     "skipblocks bug, please report it)", layer, (int)err->code);
        return NULL;
    }
    char buf[4096];
    size_t len = 0;
    buf[0] = '\0';
    append(buf, sizeof buf, &len, "%s: ", err->layer != NULL ? err->layer : layer);
    for (const char *p = m->format; *p != '\0'; p++) {
        if (p[0] == '{' && p[1] == '{') {
            append(buf, sizeof buf, &len, "{");
            p++;
            continue;
        }
        if (*p != '{') {
            append(buf, sizeof buf, &len, "%c", *p);
            continue;
        }
        const char *close = strchr(p, '}');
        if (close == NULL) {
            append(buf, sizeof buf, &len, "%s", p);
            break;
        }
        if (p[1] == 's') {
            append_shape(buf, sizeof buf, &len, err, p[2] == '1');
        } else if (p[1] == 't' || p[1] == 'c' || p[1] == 'T' || p[1] == 'd') {
            int index = atoi(p + 2);
            if (index >= 0 && index < SB_ERROR_VALUES)
                append(buf, sizeof buf, &len, "%s", dtype_word(err->value[index], p[1]));
        } else if (p[1] == 'a') {
            append(buf, sizeof buf, &len, "%s", err->arg != NULL ? err->arg : "argument");
        } else if (p[1] == 'f') {
            PyObject *value = PyFloat_FromDouble(err->real);
            PyObject *text = value ? PyObject_Repr(value) : NULL;
            const char *utf8 = text ? PyUnicode_AsUTF8(text) : NULL;
            append(buf, sizeof buf, &len, "%s", utf8 != NULL ? utf8 : "?");
            Py_XDECREF(text);
            Py_XDECREF(value);
            PyErr_Clear();
        } else {
            int index = atoi(p + 1);
            if (index >= 0 && index < SB_ERROR_VALUES)
                append(buf, sizeof buf, &len, "%lld", (long long)err->value[index]);
        }
        p = close;
    }
    PyObject *types[5] = {PyExc_RuntimeError, PyExc_ValueError, PyExc_TypeError,
                          PyExc_IndexError, PyExc_NotImplementedError};
    PyErr_SetString(types[m->type], buf);
    return NULL;
}

PyObject *sb_glue_raise_status(sb_status status, const char *layer)
{
    PyErr_Format(PyExc_RuntimeError,
                 "%s: kernel failed with status %d (%s); the shapes passed the "
                 "checks, so this is a skipblocks bug: please report it",
                 layer, (int)status, sb_status_string(status));
    return NULL;
}
