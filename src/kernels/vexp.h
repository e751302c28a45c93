/* e^x on 16 floats with AVX-512F: x = n ln2 + r, |r| <= ln2/2, e^r by a
 * degree-6 polynomial, then scaled by 2^n (scalef: overflow gives inf).
 * Within about 2 ulp of expf for x above -87; callers clamp or mask below
 * (the sampler, SwiGLU). */
#ifndef V4C_VEXP_H
#define V4C_VEXP_H

#include <immintrin.h>

__attribute__((target("avx512f"))) static inline __m512 exp512(__m512 x) {
    const __m512 log2e = _mm512_set1_ps(1.44269504f), ln2_hi = _mm512_set1_ps(0.693145752f), ln2_lo = _mm512_set1_ps(1.42860677e-6f);
    const __m512 c2 = _mm512_set1_ps(1.0f / 2), c3 = _mm512_set1_ps(1.0f / 6), c4 = _mm512_set1_ps(1.0f / 24), c5 = _mm512_set1_ps(1.0f / 120),
                 c6 = _mm512_set1_ps(1.0f / 720), one = _mm512_set1_ps(1.0f);
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, ln2_lo, _mm512_fnmadd_ps(n, ln2_hi, x));
    __m512 q = _mm512_fmadd_ps(_mm512_fmadd_ps(_mm512_fmadd_ps(_mm512_fmadd_ps(c6, r, c5), r, c4), r, c3), r, c2);
    return _mm512_scalef_ps(_mm512_fmadd_ps(_mm512_fmadd_ps(q, r, one), r, one), n);
}

#endif
