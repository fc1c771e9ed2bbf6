/* ukernel_select_f32.c -- ukernel_select.inc compiled for float32. */
#define SB_KERNEL_BITS 32
#include "ukernel_select.inc"
