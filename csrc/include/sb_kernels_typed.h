/*
 * sb_kernels_typed.h -- the kernels of skipblocks.h, declared once for each
 * element type. No include guard: skipblocks.h includes it twice, after
 * "#define SB_REAL_BITS 32" and "#define SB_REAL_BITS 64", and each
 * declaration below becomes sb_<op>_f32 on float buffers and sb_<op>_f64 on
 * double buffers (sb_real_begin.h). Both have the same contract. In the
 * comments, "float" is the element type (double for the _f64 kernels) and
 * "floats" counts elements; where float64 rounds differently from float32,
 * the comment says so. Element counts of workspaces and packed buffers
 * (*_elems) are in elements of the kernel's type.
 */
#include "sb_real_begin.h"

/* ------------------------------------------------------------------ */
/* Conv2d                                                              */
/* ------------------------------------------------------------------ */
/* Floats of scratch sb_conv2d_<dt> needs for these shapes: the packed
 * weights (sb_conv2d_<dt>_packed_weights_elems) followed by the packed
 * path's scratch for one thread (sb_conv2d_<dt>_packed_workspace_elems(...,
 * 1)). Nonzero for any valid arguments; 0 for invalid ones and for those
 * whose scratch would exceed INT64_MAX / 8 floats. */
int64_t SB_FN_(sb_conv2d, _workspace_elems)(const sb_fmap *out, const sb_fmap *in,
                                       const sb_conv2d_params *params);

/*
 * The one-call convolution: the single-thread convenience API over the
 * packed path below. It packs weight and bias into the start of the
 * workspace (sb_conv2d_<dt>_pack_weights) and runs sb_conv2d_<dt>_packed with
 * no fusion on the calling thread, so it gives exactly what that call gives.
 * It repacks on every call; the layers instead pack once per weight change
 * and call sb_conv2d_<dt>_packed with the cached weights, fusion and threads.
 *
 * out   : N x C_out x OH x OW            (out->c == C_out)
 * in    : N x C_in x H x W               (must not overlap out)
 * weight: C_out x (C_in/G) x KH x KW, contiguous (torch's layout)
 * bias  : C_out, or NULL
 * workspace: sb_conv2d_<dt>_workspace_elems(...) floats, 8-byte aligned
 *            (may be NULL only when the output is empty, N == 0 or C_out == 0)
 */
sb_status SB_FN(sb_conv2d)(sb_real *out_data, const sb_fmap *out,
                        const sb_real *in_data, const sb_fmap *in,
                        const sb_real *weight, const sb_real *bias,
                        const sb_conv2d_params *params, sb_real *workspace);

/* Reference, for tests: the direct 7-loop convolution, a bounds test per
 * tap, one float sum per output in (ci, kh, kw) order, no workspace. */
