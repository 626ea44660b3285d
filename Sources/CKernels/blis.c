#include "CKernels.h"
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

// BLIS, loaded at run time as a second BLAS for the engine's GEMM. Only its typed API
// (bli_*) is used: those names cannot collide with OpenBLAS's, which stays linked for
// everything else. The types are BLIS 0.9's: dim_t and inc_t are 64-bit, trans_t an enum
// with BLIS_TRANSPOSE = 0x8.

typedef void (*bli_sgemm_fn)(int transa, int transb, long m, long n, long k, const float *alpha,
                             const float *a, long rsa, long csa, const float *b, long rsb, long csb,
                             const float *beta, float *c, long rsc, long csc);

static bli_sgemm_fn blis_sgemm;
static char blis_name[96];

static int has_skx_subset(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vl");
}

// Whether OpenBLAS runs its own AVX-512 kernels (openblas.c pins them where the CPU has
// AVX-512 and OPENBLAS_CORETYPE is not set).
static int openblas_runs_avx512(void) {
    const char *(*corename)(void) = (const char *(*)(void))dlsym(RTLD_DEFAULT, "openblas_get_corename");
    if (!corename) return 0;
    const char *name = corename();
    return !strcasecmp(name, "skylakex") || !strcasecmp(name, "cooperlake") || !strcasecmp(name, "sapphirerapids");
}

int replica_cpu_is_intel(void) {
    __builtin_cpu_init();
    return __builtin_cpu_is("intel");
}

int replica_cpu_has_avx512f(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}

int replica_blis_open(void) {
    const char *choice = getenv("REPLICA_BLAS");
    if (choice && strcmp(choice, "openblas") == 0) return 0;
    int forced = choice && strcmp(choice, "blis") == 0;
    int skx = has_skx_subset();
    if (!skx && !forced) return 0;
    // BLIS is for AVX-512 CPUs whose OpenBLAS runs AVX2 kernels (OPENBLAS_CORETYPE=Haswell,
    // say). Against OpenBLAS's SkylakeX kernels it lost or tied on every product measured
    // on a Zen 5 (2 threads, one product each: the conv products of R2 1.0–1.4×, 32 × 784 × 9
    // 1.6×, 1024³ 1.07×, 256 × 1024 × 4096 1.4× slower).
    if (!forced && openblas_runs_avx512()) return 0;
    void *h = dlopen("/usr/lib/x86_64-linux-gnu/blis-serial/libblis.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!h) h = dlopen("libblis.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!h) return 0;
    bli_sgemm_fn sgemm = (bli_sgemm_fn)dlsym(h, "bli_sgemm");
    const char *(*arch_string)(int) = (const char *(*)(int))dlsym(h, "bli_arch_string");
    int (*arch_query)(void) = (int (*)(void))dlsym(h, "bli_arch_query_id");
    const char *(*version)(void) = (const char *(*)(void))dlsym(h, "bli_info_get_version_str");
    void (*init)(void) = (void (*)(void))dlsym(h, "bli_init");
    if (!sgemm || !arch_string || !arch_query || !version || !init) return 0;
    // BLIS 0.9 does not know Zen 4 or Zen 5 and would run its generic kernels there; its
    // AVX-512 sub-configuration `skx` runs on every CPU with these subsets. BLIS reads
    // BLIS_ARCH_TYPE (an index into its list of sub-configurations) once, in bli_init.
    int set_here = 0;
    if (skx && !getenv("BLIS_ARCH_TYPE")) {
        for (int i = 0; i < 64; i++) {
            const char *name = arch_string(i);
            if (!name) break;
            if (strcmp(name, "skx") == 0) {
                char index[8];
                snprintf(index, sizeof index, "%d", i);
                setenv("BLIS_ARCH_TYPE", index, 1);
                set_here = 1;
                break;
            }
            if (strcmp(name, "generic") == 0) break;
        }
    }
    init();   // reads BLIS_ARCH_TYPE and sets up the kernels' contexts
    const char *arch = arch_string(arch_query());
    if (set_here) unsetenv("BLIS_ARCH_TYPE");
    if (!forced && (!arch || strcmp(arch, "generic") == 0)) return 0;
    snprintf(blis_name, sizeof blis_name, "BLIS %s, kernel %s", version(), arch ? arch : "?");
    blis_sgemm = sgemm;
    return 1;
}

const char *replica_blis_name(void) { return blis_sgemm ? blis_name : 0; }

void replica_blis_sgemm(int transa, int transb, long m, long n, long k, float alpha, const float *a, long lda,
                        const float *b, long ldb, float beta, float *c, long ldc) {
    blis_sgemm(transa ? 0x8 : 0, transb ? 0x8 : 0, m, n, k, &alpha, a, lda, 1, b, ldb, 1, &beta, c, ldc, 1);
}
