/* test_pad.c -- test_pad.inc compiled for float32 (test_real.h). */
#define SB_TEST_BITS 32
#include "test_pad.inc"
