/*
 * sb_ops.h -- the operator tier of skipblocks: one entry per torch operation
 * and per fused block, between the kernels (skipblocks.h) and the Python glue
 * (csrc/glue/).
 *
 * An operator takes its arrays as sb_tensor descriptors and its parameters
 * in one arguments struct, and is called twice:
 *
 *   sb_op_<op>_plan(&plan, &args, &err)   validates every argument once,
 *       in torch's order, and sizes the call: the output's shape and the
 *       workspace in bytes. Cheap; reads no element (data pointers may be
 *       NULL). The glue calls it with the GIL held, allocates, then
 *   sb_op_<op>_run(&plan, &args, out, workspace)   does the work: the kernel
 *       sequences (BatchNorm's statistics -> running update -> fold ->
 *       apply), the fusions (BatchNorm folded into a convolution's packed
 *       weights, BatchNorm + ReLU applied while a convolution stages its
 *       input, bias + residual + ReLU as tiles are stored), and the fallbacks
 *       (the direct loop when the packed path's staging cannot be addressed).
 *
 * Nothing here includes Python.h, allocates, prints or aborts. A failed
 * check returns SB_ERR_SHAPE or SB_ERR_ARGUMENT and fills the sb_error: which
 * check failed (sb_error_code), the argument it concerns, and the numbers
 * and shapes its message prints. csrc/glue/errors.c holds the one table that
 * turns each code into torch's exception type and wording.
 *
 * Element types are named by sb_dtype and buffers are void *. Every
 * operator runs in float32 and in float64, from one source: the operator's
 * dtype is its input's, every other floating array of the call (weights,
 * bias, BatchNorm parameters and running statistics, residual, packed
 * weights) must have the same dtype, and SB_DT_CALL calls the kernel of that
 * dtype (sb_<op>_f32 or sb_<op>_f64, skipblocks.h). A mismatch fails with
 * the code whose message is torch's for that operator and mix (conv2d's
 * SB_E_CONV_WEIGHT_DTYPE, batch_norm's SB_E_BN_PARAM_DTYPE, ...; an
 * operator's own arguments, such as packed weights: SB_E_DTYPE_MISMATCH),
 * checked where torch checks it. Any other dtype is SB_E_DTYPE.
 *
 * Workspaces are in bytes, in one block the caller provides (aligned as
 * malloc returns memory); an operator lays its parts out inside it at
 * SB_OP_ALIGN-byte boundaries.
 */
#ifndef SB_OPS_H
#define SB_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "skipblocks.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Tensors and error details                                           */
/* ------------------------------------------------------------------ */

typedef enum {
    SB_DTYPE_F32 = 0,
    SB_DTYPE_F64 = 1
} sb_dtype;

/* Bytes of one element (0 for a value that is no sb_dtype). */
size_t sb_dtype_size(sb_dtype dtype);

/* The kernel `prefix`_f32`suffix` or `prefix`_f64`suffix` of skipblocks.h
 * for `dtype`, called with the arguments that follow; buffers may be passed
 * as void * (they convert to float * / double *). Both kernels of a pair
 * return the same type. An empty suffix names the kernel itself:
 *   SB_DT_CALL(t->dtype, sb_relu, , out, in, n)
 *   SB_DT_CALL(t->dtype, sb_conv2d, _packed_weights_elems, co, ci, kh, kw, g) */
