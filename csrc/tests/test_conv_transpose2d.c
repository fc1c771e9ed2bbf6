/* test_conv_transpose2d.c -- test_conv_transpose2d.inc compiled for float32 (test_real.h). */
#define SB_TEST_BITS 32
#include "test_conv_transpose2d.inc"
