#include <immintrin.h>
#include "CKernels.h"

// im2col and col2im for one channel plane: pure data movement (im2col) and element-wise
// additions in the caller's loop order (col2im), so every instruction set gives the bits
// of the plain loops they replace. The AVX-512 versions move a row of up to 16 outputs
// with masked loads and stores (the rows of small feature maps hold 4–28 values, too
// short for a vector loop with a scalar tail); stride 2 gathers the even elements of two
// loaded vectors with one permute.

static inline long lo_index(int k, int pad, int stride) {   // first o with o·s − pad + k ≥ 0
    return pad - k <= 0 ? 0 : (pad - k + stride - 1) / stride;
}
static inline long hi_index(int k, int size, int out, int pad, int stride) {   // one past the last o with o·s − pad + k < size
    long top = (long)size - 1 + pad - k;
    if (top < 0) return 0;
    long hi = top / stride + 1;
    return hi < out ? hi : out;
}

#define IM2COL_PLAIN                                                                  \
    for (int ki = 0; ki < kh; ki++)                                                   \
        for (int kj = 0; kj < kw; kj++) {                                             \
            float *row = col + (long)(ki * kw + kj) * ld;                             \
            for (int oy = 0; oy < ho; oy++) {                                         \
                const float *src = plane + (long)(oy * stride + ki) * pw + kj;        \
                float *dst = row + (long)oy * wo;                                     \
                for (int ox = 0; ox < wo; ox++) dst[ox] = src[(long)ox * stride];     \
            }                                                                         \
        }

#define COL2IM_PLAIN                                                                   \
    for (int ki = 0; ki < kh; ki++) {                                                  \
        long r0 = lo_index(ki, pad, stride), r1 = hi_index(ki, h, ho, pad, stride);    \
        for (int kj = 0; kj < kw; kj++) {                                              \
            const float *row = col + (long)(ki * kw + kj) * ld;                        \
            long c0 = lo_index(kj, pad, stride), c1 = hi_index(kj, w, wo, pad, stride); \
            if (c0 >= c1) continue;                                                    \
            for (long oy = r0; oy < r1; oy++) {                                        \
                const float *src = row + oy * wo;                                      \
                float *dst = x + (oy * stride - pad + ki) * w + (kj - pad);            \
                for (long ox = c0; ox < c1; ox++) dst[ox * stride] += src[ox];         \
            }                                                                          \
        }                                                                              \
    }

__attribute__((target("avx512f")))
static void im2col_avx512(const float *plane, long pw, int kh, int kw, int stride, int ho, int wo, float *col, long ld) {
    if (stride > 2) { IM2COL_PLAIN return; }
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    for (int ki = 0; ki < kh; ki++)
        for (int kj = 0; kj < kw; kj++) {
            float *row = col + (long)(ki * kw + kj) * ld;
            for (int oy = 0; oy < ho; oy++) {
                const float *src = plane + (long)(oy * stride + ki) * pw + kj;
                float *dst = row + (long)oy * wo;
                for (int ox = 0; ox < wo; ox += 16) {
                    int n = wo - ox < 16 ? wo - ox : 16;
                    __mmask16 out = (__mmask16)((1u << n) - 1);
                    if (stride == 1) {
                        _mm512_mask_storeu_ps(dst + ox, out, _mm512_maskz_loadu_ps(out, src + ox));
                    } else {   // the 2n − 1 inputs src[2·ox … 2·(ox + n − 1)]
                        int need = 2 * n - 1;
                        __mmask16 m0 = (__mmask16)(need >= 16 ? 0xFFFFu : (1u << need) - 1);
                        __mmask16 m1 = (__mmask16)(need > 16 ? (1u << (need - 16)) - 1 : 0);
                        __m512 a = _mm512_maskz_loadu_ps(m0, src + 2 * ox), b = _mm512_maskz_loadu_ps(m1, src + 2 * ox + 16);
                        _mm512_mask_storeu_ps(dst + ox, out, _mm512_permutex2var_ps(a, even, b));
                    }
                }
            }
        }
}

