/* test_linear_f64.c -- test_linear.inc compiled for float64 (test_real.h). */
#define SB_TEST_BITS 64
#include "test_linear.inc"
