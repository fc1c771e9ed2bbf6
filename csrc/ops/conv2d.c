/*
 * conv2d.c -- the Conv2d operator: torch.nn.functional.conv2d (zero padding)
 * with skipblocks' fusions, and the packing of its weights.
 *
 * Validation follows torch's check_shape_forward and ConvUtils in torch's
 * order, so the first failing check is the one torch reports. The run picks
 * the path: the packed GEMM (weights packed by the layer's cache, or packed
 * here into the workspace), or the direct loop -- for tests (reference), and
 * for parameters whose staged input cannot be addressed (a stride and
 * dilation near 2^31), which torch computes too. padding_extra (torch's
 * 'same' with an even total) is staged as a zero-padded copy of the input,
 * so the kernels' symmetric padding covers the rest.
 *
 * float32 and float64 from one source: the input's dtype picks the kernels
 * (SB_DT_CALL). torch checks the bias's dtype before anything else and the
 * weight's after the shapes (and not at all for an empty batch or an input
 * with no channels, which it computes); its message for the weight depends
 * on whether a float32 call runs oneDNN (torch_uses_mkldnn).
 *
 * Not done: padding modes other than zeros, channels-last, backward.
 */
#include "ops_internal.h"

static void fusion_of(sb_conv2d_fusion *f, const sb_conv2d_args *a)
{
    memset(f, 0, sizeof *f);
    f->in_scale = sb_data_or_null(a->in_scale);
    f->in_shift = sb_data_or_null(a->in_shift);
    f->in_relu = a->in_relu;
    f->out_relu = a->out_relu;
    if (a->residual != NULL) {
        f->residual = a->residual->data;
        f->residual_map = sb_fmap_of(a->residual);
    }
    f->in_blocked = a->in_blocked;
    f->out_blocked = a->out_blocked;
}

static int fused(const sb_conv2d_args *a)
{
    return a->in_scale != NULL || a->in_shift != NULL || a->residual != NULL || a->in_relu ||
           a->out_relu || a->in_blocked || a->out_blocked;
}

int sb_op_conv2d_blocked_ok(int64_t c_out, int64_t groups, sb_dtype dt)
{
    return SB_DT_CALL(dt, sb_conv2d, _blocked_ok, c_out, groups);
}

/* With a blocked layout asked for: checks what it needs, and points
 * local's input and residual at their logical views (views[0], [1]), so
 * the checks and the run below read them as NCHW maps. *a is kept
 * otherwise. */
static sb_status blocked_args(sb_conv2d_args *local, sb_tensor views[2],
                              const sb_conv2d_args *a, sb_error *err)
{
    *local = *a;
    if (!a->in_blocked && !a->out_blocked)
        return SB_OK;
    const sb_tensor *w = a->weight;
    if (w->ndim != 4 || a->groups != 1 || a->reference || a->padding_extra[0] != 0 ||
        a->padding_extra[1] != 0 || !sb_check_dtype(err, a->input) ||
        !SB_DT_CALL(a->input->dtype, sb_conv2d, _blocked_ok, w->dims[0], a->groups))
        return sb_fail(err, SB_ERR_ARGUMENT, SB_E_CONV_BLOCKED_UNSUPPORTED);
    sb_status status;
    if (a->in_blocked) {
        if ((status = sb_blocked_view(&views[0], a->input, w->dims[1], "input", err)) != SB_OK)
            return status;
        local->input = &views[0];
    }
    if (a->residual != NULL && a->out_blocked) {
        if ((status = sb_blocked_view(&views[1], a->residual, w->dims[0], "residual", err)) !=
            SB_OK)
            return status;
        local->residual = &views[1];
    }
    return SB_OK;
}

