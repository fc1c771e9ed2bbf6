/* test_dropout_f64.c -- test_dropout.inc compiled for float64 (test_real.h). */
#define SB_TEST_BITS 64
#include "test_dropout.inc"
