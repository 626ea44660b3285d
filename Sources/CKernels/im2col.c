#include <immintrin.h>
#include "CKernels.h"

// im2col and col2im for one channel plane: pure data movement (im2col) and element-wise
// additions in the caller's loop order (col2im), so every instruction set gives the bits
// of the plain loops they replace. The AVX-512 im2col moves a row of up to 16 outputs
// with masked loads and stores (the rows of small feature maps hold 4–28 values, too
// short for a vector loop with a scalar tail); stride 2 gathers the even elements of two
// loaded vectors with one permute. The AVX2 im2col (stride 1) copies whole vectors and
// the tail of the last row of each (ki, kj) element by element. Stride-1 col2im, on both,
// is a gather over the rows of x (col2im_s1_*). The AVX2 forms never store through a mask:
// vmaskmovps to memory is microcoded on Zen 3 (a 7 × 7 im2col plane took 1.3–2× the plain
// loop's time with it).

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

// Stride-1 col2im as a gather: each chunk of an x row (16 or 8 columns) is loaded once, the
// (ki, kj) contributions are added in the plain loops' order (ki, then kj: each element gets
// the same sum), and it is stored once. A masked-off lane keeps its value (no +0 that would
// turn −0 into +0). Four rows at a time keep four independent addition chains. The scatter
// form it replaces re-read each element right after storing it, kw times per row, and
// stalled on store-to-load forwarding.
#define COL2IM_MAX_KW 16

__attribute__((target("avx512f")))
static void col2im_s1_avx512(const float *col, long ld, float *x, int h, int w, int kh, int kw, int pad, int ho, int wo) {
    for (int xs = 0; xs < w; xs += 16) {
        __mmask16 keep = 0, m[COL2IM_MAX_KW];
        for (int l = 0; l < 16; l++) if (xs + l < w) keep |= (__mmask16)(1u << l);
        for (int kj = 0; kj < kw; kj++) {   // lanes whose source column xs + l + pad − kj is in [0, wo)
            m[kj] = 0;
            for (int l = 0; l < 16; l++) { int ox = xs + l + pad - kj; if (xs + l < w && ox >= 0 && ox < wo) m[kj] |= (__mmask16)(1u << l); }
        }
        for (int y0 = 0; y0 < h; y0 += 4) {
            int rows = h - y0 < 4 ? h - y0 : 4;
            __m512 acc[4];
            for (int r = 0; r < 4; r++) acc[r] = r < rows ? _mm512_maskz_loadu_ps(keep, x + (long)(y0 + r) * w + xs) : _mm512_setzero_ps();
            for (int ki = 0; ki < kh; ki++)
                for (int kj = 0; kj < kw; kj++) {
                    const float *src = col + (long)(ki * kw + kj) * ld + xs + pad - kj;
                    for (int r = 0; r < 4; r++) {
                        long oy = y0 + r + pad - ki;
                        __mmask16 mm = r < rows && oy >= 0 && oy < ho ? m[kj] : 0;
                        acc[r] = _mm512_mask_add_ps(acc[r], mm, acc[r], _mm512_maskz_loadu_ps(mm, src + oy * wo));
                    }
                }
            for (int r = 0; r < rows; r++) _mm512_mask_storeu_ps(x + (long)(y0 + r) * w + xs, keep, acc[r]);
        }
    }
}

__attribute__((target("avx2")))
static __m256i lanes_in(int from, int lo, int hi) {   // lane l: from + l in [lo, hi)
    __m256i v = _mm256_add_epi32(_mm256_set1_epi32(from), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    return _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32(lo), v), _mm256_cmpgt_epi32(_mm256_set1_epi32(hi), v));
}

