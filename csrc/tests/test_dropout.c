/* test_dropout.c -- test_dropout.inc compiled for float32 (test_real.h). */
#define SB_TEST_BITS 32
#include "test_dropout.inc"
