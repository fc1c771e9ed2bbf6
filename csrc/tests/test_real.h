/*
 * test_real.h -- opens the element type of a test body written once on
 * sb_real, as sb_real_kernel.h does for a kernel: a family's body
 * csrc/tests/test_<family>.inc is compiled once per type by its wrapper
 * programs test_<family>.c (float32) and test_<family>_f64.c (float64),
 * which define SB_TEST_BITS (32 or 64) and include it. The body includes
 * test_harness.h first, then this header, and then writes
 *   sb_real, SB_FN(sb_conv2d) -> sb_conv2d_f32 / _f64, SB_FN_(sb_conv2d, __ref),
 *   SB_REAL_IS_F32, SB_NR (sb_real_begin.h), and the harness's helpers by
 *   their generic names: alloc_real, fill_rand_real, same_real, ...
 *   (test_harness_typed.h);
 *   TEST_PROGRAM("conv2d")  the program's name: "conv2d" / "conv2d_f64".
 * Checks that hold for one type only sit under #if SB_REAL_IS_F32 (or its
 * negation); each body states its tolerances once per type, at its top.
 */
#ifndef SB_TEST_REAL_H
#define SB_TEST_REAL_H

#ifndef SB_TEST_BITS
#error "compile a test body through its test_<family>.c / _f64.c wrapper"
#endif
#define SB_REAL_BITS SB_TEST_BITS
#include "sb_real_begin.h"

#if SB_REAL_IS_F32
#define TEST_PROGRAM(name) name
#else
#define TEST_PROGRAM(name) name "_f64"
#endif

/* The harness's helpers of this type (each name expands to itself with the
 * type's suffix: a macro is not expanded again inside its own expansion). */
#define rand_real SB_FN(rand_real)
#define alloc_real SB_FN(alloc_real)
#define fill_rand_real SB_FN(fill_rand_real)
#define fill_val_real SB_FN(fill_val_real)
#define copy_real SB_FN(copy_real)
#define dup_real SB_FN(dup_real)
#define abs_dup_real SB_FN(abs_dup_real)
#define prefill_map_real SB_FN(prefill_map_real)
#define count_bad_gaps_real SB_FN(count_bad_gaps_real)
#define same_real SB_FN(same_real)
#define count_not_same_real SB_FN(count_not_same_real)
#define count_not_same_maps_real SB_FN(count_not_same_maps_real)
#define scaled_diff_real SB_FN(scaled_diff_real)
#define rel_diff_real SB_FN(rel_diff_real)
#define max_scaled_real SB_FN(max_scaled_real)
#define max_rel_real SB_FN(max_rel_real)
#define ulp_diff_real SB_FN(ulp_diff_real)
#define sprinkle_specials_real SB_FN(sprinkle_specials_real)
#define relu_real SB_FN(relu_real)

#endif /* SB_TEST_REAL_H */