__attribute__((target("avx2")))
static void col2im_s1_avx2(const float *col, long ld, float *x, int h, int w, int kh, int kw, int pad, int ho, int wo) {
    const __m256i none = _mm256_setzero_si256();
    for (int xs = 0; xs < w; xs += 8) {
        __m256i keep = lanes_in(xs, 0, w), m[COL2IM_MAX_KW];
        int full = xs + 8 <= w;
        for (int kj = 0; kj < kw; kj++) m[kj] = _mm256_and_si256(keep, lanes_in(xs + pad - kj, 0, wo));
        for (int y0 = 0; y0 < h; y0 += 4) {
            int rows = h - y0 < 4 ? h - y0 : 4;
            __m256 acc[4];
            for (int r = 0; r < 4; r++)
                acc[r] = r >= rows ? _mm256_setzero_ps() : full ? _mm256_loadu_ps(x + (long)(y0 + r) * w + xs) : _mm256_maskload_ps(x + (long)(y0 + r) * w + xs, keep);
            for (int ki = 0; ki < kh; ki++)
                for (int kj = 0; kj < kw; kj++) {
                    const float *src = col + (long)(ki * kw + kj) * ld + xs + pad - kj;
                    for (int r = 0; r < 4; r++) {
                        long oy = y0 + r + pad - ki;
                        __m256i mm = r < rows && oy >= 0 && oy < ho ? m[kj] : none;
                        __m256 v = _mm256_maskload_ps(src + oy * wo, mm);
                        acc[r] = _mm256_blendv_ps(acc[r], _mm256_add_ps(acc[r], v), _mm256_castsi256_ps(mm));
                    }
                }
            for (int r = 0; r < rows; r++) {
                float *d = x + (long)(y0 + r) * w + xs;
                if (full) { _mm256_storeu_ps(d, acc[r]); continue; }
                float lanes[8];   // a masked store is microcoded on Zen 3: the last chunk goes through memory
                _mm256_storeu_ps(lanes, acc[r]);
                for (int l = 0; l < w - xs; l++) d[l] = lanes[l];
            }
        }
    }
}

__attribute__((target("avx2")))
static void im2col_s1_avx2(const float *plane, long pw, int kh, int kw, int ho, int wo, float *col, long ld) {
    for (int ki = 0; ki < kh; ki++)
        for (int kj = 0; kj < kw; kj++) {
            float *row = col + (long)(ki * kw + kj) * ld;
            for (int oy = 0; oy < ho; oy++) {
                const float *src = plane + (long)(oy + ki) * pw + kj;
                float *dst = row + (long)oy * wo;
                int ox = 0;
                if (oy + 1 < ho && wo >= 4) {   // whole vectors: the overshoot (< 8, ≤ wo) lands on the next row, written next
                    for (; ox < wo; ox += 8) _mm256_storeu_ps(dst + ox, _mm256_loadu_ps(src + ox));
                    continue;
                }
                for (; ox + 8 <= wo; ox += 8) _mm256_storeu_ps(dst + ox, _mm256_loadu_ps(src + ox));
                for (; ox < wo; ox++) dst[ox] = src[ox];   // the last row: nothing past it is touched (a masked store is microcoded on Zen 3)
            }
        }
}

__attribute__((target("avx512f")))
static void col2im_avx512(const float *col, long ld, float *x, int h, int w, int kh, int kw, int stride, int pad, int ho, int wo) {
    if (stride == 1 && kw <= COL2IM_MAX_KW) {   // rows of up to 8 values: the 8-lane form measured faster
        if (w <= 8) col2im_s1_avx2(col, ld, x, h, w, kh, kw, pad, ho, wo); else col2im_s1_avx512(col, ld, x, h, w, kh, kw, pad, ho, wo);
        return;
    }
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
    if (stride == 1) { im2col_s1_avx2(plane, pw, kh, kw, ho, wo, col, ld); return; }
    IM2COL_PLAIN
}
__attribute__((target("avx2")))
static void col2im_avx2(const float *col, long ld, float *x, int h, int w, int kh, int kw, int stride, int pad, int ho, int wo) {
    if (stride == 1 && kw <= COL2IM_MAX_KW) { col2im_s1_avx2(col, ld, x, h, w, kh, kw, pad, ho, wo); return; }
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
