/*
 * status.c -- sb_status_string: the text the glue puts into the Python
 * exception when a kernel returns something other than SB_OK.
 *
 * Kernels report *what kind* of problem they saw, not which argument: the
 * glue validates shapes first with the same helpers the kernels use, so a
 * non-OK status reaching Python means a glue bug, and a short generic text
 * is enough. Returns static strings only (no allocation, no formatting).
 */
#include "skipblocks.h"

const char *sb_status_string(sb_status status)
{
    switch (status) {
    case SB_OK:
        return "ok";
    case SB_ERR_SHAPE:
        return "inconsistent or out-of-range tensor sizes";
    case SB_ERR_ARGUMENT:
        return "parameter out of range (e.g. stride, dilation or groups <= 0)";
    case SB_ERR_NULL:
        return "a required pointer is NULL";
    }
    /* Not a member of the enum: a caller passed a stray integer. */
    return "unknown skipblocks status";
}