#define SB_DT_CALL(dtype, prefix, suffix, ...)                                   \
    ((dtype) == SB_DTYPE_F64 ? prefix##_f64##suffix(__VA_ARGS__)                  \
                             : prefix##_f32##suffix(__VA_ARGS__))

/* NumPy's limit on dimensions (NPY_MAXDIMS in NumPy 2). */
#define SB_MAX_DIMS 64

/* Workspace parts start at multiples of this many bytes. */
#define SB_OP_ALIGN 64

/* An array: element type, shape, and a layout in which every entry of axis 0
 * is C-contiguous and consecutive entries are batch_stride elements apart
 * (batch_stride >= the product of dims[1:]). A C-contiguous array has
 * batch_stride == product of dims[1:]; a channel slice x[:, c0:c1] of a
 * larger contiguous 4-D map has the larger map's C*H*W (how DenseBlock reads
 * and writes slices of one preallocated output). */
typedef struct {
    void *data;
    sb_dtype dtype;
    int ndim;
    int64_t dims[SB_MAX_DIMS];
    int64_t batch_stride;
} sb_tensor;

/* Number of elements (product of dims). */
int64_t sb_tensor_numel(const sb_tensor *t);

/* Which check failed. Each code is one message; the glue's table
 * (csrc/glue/errors.c) gives its exception type and torch's wording, and
 * says which values and shapes of sb_error it prints, in order. */
typedef enum {
    SB_E_NONE = 0,
    SB_E_DTYPE,                /* an array of a dtype the operator has no kernel for */
    /* A dtype mismatch. v0: the operator's dtype (its input's), v1: the
     * argument's (sb_dtype values); arg: the argument. */
    SB_E_DTYPE_MISMATCH,       /* an operator's own argument (packed weights, residual, ...) */
    SB_E_NUMEL,                /* arg: should contain v0 elements, not v1 */
    SB_E_PAIRED,               /* arg and its partner must be given together */
    SB_E_PACKED,               /* packed weights do not match the weight shape */
    /* conv2d */
    SB_E_CONV_INPUT_NDIM,      /* shape 0: input */
    SB_E_CONV_WEIGHT_NDIM,     /* shape 0: weight */
    SB_E_CONV_GROUPS,
    SB_E_CONV_STRIDE,
    SB_E_CONV_PADDING,
    SB_E_CONV_DILATION,        /* a negative dilation */
    SB_E_CONV_DILATION_ZERO,   /* v0, v1: a zero (and no negative) dilation */
    SB_E_CONV_KERNEL_SIZE,     /* v0, v1: kernel height, width */
    SB_E_CONV_PARAM_MAX,       /* v0..v7: stride, padding, dilation, kernel; v8: max */
    SB_E_CONV_GROUPS_DIVIDE,   /* v0: groups; shape 0: weight */
    SB_E_CONV_NO_OUT_CHANNELS, /* v0: groups; shape 0: weight */
    SB_E_CONV_CHANNELS,        /* v0: groups, v1: expected, v2: got; shapes: weight, input */
    SB_E_CONV_BIAS,            /* v0: C_out; shapes: weight, bias */
    SB_E_CONV_TOO_SMALL,       /* v0, v1: padded input; v2, v3: dilated kernel */
    SB_E_CONV_EMPTY_PLANE,     /* shape 0: input */
    SB_E_CONV_RESIDUAL,        /* shape 0: residual; v0..v3: output size */
    SB_E_CONV_REFERENCE_FUSED, /* the reference kernel takes no fusion */
    SB_E_CONV_FUSED_TOO_LARGE, /* v0..v5: stride, padding, dilation */
    SB_E_CONV_PADDING_EXTRA,   /* asymmetric padding with an input transform, or < 0 */
    SB_E_CONV_PACK_WEIGHT,     /* v0: groups; shape 0: weight */
    SB_E_CONV_OUT_UNBATCHED,   /* out= needs a batched input */
    SB_E_CONV_BIAS_DTYPE,      /* dtype mismatch (v0, v1): the bias, checked first */
    SB_E_CONV_WEIGHT_DTYPE,    /* dtype mismatch (v0, v1): the weight, after the shapes */
    SB_E_CONV_WEIGHT_DTYPE_MKLDNN, /* the same, where torch's float32 call runs oneDNN */
    SB_E_CONV_BLOCKED,         /* arg: not (N, v0, H, W, v1) blocked; shape 0: it */
    SB_E_CONV_BLOCKED_UNSUPPORTED, /* a blocked layout for this convolution */
    SB_E_BLOCKED_CHANNELS,     /* arg: v0 channels, not in [0, v1] */
    SB_E_BLOCKED_NDIM,         /* shape 0: not a 4-D (N, C, H, W) map */
    /* batch_norm */
    SB_E_BN_EPS_TRAIN,         /* real: eps */
    SB_E_BN_EPS,               /* real: eps */
    SB_E_BN_INPUT_NDIM,        /* v0: ndim; shape 0: input */
    SB_E_BN_RUNNING_PAIR,
    SB_E_BN_EVAL_NO_MEAN,
    SB_E_BN_EVAL_NO_VAR,
    SB_E_BN_ONE_VALUE,         /* shape 0: input */
    SB_E_BN_PARAM_DTYPE,       /* dtype mismatch (v0, v1): the first parameter given
                                * differs from the input, and a parameter is not float32 */
    SB_E_BN_MIXED_DTYPE,       /* dtype mismatch (v0, v1): float32 parameters, float64 input */
    SB_E_BN_SCALAR_TYPE,       /* dtype mismatch (v0, v1): a later parameter */
    /* pooling */
    SB_E_POOL_INPUT_NDIM,
    SB_E_POOL_EMPTY,           /* shape 0: input */
    SB_E_POOL_INT_OVERFLOW,    /* v0..v7: kernel, stride, padding, dilation */
    SB_E_POOL_STRIDE_ZERO,
    SB_E_POOL_PAD_NEGATIVE,    /* v0: pad */
    SB_E_POOL_PAD_EFFECTIVE,   /* v0: pad, v1: kernel, v2: dilation */
    SB_E_POOL_KERNEL,          /* v0, v1: kH, kW */
    SB_E_POOL_STRIDE,          /* v0, v1: dH, dW */
    SB_E_POOL_DILATION,        /* v0, v1 */
    SB_E_POOL_PAD_HALF,        /* v0: padW, v1: padH, v2: kW, v3: kH */
    SB_E_POOL_TOO_SMALL,       /* v0..v2: input C, H, W; v3..v5: output C, H, W */
    SB_E_ADAPTIVE_NDIM,        /* shape 0: input */
    SB_E_ADAPTIVE_EMPTY,       /* shape 0: input; v0: the empty dimension */
    SB_E_ADAPTIVE_NEGATIVE,    /* v0, v1: output size */
    /* element-wise */
    SB_E_ADD_SHAPES,           /* shapes: the two operands */
    SB_E_CHANNEL_SCALE,
    /* linear */
    SB_E_LINEAR_WEIGHT_NDIM,   /* shape 0: weight */
    SB_E_LINEAR_1D,            /* v0, v1: input and weight ndim */
    SB_E_LINEAR_WEIGHT_T,      /* v0: weight ndim (> 2) */
    SB_E_LINEAR_BIAS,          /* v0: target size, v1: bias size, v2: the dimension,
                                * v3, v4: rows, out_features; shape 0: bias */
    SB_E_LINEAR_BIAS_NDIM,     /* v0, v1: rows, out_features; v2: bias ndim; v3: its dtype;
                                * shape 0: bias */
    SB_E_LINEAR_SHAPES,        /* v0..v3: rows x in, in_features x out_features */
    SB_E_LINEAR_PACK_WEIGHT,   /* shape 0: weight */
    SB_E_LINEAR_MM_DTYPE,      /* dtype mismatch (v0, v1): weight, no bias (torch's mm) */
    SB_E_LINEAR_SELF_DTYPE,    /* dtype mismatch (v0: bias, v1: weight; torch's addmm) */
    SB_E_LINEAR_MAT1_DTYPE,    /* dtype mismatch (v0: input, v1: weight; torch's addmm) */
    /* SEAttention */
    SB_E_SE_INPUT_NDIM,        /* shape 0: input */
    SB_E_SE_HIDDEN,            /* v0: hidden */
    SB_E_SE_PACKED,            /* v0: channels, v1: hidden */
    /* conv_transpose2d: torch's Convolution.cpp (check_shape_forward, transposed)
     * and NaiveConvolutionTranspose2d.cpp (slow_conv_transpose2d_shape_check) */
    SB_E_CONVT_INPUT_NDIM,     /* shape 0: input */
    SB_E_CONVT_WEIGHT_FEW_DIMS, /* a weight of fewer than 3 dimensions */
    SB_E_CONVT_WEIGHT_NDIM,    /* v0: weight ndim - 2; v1, v2: stride */
    SB_E_CONVT_OUTPUT_PADDING_NEG,
    SB_E_CONVT_WEIGHT_GROUPS,  /* v0: groups; shape 0: weight */
    SB_E_CONVT_CHANNELS,       /* v0: expected, v1: got; shapes: weight, input (batched) */
    SB_E_CONVT_BIAS,           /* v0: C_out; shapes: weight, bias */
    SB_E_CONVT_DILATION_ZERO,  /* v0, v1: dilation */
    SB_E_CONVT_OUTPUT_PADDING, /* v0..v5: output_padding, stride, dilation */
    SB_E_CONVT_WEIGHT_EMPTY,   /* shape 0: weight */
    SB_E_CONVT_TOO_SMALL,      /* v0, v1: input size; v2, v3: output size */
    SB_E_CONVT_NEGATIVE_SHAPE, /* v0: the size, v1: its index; shape 0: the output */
    SB_E_CONVT_BIAS_DTYPE_MKLDNN, /* dtype mismatch (v0, v1): the bias, where torch runs oneDNN */
    SB_E_CONVT_PACK_WEIGHT,    /* v0: groups; shape 0: weight */
    /* pad and dropout */
    SB_E_PAD_ODD,              /* the pad sequence has an odd length */
    SB_E_PAD_TOO_LONG,         /* v0: pad length, v1: input ndim */
    SB_E_PAD_MODE_VALUE,       /* arg: the mode, which takes no value */
    SB_E_PAD_NARROW,           /* a negative pad crops more than the dim holds */
    SB_E_PAD_NEGATIVE,         /* v0: input size, v1, v2: the pads, v3: the dim */
    SB_E_PAD_VALUE_OVERFLOW,   /* v0: the input's dtype, which cannot hold the value */
    SB_E_DROPOUT_P,            /* real: p, outside [0, 1] (NaN) */
    /* avg_pool2d and interpolate */
    SB_E_AVG_DIVISOR_ZERO,     /* divisor_override == 0 */
    SB_E_AVG_NO_DIMS,          /* a 0-d input (IndexError) */
    SB_E_AVG_DIM_RANGE,        /* v0: -ndim, v1: ndim - 1 (IndexError, input.size(-3)) */
    SB_E_AVG_BLOCKED_KERNEL,   /* v0: the kernel width, v1: the widest a blocked pool takes */
    SB_E_AVG_BLOCKED_BN,       /* a BatchNorm or ReLU with an NCHW input, or a BatchNorm
                                * without running statistics or on batch statistics */
    SB_E_INTERP_SIZES_1D,      /* v0: input W, v1: output W */
    SB_E_INTERP_SIZES_2D,      /* v0, v1: input H, W; v2, v3: output H, W */
    SB_E_INTERP_EMPTY,         /* v0: ndim; shape 0: input */
    SB_E_INTERP_NDIM,          /* v0: ndim (a rank the operator has no kernel for) */
    SB_E_COUNT
} sb_error_code;

#define SB_ERROR_VALUES 12

typedef struct {
    sb_error_code code;
    const char *arg;   /* the argument concerned ("weight", "running_mean", ...) or NULL */
    const char *layer; /* set by a fused block's operator: the part that failed
                        * ("Conv2d", "BatchNorm2d"); NULL: the caller's layer */
    int64_t value[SB_ERROR_VALUES];
    double real;
    int ndim[2];
    int64_t dims[2][SB_MAX_DIMS];
} sb_error;

/* ------------------------------------------------------------------ */
/* Conv2d -- torch.nn.functional.conv2d, and its fusions               */
/* ------------------------------------------------------------------ */

typedef struct {
    const sb_tensor *input;   /* (N, C_in, H, W) or (C_in, H, W) */
    const sb_tensor *weight;  /* (C_out, C_in/G, KH, KW) */
    const sb_tensor *bias;    /* (C_out) or NULL */
    int64_t stride[2], padding[2], dilation[2], groups;
    /* Zeros added after the input (bottom, right) besides `padding`: torch's
     * padding='same' puts the odd one of an even total there. */
    int64_t padding_extra[2];
    /* Weights packed by sb_op_conv2d_pack_run (the layer's cache; they hold the
     * bias, and may hold a folded BatchNorm), packed_numel elements of
     * packed_dtype (the input's); NULL: weight and bias are packed for this
     * call, in the workspace. */
    const void *packed;
    int64_t packed_numel;
    sb_dtype packed_dtype;
    /* Fusion (see sb_conv2d_fusion): in_scale/in_shift (C_in each, or NULL)
     * and in_relu transform the input; residual (the output's shape, or
     * NULL) and out_relu form the epilogue. */
    const sb_tensor *in_scale, *in_shift;
    int in_relu;
    const sb_tensor *residual;
    int out_relu;
    int reference;   /* the direct loop sb_conv2d_<dt>__ref, for the C tests; no fusion */
    int num_threads;
    /* Channel-blocked layouts (sb_conv2d_fusion; where
     * sb_conv2d_<dt>_blocked_ok holds, no padding_extra): in_blocked, the
     * input is (N, ceil(C_in/B), H, W, B), B = SB_CONV_NR of the dtype;
     * out_blocked, the output and the residual are (N, ceil(C_out/B), OH,
     * OW, B). */
    int in_blocked, out_blocked;
} sb_conv2d_args;

typedef struct {
    int out_ndim;        /* 3 for an unbatched input, 5 for a blocked output, else 4 */
    int64_t out_dims[5];
    size_t workspace_bytes;
    /* the operator's own */
    int direct;
    sb_conv2d_params params;
    sb_fmap in_map, out_map, staged_map;
    size_t packed_offset, staged_offset, kernel_offset;
    int64_t packed_numel;
} sb_conv2d_plan;

sb_status sb_op_conv2d_plan(sb_conv2d_plan *plan, const sb_conv2d_args *args, sb_error *err);
/* Whether a convolution of dtype dt with these output channels and groups
 * takes in_blocked / out_blocked. */
int sb_op_conv2d_blocked_ok(int64_t c_out, int64_t groups, sb_dtype dt);
/* out: a tensor of plan->out_dims (an fmap when 4-D), not overlapping the input. */
sb_status sb_op_conv2d_run(const sb_conv2d_plan *plan, const sb_conv2d_args *args,
                           const sb_tensor *out, void *workspace);

/* A BatchNorm as the operators see it: its parameters (weight, bias: C
 * elements or NULL), its running statistics (NULL: none), whether it
 * normalises with the batch's statistics, and -- when it does and running
 * statistics are given -- the momentum they are updated with (the layer
 * turns momentum=None into its cumulative factor). */
typedef struct {
    const sb_tensor *weight, *bias;
    const sb_tensor *running_mean, *running_var; /* written when batch_stats */
    int batch_stats;
    double momentum, eps;
} sb_batch_norm_state;

typedef struct {
    const sb_tensor *weight, *bias;   /* torch's layout; bias may be NULL */
    int64_t groups;
    /* An eval-mode BatchNorm after the convolution, folded into the packed
     * weights (NULL: none): weight' = weight * scale, bias' = bias * scale +
     * shift, with scale and shift as sb_batch_norm_fold_<dt> computes them
     * from its running statistics. Every array has the weight's dtype, and
     * so do the packed weights. */
    const sb_batch_norm_state *fold;
} sb_conv2d_pack_args;

typedef struct {
    int64_t packed_numel;
    size_t workspace_bytes;
} sb_conv2d_pack_plan;

sb_status sb_op_conv2d_pack_plan(sb_conv2d_pack_plan *plan, const sb_conv2d_pack_args *args,
                                 sb_error *err);
sb_status sb_op_conv2d_pack_run(const sb_conv2d_pack_plan *plan,
                                const sb_conv2d_pack_args *args, void *packed,
                                void *workspace);

/* ------------------------------------------------------------------ */
/* BatchNorm -- torch.nn.functional.batch_norm on (N, C, ...)           */
/* ------------------------------------------------------------------ */

typedef struct {
    const sb_tensor *input;         /* (N, C, ...) */
    sb_batch_norm_state bn;         /* batch_stats: torch's `training` */
    int relu;                       /* relu(bn(x)) */
} sb_batch_norm_args;

typedef struct {
    size_t workspace_bytes;
    int64_t channels, count;  /* C, and the values per channel (N * spatial) */
    sb_fmap in_map;
} sb_batch_norm_plan;

sb_status sb_op_batch_norm_plan(sb_batch_norm_plan *plan, const sb_batch_norm_args *args,
                                sb_error *err);
/* out: the input's shape; may be the input itself (in place). */
sb_status sb_op_batch_norm_run(const sb_batch_norm_plan *plan, const sb_batch_norm_args *args,
                               const sb_tensor *out, void *workspace);

/* ------------------------------------------------------------------ */
/* Channel-blocked layout (sb_conv2d_fusion): the copies in and out     */
/* ------------------------------------------------------------------ */

typedef struct {
    /* to_blocked: input (N, C, H, W), the result (N, ceil(C/B), H, W, B);
     * else input (N, ceil(channels/B), H, W, B), the result (N, channels,
     * H, W) */
    const sb_tensor *input;
    int to_blocked;
    int64_t channels;
} sb_layout_args;

typedef struct {
    int out_ndim;
    int64_t out_dims[5];
    size_t workspace_bytes;
    sb_fmap map; /* the NCHW map (its NCHW batch stride) */
} sb_layout_plan;

sb_status sb_op_layout_plan(sb_layout_plan *plan, const sb_layout_args *args, sb_error *err);
sb_status sb_op_layout_run(const sb_layout_plan *plan, const sb_layout_args *args,
                           const sb_tensor *out, void *workspace);

/* ------------------------------------------------------------------ */
/* Pooling                                                             */
/* ------------------------------------------------------------------ */

typedef struct {
    const sb_tensor *input;   /* (N, C, H, W) or (C, H, W) */
    int64_t kernel[2], stride[2], padding[2], dilation[2];
    int ceil_mode;
    /* nonzero: the input is a channel-blocked map of this many channels,
     * (N, ceil(C/B), H, W, B) (sb_conv2d_args), and so is the output */
    int64_t blocked_channels;
} sb_max_pool2d_args;

typedef struct {
    int out_ndim;
    int64_t out_dims[5];
    size_t workspace_bytes;
    sb_fmap in_map, out_map;
    sb_pool2d_params params;
} sb_pool2d_plan;

sb_status sb_op_max_pool2d_plan(sb_pool2d_plan *plan, const sb_max_pool2d_args *args,
                                sb_error *err);
/* (a blocked input: args->input may be the 5-D array; the plan's maps are
 * the logical ones) */
sb_status sb_op_max_pool2d_run(const sb_pool2d_plan *plan, const sb_max_pool2d_args *args,
                               const sb_tensor *out, void *workspace);

typedef struct {
    const sb_tensor *input;   /* (N, C, H, W) or (C, H, W) */
    int64_t output_size[2];
} sb_adaptive_avg_pool2d_args;

sb_status sb_op_adaptive_avg_pool2d_plan(sb_pool2d_plan *plan,
                                         const sb_adaptive_avg_pool2d_args *args,
                                         sb_error *err);
sb_status sb_op_adaptive_avg_pool2d_run(const sb_pool2d_plan *plan,
                                        const sb_adaptive_avg_pool2d_args *args,
                                        const sb_tensor *out, void *workspace);

/* ------------------------------------------------------------------ */
/* Element-wise                                                        */
/* ------------------------------------------------------------------ */

typedef enum { SB_UNARY_RELU = 0, SB_UNARY_SIGMOID = 1 } sb_unary_kind;

typedef struct {
    const sb_tensor *input;   /* any shape, C-contiguous */
    sb_unary_kind kind;
} sb_unary_args;

typedef struct {
    size_t workspace_bytes;
    int64_t numel;
} sb_elementwise_plan;

sb_status sb_op_unary_plan(sb_elementwise_plan *plan, const sb_unary_args *args,
                           sb_error *err);
/* out: the input's shape, C-contiguous; may be the input (in place). */
sb_status sb_op_unary_run(const sb_elementwise_plan *plan, const sb_unary_args *args,
                          const sb_tensor *out, void *workspace);

/* relu(a + b) for a and b of one shape (ResidualBlock's tail). */
typedef struct {
    const sb_tensor *a, *b;
} sb_add_relu_args;

sb_status sb_op_add_relu_plan(sb_elementwise_plan *plan, const sb_add_relu_args *args,
                              sb_error *err);
sb_status sb_op_add_relu_run(const sb_elementwise_plan *plan, const sb_add_relu_args *args,
                             const sb_tensor *out, void *workspace);

/* out[n, c] = input[n, c] * scale[n * C + c] (SEAttention's x * y). */
typedef struct {
    const sb_tensor *input;   /* (N, C, H, W) */
    const sb_tensor *scale;   /* N * C elements */
} sb_channel_scale_args;

sb_status sb_op_channel_scale_plan(sb_elementwise_plan *plan,
                                   const sb_channel_scale_args *args, sb_error *err);
sb_status sb_op_channel_scale_run(const sb_elementwise_plan *plan,
                                  const sb_channel_scale_args *args, const sb_tensor *out,
                                  void *workspace);

/* ------------------------------------------------------------------ */
/* Linear -- torch.nn.functional.linear                                 */
/* ------------------------------------------------------------------ */

typedef struct {
    const sb_tensor *input;    /* (..., in_features), C-contiguous */
    const sb_tensor *weight;   /* (out_features, in_features) */
    const sb_tensor *bias;     /* NULL, or what torch expands to (rows, out_features);
                                * C-contiguous; of the input's dtype, except where torch
                                * adds it after the product (bias_after) */
    const void *packed;        /* sb_op_linear_pack_run's output (holds a vector bias), or NULL */
    int64_t packed_numel;
    sb_dtype packed_dtype;     /* the packed weights' (the input's) */
    int reference;             /* the reference loop sb_linear_<dt>__ref, for the C tests */
    int num_threads;
} sb_linear_args;

/* How a bias torch expands to (rows, out_features) is applied: a vector of
 * out_features (any leading 1s), one value for all, or a value per row
 * (added after the product). */
typedef enum {
    SB_LINEAR_BIAS_NONE = 0,
    SB_LINEAR_BIAS_VECTOR,
    SB_LINEAR_BIAS_SCALAR,
    SB_LINEAR_BIAS_ROWS
} sb_linear_bias_mode;

typedef struct {
    int out_ndim;
    int64_t out_dims[SB_MAX_DIMS];
    size_t workspace_bytes;
    int64_t rows, in_features, out_features;
    sb_linear_bias_mode bias_mode;
    /* A bias of another dtype than the input's, which torch adds to the
     * product after its matmul (the add_ path): added after the product,
     * each sum in double rounded once to the input's dtype -- a 0-d bias,
     * a scalar to torch's type promotion, rounded to the input's dtype
     * first. */
    int bias_after;
    size_t bias_offset;
} sb_linear_plan;

sb_status sb_op_linear_plan(sb_linear_plan *plan, const sb_linear_args *args, sb_error *err);
sb_status sb_op_linear_run(const sb_linear_plan *plan, const sb_linear_args *args,
                           const sb_tensor *out, void *workspace);

typedef struct {
    const sb_tensor *weight, *bias;
} sb_linear_pack_args;

typedef struct {
    int64_t packed_numel;
    size_t workspace_bytes;
} sb_linear_pack_plan;

sb_status sb_op_linear_pack_plan(sb_linear_pack_plan *plan, const sb_linear_pack_args *args,
                                 sb_error *err);
sb_status sb_op_linear_pack_run(const sb_linear_pack_plan *plan,
                                const sb_linear_pack_args *args, void *packed,
                                void *workspace);

/* ------------------------------------------------------------------ */
/* The document's blocks, fused                                        */
/* ------------------------------------------------------------------ */

/* SEAttention: global average pool -> Linear(C, hidden) -> ReLU ->
 * Linear(hidden, C) -> Sigmoid -> scale each channel of the input, on the
 * two Linear layers' packed weights (sb_op_linear_pack_run). */
typedef struct {
    const sb_tensor *input;   /* (N, C, H, W), or blocked (below) */
    const void *fc1_packed, *fc2_packed;
    int64_t fc1_numel, fc2_numel;
    sb_dtype fc1_dtype, fc2_dtype;   /* the input's */
    int64_t hidden;
    int num_threads;
    /* blocked (eval-mode plans): input, residual and the result are
     * channel-blocked maps (N, ceil(C/B), H, W, B) of `channels` channels,
     * and the result is relu?(input * gate (+ residual)) -- SEBottleneck's
     * se followed by its residual addition and ReLU. */
    int blocked;
    int64_t channels;
    const sb_tensor *residual; /* NULL: none (blocked only) */
    int relu;                  /* blocked only */
} sb_se_attention_args;

typedef struct {
    size_t workspace_bytes;
    int64_t n, c, hidden;
    sb_fmap in_map, residual_map; /* logical maps (blocked: blocked strides) */
    size_t gate_offset, hidden_offset, linear_offset;
    int out_ndim;
    int64_t out_dims[5];
} sb_se_attention_plan;

sb_status sb_op_se_attention_plan(sb_se_attention_plan *plan,
                                  const sb_se_attention_args *args, sb_error *err);
sb_status sb_op_se_attention_run(const sb_se_attention_plan *plan,
                                 const sb_se_attention_args *args, const sb_tensor *out,
                                 void *workspace);

/* Reference SEAttention on unpacked weights w1 (hidden x C), w2 (C x hidden),
 * the plainest loops, for tests: sb_se_attention_f32__ref on float buffers,
 * sb_se_attention_f64__ref on double buffers (one source,
 * csrc/ops/se_attention_ref.inc). workspace: (2 * N * C + N * hidden)
 * elements. */
#define SB_SE_ATTENTION_REF_DECLARE(T, dt)                                         \
    sb_status sb_se_attention_##dt##__ref(T *out_data, const sb_fmap *out,         \
                                          const T *in_data, const sb_fmap *in,     \
                                          const T *w1, const T *w2, int64_t hidden, \
                                          T *workspace)
