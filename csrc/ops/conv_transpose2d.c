/*
 * conv_transpose2d.c -- the ConvTranspose2d operator:
 * torch.nn.functional.conv_transpose2d (zero padding), and the packing of
 * its weights.
 *
 * The run is a 1x1 convolution on the packed GEMM path (the kernels of
 * conv2d, threads included) of the input with torch's weight rearranged to
 * (C_out*KH*KW, C_in/G, 1, 1), into a column buffer (N, C_out*KH*KW, H, W)
 * in the workspace, then the gather sb_conv_transpose2d_<dt>_col2im, which
 * sums each output's taps in torch's order and adds the bias
 * (conv_transpose2d.inc). The layer packs the rearranged weights once per
 * weight change (sb_op_conv_transpose2d_pack_*); without them the call
 * packs into the workspace.
 *
 * Validation follows torch 2.13 in its order: the functional's rank check,
 * check_shape_forward for a transposed convolution (groups, the weight's
 * rank, negative padding and output_padding, stride, negative dilation,
 * the weight against groups and the input's channels, the bias), the empty
 * image plane, and then -- for a batch that is not empty, which torch
 * computes from the sizes alone -- the backend's checks. A float32 call
 * that torch gives oneDNN (torch_uses_mkldnn) checks the weight's and the
 * bias's dtypes first, with oneDNN's wording; every other call has
 * slow_conv_transpose2d_shape_check's (kernel size, zero dilation,
 * output_padding against stride and dilation, an empty weight, an output
 * too small), then the weight's dtype. Where oneDNN would fail on one of
 * the slow path's checks with a message of its own ("could not create a
 * primitive descriptor ..."), skipblocks gives the slow path's message.
 * A bias of the other dtype outside oneDNN is what torch's slow path
 * accepts: the output in the input's dtype, the bias added in double and
 * rounded once.
 *
 * Not done: padding modes other than zeros, channels-last, backward.
 */
#include "ops_internal.h"

/* Whether torch 2.13 gives this float32 transposed convolution to oneDNN
 * (ConvParams::use_mkldnn: never with an output_padding not smaller than
 * the stride, else conv2d's rule on the batched input and the weight's
 * last two sizes). torch's rule reads its own thread count; the operator
 * reads skipblocks', which has the same default. */
static int torch_uses_mkldnn(const sb_conv_transpose2d_args *a, int64_t n, int64_t c,
                             int64_t h, int64_t w, const int64_t *wd)
{
    if (a->input->dtype != SB_DTYPE_F32)
        return 0;
    if (a->output_padding[0] >= a->stride[0] || a->output_padding[1] >= a->stride[1])
        return 0;
    const int strided = a->stride[0] != 1 || a->stride[1] != 1;
    const int dilated = a->dilation[0] != 1 || a->dilation[1] != 1;
    const int64_t numel = sb_sat_mul(sb_sat_mul(n, c), sb_sat_mul(h, w));
    return (strided || dilated || n >= 16 || wd[3] != 1 || wd[2] != 1 || a->num_threads > 1) &&
           (a->groups > 1 || (wd[3] > 3 && wd[2] > 3) || n > 1 || numel > 20480);
}

/* torch's output size on one axis (may be <= 0); in is at most
 * SB_CONVT_IN_MAX, the parameters at most SB_CONV_PARAM_MAX. */
#define SB_CONVT_IN_MAX ((int64_t)1 << 30)
static int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, int64_t op)
{
    return (in - 1) * s - 2 * p + d * (k - 1) + op + 1;
}

