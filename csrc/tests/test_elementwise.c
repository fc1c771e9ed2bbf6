/* test_elementwise.c -- test_elementwise.inc compiled for float32 (test_real.h). */
#define SB_TEST_BITS 32
#include "test_elementwise.inc"