SB_SE_ATTENTION_REF_DECLARE(float, f32);
SB_SE_ATTENTION_REF_DECLARE(double, f64);
#undef SB_SE_ATTENTION_REF_DECLARE

/* A convolution inside a fused block: its weight (for the shapes), packed
 * weights and parameters, as in sb_conv2d_args. */
typedef struct {
    const sb_tensor *weight;
    const void *packed;
    int64_t packed_numel;
    sb_dtype packed_dtype;
    int64_t stride[2], padding[2], dilation[2], groups;
} sb_block_conv;

/* DenseLayer: out = conv2(relu(bn2(conv1(relu(bn1(x)))))), each BatchNorm +
 * ReLU applied while the next convolution stages its input; bn1's and bn2's
 * running statistics updated (batch_stats) as torch's forward updates them. */
typedef struct {
    const sb_tensor *input;   /* (N, C, H, W) */
    sb_batch_norm_state bn1, bn2;
    sb_block_conv conv1, conv2;
    int num_threads;
    /* channel-blocked input, conv1 output and output (sb_conv2d_args'
     * in_blocked and out_blocked; eval mode: no batch statistics) */
    int blocked;
} sb_dense_layer_args;

typedef struct {
    int out_ndim;        /* 4, or 5 when blocked */
    int64_t out_dims[5];
    size_t workspace_bytes;
    sb_batch_norm_plan bn1, bn2;
    sb_conv2d_plan conv1, conv2;
    sb_fmap mid_map;
    size_t scale1_offset, scale2_offset, mid_offset, conv_offset;
} sb_dense_layer_plan;

