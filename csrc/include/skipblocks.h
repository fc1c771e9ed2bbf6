/*
 * skipblocks.h -- the public C API of the skipblocks kernels.
 *
 * Every kernel here works on raw float32 buffers described by small dims
 * structs. Kernels never include Python.h or NumPy headers, never allocate,
 * never print, never exit or abort: they return an sb_status. The caller
 * (csrc/glue/, the only file that includes Python.h) validates shapes once,
 * allocates outputs and scratch (sized by the *_workspace_floats helpers),
 * releases the GIL and calls the kernel.
 *
 * Argument order everywhere: outputs, inputs, weights, params, workspace.
 * Naming: sb_<op>_<dtype>; variants after a double underscore. Every
 * kernel with a fast path (threads, SIMD, another summation order) has a
 * __ref declared beside it (sb_conv2d_f32__ref, sb_relu_f32__ref...): the
 * plainest single-threaded loop over torch's formula and its roundings, no
 * SIMD, no workspace, in the same .c file as the kernel's portable code.
 * Tests compare every ISA path with it, exactly where the result is exact.
 * A __ref checks its arguments as its kernel does (same statuses). The
 * BatchNorm fold and running-statistics update are one plain loop on every
 * ISA, the formula itself, and have none.
 *
 * Shape legend (NCHW, the layout of torch.nn):
 *   N      batch size               C, C_in, C_out   channels
 *   H, W   input height and width   OH, OW           output height and width
 *   KH, KW kernel height and width  G                convolution groups
 *
 * Feature maps (sb_fmap): an N x C x H x W float32 map in which each image
 * (C*H*W floats) is contiguous, and consecutive images sit batch_stride
 * floats apart (batch_stride >= C*H*W). A plain C-contiguous array has
 * batch_stride == C*H*W; a channel slice x[:, c0:c1] of a larger contiguous
 * map has the larger map's C*H*W. This is what lets DenseBlock read its
 * inputs from, and write each layer's new features straight into, one
 * preallocated output instead of re-concatenating a growing list.
 */
#ifndef SKIPBLOCKS_H
#define SKIPBLOCKS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    SB_OK = 0,
    SB_ERR_SHAPE = 1,    /* sizes inconsistent or out of range */
    SB_ERR_ARGUMENT = 2, /* a parameter out of range (stride 0, groups 0...) */
    SB_ERR_NULL = 3      /* a required pointer is NULL */
} sb_status;

/* Human-readable text for a status, for error messages of the glue. */
const char *sb_status_string(sb_status status);

typedef struct {
    int64_t n, c, h, w;
    int64_t batch_stride; /* floats between image n and image n+1 */
} sb_fmap;

/* ------------------------------------------------------------------ */
/* Conv2d -- matches torch.nn.functional.conv2d with zero padding.      */
/* ------------------------------------------------------------------ */

typedef struct {
    int64_t kernel_h, kernel_w;
    int64_t stride_h, stride_w;
    int64_t pad_h, pad_w;        /* zeros added on each side (top/bottom, left/right) */
    int64_t dilation_h, dilation_w;
    int64_t groups;
} sb_conv2d_params;

/* Kernel size, stride, padding and dilation above this are rejected
 * (SB_ERR_ARGUMENT / SB_ERR_SHAPE): it keeps the output size and every
 * input offset the convolution reads inside int64. (torch takes larger
 * values; no real network uses them.) The packed path's staged input can
 * still be too large below it (a stride of 2^31 with dilation 2^31 stages
 * 2^31 phase planes per axis): its workspace function then returns 0 and
 * the kernel SB_ERR_SHAPE. sb_conv2d_f32__ref needs no workspace. */
#define SB_CONV_PARAM_MAX ((int64_t)2147483647)

/* torch's output size: floor((in + 2*pad - dilation*(k-1) - 1) / stride) + 1.
 * Returns a value <= 0 when the padded input is smaller than the dilated
 * kernel (the caller turns that into torch's "Kernel size can't be greater
 * than actual input size" error), and 0 for a parameter that is not
 * positive (padding: negative) or above SB_CONV_PARAM_MAX. */
int64_t sb_conv2d_out_size(int64_t in, int64_t kernel, int64_t stride,
                           int64_t pad, int64_t dilation);

/* Floats of scratch sb_conv2d_f32 needs for these shapes: the packed
 * weights (sb_conv2d_f32_packed_weights_floats) followed by the packed
 * path's scratch for one thread (sb_conv2d_f32_packed_workspace_floats(...,
 * 1)). Nonzero for any valid arguments; 0 for invalid ones and for those
 * whose scratch would exceed INT64_MAX / 8 floats. */
