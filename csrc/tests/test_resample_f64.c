/* test_resample_f64.c -- test_resample.inc compiled for float64 (test_real.h). */
#define SB_TEST_BITS 64
#include "test_resample.inc"