sb_status sb_op_dense_layer_plan(sb_dense_layer_plan *plan, const sb_dense_layer_args *args,
                                 sb_error *err);
sb_status sb_op_dense_layer_run(const sb_dense_layer_plan *plan,
                                const sb_dense_layer_args *args, const sb_tensor *out,
                                void *workspace);

/* The document's ResidualBlock: out = relu(bn(conv2(relu(bn(conv1(x))))) +
 * residual), one BatchNorm `bn` after both convolutions.
 * folded (eval mode with running statistics): both packed weights hold bn's
 * fold; conv1's epilogue applies the ReLU, conv2's adds the residual and
 * applies the ReLU. Otherwise bn normalises with batch statistics: conv1,
 * then bn's statistics of its output (running statistics updated with
 * momentum1) applied with the ReLU while conv2 stages its input, then bn's
 * statistics of conv2's output (momentum2), the residual and the ReLU in one
 * pass -- torch's order of updates. */
typedef struct {
    const sb_tensor *input;      /* (N, C, H, W) */
    const sb_tensor *residual;   /* the output's shape */
    sb_batch_norm_state bn;      /* bn.momentum: the first update's */
    double momentum2;            /* the second update's */
    int folded;
    sb_block_conv conv1, conv2;
    int num_threads;
} sb_residual_block_args;

