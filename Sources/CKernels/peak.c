#include <immintrin.h>
#include "CKernels.h"

// Sixteen independent chains of vector FMAs: more than latency × ports on every x86 core
// this runs on (4 cycles × 2 FMA units), so the loop is bound by FMA throughput alone.
#define CHAINS 16

__attribute__((target("avx512f,fma")))
static long fma_avx512(long iters, float *sink) {
    __m512 acc[CHAINS];
    const __m512 x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_set1_ps((float)c);
    for (long i = 0; i < iters; i++)
        for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_fmadd_ps(acc[c], x, y);
    __m512 s = acc[0];
    for (int c = 1; c < CHAINS; c++) s = _mm512_add_ps(s, acc[c]);
    *sink = _mm512_reduce_add_ps(s);
    return iters * CHAINS * 16 * 2;
}

__attribute__((target("avx2,fma")))
static long fma_avx2(long iters, float *sink) {
    __m256 acc[CHAINS];
    const __m256 x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm256_set1_ps((float)c);
    for (long i = 0; i < iters; i++)
        for (int c = 0; c < CHAINS; c++) acc[c] = _mm256_fmadd_ps(acc[c], x, y);
    __m256 s = acc[0];
    for (int c = 1; c < CHAINS; c++) s = _mm256_add_ps(s, acc[c]);
    float lanes[8];
    _mm256_storeu_ps(lanes, s);
    *sink = lanes[0] + lanes[1] + lanes[2] + lanes[3] + lanes[4] + lanes[5] + lanes[6] + lanes[7];
    return iters * CHAINS * 8 * 2;
}

static long fma_baseline(long iters, float *sink) {
    __m128 acc[CHAINS];   // SSE has no FMA: a multiply and an add per lane
    const __m128 x = _mm_set1_ps(0.999999f), y = _mm_set1_ps(1e-7f);
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm_set1_ps((float)c);
    for (long i = 0; i < iters; i++)
        for (int c = 0; c < CHAINS; c++) acc[c] = _mm_add_ps(_mm_mul_ps(acc[c], x), y);
    float lanes[4];
    __m128 s = acc[0];
    for (int c = 1; c < CHAINS; c++) s = _mm_add_ps(s, acc[c]);
    _mm_storeu_ps(lanes, s);
    *sink = lanes[0] + lanes[1] + lanes[2] + lanes[3];
    return iters * CHAINS * 4 * 2;
}

long replica_fma_loop(long iters, float *sink) {
    int isa = replica_dots_best_isa();
    return isa >= 2 ? fma_avx512(iters, sink) : isa == 1 ? fma_avx2(iters, sink) : fma_baseline(iters, sink);
}