/* Channel vectors of the input transform: C_in elements each, given together. */
static sb_status check_transform(const sb_conv2d_args *a, int64_t channels, sb_error *err)
{
    const sb_tensor *v[2] = {a->in_scale, a->in_shift};
    const char *names[2] = {"in_scale", "in_shift"};
    for (int i = 0; i < 2; i++) {
        if (v[i] == NULL)
            continue;
        if (!sb_check_dtype(err, v[i]))
            return SB_ERR_ARGUMENT;
        if (sb_tensor_numel(v[i]) != channels) {
            sb_fail_v(err, SB_ERR_SHAPE, SB_E_NUMEL, 2, channels, sb_tensor_numel(v[i]), 0, 0);
            sb_err_arg(err, names[i]);
            return SB_ERR_SHAPE;
        }
    }
    if ((a->in_scale == NULL) != (a->in_shift == NULL)) {
        sb_fail(err, SB_ERR_ARGUMENT, SB_E_PAIRED);
        sb_err_arg(err, "in_scale and in_shift");
        return SB_ERR_ARGUMENT;
    }
    return SB_OK;
}

/* Whether torch 2.13 runs this float32 convolution through oneDNN
 * (ConvParams::use_mkldnn), on the input as its backend sees it: batched,
 * with padding_extra's zeros added. torch's rule reads its own thread count;
 * the operator reads skipblocks' (num_threads), which has the same default
 * (the CPUs this process may use). */
static int torch_uses_mkldnn(const sb_conv2d_args *a, int64_t n, int64_t c, int64_t h,
                             int64_t w, const int64_t *wd)
{
    if (a->input->dtype != SB_DTYPE_F32)
        return 0;
    const int strided = a->stride[0] != 1 || a->stride[1] != 1;
    const int dilated = a->dilation[0] != 1 || a->dilation[1] != 1;
    const int64_t numel = sb_sat_mul(sb_sat_mul(n, c), sb_sat_mul(h, w));
    return (strided || dilated || n >= 16 || wd[3] != 1 || wd[2] != 1 || a->num_threads > 1) &&
           (a->groups > 1 || (wd[3] > 3 && wd[2] > 3) || n > 1 || numel > 20480);
}

