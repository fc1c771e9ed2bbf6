/*
 * dispatch.c -- run-time choice of the instruction set of the fast kernels.
 *
 * The module is compiled for the baseline of its target (x86-64: SSE2), so
 * it loads on any CPU; kernels for newer ISAs are compiled with target
 * attributes and only called after the CPU has been asked whether it has them
 * (GCC/clang's __builtin_cpu_supports, which also checks that the OS saves
 * the AVX registers). The choice is one global, set on first use to the
 * best available ISA, and changed only by sb_set_isa (tests force each path
 * in turn; SKIPBLOCKS_ISA is read by the Python glue at import).
 *
 * AVX-512 adds the convolution's wide micro-kernels; everything else runs
 * its AVX2 variant under it (an AVX-512 CPU has AVX2 and FMA). Which
 * micro-kernel each ISA runs, per element type: ukernel_select.inc.
 *
 * Not done: ARM NEON kernels (ARM runs the scalar path, which GCC
 * vectorises for NEON).
 */
#include "gemm_ukernel.h"

/* -1: not chosen yet. Read and written atomically: sb_set_isa (the tests'
 * and the Python switch, with the GIL held) may run while another thread's
 * kernel runs without the GIL. Each public kernel reads it once per call
 * (sb_get_isa) and passes that snapshot down, so one call never mixes two
 * paths' roundings. */
static int sb_isa_selected = -1;
#if defined(__GNUC__) || defined(__clang__)
#define ISA_LOAD() __atomic_load_n(&sb_isa_selected, __ATOMIC_RELAXED)
#define ISA_STORE(v) __atomic_store_n(&sb_isa_selected, (v), __ATOMIC_RELAXED)
#else /* MSVC: an aligned int's volatile load and store are single accesses */
#define ISA_LOAD() (*(volatile int *)&sb_isa_selected)
#define ISA_STORE(v) (*(volatile int *)&sb_isa_selected = (v))
#endif

int sb_isa_available(sb_isa isa)
{
    switch (isa) {
    case SB_ISA_SCALAR:
        return 1;
    case SB_ISA_AVX2:
#ifdef SB_HAVE_AVX2_KERNELS
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
        return 0;
#endif
    case SB_ISA_AVX512:
#ifdef SB_HAVE_AVX2_KERNELS
        /* (GCC's check also asks the OS whether it saves zmm state) */
        __builtin_cpu_init();
        return sb_isa_available(SB_ISA_AVX2) && __builtin_cpu_supports("avx512f");
#else
        return 0;
#endif
    }
    return 0;
}

sb_isa sb_isa_best(void)
{
    if (sb_isa_available(SB_ISA_AVX512))
        return SB_ISA_AVX512;
    return sb_isa_available(SB_ISA_AVX2) ? SB_ISA_AVX2 : SB_ISA_SCALAR;
}

/* The AVX2 kernels serve under AVX-512 too. */
int sb_isa_runs_avx2_kernels(sb_isa isa)
{
    return isa == SB_ISA_AVX2 || isa == SB_ISA_AVX512;
}

int sb_avx2_kernels_selected(void)
{
    return sb_isa_runs_avx2_kernels(sb_get_isa());
}

static int sb_test_avx512_source = 0;

int sb_test_avx512_source_selected(void)
{
    return sb_test_avx512_source;
}

int sb_test_use_avx512_source_on_avx2(int on)
{
    if (!sb_isa_available(SB_ISA_AVX2))
        return -1;
    sb_test_avx512_source = on != 0;
    return 0;
}

sb_status sb_set_isa(sb_isa isa)
{
    if (!sb_isa_available(isa))
        return SB_ERR_ARGUMENT;
    ISA_STORE((int)isa);
    return SB_OK;
}

sb_isa sb_get_isa(void)
{
    int isa = ISA_LOAD();
    if (isa < 0) { /* first use (the glue's import): every thread picks the same */
        isa = (int)sb_isa_best();
        ISA_STORE(isa);
    }
    return (sb_isa)isa;
}

const char *sb_isa_name(sb_isa isa)
{
    switch (isa) {
    case SB_ISA_SCALAR:
        return "scalar";
    case SB_ISA_AVX2:
        return "avx2";
    case SB_ISA_AVX512:
        return "avx512";
    }
    return "unknown";
}
