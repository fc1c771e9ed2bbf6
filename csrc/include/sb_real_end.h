/* sb_real_end.h -- closes an instantiation opened by sb_real_begin.h. */
#undef sb_real
#undef SB_REAL_IS_F32
#undef SB_DT_SUFFIX
#undef SB_FMA
#undef SB_SQRT
#undef SB_EXP
#undef SB_NR
#undef SB_FN
#undef SB_FN_
#undef SB_REAL_CAT
#undef SB_REAL_CAT_
#undef SB_REAL_BITS