sb_status sb_op_conv2d_plan(sb_conv2d_plan *plan, const sb_conv2d_args *args, sb_error *err)
{
    memset(plan, 0, sizeof *plan);
    if (!sb_check_dtype(err, args->input) || !sb_check_dtype(err, args->weight) ||
        !sb_check_dtype(err, args->bias) || !sb_check_dtype(err, args->residual))
        return SB_ERR_ARGUMENT;
    sb_conv2d_args local;
    sb_tensor views[2];
    sb_status blocked = blocked_args(&local, views, args, err);
    if (blocked != SB_OK)
        return blocked;
    const sb_conv2d_args *a = &local;
    const sb_tensor *x = a->input, *w = a->weight, *b = a->bias;
    const sb_dtype dt = x->dtype;
    /* torch checks the bias's dtype before anything else */
    if (!sb_dtype_is(b, dt))
        return sb_fail_dtype(err, SB_E_CONV_BIAS_DTYPE, "bias", dt, b->dtype);
    if (x->ndim != 3 && x->ndim != 4) {
        sb_fail(err, SB_ERR_SHAPE, SB_E_CONV_INPUT_NDIM);
        sb_err_shape(err, 0, x);
        return SB_ERR_SHAPE;
    }
    if (w->ndim != 4) {
        sb_fail(err, SB_ERR_SHAPE, SB_E_CONV_WEIGHT_NDIM);
        sb_err_shape(err, 0, w);
        return SB_ERR_SHAPE;
    }
    const int64_t *wd = w->dims;
    const int batched = x->ndim == 4;
    const int64_t xn = batched ? x->dims[0] : 1, xc = x->dims[batched],
                  xh = x->dims[batched + 1], xw = x->dims[batched + 2];
    const int64_t sh = a->stride[0], sw = a->stride[1], ph = a->padding[0],
                  pw = a->padding[1], dh = a->dilation[0], dw = a->dilation[1];
    const int64_t groups = a->groups;
    if (groups < 1)
        return sb_fail(err, SB_ERR_ARGUMENT, SB_E_CONV_GROUPS);
    if (sh < 1 || sw < 1)
        return sb_fail_v(err, SB_ERR_ARGUMENT, SB_E_CONV_STRIDE, 2, sh, sw, 0, 0);
    if (ph < 0 || pw < 0)
        return sb_fail_v(err, SB_ERR_ARGUMENT, SB_E_CONV_PADDING, 2, ph, pw, 0, 0);
    /* torch lists a zero dilation, not a negative one */
    if (dh < 0 || dw < 0)
        return sb_fail(err, SB_ERR_ARGUMENT, SB_E_CONV_DILATION);
    if (dh == 0 || dw == 0)
        return sb_fail_v(err, SB_ERR_ARGUMENT, SB_E_CONV_DILATION_ZERO, 2, dh, dw, 0, 0);
    if (wd[2] < 1 || wd[3] < 1)
        return sb_fail_v(err, SB_ERR_ARGUMENT, SB_E_CONV_KERNEL_SIZE, 2, wd[2], wd[3], 0, 0);
    const int64_t eh = a->padding_extra[0], ew = a->padding_extra[1];
    {
        const int64_t params[9] = {sh, sw, ph, pw, dh, dw, wd[2], wd[3], SB_CONV_PARAM_MAX};
        for (int i = 0; i < 8; i++)
            if (params[i] > SB_CONV_PARAM_MAX) {
                sb_fail(err, SB_ERR_ARGUMENT, SB_E_CONV_PARAM_MAX);
                sb_err_values(err, 9, params);
                return SB_ERR_ARGUMENT;
            }
    }
    if (eh < 0 || ew < 0 || eh > SB_CONV_PARAM_MAX || ew > SB_CONV_PARAM_MAX ||
        (fused(a) && (a->in_scale != NULL || a->in_relu) && (eh > 0 || ew > 0)))
        return sb_fail(err, SB_ERR_ARGUMENT, SB_E_CONV_PADDING_EXTRA);
    if (wd[0] % groups != 0) {
        sb_fail_v(err, SB_ERR_SHAPE, SB_E_CONV_GROUPS_DIVIDE, 1, groups, 0, 0, 0);
        sb_err_shape(err, 0, w);
        return SB_ERR_SHAPE;
    }
    if (wd[0] == 0) {
        sb_fail_v(err, SB_ERR_SHAPE, SB_E_CONV_NO_OUT_CHANNELS, 1, groups, 0, 0, 0);
        sb_err_shape(err, 0, w);
        return SB_ERR_SHAPE;
    }
    if (xc != wd[1] * groups) {
        sb_fail_v(err, SB_ERR_SHAPE, SB_E_CONV_CHANNELS, 3, groups, wd[1] * groups, xc, 0);
        sb_err_shape(err, 0, w);
        sb_err_shape(err, 1, x);
        if (!batched) {
            /* torch reports the unbatched input with its batch axis added */
            const sb_tensor batched_view = {NULL, x->dtype, 4, {1, xc, xh, xw}, xc * xh * xw};
            sb_err_shape(err, 1, &batched_view);
        }
        return SB_ERR_SHAPE;
    }
    if (b != NULL && (b->ndim != 1 || b->dims[0] != wd[0])) {
        sb_fail_v(err, SB_ERR_SHAPE, SB_E_CONV_BIAS, 1, wd[0], 0, 0, 0);
        sb_err_shape(err, 0, w);
        sb_err_shape(err, 1, b);
        return SB_ERR_SHAPE;
    }
    const int64_t hin = xh + eh, win = xw + ew;
    const int64_t oh = sb_conv2d_out_size(hin, wd[2], sh, ph, dh);
    const int64_t ow = sb_conv2d_out_size(win, wd[3], sw, pw, dw);
    if (oh <= 0 || ow <= 0)
        return sb_fail_v(err, SB_ERR_SHAPE, SB_E_CONV_TOO_SMALL, 4, hin + 2 * ph,
                         win + 2 * pw, (wd[2] - 1) * dh + 1, (wd[3] - 1) * dw + 1);
    if ((xh == 0 || xw == 0) && xn > 0 && xc > 0) {
        sb_fail(err, SB_ERR_SHAPE, SB_E_CONV_EMPTY_PLANE);
        sb_err_shape(err, 0, x);
        return SB_ERR_SHAPE;
    }
    /* the weight's dtype, after the shapes; torch computes an empty batch or
     * an input without channels whatever the weight's dtype (and so does
     * the run, which reads nothing then) */
    const int empty = xn == 0 || xc == 0;
    if (!empty && w->dtype != dt)
        return sb_fail_dtype(err,
                             torch_uses_mkldnn(a, xn, xc, hin, win, wd)
                                 ? SB_E_CONV_WEIGHT_DTYPE_MKLDNN
                                 : SB_E_CONV_WEIGHT_DTYPE,
                             "weight", dt, w->dtype);
    /* torch: an input with no channels gives an output with no channels
     * (whatever the weight's C_out), not C_out maps of bias */
    const int64_t oc = xc == 0 ? 0 : wd[0];
    plan->out_ndim = x->ndim;
    if (batched) {
        plan->out_dims[0] = xn;
        plan->out_dims[1] = oc;
        plan->out_dims[2] = oh;
        plan->out_dims[3] = ow;
    } else {
        plan->out_dims[0] = oc;
        plan->out_dims[1] = oh;
        plan->out_dims[2] = ow;
    }

    sb_status status = check_transform(a, xc, err);
    if (status != SB_OK)
        return status;
    if (a->residual != NULL) {
        const int64_t full[4] = {xn, oc, oh, ow};
        if (!sb_same_dims(a->residual, 4, full)) {
            sb_fail_v(err, SB_ERR_SHAPE, SB_E_CONV_RESIDUAL, 4, xn, oc, oh, ow);
            sb_err_shape(err, 0, a->residual);
            return SB_ERR_SHAPE;
        }
    }
    /* the operator's own arrays have the input's dtype too */
    if ((status = sb_check_same_dtype(err, a->in_scale, dt, "in_scale")) != SB_OK ||
        (status = sb_check_same_dtype(err, a->in_shift, dt, "in_shift")) != SB_OK ||
        (status = sb_check_same_dtype(err, a->residual, dt, "residual")) != SB_OK)
        return status;
    if (!empty && a->packed != NULL && a->packed_dtype != dt)
        return sb_fail_dtype(err, SB_E_DTYPE_MISMATCH, "packed", dt, a->packed_dtype);
    if (a->reference && (fused(a) || a->packed != NULL))
        return sb_fail(err, SB_ERR_ARGUMENT, SB_E_CONV_REFERENCE_FUSED);
    const int64_t packed_numel =
        SB_DT_CALL(dt, sb_conv2d, _packed_weights_elems, wd[0], wd[1], wd[2], wd[3], groups);
    /* (packed weights of another dtype get here only for an empty input,
     * whose run reads no weight) */
    if (!a->reference && a->packed != NULL && a->packed_dtype == dt &&
        a->packed_numel != packed_numel)
        return sb_fail(err, SB_ERR_SHAPE, SB_E_PACKED);

    plan->params = (sb_conv2d_params){wd[2], wd[3], sh, sw, ph, pw, dh, dw, groups};
    plan->in_map = sb_fmap_of(x);
    plan->staged_map = plan->in_map;
    plan->staged_map.h = hin;
    plan->staged_map.w = win;
    if (eh > 0 || ew > 0)
        plan->staged_map.batch_stride = xc * hin * win;
    plan->out_map = (sb_fmap){xn, oc, oh, ow, oc * oh * ow};
    plan->packed_numel = packed_numel;
    if (a->out_blocked) {
        plan->out_ndim = 5;
        plan->out_map.batch_stride = sb_blocked_dims(plan->out_dims, &plan->out_map, dt);
    }

    sb_layout layout = {0};
    plan->direct = a->reference;
    int64_t kernel_elems = 0;
    if (!plan->direct) {
        sb_conv2d_fusion fusion;
        fusion_of(&fusion, a);
        kernel_elems = SB_DT_CALL(dt, sb_conv2d, _packed_workspace_elems, &plan->out_map,
                                  &plan->staged_map, &plan->params, &fusion, a->num_threads);
        if (kernel_elems == 0 && xn > 0 && oc > 0) {
            /* Valid arguments whose staged input would be too large to
             * address: the direct loop needs no workspace and computes the
             * same convolution; a fused call has no such loop. */
            if (fused(a)) {
                const int64_t params[6] = {sh, sw, ph, pw, dh, dw};
                sb_fail(err, SB_ERR_ARGUMENT, SB_E_CONV_FUSED_TOO_LARGE);
                sb_err_values(err, 6, params);
                return SB_ERR_ARGUMENT;
            }
            plan->direct = 1;
        }
    }
    if (!plan->direct && a->packed == NULL)
        plan->packed_offset = sb_layout_add(&layout, sb_elem_bytes(dt, packed_numel));
    if (eh > 0 || ew > 0)
        plan->staged_offset = sb_layout_add(
            &layout, sb_elem_bytes(dt, sb_sat_numel(4, (const int64_t[4]){xn, xc, hin, win})));
    if (!plan->direct)
        plan->kernel_offset = sb_layout_add(&layout, sb_elem_bytes(dt, kernel_elems));
    plan->workspace_bytes = layout.total;
    return SB_OK;
}

