/*
 * test_status.c -- the kernels' shared plumbing: sb_status_string (the text
 * the glue puts into an exception) and the ISA names and choice that every
 * other program's path loop relies on (the harness's "isa dispatch" check
 * covers sb_set_isa and availability).
 *
 * No tolerances: every check here is exact.
 */
#include "test_harness.h"

static void test_status_strings(void)
{
    int64_t bad = 0;
    /* every member, and one value past the enum (a stray integer) */
    for (int s = 0; s <= 4; s++) {
        const char *t = sb_status_string((sb_status)s);
        bad += t == NULL || t[0] == '\0';
    }
    bad += strcmp(sb_status_string(SB_OK), "ok") != 0;
    report("status strings", 5, 0.0, 0.0, bad);
}

/* Names as the Python layer's set_isa spells them; the selected ISA is the
 * one set, and reading it again does not change it. */
static void test_isa_names(void)
{
    int64_t bad = 0;
    bad += strcmp(sb_isa_name(SB_ISA_SCALAR), "scalar") != 0;
    bad += strcmp(sb_isa_name(SB_ISA_AVX2), "avx2") != 0;
    bad += strcmp(sb_isa_name(SB_ISA_AVX512), "avx512") != 0;
    bad += strcmp(sb_isa_name((sb_isa)7), "unknown") != 0;
    expect_status("set_isa(7)", sb_set_isa((sb_isa)7), SB_ERR_ARGUMENT, &bad);
    for (int path = 0; path < g_n_isas; path++) {
        use_isa(path, &bad);
        bad += sb_get_isa() != path_isa(path) || sb_get_isa() != path_isa(path);
    }
    report("isa names and selection", 4 + 1 + g_n_isas, 0.0, 0.0, bad);
}

int main(void)
{
    test_begin("status");
    test_status_strings();
    test_isa_names();
    return test_end();
}