__attribute__((target("avx512f")))
static void col2im_avx512(const float *col, long ld, float *x, int h, int w, int kh, int kw, int stride, int pad, int ho, int wo) {
    if (stride > 2) { COL2IM_PLAIN return; }
    // Stride 2: src[o] goes to lane 2·o of a 32-float window; odd lanes are left untouched.
    const __m512i lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i hi = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
    for (int ki = 0; ki < kh; ki++) {
        long r0 = lo_index(ki, pad, stride), r1 = hi_index(ki, h, ho, pad, stride);
        for (int kj = 0; kj < kw; kj++) {
            const float *row = col + (long)(ki * kw + kj) * ld;
            long c0 = lo_index(kj, pad, stride), c1 = hi_index(kj, w, wo, pad, stride);
            if (c0 >= c1) continue;
            // The masks of the last block of the row (every block before it is full).
            int tail = (int)((c1 - c0 - 1) % 16) + 1;
            __mmask16 tail_in = (__mmask16)((1u << tail) - 1);
            unsigned bits = 0;   // even lanes 0 … 2(tail − 1) of the 32
            for (int i = 0; i < tail; i++) bits |= 1u << (2 * i);
            for (long oy = r0; oy < r1; oy++) {
                const float *src = row + oy * wo;
                float *dst = x + (oy * stride - pad + ki) * w + (kj - pad);
                for (long ox = c0; ox < c1; ox += 16) {
                    int full = c1 - ox >= 16;
                    __mmask16 in = full ? (__mmask16)0xFFFF : tail_in;
                    __m512 v = _mm512_maskz_loadu_ps(in, src + ox);
                    if (stride == 1) {
                        float *d = dst + ox;
                        _mm512_mask_storeu_ps(d, in, _mm512_add_ps(_mm512_maskz_loadu_ps(in, d), v));
                    } else {   // outputs d[0], d[2], …, d[2(n − 1)]
                        float *d = dst + 2 * ox;
                        __m512 zero = _mm512_setzero_ps();
                        __m512 v0 = _mm512_permutex2var_ps(v, lo, zero), v1 = _mm512_permutex2var_ps(v, hi, zero);
                        unsigned b = full ? 0x55555555u : bits;
                        __mmask16 m0 = (__mmask16)(b & 0xFFFF), m1 = (__mmask16)(b >> 16);
                        _mm512_mask_storeu_ps(d, m0, _mm512_add_ps(_mm512_maskz_loadu_ps(m0, d), v0));
                        if (m1) _mm512_mask_storeu_ps(d + 16, m1, _mm512_add_ps(_mm512_maskz_loadu_ps(m1, d + 16), v1));
                    }
                }
            }
        }
    }
}

__attribute__((target("avx2")))
static void im2col_avx2(const float *plane, long pw, int kh, int kw, int stride, int ho, int wo, float *col, long ld) {
    IM2COL_PLAIN
}
__attribute__((target("avx2")))
static void col2im_avx2(const float *col, long ld, float *x, int h, int w, int kh, int kw, int stride, int pad, int ho, int wo) {
    COL2IM_PLAIN
}
static void im2col_baseline(const float *plane, long pw, int kh, int kw, int stride, int ho, int wo, float *col, long ld) {
    IM2COL_PLAIN
}
static void col2im_baseline(const float *col, long ld, float *x, int h, int w, int kh, int kw, int stride, int pad, int ho, int wo) {
    COL2IM_PLAIN
}

void replica_im2col_plane_isa(int isa, const float *plane, long pw, int kh, int kw, int stride, int ho, int wo, float *col, long ld) {
    if (isa >= 2) im2col_avx512(plane, pw, kh, kw, stride, ho, wo, col, ld);
    else if (isa == 1) im2col_avx2(plane, pw, kh, kw, stride, ho, wo, col, ld);
    else im2col_baseline(plane, pw, kh, kw, stride, ho, wo, col, ld);
}
void replica_im2col_plane(const float *plane, long pw, int kh, int kw, int stride, int ho, int wo, float *col, long ld) {
    replica_im2col_plane_isa(replica_machine_isa(), plane, pw, kh, kw, stride, ho, wo, col, ld);
}
void replica_col2im_plane_isa(int isa, const float *col, long ld, float *x, int h, int w, int kh, int kw, int stride, int pad, int ho, int wo) {
    if (isa >= 2) col2im_avx512(col, ld, x, h, w, kh, kw, stride, pad, ho, wo);
    else if (isa == 1) col2im_avx2(col, ld, x, h, w, kh, kw, stride, pad, ho, wo);
    else col2im_baseline(col, ld, x, h, w, kh, kw, stride, pad, ho, wo);
}
void replica_col2im_plane(const float *col, long ld, float *x, int h, int w, int kh, int kw, int stride, int pad, int ho, int wo) {
    replica_col2im_plane_isa(replica_machine_isa(), col, ld, x, h, w, kh, kw, stride, pad, ho, wo);
}
