/* test_ukernels.c -- test_ukernels.inc compiled for float32 (test_real.h). */
#define SB_TEST_BITS 32
#include "test_ukernels.inc"
