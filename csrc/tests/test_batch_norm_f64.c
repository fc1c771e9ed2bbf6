/* test_batch_norm_f64.c -- test_batch_norm.inc compiled for float64 (test_real.h). */
#define SB_TEST_BITS 64
#include "test_batch_norm.inc"