sb_status sb_op_conv_transpose2d_plan(sb_conv_transpose2d_plan *plan,
                                      const sb_conv_transpose2d_args *a, sb_error *err)
{
    memset(plan, 0, sizeof *plan);
    const sb_tensor *x = a->input, *w = a->weight, *b = a->bias;
    if (!sb_check_dtype(err, x) || !sb_check_dtype(err, w) || !sb_check_dtype(err, b))
        return SB_ERR_ARGUMENT;
    const sb_dtype dt = x->dtype;
    if (x->ndim != 3 && x->ndim != 4) {
        sb_fail(err, SB_ERR_SHAPE, SB_E_CONVT_INPUT_NDIM);
        sb_err_shape(err, 0, x);
        return SB_ERR_SHAPE;
    }
    const int64_t groups = a->groups;
    if (groups < 1)
        return sb_fail(err, SB_ERR_ARGUMENT, SB_E_CONV_GROUPS);
    const int64_t sh = a->stride[0], sw = a->stride[1], ph = a->padding[0],
                  pw = a->padding[1], oph = a->output_padding[0], opw = a->output_padding[1],
                  dh = a->dilation[0], dw = a->dilation[1];
    if (w->ndim < 3)
        return sb_fail(err, SB_ERR_SHAPE, SB_E_CONVT_WEIGHT_FEW_DIMS);
    if (w->ndim != 4)
        return sb_fail_v(err, SB_ERR_SHAPE, SB_E_CONVT_WEIGHT_NDIM, 3, w->ndim - 2, sh, sw, 0);
    if (ph < 0 || pw < 0)
        return sb_fail(err, SB_ERR_ARGUMENT, SB_E_CONV_PADDING);
    if (oph < 0 || opw < 0)
        return sb_fail(err, SB_ERR_ARGUMENT, SB_E_CONVT_OUTPUT_PADDING_NEG);
    if (sh < 1 || sw < 1)
        return sb_fail(err, SB_ERR_ARGUMENT, SB_E_CONV_STRIDE);
    if (dh < 0 || dw < 0)
        return sb_fail(err, SB_ERR_ARGUMENT, SB_E_CONV_DILATION);
    const int64_t *wd = w->dims;
    {
        /* skipblocks' limit (conv2d's); output_padding is below the stride or
         * the dilation wherever it matters */
        const int64_t params[9] = {sh, sw, ph, pw, dh, dw, wd[2], wd[3], SB_CONV_PARAM_MAX};
        int over = oph > SB_CONV_PARAM_MAX || opw > SB_CONV_PARAM_MAX;
        for (int i = 0; i < 8; i++)
            over |= params[i] > SB_CONV_PARAM_MAX;
        if (over) {
            sb_fail(err, SB_ERR_ARGUMENT, SB_E_CONV_PARAM_MAX);
            sb_err_values(err, 9, params);
            return SB_ERR_ARGUMENT;
        }
    }
    /* a transposed weight's dim 0 is C_in: at least groups, then divisible */
    if (wd[0] < groups) {
        sb_fail_v(err, SB_ERR_SHAPE, SB_E_CONVT_WEIGHT_GROUPS, 1, groups, 0, 0, 0);
        sb_err_shape(err, 0, w);
        return SB_ERR_SHAPE;
    }
    if (wd[0] % groups != 0) {
        sb_fail_v(err, SB_ERR_SHAPE, SB_E_CONV_GROUPS_DIVIDE, 1, groups, 0, 0, 0);
        sb_err_shape(err, 0, w);
        return SB_ERR_SHAPE;
    }
    const int batched = x->ndim == 4;
    const int64_t xn = batched ? x->dims[0] : 1, xc = x->dims[batched],
                  xh = x->dims[batched + 1], xw = x->dims[batched + 2];
    /* torch reports the input as its backend sees it: batched */
    const sb_tensor batched_view = {NULL, dt, 4, {xn, xc, xh, xw}, xc * xh * xw};
    if (xc != wd[0]) {
        sb_fail_v(err, SB_ERR_SHAPE, SB_E_CONVT_CHANNELS, 2, wd[0], xc, 0, 0);
        sb_err_shape(err, 0, w);
        sb_err_shape(err, 1, &batched_view);
        return SB_ERR_SHAPE;
    }
    const int64_t oc = sb_sat_mul(wd[1], groups);
    if (b != NULL && (b->ndim != 1 || b->dims[0] != oc)) {
        sb_fail_v(err, SB_ERR_SHAPE, SB_E_CONVT_BIAS, 1, oc, 0, 0, 0);
        sb_err_shape(err, 0, w);
        sb_err_shape(err, 1, b);
        return SB_ERR_SHAPE;
    }
    if ((xh == 0 || xw == 0) && xn > 0) {
        sb_fail(err, SB_ERR_SHAPE, SB_E_CONV_EMPTY_PLANE);
        sb_err_shape(err, 0, &batched_view);
        return SB_ERR_SHAPE;
    }
    if (xh > SB_CONVT_IN_MAX || xw > SB_CONVT_IN_MAX) {
        const int64_t params[9] = {sh, sw, ph, pw, dh, dw, wd[2], wd[3], SB_CONV_PARAM_MAX};
        sb_fail(err, SB_ERR_ARGUMENT, SB_E_CONV_PARAM_MAX);
        sb_err_values(err, 9, params);
        return SB_ERR_ARGUMENT;
    }
    const int64_t oh = out_size(xh, wd[2], sh, ph, dh, oph);
    const int64_t ow = out_size(xw, wd[3], sw, pw, dw, opw);
    plan->out_ndim = x->ndim;
    const int64_t full[4] = {xn, oc, oh, ow};
    if (xn == 0) {
        /* torch computes an empty batch from the sizes alone: no check of
         * the backend's, no dtype check, only a negative size fails */
        for (int i = 2; i < 4; i++)
            if (full[i] < 0) {
                const sb_tensor shape = {NULL, dt, 4, {xn, oc, oh, ow}, 0};
                sb_fail_v(err, SB_ERR_SHAPE, SB_E_CONVT_NEGATIVE_SHAPE, 2, full[i], i, 0, 0);
                sb_err_shape(err, 0, &shape);
                return SB_ERR_SHAPE;
            }
    } else {
        const int mkldnn = torch_uses_mkldnn(a, xn, xc, xh, xw, wd);
        if (mkldnn && w->dtype != dt)
            return sb_fail_dtype(err, SB_E_CONV_WEIGHT_DTYPE_MKLDNN, "weight", dt, w->dtype);
        if (mkldnn && !sb_dtype_is(b, dt))
            return sb_fail_dtype(err, SB_E_CONVT_BIAS_DTYPE_MKLDNN, "bias", dt, b->dtype);
        if (wd[2] < 1 || wd[3] < 1)
            return sb_fail_v(err, SB_ERR_ARGUMENT, SB_E_CONV_KERNEL_SIZE, 2, wd[2], wd[3], 0, 0);
        if (dh == 0 || dw == 0)
            return sb_fail_v(err, SB_ERR_ARGUMENT, SB_E_CONVT_DILATION_ZERO, 2, dh, dw, 0, 0);
        if ((oph >= sh && oph >= dh) || (opw >= sw && opw >= dw)) {
            const int64_t values[6] = {oph, opw, sh, sw, dh, dw};
            sb_fail(err, SB_ERR_ARGUMENT, SB_E_CONVT_OUTPUT_PADDING);
            sb_err_values(err, 6, values);
            return SB_ERR_ARGUMENT;
        }
        if (wd[1] == 0) {
            sb_fail(err, SB_ERR_SHAPE, SB_E_CONVT_WEIGHT_EMPTY);
            sb_err_shape(err, 0, w);
            return SB_ERR_SHAPE;
        }
        /* torch's slow path refuses an empty output; its float32 oneDNN
         * path returns one (and fails, in its own words, below zero) */
        if (oh < 1 || ow < 1) {
            if (!(mkldnn && oh >= 0 && ow >= 0))
                return sb_fail_v(err, SB_ERR_SHAPE, SB_E_CONVT_TOO_SMALL, 4, xh, xw, oh, ow);
        }
        if (!mkldnn && w->dtype != dt)
            return sb_fail_dtype(err, SB_E_CONV_WEIGHT_DTYPE, "weight", dt, w->dtype);
        if (a->packed != NULL && a->packed_dtype != dt)
            return sb_fail_dtype(err, SB_E_DTYPE_MISMATCH, "packed", dt, a->packed_dtype);
    }
    for (int i = 0; i < 4; i++)
        plan->out_dims[i] = full[i];
    if (!batched)
        for (int i = 0; i < 3; i++)
            plan->out_dims[i] = full[i + 1];
    plan->out_map = (sb_fmap){xn, oc, oh, ow, sb_sat_numel(3, (const int64_t[3]){oc, oh, ow})};
    if (xn == 0 || oc == 0 || oh == 0 || ow == 0)
        return SB_OK; /* nothing to compute (and nothing is read) */

    plan->bias_after = b != NULL && b->dtype != dt;
    const int64_t k2 = wd[2] * wd[3], rows = sb_sat_mul(oc, k2);
    plan->params = (sb_conv2d_params){wd[2], wd[3], sh, sw, ph, pw, dh, dw, groups};
    plan->gemm_params = (sb_conv2d_params){1, 1, 1, 1, 0, 0, 1, 1, groups};
    plan->in_map = sb_fmap_of(x);
    plan->col_map = (sb_fmap){xn, rows, xh, xw, sb_sat_numel(3, (const int64_t[3]){rows, xh, xw})};
    const int64_t packed_numel =
        SB_DT_CALL(dt, sb_conv2d, _packed_weights_elems, rows, xc / groups, 1, 1, groups);
    plan->packed_numel = packed_numel;
    if (a->reference) {
        if (a->packed != NULL)
            return sb_fail(err, SB_ERR_ARGUMENT, SB_E_CONV_REFERENCE_FUSED);
        return SB_OK;
    }
    if (a->packed != NULL && a->packed_numel != packed_numel)
        return sb_fail(err, SB_ERR_SHAPE, SB_E_PACKED);
    sb_layout layout = {0};
    if (a->packed == NULL) {
        plan->packed_offset = sb_layout_add(&layout, sb_elem_bytes(dt, packed_numel));
        plan->rearranged_offset =
            sb_layout_add(&layout, sb_elem_bytes(dt, sb_sat_mul(xc, sb_sat_mul(wd[1], k2))));
    }
    plan->col_offset = sb_layout_add(&layout, sb_elem_bytes(dt, sb_sat_mul(xn, plan->col_map.batch_stride)));
    const int64_t kernel_elems =
        SB_DT_CALL(dt, sb_conv2d, _packed_workspace_elems, &plan->col_map, &plan->in_map,
                   &plan->gemm_params, NULL, a->num_threads);
    if (kernel_elems == 0) {
        /* a column buffer too large to address: no workspace can hold it */
        plan->workspace_bytes = SIZE_MAX;
        return SB_OK;
    }
    plan->kernel_offset = sb_layout_add(&layout, sb_elem_bytes(dt, kernel_elems));
    plan->workspace_bytes = layout.total;
    return SB_OK;
}