sb_status SB_FN_(sb_conv2d, __ref)(sb_real *out_data, const sb_fmap *out,
                             const sb_real *in_data, const sb_fmap *in,
                             const sb_real *weight, const sb_real *bias,
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
sb_status SB_FN(sb_batch_norm_stats)(sb_real *mean, sb_real *var_sum,
                                  const sb_real *in_data, const sb_fmap *in);

/* Reference, for tests: the same formula with one double sum per channel in
 * element order (the kernel sums in four lanes), so it agrees with the
 * kernel to within an ulp. Single-threaded; same statuses. */
sb_status SB_FN_(sb_batch_norm_stats, __ref)(sb_real *mean, sb_real *var_sum,
                                       const sb_real *in_data, const sb_fmap *in);

/* scale[c] = weight[c] / sqrt(variance[c] + eps); shift[c] = bias[c] - mean[c]*scale[c]
 * (weight NULL means 1, bias NULL means 0): torch's CPU batch_norm computes
 * its output as x * scale + shift with exactly these two per-channel values,
 * rounded as torch rounds them. batch_count = 0 (eval mode): var is
 * running_var, and 1 / sqrt is taken in float. batch_count = n > 0 (train
 * mode): var is the batch's var_sum over n values, the variance is
 * var_sum / n in float, and 1 / sqrt is taken in double. scale in float;
 * shift with one rounding (fmaf), as torch's vectorised kernels compute it
 * (the compiler contracts it to an FMA). */
sb_status SB_FN(sb_batch_norm_fold)(sb_real *scale, sb_real *shift,
                                 const sb_real *mean, const sb_real *var,
                                 const sb_real *weight, const sb_real *bias,
                                 double eps, int64_t channels, int64_t batch_count);

/* running_mean = (1 - momentum) * running_mean + momentum * mean
 * running_var  = (1 - momentum) * running_var  + momentum * var_sum / (count - 1)
 * (torch stores the unbiased variance; count = N*H*W, must be >= 2), with
 * torch's roundings, the same on every ISA (batch_norm_f32.c). */
sb_status SB_FN(sb_batch_norm_update_running)(sb_real *running_mean, sb_real *running_var,
                                           const sb_real *mean, const sb_real *var_sum,
                                           int64_t count, double momentum,
                                           int64_t channels);

/* out = in * scale[c] + shift[c], then max(., 0) when relu != 0 (torch's
 * clamp_min: NaN and -0.0 pass). One FMA on the AVX2 paths (torch's
 * vectorised kernels), the product and the sum rounded apart on the
 * portable path (torch's DEFAULT build). out and in may be the same buffer
 * (in-place). */
sb_status SB_FN(sb_batch_norm_apply)(sb_real *out_data, const sb_fmap *out,
                                  const sb_real *in_data, const sb_fmap *in,
                                  const sb_real *scale, const sb_real *shift,
                                  int relu);

/* Reference, for tests: out = fmaf(in, scale[c], shift[c]) (one rounding,
 * as torch's vectorised kernels and the AVX2 path; the portable path rounds
 * the product and the sum apart), then torch.relu's v < 0 ? 0 : v when
 * relu. Single-threaded; same statuses; out may be in. */
sb_status SB_FN_(sb_batch_norm_apply, __ref)(sb_real *out_data, const sb_fmap *out,
                                       const sb_real *in_data, const sb_fmap *in,
                                       const sb_real *scale, const sb_real *shift,
                                       int relu);

/* ------------------------------------------------------------------ */
/* Pooling                                                             */
/* ------------------------------------------------------------------ */

/* torch.nn.functional.max_pool2d: padding counts as -inf, NaN propagates.
 * out: N x C x OH x OW, in: N x C x H x W (out->c == in->c). */
sb_status SB_FN(sb_max_pool2d)(sb_real *out_data, const sb_fmap *out,
                            const sb_real *in_data, const sb_fmap *in,
                            const sb_pool2d_params *params);

/* sb_max_pool2d_<dt> on channel-blocked maps (NCHW<B>c, see
 * sb_conv2d_fusion; out->batch_stride and in->batch_stride are the blocked
 * ones): the same value for every real channel, every lane of a block at
 * once; the lanes past C are the pool of the input's (0s give 0s). */
sb_status SB_FN_(sb_max_pool2d, _blocked)(sb_real *out_data, const sb_fmap *out,
                                       const sb_real *in_data, const sb_fmap *in,
                                       const sb_pool2d_params *params);

/* Reference, for tests: the window scanned tap by tap with a bounds test,
 * keeping a value that is greater or NaN (torch's rule). Single-threaded;
 * same statuses; the kernel must give its bits. */
sb_status SB_FN_(sb_max_pool2d, __ref)(sb_real *out_data, const sb_fmap *out,
                                 const sb_real *in_data, const sb_fmap *in,
                                 const sb_pool2d_params *params);

/* torch.nn.functional.adaptive_avg_pool2d: output cell (i, j) averages rows
 * floor(i*H/OH) .. ceil((i+1)*H/OH)-1 and the same for columns. */
sb_status SB_FN(sb_adaptive_avg_pool2d)(sb_real *out_data, const sb_fmap *out,
                                     const sb_real *in_data, const sb_fmap *in);

/* Reference, for tests: torch's two formulas as plain loops. A window
 * (output other than 1x1) is a float sum in row-major order divided by its
 * height, then by its width, as the kernel does (so it gives these bits); a
 * 1x1 output (torch's mean) is a double sum rounded to float and divided by
 * H*W in float, which the kernel's float lanes match to rounding.
 * Single-threaded; same statuses. */
sb_status SB_FN_(sb_adaptive_avg_pool2d, __ref)(sb_real *out_data, const sb_fmap *out,
                                          const sb_real *in_data, const sb_fmap *in);


/* ------------------------------------------------------------------ */
/* Element-wise and small ops                                          */
/* ------------------------------------------------------------------ */

/* torch.relu: max(x, 0), NaN stays NaN. out may equal in. */
sb_status SB_FN(sb_relu)(sb_real *out, const sb_real *in, int64_t count);
/* Reference, for tests (isnan(x) ? x : max(x, 0), -0.0 kept; exact). */
sb_status SB_FN_(sb_relu, __ref)(sb_real *out, const sb_real *in, int64_t count);

/* torch.sigmoid: 1 / (1 + exp(-x)). out may equal in. */
sb_status SB_FN(sb_sigmoid)(sb_real *out, const sb_real *in, int64_t count);
/* Reference, for tests: 1.0f / (1.0f + expf(-x)) in float, the scalar
 * path's expression; the AVX2 path agrees to a few ulp. */
sb_status SB_FN_(sb_sigmoid, __ref)(sb_real *out, const sb_real *in, int64_t count);

/* relu(a + b), element-wise (ResidualBlock's "out + residual, then relu").
 * out may equal a or b. */
sb_status SB_FN(sb_add_relu)(sb_real *out, const sb_real *a, const sb_real *b, int64_t count);
/* Reference, for tests (the float sum, then relu as sb_relu_<dt>__ref; exact). */
sb_status SB_FN_(sb_add_relu, __ref)(sb_real *out, const sb_real *a, const sb_real *b, int64_t count);

/* out[n, c, :, :] = in[n, c, :, :] * scale[n * C + c] (SEAttention's x * y). */
sb_status SB_FN(sb_channel_scale)(sb_real *out_data, const sb_fmap *out,
                               const sb_real *in_data, const sb_fmap *in,
                               const sb_real *scale);
/* Reference, for tests (one float product per element; exact). */
sb_status SB_FN_(sb_channel_scale, __ref)(sb_real *out_data, const sb_fmap *out,
                                    const sb_real *in_data, const sb_fmap *in,
                                    const sb_real *scale);

/* torch.nn.functional.linear: out[r, o] = sum_i in[r, i] * weight[o, i] + bias[o].
 * out: rows x out_features; in: rows x in_features; weight: out_features x
 * in_features (torch's layout), all contiguous; bias may be NULL. */
sb_status SB_FN(sb_linear)(sb_real *out, const sb_real *in, const sb_real *weight,
                        const sb_real *bias, int64_t rows, int64_t in_features,
                        int64_t out_features);

/* Reference, for tests: one sequential float sum per output, in input
 * order, then the bias. */
sb_status SB_FN_(sb_linear, __ref)(sb_real *out, const sb_real *in, const sb_real *weight,
                             const sb_real *bias, int64_t rows,
                             int64_t in_features, int64_t out_features);

/* ------------------------------------------------------------------ */
/* Packed convolution and Linear: the fast path (skipblocks.h).         */
/* ------------------------------------------------------------------ */

/* Floats of a packed weight buffer: per group, per block of CB output
 * channels, CB bias values then K*CB weights (k-major, CB contiguous). CB
 * is SB_CONV_MR or SB_CONV_NR, chosen from (C_out/G, K) by the kernel (the
 * orientation of its GEMM); the buffer is opaque to callers, who only
 * need this size. */
int64_t SB_FN_(sb_conv2d, _packed_weights_elems)(int64_t c_out, int64_t c_in_per_group,
                                            int64_t kernel_h, int64_t kernel_w,
                                            int64_t groups);

/* Packs torch-layout weight (C_out x C_in/G x KH x KW) and bias (C_out or
 * NULL) into `packed`. With row_scale/row_shift (C_out each, or NULL) it
 * folds a following BatchNorm in eval mode into the convolution:
 *   weight'[o] = weight[o] * row_scale[o],
 *   bias'[o]   = bias[o] * row_scale[o] + row_shift[o]. */
sb_status SB_FN_(sb_conv2d, _pack_weights)(sb_real *packed, const sb_real *weight, const sb_real *bias,
                                     const sb_real *row_scale, const sb_real *row_shift,
                                     int64_t c_out, int64_t c_in_per_group,
                                     int64_t kernel_h, int64_t kernel_w, int64_t groups);


/* Scratch floats for sb_conv2d_<dt>_packed with this fusion (NULL: none)
 * on `num_threads` threads. 0 for arguments sb_conv2d_<dt>_packed rejects,
 * including those whose scratch would exceed INT64_MAX / 8 floats
 * (SB_ERR_SHAPE). */
int64_t SB_FN_(sb_conv2d, _packed_workspace_elems)(const sb_fmap *out, const sb_fmap *in,
                                              const sb_conv2d_params *params,
                                              const sb_conv2d_fusion *fusion,
                                              int num_threads);

/* Whether sb_conv2d_<dt>_packed takes a channel-blocked input or output
 * (sb_conv2d_fusion's in_blocked, out_blocked) for this convolution: one
 * group, and C_out tiled as pixel rows, whose tiles are already the
 * pixel-major layout of a block. */
int SB_FN_(sb_conv2d, _blocked_ok)(int64_t c_out, int64_t groups);

/* Channel-blocked copies (see sb_conv2d_fusion): dst = src in NCHW<B>c, the
 * lanes past C of the last block 0, and back. map is the NCHW shape (its
 * batch_stride the NCHW one); split over the threads by block, no
 * rounding. */
sb_status SB_FN(sb_to_blocked)(sb_real *dst, const sb_real *src, const sb_fmap *map);
sb_status SB_FN(sb_from_blocked)(sb_real *dst, const sb_real *src, const sb_fmap *map);

/* SEAttention on blocked maps (map: the logical N, C, H, W, its batch
 * stride the blocked image stride; residual_map the residual's, NULL
 * without one): the global average pool into pooled
 * (N x C) and out = relu?(x * gate[n, c] (+ residual)) into a contiguous
 * blocked map, each value computed as sb_global_avg_pool / channel_scale /
 * add_relu compute it on NCHW, so the same bits; split over the threads by
 * (image, channel block). */
sb_status SB_FN(sb_global_avg_pool_blocked)(sb_real *pooled, const sb_real *src,
                                            const sb_fmap *map);
sb_status SB_FN(sb_channel_scale_blocked)(sb_real *out, const sb_real *x, const sb_fmap *map,
                                          const sb_real *gate, const sb_real *residual,
                                          const sb_fmap *residual_map, int relu);

/* out = epilogue(conv(transform(in), packed weights)). fusion may be NULL.
 * Splits the output over up to num_threads threads (sb_parallel_for);
 * results are bit-identical for every thread count, because each output
 * element is summed in the same order whatever the split.
 * workspace: sb_conv2d_<dt>_packed_workspace_elems(..., fusion, num_threads)
 * floats, 8-byte aligned (as malloc returns memory): it starts with a table
 * of int64 offsets. */
sb_status SB_FN_(sb_conv2d, _packed)(sb_real *out_data, const sb_fmap *out,
                               const sb_real *in_data, const sb_fmap *in,
                               const sb_real *packed_weights,
                               const sb_conv2d_params *params,
                               const sb_conv2d_fusion *fusion,
                               sb_real *workspace, int num_threads);

/* Linear on the packed-GEMM fast path: out (rows x out_features) =
 * in (rows x in_features) * W^T + bias, the micro-kernels of the packed
 * convolution with the input rows as A and W^T as B. W (torch's
 * out_features x in_features) and the bias (or NULL) are packed once per
 * change by sb_linear_<dt>_pack_weights into
 * sb_linear_<dt>_packed_weights_elems(...) floats. Row blocks are split over
 * the thread pool; each output is summed over in_features in one fixed
 * order, so results are bit-identical for every thread count.
 * workspace: sb_linear_<dt>_packed_workspace_elems(...) floats. */
int64_t SB_FN_(sb_linear, _packed_weights_elems)(int64_t out_features, int64_t in_features);
sb_status SB_FN_(sb_linear, _pack_weights)(sb_real *packed, const sb_real *weight, const sb_real *bias,
                                     int64_t out_features, int64_t in_features);
int64_t SB_FN_(sb_linear, _packed_workspace_elems)(int64_t rows, int64_t in_features,
                                              int64_t out_features, int num_threads);
sb_status SB_FN_(sb_linear, _packed)(sb_real *out, const sb_real *in, const sb_real *packed_weights,
                               int64_t rows, int64_t in_features, int64_t out_features,
                               sb_real *workspace, int num_threads);

/* ResidualBlock's train-mode tail: out = relu(in * scale[c] + shift[c] + residual),
 * the BatchNorm part rounded as sb_batch_norm_apply_<dt> on the same ISA and
 * then rounded before the residual is added. */
sb_status SB_FN(sb_batch_norm_add_relu)(sb_real *out_data, const sb_fmap *out,
                                     const sb_real *in_data, const sb_fmap *in,
                                     const sb_real *scale, const sb_real *shift,
                                     const sb_real *residual_data, const sb_fmap *residual);

/* Reference, for tests: relu(fmaf(in, scale[c], shift[c]) + residual), the
 * BatchNorm result rounded before the add (as sb_batch_norm_apply_<dt>__ref).
 * Single-threaded; same statuses; out may be in. */
sb_status SB_FN_(sb_batch_norm_add_relu, __ref)(sb_real *out_data, const sb_fmap *out,
                                          const sb_real *in_data, const sb_fmap *in,
                                          const sb_real *scale, const sb_real *shift,
                                          const sb_real *residual_data,
                                          const sb_fmap *residual);


/* ------------------------------------------------------------------ */
/* conv_transpose2d -- torch.nn.functional.conv_transpose2d (zero       */
/* padding): a 1x1 convolution on the packed path, then a gather        */
/* (conv_transpose2d.inc; the operator csrc/ops/conv_transpose2d.c).     */
/* params: sb_conv2d_params of the transposed convolution (kernel,      */
/* stride, padding, dilation, groups); output_padding is what out->h and */
/* out->w add to torch's size, in [0, max(stride, dilation)).           */
/* ------------------------------------------------------------------ */

/* torch's weight (C_in x C_out/G x KH x KW) as the 1x1 convolution's
 * ((G*(C_out/G)*KH*KW) x C_in/G): row ((g*Cg + co)*KH + kh)*KW + kw holds
 * weight[g*(C_in/G) + ci, co, kh, kw] at column ci. dst: C_in*Cg*KH*KW floats. */
sb_status SB_FN(sb_conv_transpose2d_gemm_weights)(sb_real *dst, const sb_real *weight,
                                                  int64_t c_in, int64_t c_out_per_group,
                                                  int64_t kernel_h, int64_t kernel_w,
                                                  int64_t groups);

/* out[n, c, oh, ow] = (0 + the col entries of its valid taps, (kh, kw) in
 * order) + bias[c]; tap (kh, kw) of (oh, ow) reads
 * col[n, (c*KH + kh)*KW + kw, ih, iw] with oh = ih*sH - pH + kh*dH (and the
 * same for w). out: N x C_out x OH x OW; col: N x (C_out*KH*KW) x H x W;
 * bias: C_out or NULL. Planes split over the thread pool; bit-identical for
 * every thread count. */
sb_status SB_FN(sb_conv_transpose2d_col2im)(sb_real *out_data, const sb_fmap *out,
                                            const sb_real *col_data, const sb_fmap *col,
                                            const sb_real *bias,
                                            const sb_conv2d_params *params);

/* Reference, for tests: the transposed convolution as a plain loop on
 * in (N x C_in x H x W) and torch's weight (C_in x C_out/G x KH x KW):
 * per output, per tap in (kh, kw) order, a float dot product over the
 * group's input channels in order, summed from 0, then the bias. */
sb_status SB_FN_(sb_conv_transpose2d, __ref)(sb_real *out_data, const sb_fmap *out,
                                             const sb_real *in_data, const sb_fmap *in,
                                             const sb_real *weight, const sb_real *bias,
                                             const sb_conv2d_params *params);
/* pad and dropout                                                     */
/* ------------------------------------------------------------------ */

/* torch.nn.functional.pad(mode="constant"): out (ndim dims out_dims) gets
 * in[o - before] where that index lies inside in (ndim dims in_dims), and
 * value elsewhere; before[d] < 0 crops the start of dim d, and the end is
 * padded or cropped by out_dims[d] - in_dims[d] - before[d]. Both
 * C-contiguous, not overlapping; 1 <= ndim <= SB_PAD_MAX_DIMS. Exact. */
sb_status SB_FN(sb_pad_constant)(sb_real *out, const int64_t *out_dims, const sb_real *in,
                                 const int64_t *in_dims, const int64_t *before, int ndim,
                                 sb_real value);
/* Reference, for tests: element by element; same statuses; same bits. */
sb_status SB_FN_(sb_pad_constant, __ref)(sb_real *out, const int64_t *out_dims,
                                         const sb_real *in, const int64_t *in_dims,
                                         const int64_t *before, int ndim, sb_real value);

/* torch.nn.functional.dropout(training=True): out[i] = in[i] * noise[i],
 * noise[i] = 1 / (1 - p) (rounded to the element type) for a kept element,
 * 0 for a dropped one (x * 0: NaN for NaN and inf). Element i is kept when
 * the 53-bit draw of a counter-based generator at (seed, i) is below
 * (1 - p) * 2^53: reproducible from seed, independent of threads, and the
 * same mask for float32 and float64. 0 <= p <= 1 (else SB_ERR_ARGUMENT).
 * out may equal in. */
sb_status SB_FN(sb_dropout)(sb_real *out, const sb_real *in, int64_t count, double p,
                            uint64_t seed);
/* Reference, for tests: torch's bernoulli / div / mul, element by element,
 * one thread; same statuses; same bits. */
sb_status SB_FN_(sb_dropout, __ref)(sb_real *out, const sb_real *in, int64_t count, double p,
                                    uint64_t seed);

/* ---- avg_pool2d -------------------------------------------------------- */
/* torch.nn.functional.avg_pool2d (avg_pool2d.inc): each window's input part
 * summed row-major in one float, divided by divisor_override (nonzero: given),
 * else by the window clipped to the padded input (count_include_pad) or to
 * the input. params' dilation must be 1. out: N x C x OH x OW, in:
 * N x C x H x W, OH/OW torch's floor or ceil size. */
sb_status SB_FN(sb_avg_pool2d)(sb_real *out_data, const sb_fmap *out,
                            const sb_real *in_data, const sb_fmap *in,
                            const sb_pool2d_params *params, int count_include_pad,
                            int64_t divisor_override);
/* sb_avg_pool2d_<dt> on channel-blocked maps (NCHW<B>c, as
 * sb_max_pool2d_<dt>_blocked; the lanes past C are the pool of the input's),
 * each input value first through x * scale[c] + shift[c] (both NULL: none)
 * and torch.relu (relu != 0), rounded as sb_batch_norm_apply_<dt> on this
 * ISA -- an eval-mode BatchNorm, ReLU and average pool in one pass, their
 * bits. params->kernel_w at most SB_AVG_POOL2D_BLOCKED_KERNEL_MAX. */
sb_status SB_FN_(sb_avg_pool2d, _blocked)(sb_real *out_data, const sb_fmap *out,
                                       const sb_real *in_data, const sb_fmap *in,
                                       const sb_pool2d_params *params, int count_include_pad,
                                       int64_t divisor_override, const sb_real *scale,
                                       const sb_real *shift, int relu);
/* Reference, for tests: the same formula per cell; the kernel gives its bits. */
sb_status SB_FN_(sb_avg_pool2d, __ref)(sb_real *out_data, const sb_fmap *out,
                                 const sb_real *in_data, const sb_fmap *in,
                                 const sb_pool2d_params *params, int count_include_pad,
                                 int64_t divisor_override);

/* ---- interpolate (upsample) ------------------------------------------ */
/* torch's upsample_nearest1d/2d and upsample_bilinear2d (interpolate.inc)
 * on N x C x H x W maps (1-D: H = 1 in and out). workspace:
 * sb_interpolate_<dt>_workspace_elems(out->w) elements, 8-byte aligned (the
 * column table). Planes are split over the thread pool; each output is
 * computed the same way whatever the split. */
int64_t SB_FN_(sb_interpolate, _workspace_elems)(int64_t out_w);
sb_status SB_FN(sb_interpolate)(sb_real *out_data, const sb_fmap *out,
                             const sb_real *in_data, const sb_fmap *in,
                             const sb_interp_params *params, void *workspace);
/* Reference, for tests: every index and weight computed per output cell by
 * torch's formulas, single-threaded, no workspace; the kernel gives its bits. */
sb_status SB_FN_(sb_interpolate, __ref)(sb_real *out_data, const sb_fmap *out,
                                  const sb_real *in_data, const sb_fmap *in,
                                  const sb_interp_params *params);

#include "sb_real_end.h"
