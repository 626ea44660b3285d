#include "CKernels.h"
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

// OpenBLAS picks its kernels once, when it is loaded, from the CPU's family and model. A
// CPU newer than the OpenBLAS build (Debian 12's 0.3.21) is not in its table: an Emerald
// Rapids Xeon (family 6 model 207) or an AMD Zen 5 (family 26) falls back to the SSE3
// kernels of a 2004 Pentium 4 ("Prescott"), and a CPU it takes for an older one can get
// AVX2 kernels ("Haswell", "Zen") where it has AVX-512. Every small product then runs at a
// fraction of the machine's speed. This redoes OpenBLAS's own start-up with
// OPENBLAS_CORETYPE set to the widest kernels the CPU runs: SkylakeX where it has AVX-512
// F, BW, DQ and VL (OpenBLAS names them Cooperlake where there is AVX-512 BF16 too; on a
// Zen 5, convnet4-lite's thin layers forward + backward: 16 → 32 channels 9.5 → 8.3 ms,
// 64 → 128 3.7 → 2.3 ms against Haswell's), else Haswell where it has AVX2 and FMA (R2's
// step on the Xeon 165 → 134 ms against Prescott's). OPENBLAS_CORETYPE set by the user
// always wins. Exported symbols of OpenBLAS's DYNAMIC_ARCH builds only; elsewhere nothing
// changes.
int replica_openblas_repin(void) {
    if (getenv("OPENBLAS_CORETYPE")) return 0;
    const char *(*corename)(void) = (const char *(*)(void))dlsym(RTLD_DEFAULT, "openblas_get_corename");
    void (*quit)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "gotoblas_dynamic_quit");
    void (*init)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "gotoblas_dynamic_init");
    if (!corename || !quit || !init) return 0;
    __builtin_cpu_init();
    const char *want = NULL;
    char now[32];
    strncpy(now, corename(), sizeof now - 1);
    now[sizeof now - 1] = 0;
    int narrow = !strcasecmp(now, "prescott") || !strcasecmp(now, "haswell") || !strcasecmp(now, "zen");
    if (narrow && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        want = "SkylakeX";
    else if (!strcasecmp(now, "prescott") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        want = "Haswell";
    if (!want) return 0;
    setenv("OPENBLAS_CORETYPE", want, 1);
    quit();
    init();
    unsetenv("OPENBLAS_CORETYPE");
    return strcasecmp(corename(), now) != 0;   // SkylakeX may come back as a newer name (Cooperlake)
}
