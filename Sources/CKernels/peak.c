#include <immintrin.h>
#include "CKernels.h"

// Twelve independent chains of vector FMAs: more than latency × ports on every x86 core this
// runs on (4 cycles × 2 FMA units), so the loop is bound by FMA throughput alone. Twelve
// accumulators and the two constants fit AVX2's and SSE's 16 vector registers; sixteen did
// not, and the spills halved the peak measured on AVX2 machines. The chains are named, not an
// array, so no optimisation level puts them in memory. One body per instruction set: VEC is
// the vector type, LANES its width, FMA(a, x, y) = a·x + y.
#define CHAINS 12

#define FMA_LOOP(VEC, LANES, SET1, FMA, ADD, STORE)                                  \
    const VEC x = SET1(0.999999f), y = SET1(1e-7f);                                  \
    VEC a0 = SET1(0), a1 = SET1(1), a2 = SET1(2), a3 = SET1(3), a4 = SET1(4),        \
        a5 = SET1(5), a6 = SET1(6), a7 = SET1(7), a8 = SET1(8), a9 = SET1(9),        \
        a10 = SET1(10), a11 = SET1(11);                                               \
    for (long i = 0; i < iters; i++) {                                               \
        a0 = FMA(a0, x, y); a1 = FMA(a1, x, y); a2 = FMA(a2, x, y);                  \
        a3 = FMA(a3, x, y); a4 = FMA(a4, x, y); a5 = FMA(a5, x, y);                  \
        a6 = FMA(a6, x, y); a7 = FMA(a7, x, y); a8 = FMA(a8, x, y);                  \
        a9 = FMA(a9, x, y); a10 = FMA(a10, x, y); a11 = FMA(a11, x, y);              \
    }                                                                                 \
    VEC s = ADD(ADD(ADD(a0, a1), ADD(a2, a3)), ADD(ADD(a4, a5), ADD(a6, a7)));        \
    s = ADD(s, ADD(ADD(a8, a9), ADD(a10, a11)));                                      \
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