typedef struct {
    int64_t out_dims[4];
    size_t workspace_bytes;
    sb_batch_norm_plan bn1, bn2;
    sb_conv2d_plan conv1, conv2;
    sb_fmap mid_map;
    int64_t bn_channels;
    size_t scale_offset, mid_offset, conv_offset;
} sb_residual_block_plan;

sb_status sb_op_residual_block_plan(sb_residual_block_plan *plan,
                                    const sb_residual_block_args *args, sb_error *err);
sb_status sb_op_residual_block_run(const sb_residual_block_plan *plan,
                                   const sb_residual_block_args *args, const sb_tensor *out,
                                   void *workspace);

/* ------------------------------------------------------------------ */
/* conv_transpose2d -- torch.nn.functional.conv_transpose2d (zeros)     */
/* ------------------------------------------------------------------ */

/* A 1x1 convolution of the input with the weight rearranged
 * (sb_conv_transpose2d_<dt>_gemm_weights) on the packed GEMM path, into a
 * column buffer (N, C_out*KH*KW, H, W) in the workspace, then the gather
 * sb_conv_transpose2d_<dt>_col2im adds each output's taps and the bias. */
typedef struct {
    const sb_tensor *input;   /* (N, C_in, H, W) or (C_in, H, W) */
    const sb_tensor *weight;  /* (C_in, C_out/G, KH, KW): torch's layout */
    const sb_tensor *bias;    /* (C_out) or NULL; another dtype than the input's is
                               * added after the sum, in double, as torch's slow path
                               * does (where torch accepts it) */
    int64_t stride[2], padding[2], output_padding[2], dilation[2], groups;
    /* the 1x1 convolution's weights packed by sb_op_conv_transpose2d_pack_run
     * (the layer's cache; no bias), packed_numel elements of packed_dtype
     * (the input's); NULL: packed for this call, in the workspace */
    const void *packed;
    int64_t packed_numel;
    sb_dtype packed_dtype;
    int reference;   /* the direct loop sb_conv_transpose2d_<dt>__ref, for the C tests */
    int num_threads;
} sb_conv_transpose2d_args;