int64_t sb_conv2d_f32_workspace_floats(const sb_fmap *out, const sb_fmap *in,
                                       const sb_conv2d_params *params);

/*
 * The one-call convolution: the single-thread convenience API over the
 * packed path below. It packs weight and bias into the start of the
 * workspace (sb_conv2d_f32_pack_weights) and runs sb_conv2d_f32_packed with
 * no fusion on the calling thread, so it gives exactly what that call gives.
 * It repacks on every call; the layers instead pack once per weight change
 * and call sb_conv2d_f32_packed with the cached weights, fusion and threads.
 *
 * out   : N x C_out x OH x OW            (out->c == C_out)
 * in    : N x C_in x H x W               (must not overlap out)
 * weight: C_out x (C_in/G) x KH x KW, contiguous (torch's layout)
 * bias  : C_out, or NULL
 * workspace: sb_conv2d_f32_workspace_floats(...) floats, 8-byte aligned
 *            (may be NULL only when the output is empty, N == 0 or C_out == 0)
 */
sb_status sb_conv2d_f32(float *out_data, const sb_fmap *out,
                        const float *in_data, const sb_fmap *in,
                        const float *weight, const float *bias,
                        const sb_conv2d_params *params, float *workspace);

/* Reference, for tests: the direct 7-loop convolution, a bounds test per
 * tap, one float sum per output in (ci, kh, kw) order, no workspace. */
sb_status sb_conv2d_f32__ref(float *out_data, const sb_fmap *out,
                             const float *in_data, const sb_fmap *in,
                             const float *weight, const float *bias,
                             const sb_conv2d_params *params);

/* ------------------------------------------------------------------ */
/* BatchNorm2d -- matches torch.nn.functional.batch_norm on NCHW.       */
/* ------------------------------------------------------------------ */

/* Per-channel mean and sum of squared deviations over N, H, W (train mode):
 * mean = (float)(sum / n), var_sum = (float)(sum of (x - mean)^2 formed in
 * float), both sums in double so the result does not depend on n's size.
 * var_sum / n is the biased variance torch normalises with; fold and
 * update_running take var_sum and n and divide in float, as torch.
 * mean, var_sum: C floats. Requires N*H*W >= 1. */
sb_status sb_batch_norm_stats_f32(float *mean, float *var_sum,
                                  const float *in_data, const sb_fmap *in);

/* Reference, for tests: the same formula with one double sum per channel in
 * element order (the kernel sums in four lanes), so it agrees with the
 * kernel to within an ulp. Single-threaded; same statuses. */
sb_status sb_batch_norm_stats_f32__ref(float *mean, float *var_sum,
                                       const float *in_data, const sb_fmap *in);

/* scale[c] = weight[c] / sqrt(variance[c] + eps); shift[c] = bias[c] - mean[c]*scale[c]
 * (weight NULL means 1, bias NULL means 0): torch's CPU batch_norm computes
 * its output as x * scale + shift with exactly these two per-channel values,
 * rounded as torch rounds them. batch_count = 0 (eval mode): var is
 * running_var, and 1 / sqrt is taken in float. batch_count = n > 0 (train
 * mode): var is the batch's var_sum over n values, the variance is
 * var_sum / n in float, and 1 / sqrt is taken in double. scale in float;
 * shift with one rounding (fmaf), as torch's vectorised kernels compute it
 * (the compiler contracts it to an FMA). */
sb_status sb_batch_norm_fold_f32(float *scale, float *shift,
                                 const float *mean, const float *var,
                                 const float *weight, const float *bias,
                                 double eps, int64_t channels, int64_t batch_count);

/* running_mean = (1 - momentum) * running_mean + momentum * mean
 * running_var  = (1 - momentum) * running_var  + momentum * var_sum / (count - 1)
 * (torch stores the unbiased variance; count = N*H*W, must be >= 2), with
 * torch's roundings, the same on every ISA (batch_norm_f32.c). */
sb_status sb_batch_norm_update_running_f32(float *running_mean, float *running_var,
                                           const float *mean, const float *var_sum,
                                           int64_t count, double momentum,
                                           int64_t channels);

/* out = in * scale[c] + shift[c], then max(., 0) when relu != 0 (torch's
 * clamp_min: NaN and -0.0 pass). One FMA on the AVX2 paths (torch's
 * vectorised kernels), the product and the sum rounded apart on the
 * portable path (torch's DEFAULT build). out and in may be the same buffer
 * (in-place). */
sb_status sb_batch_norm_apply_f32(float *out_data, const sb_fmap *out,
                                  const float *in_data, const sb_fmap *in,
                                  const float *scale, const float *shift,
                                  int relu);

