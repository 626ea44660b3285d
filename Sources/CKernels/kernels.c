#include "CKernels.h"

// One body, instantiated per instruction set. The tile is MR rows × NR columns of
// accumulators (NR divides the panel width P); the inner j loop is what the compiler
// vectorises. Each tile streams one contiguous panel of bt (P floats per k): a [d, n]
// layout had every k on another 4 KiB page once n reached 1,024. MULADD is a fused
// multiply-add where the target has one, else a multiply then an add: the same in every
// lane and every tile, which is all position independence needs.
#define DOTS_BODY(MR, NR, MULADD)                                                        \
    const int P = REPLICA_DOTS_COLUMNS;                                                  \
    for (int j0 = 0; j0 < n; j0 += NR) {                                                 \
        for (int i0 = 0; i0 < m; i0 += MR) {                                             \
            float acc[MR][NR];                                                           \
            for (int r = 0; r < MR; r++)                                                 \
                for (int j = 0; j < NR; j++) acc[r][j] = 0;                              \
            for (int k = 0; k < d; k++) {                                                \
                const float *b = bt + (long)(j0 / P) * P * d + (long)k * P + j0 % P;     \
                for (int r = 0; r < MR; r++) {                                           \
                    const float x = a[(long)(i0 + r) * d + k];                           \
                    for (int j = 0; j < NR; j++) acc[r][j] = MULADD(x, b[j], acc[r][j]); \
                }                                                                        \
            }                                                                            \
            for (int r = 0; r < MR; r++)                                                 \
                for (int j = 0; j < NR; j++) c[(long)(i0 + r) * ldc + j0 + j] = acc[r][j]; \
        }                                                                                \
    }

#define FUSED(x, y, z) __builtin_fmaf((x), (y), (z))
#define SEPARATE(x, y, z) ((z) + (x) * (y))

__attribute__((target("avx512f,avx512vl,fma")))
static void dots_avx512(const float *a, int m, const float *bt, int n, int d, float *c, int ldc) {
    DOTS_BODY(8, 32, FUSED)   // 16 zmm accumulators
}

__attribute__((target("avx2,fma")))
static void dots_avx2(const float *a, int m, const float *bt, int n, int d, float *c, int ldc) {
    DOTS_BODY(4, 32, FUSED)   // 16 ymm accumulators (4 × 16 and 8 × 8 measured slower)
}

#pragma clang fp contract(off)
static void dots_baseline(const float *a, int m, const float *bt, int n, int d, float *c, int ldc) {
    DOTS_BODY(4, 16, SEPARATE)
}

void replica_dots_pack(const float *b, int n, int d, int columns, float *bt) {
    const int P = REPLICA_DOTS_COLUMNS;
    for (long j = 0; j < columns; j++) {
        float *panel = bt + (j / P) * P * d + j % P;
        for (long k = 0; k < d; k++) panel[k * P] = j < n ? b[j * d + k] : 0;
    }
}

int replica_dots_best_isa(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma")) return 2;
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 1 : 0;
}

void replica_dots_isa(int isa, const float *a, int m, const float *bt, int n, int d, float *c, int ldc) {
    if (isa >= 2) dots_avx512(a, m, bt, n, d, c, ldc);
    else if (isa == 1) dots_avx2(a, m, bt, n, d, c, ldc);
    else dots_baseline(a, m, bt, n, d, c, ldc);
}

int replica_machine_isa(void) {
    static int chosen = -1;   // every thread computes the same value; relaxed atomics keep it race-free
    int isa = __atomic_load_n(&chosen, __ATOMIC_RELAXED);
    if (isa < 0) { isa = replica_dots_best_isa(); __atomic_store_n(&chosen, isa, __ATOMIC_RELAXED); }
    return isa;
}

void replica_dots(const float *a, int m, const float *bt, int n, int d, float *c, int ldc) {
    replica_dots_isa(replica_machine_isa(), a, m, bt, n, d, c, ldc);
}
