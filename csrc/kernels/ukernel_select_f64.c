/* ukernel_select_f64.c -- ukernel_select.inc compiled for float64. */
#define SB_KERNEL_BITS 64
#include "ukernel_select.inc"
