/*
 * sb_avx2_tail.h -- internal, for the __avx2 kernel files only: the lane
 * mask of a plane's last, partial 8-float vector, for _mm256_maskload_ps /
 * _mm256_maskstore_ps (which neither read nor write masked-off lanes, so a
 * kernel never touches memory past its plane).
 */
#ifndef SB_AVX2_TAIL_H
#define SB_AVX2_TAIL_H

#include "sb_isa_kernels.h"

#ifdef SB_HAVE_AVX2_KERNELS
#include <immintrin.h>

/* Lanes 0 .. count-1 enabled (all-ones), the rest off; 0 <= count <= 8. */
SB_TARGET_AVX2 static inline __m256i sb_avx2_first_lanes(int64_t count)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)count),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
#endif

#endif /* SB_AVX2_TAIL_H */
