/*
 * geometry.c -- what the kernels share whatever their element type: torch's
 * output-size formulas of convolution and pooling (conv2d.inc,
 * conv2d_packed.inc, max_pool2d.inc and the operators use them), and the
 * tests' switch of the convolution's orientation (conv2d_packed.inc).
 */
#include "gemm_ukernel.h"

/* torch's conv output size (skipblocks.h). */
int64_t sb_conv2d_out_size(int64_t in, int64_t kernel, int64_t stride,
                           int64_t pad, int64_t dilation)
{
    /* Nonsense parameters give 0 so callers treat them as "too small"
     * instead of dividing by zero. */
    if (stride <= 0 || kernel <= 0 || dilation <= 0 || pad < 0 || in < 0)
        return 0;
    /* beyond SB_CONV_PARAM_MAX, dilation * (kernel - 1) could overflow */
    if (stride > SB_CONV_PARAM_MAX || kernel > SB_CONV_PARAM_MAX ||
        dilation > SB_CONV_PARAM_MAX || pad > SB_CONV_PARAM_MAX || in > INT64_MAX / 4)
        return 0;
    const int64_t span = in + 2 * pad - dilation * (kernel - 1) - 1;
    /* C division truncates toward zero; torch floors. span < 0 means the
     * dilated kernel does not fit, which must come out as <= 0. */
    if (span < 0)
        return 0;
    return span / stride + 1;
}

/* torch's pooling output size, ceil_mode included (skipblocks.h). */
int64_t sb_pool2d_out_size(int64_t in, int64_t kernel, int64_t stride,
                           int64_t pad, int64_t dilation, int ceil_mode)
{
    if (stride <= 0 || kernel <= 0 || dilation <= 0 || pad < 0 || in < 0 ||
        stride > SB_POOL_PARAM_MAX || kernel > SB_POOL_PARAM_MAX ||
        dilation > SB_POOL_PARAM_MAX || pad > SB_POOL_PARAM_MAX)
        return 0;
    const int64_t num = in + 2 * pad - dilation * (kernel - 1) - 1 +
                        (ceil_mode ? stride - 1 : 0);
    /* torch's div_rtn floors: num < 0 means the window does not fit, and
     * the (non-positive) size is what torch's "too small" message prints */
    int64_t out = (num >= 0 ? num / stride : -((-num + stride - 1) / stride)) + 1;
    /* The last window must start inside the input or the left padding. */
    if (ceil_mode && (out - 1) * stride >= in + pad)
        out--;
    return out;
}

static int sb_test_orientation = -1; /* tests: -1 the rule, 0 channel rows, 1 pixel rows */

int sb_test_conv_orientation(int orientation)
{
    sb_test_orientation = orientation < 0 ? -1 : orientation != 0;
    return 0;
}

int sb_conv_orientation_forced(void)
{
    return sb_test_orientation;
}
