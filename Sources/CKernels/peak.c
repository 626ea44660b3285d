#include <immintrin.h>
#include "CKernels.h"

// Sixteen independent chains of vector FMAs: more than latency × ports on every x86 core
// this runs on (4 cycles × 2 FMA units), so the loop is bound by FMA throughput alone. One
// body per instruction set: VEC is the vector type, LANES its width, FMA(a, x, y) = a·x + y.
#define CHAINS 16

#define FMA_LOOP(VEC, LANES, SET1, FMA, ADD, STORE)                                  \
    VEC acc[CHAINS];                                                                  \
    const VEC x = SET1(0.999999f), y = SET1(1e-7f);                                  \
    for (int c = 0; c < CHAINS; c++) acc[c] = SET1((float)c);                        \
    for (long i = 0; i < iters; i++)                                                 \
        for (int c = 0; c < CHAINS; c++) acc[c] = FMA(acc[c], x, y);                 \
    VEC s = acc[0];                                                                   \
    for (int c = 1; c < CHAINS; c++) s = ADD(s, acc[c]);                             \
    float lanes[LANES], total = 0;                                                    \
    STORE(lanes, s);                                                                  \
    for (int l = 0; l < LANES; l++) total += lanes[l];                               \
    *sink = total;                                                                    \
    return iters * CHAINS * LANES * 2;

#define SSE_MULADD(a, x, y) _mm_add_ps(_mm_mul_ps((a), (x)), (y))   // SSE has no FMA

__attribute__((target("avx512f,fma")))
static long fma_avx512(long iters, float *sink) { FMA_LOOP(__m512, 16, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, _mm512_storeu_ps) }

__attribute__((target("avx2,fma")))
static long fma_avx2(long iters, float *sink) { FMA_LOOP(__m256, 8, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, _mm256_storeu_ps) }

static long fma_baseline(long iters, float *sink) { FMA_LOOP(__m128, 4, _mm_set1_ps, SSE_MULADD, _mm_add_ps, _mm_storeu_ps) }

long replica_fma_loop(long iters, float *sink) {
    int isa = replica_machine_isa();
    return isa >= 2 ? fma_avx512(iters, sink) : isa == 1 ? fma_avx2(iters, sink) : fma_baseline(iters, sink);
}
