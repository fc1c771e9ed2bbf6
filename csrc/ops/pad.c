/*
 * pad.c -- the pad operator: torch.nn.functional.pad(input, pad, mode,
 * value) for mode="constant" (torch's constant_pad_nd), on any rank.
 *
 * The plan makes torch's checks in torch's order (aten/src/ATen/native/
 * PadNd.cpp): _pad_enum's length checks, the value argument of the other
 * modes (a value other than 0), then constant_pad_nd's -- each negative pad is a narrow of the
 * input (dims from the first padded one on, the start before the end),
 * whose length must not be negative; then, unless every pad is <= 0 (torch
 * then returns the narrowed clone and writes no value), each output size
 * in + before + after must not be negative (it overflows int64 only for
 * absurd pads: torch's message then), and the value must fit the input's
 * dtype (c10's Scalar conversion: a finite double beyond FLT_MAX does not
 * fit float; inf and NaN do).
 *
 * The other modes pass the same argument checks and then have no kernel
 * (plan->supported = 0). The run merges each unpadded dim into the dim
 * outside it (a dim of d elements inside an unpadded group of g is one dim
 * of d*g with its pads times g), so the kernel walks few, long rows.
 */
#include <float.h>
#include <math.h>

#include "ops_internal.h"

/* *sum += v unless that overflows int64 (then 0, *sum unchanged). */
static int add_ok(int64_t *sum, int64_t v)
{
    if ((v > 0 && *sum > INT64_MAX - v) || (v < 0 && *sum < INT64_MIN - v))
        return 0;
    *sum += v;
    return 1;
}

sb_status sb_op_pad_plan(sb_pad_plan *plan, const sb_pad_args *a, sb_error *err)
{
    memset(plan, 0, sizeof *plan);
    const sb_tensor *x = a->input;
    if (!sb_check_dtype(err, x))
        return SB_ERR_ARGUMENT;
    const int ndim = x->ndim;
    if (a->npad % 2 != 0)
        return sb_fail(err, SB_ERR_ARGUMENT, SB_E_PAD_ODD);
    if (a->npad > 2 * (int64_t)ndim)
        return sb_fail_v(err, SB_ERR_ARGUMENT, SB_E_PAD_TOO_LONG, 2, a->npad, ndim, 0, 0);
    if (a->mode != SB_PAD_CONSTANT) {
        if (a->has_value && a->value != 0.0) { /* torch 2.13 lets 0 through */
            static const char *names[] = {"constant", "reflect", "replicate", "circular"};
            sb_fail(err, SB_ERR_ARGUMENT, SB_E_PAD_MODE_VALUE);
            sb_err_arg(err, names[a->mode]);
            return SB_ERR_ARGUMENT;
        }
        plan->supported = 0;
        return SB_OK;
    }
    plan->supported = 1;
    /* before/after of every dim; dims before the first padded one get 0 */
    int64_t before[SB_MAX_DIMS], after[SB_MAX_DIMS];
    const int first = ndim - (int)(a->npad / 2);
    int positive = 0;
    for (int d = 0; d < ndim; d++) {
        const int64_t k = 2 * (int64_t)(ndim - 1 - d);
        before[d] = d >= first ? a->pad[k] : 0;
        after[d] = d >= first ? a->pad[k + 1] : 0;
        positive |= before[d] > 0 || after[d] > 0;
    }
    /* torch's narrows: the start crop, then the end crop of what is left */
    for (int d = first; d < ndim; d++) {
        int64_t size = x->dims[d];
        if (before[d] < 0) {
            if (size + before[d] < 0)
                return sb_fail(err, SB_ERR_SHAPE, SB_E_PAD_NARROW);
            size += before[d];
        }
        if (after[d] < 0 && size + after[d] < 0)
            return sb_fail(err, SB_ERR_SHAPE, SB_E_PAD_NARROW);
    }
    plan->out_ndim = ndim;
    for (int d = 0; d < ndim; d++) {
        int64_t size = x->dims[d];
        if (!add_ok(&size, before[d]) || !add_ok(&size, after[d]) || size < 0)
            return sb_fail_v(err, SB_ERR_SHAPE, SB_E_PAD_NEGATIVE, 4, x->dims[d], before[d],
                             after[d], d);
        plan->out_dims[d] = size;
    }
    if (positive && x->dtype == SB_DTYPE_F32 && isfinite(a->value) &&
        fabs(a->value) > FLT_MAX)
        return sb_fail_v(err, SB_ERR_ARGUMENT, SB_E_PAD_VALUE_OVERFLOW, 1, x->dtype, 0, 0, 0);
    /* The kernel's view, built from the last dim outward: a 0-d input is one
     * element, and each dim whose group inside is unpadded joins it. */
    int64_t g_in = 1, g_out = 1, g_before = 0;
    int open = 0, n = 0;
    int64_t in_m[SB_MAX_DIMS], out_m[SB_MAX_DIMS], before_m[SB_MAX_DIMS];
    for (int d = ndim - 1; d >= 0; d--) {
        if (open && (g_before != 0 || g_out != g_in)) {
            in_m[n] = g_in, out_m[n] = g_out, before_m[n] = g_before, n++;
            g_in = g_out = 1, g_before = 0;
        }
        /* g_in == g_out here: the group inside is unpadded */
        g_before = sb_sat_mul(before[d] < 0 ? -before[d] : before[d], g_in);
        if (before[d] < 0)
            g_before = -g_before;
        g_out = sb_sat_mul(plan->out_dims[d], g_in);
        g_in = sb_sat_mul(x->dims[d], g_in);
        open = 1;
    }
    in_m[n] = g_in, out_m[n] = g_out, before_m[n] = g_before, n++;
    plan->ndim = n;
    for (int i = 0; i < n; i++) { /* outermost first, as the kernel takes them */
        plan->in_dims[i] = in_m[n - 1 - i];
        plan->kernel_out_dims[i] = out_m[n - 1 - i];
        plan->before[i] = before_m[n - 1 - i];
    }
    return SB_OK;
}

sb_status sb_op_pad_run(const sb_pad_plan *plan, const sb_pad_args *a, const sb_tensor *out,
                        void *workspace)
{
    if (!plan->supported)
        return SB_ERR_ARGUMENT;
    if (a->input->dtype == SB_DTYPE_F64)
        return sb_pad_constant_f64(out->data, plan->kernel_out_dims, a->input->data,
                                   plan->in_dims, plan->before, plan->ndim, a->value);
    return sb_pad_constant_f32(out->data, plan->kernel_out_dims, a->input->data, plan->in_dims,
                               plan->before, plan->ndim, (float)a->value);
}
