/*
 * skipblocks.h -- the public C API of the skipblocks kernels.
 *
 * Every kernel here works on raw float32 or float64 buffers (sb_<op>_f32
 * and sb_<op>_f64, one source for both) described by small dims
 * structs. Kernels never include Python.h or NumPy headers, never allocate,
 * never print, never exit or abort: they return an sb_status. The caller
 * (csrc/glue/, the only file that includes Python.h) validates shapes once,
 * allocates outputs and scratch (sized by the *_workspace_elems helpers),
 * releases the GIL and calls the kernel.
 *
 * Argument order everywhere: outputs, inputs, weights, params, workspace.
 * Naming: sb_<op>_<dtype>; variants after a double underscore. Every
 * kernel with a fast path (threads, SIMD, another summation order) has a
 * __ref declared beside it (sb_conv2d_f32__ref, sb_relu_f32__ref...): the
 * plainest single-threaded loop over torch's formula and its roundings, no
 * SIMD, no workspace, in the same source as the kernel's portable code.
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
 * Feature maps (sb_fmap): an N x C x H x W map in which each image
 * (C*H*W elements) is contiguous, and consecutive images sit batch_stride
 * elements apart (batch_stride >= C*H*W). A plain C-contiguous array has
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
    int64_t batch_stride; /* elements between image n and image n+1 */
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
/* The widest window a channel-blocked average pool takes
 * (sb_avg_pool2d_<dt>_blocked stages a window row's input columns on its
 * stack). */
#define SB_AVG_POOL2D_BLOCKED_KERNEL_MAX 64

/* torch's pooling output size, including its ceil_mode rule: with ceil
 * rounding, the last window must start inside the input or the left
 * padding, otherwise it is dropped. Returns <= 0 when too small, and 0 for
 * a parameter out of range. */
int64_t sb_pool2d_out_size(int64_t in, int64_t kernel, int64_t stride,
                           int64_t pad, int64_t dilation, int ceil_mode);

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
/* Columns of a GEMM panel (and output channels of a pixel-row block): 64
 * bytes, one cache line and one AVX-512 register, of either type. */
#define SB_CONV_NR_F32 16
#define SB_CONV_NR_F64 8

/* The fusions of sb_conv2d_<dt>_packed. Its arrays hold elements of the
 * kernel's type (float for _f32, double for _f64). */
typedef struct {
    /* Input transform (NULL scale: none): each input value x of channel c
     * is used as x * in_scale[c] + in_shift[c], then max(., 0) if in_relu.
     * Zero padding stays zero (torch pads the transformed map). */
    const void *in_scale, *in_shift;
    int in_relu;
    /* Epilogue: add residual (NULL: none; same shape as the output, in
     * the layout residual_map describes), then max(., 0) if out_relu. */
    const void *residual;
    sb_fmap residual_map;
    int out_relu;
    /* Layouts (0: NCHW). Nonzero in_blocked: the input is channel-blocked,
     * NCHW<B>c with B = SB_CONV_NR of the type (16 floats, 8 doubles): value
     * (n, c, y, x) at n*batch_stride + (c/B)*H*W*B + (y*W + x)*B + c%B, and
     * in_map.batch_stride = ceil(C/B)*H*W*B. Nonzero out_blocked: the output
     * and the residual likewise, and the lanes of the last block past C_out
     * are written 0. Results are the same bits as in NCHW (NaN payloads
     * where a sum and a residual are both NaN aside). Only where
     * sb_conv2d_<dt>_blocked_ok says so (one group, pixel-row tiles). */
    int in_blocked, out_blocked;
} sb_conv2d_fusion;

/* ---- pad and dropout ------------------------------------------------ */
/* sb_pad_constant_<dt> takes at most this many dims (NumPy's limit). */
#define SB_PAD_MAX_DIMS 64
/* ------------------------------------------------------------------ */
/* interpolate (upsample) -- torch.nn.functional.interpolate's          */
/* 'nearest' and 'bilinear' kernels (interpolate.inc).                  */
/* ------------------------------------------------------------------ */
typedef struct {
    int bilinear;          /* 0: nearest, 1: bilinear */
    int align_corners;     /* bilinear only */
    double scale_h, scale_w; /* torch's scale_factor passed on to the kernel; <= 0: none */
    int shift_always;      /* nearest: a doubled axis shifts even with a scale given */
} sb_interp_params;

/* Every kernel, once per element type: sb_<op>_f32 on float buffers and
 * sb_<op>_f64 on double buffers, the same contract (sb_kernels_typed.h). */
#define SB_REAL_BITS 32
#include "sb_kernels_typed.h"
#define SB_REAL_BITS 64
#include "sb_kernels_typed.h"

#ifdef __cplusplus
}
#endif
#endif /* SKIPBLOCKS_H */