/* The input with padding_extra zero rows and columns after it, in elements
 * of `size` bytes (all-zero bytes are 0.0 in float32 and float64). */
static void stage_extra_padding(void *dst, const sb_fmap *staged, const void *src,
                                const sb_fmap *in, size_t size)
{
    for (int64_t n = 0; n < in->n; n++)
        for (int64_t c = 0; c < in->c; c++) {
            const char *s = (const char *)src + (n * in->batch_stride + c * in->h * in->w) * size;
            char *d = (char *)dst + (n * staged->batch_stride + c * staged->h * staged->w) * size;
            for (int64_t y = 0; y < staged->h; y++) {
                char *row = d + y * staged->w * size;
                int64_t x0 = 0;
                if (y < in->h) {
                    memcpy(row, s + y * in->w * size, (size_t)in->w * size);
                    x0 = in->w;
                }
                memset(row + x0 * size, 0, (size_t)(staged->w - x0) * size);
            }
        }
}

sb_status sb_op_conv2d_run(const sb_conv2d_plan *plan, const sb_conv2d_args *args,
                           const sb_tensor *out, void *workspace)
{
    sb_conv2d_args local;
    sb_tensor views[3];
    sb_error err;
    memset(&err, 0, sizeof err);
    if (blocked_args(&local, views, args, &err) != SB_OK)
        return SB_ERR_SHAPE; /* (the plan checked these arguments) */
    const sb_conv2d_args *a = &local;
    if (a->out_blocked) {
        if (sb_blocked_view(&views[2], out, plan->out_map.c, "out", &err) != SB_OK)
            return SB_ERR_SHAPE;
        out = &views[2];
    }
    sb_fmap out_map = sb_fmap_of(out);
    if (out_map.n != plan->out_map.n || out_map.c != plan->out_map.c ||
        out_map.h != plan->out_map.h || out_map.w != plan->out_map.w)
        return SB_ERR_SHAPE;
    /* an empty output: nothing to compute (and the weight, whose dtype the
     * plan did not check then, is not read) */
    if (out_map.n == 0 || out_map.c == 0)
        return SB_OK;
    const sb_dtype dt = a->input->dtype;
    const void *in_data = a->input->data;
    const sb_fmap *in_map = &plan->in_map;
    if (plan->staged_map.h != in_map->h || plan->staged_map.w != in_map->w) {
        void *staged = sb_at(workspace, plan->staged_offset);
        stage_extra_padding(staged, &plan->staged_map, in_data, in_map, sb_dtype_size(dt));
        in_data = staged;
        in_map = &plan->staged_map;
    }
    void *out_data = out->data;
    const void *bias = sb_data_or_null(a->bias);
    if (plan->direct)
        return SB_DT_CALL(dt, sb_conv2d, __ref, out_data, &out_map, in_data, in_map,
                          a->weight->data, bias, &plan->params);
    const void *packed = a->packed;
    if (packed == NULL) {
        void *own = sb_at(workspace, plan->packed_offset);
        const int64_t *wd = a->weight->dims;
        sb_status status = SB_DT_CALL(dt, sb_conv2d, _pack_weights, own, a->weight->data, bias,
                                      NULL, NULL, wd[0], wd[1], wd[2], wd[3], a->groups);
        if (status != SB_OK)
            return status;
        packed = own;
    }
    sb_conv2d_fusion fusion;
    fusion_of(&fusion, a);
    return SB_DT_CALL(dt, sb_conv2d, _packed, out_data, &out_map, in_data, in_map, packed,
                      &plan->params, &fusion, sb_at(workspace, plan->kernel_offset),
                      a->num_threads);
}