sb_status sb_op_conv_transpose2d_run(const sb_conv_transpose2d_plan *plan,
                                     const sb_conv_transpose2d_args *a, const sb_tensor *out,
                                     void *workspace)
{
    sb_fmap out_map = sb_fmap_of(out);
    if (out_map.n != plan->out_map.n || out_map.c != plan->out_map.c ||
        out_map.h != plan->out_map.h || out_map.w != plan->out_map.w)
        return SB_ERR_SHAPE;
    if (out_map.n == 0 || out_map.c == 0 || out_map.h == 0 || out_map.w == 0)
        return SB_OK;
    const sb_dtype dt = a->input->dtype;
    const void *bias = plan->bias_after ? NULL : sb_data_or_null(a->bias);
    sb_status status;
    if (a->reference) {
        status = SB_DT_CALL(dt, sb_conv_transpose2d, __ref, out->data, &out_map,
                            a->input->data, &plan->in_map, a->weight->data, bias,
                            &plan->params);
    } else {
        const void *packed = a->packed;
        const int64_t *wd = a->weight->dims;
        if (packed == NULL) {
            void *own = sb_at(workspace, plan->packed_offset);
            void *rearranged = sb_at(workspace, plan->rearranged_offset);
            status = SB_DT_CALL(dt, sb_conv_transpose2d_gemm_weights, , rearranged,
                                a->weight->data, wd[0], wd[1], wd[2], wd[3], a->groups);
            if (status != SB_OK)
                return status;
            status = SB_DT_CALL(dt, sb_conv2d, _pack_weights, own, rearranged, NULL, NULL,
                                NULL, plan->col_map.c, wd[0] / a->groups, 1, 1, a->groups);
            if (status != SB_OK)
                return status;
            packed = own;
        }
        void *col = sb_at(workspace, plan->col_offset);
        status = SB_DT_CALL(dt, sb_conv2d, _packed, col, &plan->col_map, a->input->data,
                            &plan->in_map, packed, &plan->gemm_params, NULL,
                            sb_at(workspace, plan->kernel_offset), a->num_threads);
        if (status != SB_OK)
            return status;
        status = SB_DT_CALL(dt, sb_conv_transpose2d_col2im, , out->data, &out_map, col,
                            &plan->col_map, bias, &plan->params);
    }
    if (status != SB_OK || !plan->bias_after)
        return status;
    /* a bias of the other dtype: added to the finished sums in double and
     * rounded once, as torch's slow path adds it */
    const int64_t plane = out_map.h * out_map.w;
    for (int64_t n = 0; n < out_map.n; n++)
        for (int64_t c = 0; c < out_map.c; c++) {
            const double bc = sb_load(a->bias->data, a->bias->dtype, c);
            const int64_t base = n * out_map.batch_stride + c * plane;
            for (int64_t i = 0; i < plane; i++)
                sb_store(out->data, dt, base + i, sb_load(out->data, dt, base + i) + bc);
        }
    return SB_OK;
}