typedef struct {
    int out_ndim;        /* 3 for an unbatched input, else 4 */
    int64_t out_dims[4];
    size_t workspace_bytes;
    /* the operator's own */
    int bias_after;
    sb_conv2d_params params, gemm_params;
    sb_fmap in_map, out_map, col_map;
    size_t packed_offset, rearranged_offset, col_offset, kernel_offset;
    int64_t packed_numel;
} sb_conv_transpose2d_plan;

sb_status sb_op_conv_transpose2d_plan(sb_conv_transpose2d_plan *plan,
                                      const sb_conv_transpose2d_args *args, sb_error *err);
/* out: a C-contiguous tensor of plan->out_dims, not overlapping the input. */
sb_status sb_op_conv_transpose2d_run(const sb_conv_transpose2d_plan *plan,
                                     const sb_conv_transpose2d_args *args,
                                     const sb_tensor *out, void *workspace);

typedef struct {
    const sb_tensor *weight;  /* (C_in, C_out/G, KH, KW) */
    int64_t groups;
} sb_conv_transpose2d_pack_args;

typedef struct {
    int64_t packed_numel;
    size_t workspace_bytes;
} sb_conv_transpose2d_pack_plan;

sb_status sb_op_conv_transpose2d_pack_plan(sb_conv_transpose2d_pack_plan *plan,
                                           const sb_conv_transpose2d_pack_args *args,
                                           sb_error *err);