/* Reference, for tests: out = fmaf(in, scale[c], shift[c]) (one rounding,
 * as torch's vectorised kernels and the AVX2 path; the portable path rounds
 * the product and the sum apart), then torch.relu's v < 0 ? 0 : v when
 * relu. Single-threaded; same statuses; out may be in. */
sb_status sb_batch_norm_apply_f32__ref(float *out_data, const sb_fmap *out,
                                       const float *in_data, const sb_fmap *in,
                                       const float *scale, const float *shift,
                                       int relu);

/* ------------------------------------------------------------------ */
/* Pooling                                                             */
/* ------------------------------------------------------------------ */

typedef struct {
    int64_t kernel_h, kernel_w;
    int64_t stride_h, stride_w;
    int64_t pad_h, pad_w;
    int64_t dilation_h, dilation_w;
} sb_pool2d_params;

/* Pooling parameters above this are rejected (SB_ERR_ARGUMENT), as torch
 * rejects values that do not fit its int ("value cannot be converted to
 * type int without overflow"); it keeps dilation * (kernel - 1) and every
 * offset inside int64. */
#define SB_POOL_PARAM_MAX ((int64_t)2147483647)

/* torch's pooling output size, including its ceil_mode rule: with ceil
 * rounding, the last window must start inside the input or the left
 * padding, otherwise it is dropped. Returns <= 0 when too small, and 0 for
 * a parameter out of range. */
int64_t sb_pool2d_out_size(int64_t in, int64_t kernel, int64_t stride,
                           int64_t pad, int64_t dilation, int ceil_mode);

/* torch.nn.functional.max_pool2d: padding counts as -inf, NaN propagates.
 * out: N x C x OH x OW, in: N x C x H x W (out->c == in->c). */
sb_status sb_max_pool2d_f32(float *out_data, const sb_fmap *out,
                            const float *in_data, const sb_fmap *in,
                            const sb_pool2d_params *params);

/* Reference, for tests: the window scanned tap by tap with a bounds test,
 * keeping a value that is greater or NaN (torch's rule). Single-threaded;
 * same statuses; the kernel must give its bits. */
sb_status sb_max_pool2d_f32__ref(float *out_data, const sb_fmap *out,
                                 const float *in_data, const sb_fmap *in,
                                 const sb_pool2d_params *params);

/* torch.nn.functional.adaptive_avg_pool2d: output cell (i, j) averages rows
 * floor(i*H/OH) .. ceil((i+1)*H/OH)-1 and the same for columns. */
sb_status sb_adaptive_avg_pool2d_f32(float *out_data, const sb_fmap *out,
                                     const float *in_data, const sb_fmap *in);

/* Reference, for tests: torch's two formulas as plain loops. A window
 * (output other than 1x1) is a float sum in row-major order divided by its
 * height, then by its width, as the kernel does (so it gives these bits); a
 * 1x1 output (torch's mean) is a double sum rounded to float and divided by
 * H*W in float, which the kernel's float lanes match to rounding.
 * Single-threaded; same statuses. */
sb_status sb_adaptive_avg_pool2d_f32__ref(float *out_data, const sb_fmap *out,
                                          const float *in_data, const sb_fmap *in);

/* ------------------------------------------------------------------ */
/* Element-wise and small ops                                          */
/* ------------------------------------------------------------------ */

/* torch.relu: max(x, 0), NaN stays NaN. out may equal in. */
sb_status sb_relu_f32(float *out, const float *in, int64_t count);
/* Reference, for tests (isnan(x) ? x : max(x, 0), -0.0 kept; exact). */
sb_status sb_relu_f32__ref(float *out, const float *in, int64_t count);

/* torch.sigmoid: 1 / (1 + exp(-x)). out may equal in. */
sb_status sb_sigmoid_f32(float *out, const float *in, int64_t count);
/* Reference, for tests: 1.0f / (1.0f + expf(-x)) in float, the scalar
 * path's expression; the AVX2 path agrees to a few ulp. */
sb_status sb_sigmoid_f32__ref(float *out, const float *in, int64_t count);

/* relu(a + b), element-wise (ResidualBlock's "out + residual, then relu").
 * out may equal a or b. */
sb_status sb_add_relu_f32(float *out, const float *a, const float *b, int64_t count);
/* Reference, for tests (the float sum, then relu as sb_relu_f32__ref; exact). */
sb_status sb_add_relu_f32__ref(float *out, const float *a, const float *b, int64_t count);