/* ---- packing -------------------------------------------------------- */

sb_status sb_op_conv_transpose2d_pack_plan(sb_conv_transpose2d_pack_plan *plan,
                                           const sb_conv_transpose2d_pack_args *a,
                                           sb_error *err)
{
    memset(plan, 0, sizeof *plan);
    const sb_tensor *w = a->weight;
    if (!sb_check_dtype(err, w))
        return SB_ERR_ARGUMENT;
    if (w->ndim != 4 || a->groups < 1 || w->dims[0] % a->groups != 0 ||
        w->dims[0] < a->groups || w->dims[2] < 1 || w->dims[3] < 1) {
        sb_fail_v(err, SB_ERR_SHAPE, SB_E_CONVT_PACK_WEIGHT, 1, a->groups, 0, 0, 0);
        sb_err_shape(err, 0, w);
        return SB_ERR_SHAPE;
    }
    const int64_t *wd = w->dims;
    const int64_t k2 = wd[2] * wd[3];
    const int64_t rows = sb_sat_mul(sb_sat_mul(wd[1], a->groups), k2);
    plan->packed_numel = SB_DT_CALL(w->dtype, sb_conv2d, _packed_weights_elems, rows,
                                    wd[0] / a->groups, 1, 1, a->groups);
    sb_layout layout = {0};
    sb_layout_add(&layout, sb_elem_bytes(w->dtype, sb_sat_mul(wd[0], sb_sat_mul(wd[1], k2))));
    plan->workspace_bytes = layout.total;
    return SB_OK;
}

sb_status sb_op_conv_transpose2d_pack_run(const sb_conv_transpose2d_pack_plan *plan,
                                          const sb_conv_transpose2d_pack_args *a,
                                          void *packed, void *workspace)
{
    const int64_t *wd = a->weight->dims;
    const sb_dtype dt = a->weight->dtype;
    sb_status status = SB_DT_CALL(dt, sb_conv_transpose2d_gemm_weights, , workspace,
                                  a->weight->data, wd[0], wd[1], wd[2], wd[3], a->groups);
    if (status != SB_OK)
        return status;
    return SB_DT_CALL(dt, sb_conv2d, _pack_weights, packed, workspace, NULL, NULL, NULL,
                      wd[1] * a->groups * wd[2] * wd[3], wd[0] / a->groups, 1, 1, a->groups);
}