sb_status sb_op_conv_transpose2d_pack_run(const sb_conv_transpose2d_pack_plan *plan,
                                          const sb_conv_transpose2d_pack_args *args,
                                          void *packed, void *workspace);
/* pad and dropout                                                     */
/* ------------------------------------------------------------------ */

/* torch.nn.functional.pad's modes (torch's padding_mode). */
typedef enum {
    SB_PAD_CONSTANT = 0,
    SB_PAD_REFLECT = 1,
    SB_PAD_REPLICATE = 2,
    SB_PAD_CIRCULAR = 3
} sb_pad_mode;

typedef struct {
    const sb_tensor *input;   /* any shape (0-d included), C-contiguous */
    const int64_t *pad;       /* torch's pad: (before, after) pairs, last dim first */
    int64_t npad;             /* its length (pad is read only when it is valid) */
    sb_pad_mode mode;
    int has_value;            /* value was given (torch's value=None: 0) */
    double value;
} sb_pad_args;

typedef struct {
    int out_ndim;
    int64_t out_dims[SB_MAX_DIMS];
    size_t workspace_bytes;
    /* 0 for a mode other than constant that passed torch's argument checks:
     * skipblocks has no kernel for it (the caller raises NotImplementedError). */
    int supported;
    /* the kernel's view: unpadded dims merged into the dim outside them */
    int ndim;
    int64_t in_dims[SB_MAX_DIMS], kernel_out_dims[SB_MAX_DIMS], before[SB_MAX_DIMS];
} sb_pad_plan;