/* ---- packing -------------------------------------------------------- */

sb_status sb_op_conv2d_pack_plan(sb_conv2d_pack_plan *plan, const sb_conv2d_pack_args *a,
                                 sb_error *err)
{
    memset(plan, 0, sizeof *plan);
    const sb_tensor *w = a->weight;
    if (!sb_check_dtype(err, w))
        return SB_ERR_ARGUMENT;
    const sb_dtype dt = w->dtype;
    if (w->ndim != 4 || a->groups < 1 || w->dims[0] % a->groups != 0) {
        sb_fail_v(err, SB_ERR_SHAPE, SB_E_CONV_PACK_WEIGHT, 1, a->groups, 0, 0, 0);
        sb_err_shape(err, 0, w);
        return SB_ERR_SHAPE;
    }
    const int64_t *wd = w->dims;
    if (wd[2] < 1 || wd[3] < 1)
        return sb_fail_v(err, SB_ERR_ARGUMENT, SB_E_CONV_KERNEL_SIZE, 2, wd[2], wd[3], 0, 0);
    sb_status status = SB_OK;
    if (a->bias != NULL && (a->bias->ndim != 1 || a->bias->dims[0] != wd[0])) {
        sb_fail_v(err, SB_ERR_SHAPE, SB_E_CONV_BIAS, 1, wd[0], 0, 0, 0);
        sb_err_shape(err, 0, w);
        sb_err_shape(err, 1, a->bias);
        return SB_ERR_SHAPE;
    }
    if (!sb_check_dtype(err, a->bias))
        return SB_ERR_ARGUMENT;
    /* torch's conv2d on such a weight and bias: the bias's dtype check */
    if (!sb_dtype_is(a->bias, dt))
        return sb_fail_dtype(err, SB_E_CONV_BIAS_DTYPE, "bias", dt, a->bias->dtype);
    sb_layout layout = {0};
    if (a->fold != NULL) {
        /* the eval-mode BatchNorm folded in: C_out channels, on the
         * convolution's output (of the weight's dtype) */
        status = sb_bn_state_check(a->fold, wd[0], 0, NULL, dt, err);
        if (status != SB_OK) {
            err->layer = "BatchNorm2d";
            return status;
        }
        sb_layout_add(&layout, sb_elem_bytes(dt, sb_sat_mul(2, wd[0])));
    }
    plan->packed_numel = SB_DT_CALL(dt, sb_conv2d, _packed_weights_elems, wd[0], wd[1], wd[2],
                                    wd[3], a->groups);
    plan->workspace_bytes = layout.total;
    return SB_OK;
}

