/*
 * dropout.c -- the dropout operator: torch.nn.functional.dropout(input, p,
 * training) (torch's _dropout_impl): p must lie in [0, 1] -- checked first,
 * in every mode, so a NaN p fails even in eval mode, as in torch; then
 * eval mode, p == 0 and an empty input are the identity (torch returns its
 * input itself, and so does the glue), and anything else runs the kernel:
 * x * (mask / (1 - p)), the mask drawn from the call's seed
 * (sb_dropout_<dt>); p == 1 drops everything (torch's x * 0).
 */
#include "ops_internal.h"

sb_status sb_op_dropout_plan(sb_dropout_plan *plan, const sb_dropout_args *a, sb_error *err)
{
    memset(plan, 0, sizeof *plan);
    if (!(a->p >= 0.0 && a->p <= 1.0)) {
        sb_fail(err, SB_ERR_ARGUMENT, SB_E_DROPOUT_P);
        err->real = a->p;
        return SB_ERR_ARGUMENT;
    }
    plan->identity = !a->train || a->p == 0.0;
    if (a->input == NULL)
        return SB_OK;
    if (!sb_check_dtype(err, a->input))
        return SB_ERR_ARGUMENT;
    plan->numel = sb_tensor_numel(a->input);
    plan->identity |= plan->numel == 0;
    return SB_OK;
}

sb_status sb_op_dropout_run(const sb_dropout_plan *plan, const sb_dropout_args *a,
                            const sb_tensor *out, void *workspace)
{
    if (plan->identity)
        return SB_OK; /* the glue returns the input */
    return SB_DT_CALL(a->input->dtype, sb_dropout, , out->data, a->input->data, plan->numel,
                      a->p, a->seed);
}
