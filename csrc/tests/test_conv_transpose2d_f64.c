/* test_conv_transpose2d_f64.c -- test_conv_transpose2d.inc compiled for float64 (test_real.h). */
#define SB_TEST_BITS 64
#include "test_conv_transpose2d.inc"