/* torch's checks, in its order: the pad's length (even, at most 2 * ndim),
 * for another mode than constant a value other than 0; then constant_pad_nd's:
 * each negative pad's crop (torch's narrow), each output size, and -- when
 * some pad is positive, so the value is written -- the value's range in the
 * input's dtype. */
sb_status sb_op_pad_plan(sb_pad_plan *plan, const sb_pad_args *args, sb_error *err);
/* out: plan->out_dims, C-contiguous, not overlapping the input. */
sb_status sb_op_pad_run(const sb_pad_plan *plan, const sb_pad_args *args, const sb_tensor *out,
                        void *workspace);

typedef struct {
    /* any shape, C-contiguous; NULL: the plan checks p and says whether the
     * call is the identity for every input, before the input is converted */
    const sb_tensor *input;
    double p;
    int train;
    uint64_t seed;            /* the mask's (sb_dropout_<dt>) */
} sb_dropout_args;

typedef struct {
    size_t workspace_bytes;
    /* torch returns its input itself: not training, p == 0, or no element */
    int identity;
    int64_t numel;
} sb_dropout_plan;

sb_status sb_op_dropout_plan(sb_dropout_plan *plan, const sb_dropout_args *args,
                             sb_error *err);
/* out: the input's shape, C-contiguous; may be the input (in place). */
sb_status sb_op_dropout_run(const sb_dropout_plan *plan, const sb_dropout_args *args,
                            const sb_tensor *out, void *workspace);
/* avg_pool2d and interpolate (upsample)                               */
/* ------------------------------------------------------------------ */

/* torch.nn.functional.avg_pool2d; divisor_override 0: not given. Plans into
 * sb_pool2d_plan (params' dilation 1; workspace: the BatchNorm's scale and
 * shift). */
typedef struct {
    const sb_tensor *input;   /* (N, C, H, W) or (C, H, W) */
    int64_t kernel[2], stride[2], padding[2];
    int ceil_mode, count_include_pad;
    int64_t divisor_override;
    int has_divisor_override;
    /* nonzero: the input is a channel-blocked map of this many channels,
     * (N, ceil(C/B), H, W, B) (sb_conv2d_args), and so is the output; its
     * kernel width at most SB_AVG_POOL2D_BLOCKED_KERNEL_MAX */
    int64_t blocked_channels;
    /* blocked only: an eval-mode BatchNorm on its running statistics (NULL:
     * none) and then a ReLU (relu) applied to the input first: relu(bn(x))
     * pooled, with the bits of the three in turn (DenseNet's transition) */
    const sb_batch_norm_state *bn;
    int relu;
} sb_avg_pool2d_args;

sb_status sb_op_avg_pool2d_plan(sb_pool2d_plan *plan, const sb_avg_pool2d_args *args,
                                sb_error *err);
sb_status sb_op_avg_pool2d_run(const sb_pool2d_plan *plan, const sb_avg_pool2d_args *args,
                               const sb_tensor *out, void *workspace);

/* torch.nn.functional.interpolate's kernels upsample_nearest1d/2d (3-D or
 * 4-D input) and upsample_bilinear2d (4-D) on the output size torch's Python
 * resolved; scale[i] > 0 is the scale_factor torch passes on to the kernel
 * for that axis (height, width; 1-D: width in scale[1]), <= 0: none. */
typedef enum { SB_INTERP_NEAREST = 0, SB_INTERP_BILINEAR = 1 } sb_interp_mode;

typedef struct {
    const sb_tensor *input;   /* (N, C, W) or (N, C, H, W) */
    sb_interp_mode mode;
    int64_t size[2];          /* output H, W (1-D: size[1] is W) */
    double scale[2];
    int align_corners;
    int num_threads;
} sb_interpolate_args;

typedef struct {
    int out_ndim;
    int64_t out_dims[4];
    size_t workspace_bytes;
    sb_fmap in_map, out_map;  /* 1-D: h = 1 */
    sb_interp_params params;
} sb_interpolate_plan;

sb_status sb_op_interpolate_plan(sb_interpolate_plan *plan, const sb_interpolate_args *args,
                                 sb_error *err);
sb_status sb_op_interpolate_run(const sb_interpolate_plan *plan,
                                const sb_interpolate_args *args, const sb_tensor *out,
                                void *workspace);

#ifdef __cplusplus
}
#endif
#endif /* SB_OPS_H */
