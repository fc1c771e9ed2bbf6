/* test_pool.c -- test_pool.inc compiled for float32 (test_real.h). */
#define SB_TEST_BITS 32
#include "test_pool.inc"
