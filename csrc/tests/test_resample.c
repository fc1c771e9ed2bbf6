/* test_resample.c -- test_resample.inc compiled for float32 (test_real.h). */
#define SB_TEST_BITS 32
#include "test_resample.inc"