sb_status sb_op_conv2d_pack_run(const sb_conv2d_pack_plan *plan,
                                const sb_conv2d_pack_args *a, void *packed, void *workspace)
{
    const int64_t *wd = a->weight->dims;
    const sb_dtype dt = a->weight->dtype;
    void *scale = NULL, *shift = NULL;
    if (a->fold != NULL) {
        scale = workspace;
        shift = sb_elem(scale, dt, wd[0]);
        sb_status status = sb_bn_transform(scale, shift, a->fold, NULL, NULL, 0, NULL, dt);
        if (status != SB_OK)
            return status;
    }
    return SB_DT_CALL(dt, sb_conv2d, _pack_weights, packed, a->weight->data,
                      sb_data_or_null(a->bias), scale, shift, wd[0], wd[1], wd[2], wd[3],
                      a->groups);
}

void sb_block_conv_args(sb_conv2d_args *args, const sb_block_conv *conv,
                        const sb_tensor *input, const sb_tensor *scale,
                        const sb_tensor *shift, int num_threads)
{
    memset(args, 0, sizeof *args);
    args->input = input;
    args->weight = conv->weight;
    args->packed = conv->packed;
    args->packed_numel = conv->packed_numel;
    args->packed_dtype = conv->packed_dtype;
    for (int i = 0; i < 2; i++) {
        args->stride[i] = conv->stride[i];
        args->padding[i] = conv->padding[i];
        args->dilation[i] = conv->dilation[i];
    }
    args->groups = conv->groups;
    args->num_threads = num_threads;
    args->in_scale = scale;
    args->in_shift = shift;
    args->in_relu = scale != NULL;
}
