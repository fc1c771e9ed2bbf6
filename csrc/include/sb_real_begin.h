/*
 * sb_real_begin.h -- opens one instantiation of a source written once for
 * every element type (float32 and float64). No include guard: it is
 * included once per instantiation, and sb_real_end.h closes each one.
 *
 * The includer defines SB_REAL_BITS as 32 or 64 first. The source then
 * writes its element type as `sb_real` and its public names through
 * SB_FN(sb_relu) -> sb_relu_f32 / sb_relu_f64 and
 * SB_FN_(sb_conv2d, __ref) -> sb_conv2d_f32__ref / sb_conv2d_f64__ref,
 * so one text gives both kernels: skipblocks.h declares each kernel
 * this way (sb_kernels_typed.h, included once per type), and each kernel
 * source csrc/kernels/<name>.inc is compiled once per type by its two
 * three-line wrappers <name>_f32.c and <name>_f64.c (separate translation
 * units, so the sources' static helpers need no per-type names).
 *
 * Per-type constants:
 *   SB_REAL_IS_F32  1 for float32, 0 for float64
 *   SB_FMA, SB_SQRT, SB_EXP  the libm functions of the type (fmaf/fma...)
 *   SB_NR           columns of one GEMM panel: 64 bytes of the type
 *                   (16 floats, 8 doubles), so a panel row is one cache
 *                   line and one AVX-512 register for either type
 */
#if !defined(SB_REAL_BITS)
#error "define SB_REAL_BITS (32 or 64) before including sb_real_begin.h"
#endif

#define SB_REAL_CAT_(a, b, c) a##b##c
#define SB_REAL_CAT(a, b, c) SB_REAL_CAT_(a, b, c)

#if SB_REAL_BITS == 32
#define sb_real float
#define SB_REAL_IS_F32 1
#define SB_DT_SUFFIX _f32
#define SB_FMA fmaf
#define SB_SQRT sqrtf
#define SB_EXP expf
#define SB_NR SB_CONV_NR_F32
#elif SB_REAL_BITS == 64
#define sb_real double
#define SB_REAL_IS_F32 0
#define SB_DT_SUFFIX _f64
#define SB_FMA fma
#define SB_SQRT sqrt
#define SB_EXP exp
#define SB_NR SB_CONV_NR_F64
#else
#error "SB_REAL_BITS must be 32 or 64"
#endif

#define SB_FN(prefix) SB_REAL_CAT(prefix, SB_DT_SUFFIX, )
#define SB_FN_(prefix, suffix) SB_REAL_CAT(prefix, SB_DT_SUFFIX, suffix)