/* out[n, c, :, :] = in[n, c, :, :] * scale[n * C + c] (SEAttention's x * y). */
sb_status sb_channel_scale_f32(float *out_data, const sb_fmap *out,
                               const float *in_data, const sb_fmap *in,
                               const float *scale);
/* Reference, for tests (one float product per element; exact). */
sb_status sb_channel_scale_f32__ref(float *out_data, const sb_fmap *out,
                                    const float *in_data, const sb_fmap *in,
                                    const float *scale);

/* torch.nn.functional.linear: out[r, o] = sum_i in[r, i] * weight[o, i] + bias[o].
 * out: rows x out_features; in: rows x in_features; weight: out_features x
 * in_features (torch's layout), all contiguous; bias may be NULL. */
sb_status sb_linear_f32(float *out, const float *in, const float *weight,
                        const float *bias, int64_t rows, int64_t in_features,
                        int64_t out_features);

/* Reference, for tests: one sequential float sum per output, in input
 * order, then the bias. */
sb_status sb_linear_f32__ref(float *out, const float *in, const float *weight,
                             const float *bias, int64_t rows,
                             int64_t in_features, int64_t out_features);

/* ------------------------------------------------------------------ */
/* Instruction-set dispatch                                            */
/*                                                                     */
/* The fast kernels (GEMM micro-kernels) exist per ISA; the one used is */
/* picked at run time from what the CPU supports, so one build runs on  */
/* any x86-64 (and on ARM, where only the portable path is built).      */
/* sb_set_isa forces a path -- tests use it to cover every path on one  */
/* machine. The scalar path is plain C, always built, always available. */
/* ------------------------------------------------------------------ */
typedef enum {
    SB_ISA_SCALAR = 0,
    SB_ISA_AVX2 = 1,  /* AVX2 + FMA (x86-64) */
    SB_ISA_AVX512 = 2 /* AVX-512F, with AVX2 + FMA (x86-64): the convolution's
                       * 6x32 micro-kernel on zmm registers; the other kernels
                       * run their AVX2 variants */
} sb_isa;

/* Nonzero when this build and this CPU can run `isa`. */
int sb_isa_available(sb_isa isa);
/* The best available ISA (what the first kernel call selects). */
sb_isa sb_isa_best(void);
/* Forces `isa`; SB_ERR_ARGUMENT if it is not available. */
sb_status sb_set_isa(sb_isa isa);
sb_isa sb_get_isa(void);
const char *sb_isa_name(sb_isa isa);

/* Tests only: with `on` set and SB_ISA_AVX2 selected, the convolution's
 * 32-wide micro-kernels are the AVX-512 kernels' source compiled for AVX2
 * (gemm_ukernel_f32__avx512.c), so the AVX-512 path's logic runs -- and is
 * checked against torch and against the AVX2 path bit for bit -- on a CPU
 * without AVX-512. Returns 0, or -1 (nothing changed) without AVX2. */
int sb_test_use_avx512_source_on_avx2(int on);

/* ------------------------------------------------------------------ */
/* Packed convolution: the fast path.                                  */
/*                                                                     */
/* The convolution is a GEMM per image and group,                       */
/*   out (C_out/G x OH*OW) = W (C_out/G x K) * columns (K x OH*OW),     */
/*   K = (C_in/G)*KH*KW,                                                */
/* computed by MR x NR register-tile micro-kernels. W is packed once per */
/* weight change (sb_conv2d_f32_pack_weights; the Python layer caches   */
/* it). The input is staged once per call -- zero-padded, split into    */
/* stride x stride phase planes, optionally passed through BatchNorm's  */
/* scale/shift and a ReLU (the pre-activation of DenseLayer) -- after   */
/* which every row of the im2col matrix is a contiguous run that the    */
/* micro-kernels read in place: no im2col copy. The epilogue adds the   */
/* bias, an optional residual, and applies an optional ReLU as each     */
/* finished tile is stored (ResidualBlock's "+ residual, relu").        */
/* ------------------------------------------------------------------ */
#define SB_CONV_MR 6
#define SB_CONV_NR 16

/* Floats of a packed weight buffer: per group, per block of CB output
 * channels, CB bias values then K*CB weights (k-major, CB contiguous). CB
 * is SB_CONV_MR or SB_CONV_NR, chosen from (C_out/G, K) by the kernel (the
 * orientation of its GEMM); the buffer is opaque to callers, who only
 * need this size. */
int64_t sb_conv2d_f32_packed_weights_floats(int64_t c_out, int64_t c_in_per_group,
                                            int64_t kernel_h, int64_t kernel_w,
                                            int64_t groups);

