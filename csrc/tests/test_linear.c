/* test_linear.c -- test_linear.inc compiled for float32 (test_real.h). */
#define SB_TEST_BITS 32
#include "test_linear.inc"
