/* test_batch_norm.c -- test_batch_norm.inc compiled for float32 (test_real.h). */
#define SB_TEST_BITS 32
#include "test_batch_norm.inc"