/* Packs torch-layout weight (C_out x C_in/G x KH x KW) and bias (C_out or
 * NULL) into `packed`. With row_scale/row_shift (C_out each, or NULL) it
 * folds a following BatchNorm in eval mode into the convolution:
 *   weight'[o] = weight[o] * row_scale[o],
 *   bias'[o]   = bias[o] * row_scale[o] + row_shift[o]. */
sb_status sb_conv2d_f32_pack_weights(float *packed, const float *weight, const float *bias,
                                     const float *row_scale, const float *row_shift,
                                     int64_t c_out, int64_t c_in_per_group,
                                     int64_t kernel_h, int64_t kernel_w, int64_t groups);

typedef struct {
    /* Input transform (NULL scale: none): each input value x of channel c
     * is used as x * in_scale[c] + in_shift[c], then max(., 0) if in_relu.
     * Zero padding stays zero (torch pads the transformed map). */
    const float *in_scale, *in_shift;
    int in_relu;
    /* Epilogue: add residual (NULL: none; same shape as the output, in
     * the layout residual_map describes), then max(., 0) if out_relu. */
    const float *residual;
    sb_fmap residual_map;
    int out_relu;
} sb_conv2d_fusion;

/* Scratch floats for sb_conv2d_f32_packed with this fusion (NULL: none)
 * on `num_threads` threads. 0 for arguments sb_conv2d_f32_packed rejects,
 * including those whose scratch would exceed INT64_MAX / 8 floats
 * (SB_ERR_SHAPE). */
int64_t sb_conv2d_f32_packed_workspace_floats(const sb_fmap *out, const sb_fmap *in,
                                              const sb_conv2d_params *params,
                                              const sb_conv2d_fusion *fusion,
                                              int num_threads);

/* out = epilogue(conv(transform(in), packed weights)). fusion may be NULL.
 * Splits the output over up to num_threads threads (sb_parallel_for);
 * results are bit-identical for every thread count, because each output
 * element is summed in the same order whatever the split.
 * workspace: sb_conv2d_f32_packed_workspace_floats(..., fusion, num_threads)
 * floats, 8-byte aligned (as malloc returns memory): it starts with a table
 * of int64 offsets. */
sb_status sb_conv2d_f32_packed(float *out_data, const sb_fmap *out,
                               const float *in_data, const sb_fmap *in,
                               const float *packed_weights,
                               const sb_conv2d_params *params,
                               const sb_conv2d_fusion *fusion,
                               float *workspace, int num_threads);

/* Linear on the packed-GEMM fast path: out (rows x out_features) =
 * in (rows x in_features) * W^T + bias, the micro-kernels of the packed
 * convolution with the input rows as A and W^T as B. W (torch's
 * out_features x in_features) and the bias (or NULL) are packed once per
 * change by sb_linear_f32_pack_weights into
 * sb_linear_f32_packed_weights_floats(...) floats. Row blocks are split over
 * the thread pool; each output is summed over in_features in one fixed
 * order, so results are bit-identical for every thread count.
 * workspace: sb_linear_f32_packed_workspace_floats(...) floats. */
int64_t sb_linear_f32_packed_weights_floats(int64_t out_features, int64_t in_features);
sb_status sb_linear_f32_pack_weights(float *packed, const float *weight, const float *bias,
                                     int64_t out_features, int64_t in_features);
int64_t sb_linear_f32_packed_workspace_floats(int64_t rows, int64_t in_features,
                                              int64_t out_features, int num_threads);
sb_status sb_linear_f32_packed(float *out, const float *in, const float *packed_weights,
                               int64_t rows, int64_t in_features, int64_t out_features,
                               float *workspace, int num_threads);

/* ResidualBlock's train-mode tail: out = relu(in * scale[c] + shift[c] + residual),
 * the BatchNorm part rounded as sb_batch_norm_apply_f32 on the same ISA and
 * then rounded before the residual is added. */
sb_status sb_batch_norm_add_relu_f32(float *out_data, const sb_fmap *out,
                                     const float *in_data, const sb_fmap *in,
                                     const float *scale, const float *shift,
                                     const float *residual_data, const sb_fmap *residual);

/* Reference, for tests: relu(fmaf(in, scale[c], shift[c]) + residual), the
 * BatchNorm result rounded before the add (as sb_batch_norm_apply_f32__ref).
 * Single-threaded; same statuses; out may be in. */
sb_status sb_batch_norm_add_relu_f32__ref(float *out_data, const sb_fmap *out,
                                          const float *in_data, const sb_fmap *in,
                                          const float *scale, const float *shift,
                                          const float *residual_data,
                                          const sb_fmap *residual);

#ifdef __cplusplus
}
#endif
#endif /* SKIPBLOCKS_H */
