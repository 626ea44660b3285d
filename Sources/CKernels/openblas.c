#include "CKernels.h"
#include <dlfcn.h>
#include <stdlib.h>
#include <strings.h>

// OpenBLAS picks its kernels once, when it is loaded, from the CPU's family and model. A
// CPU newer than the OpenBLAS build (Debian 12's 0.3.21 on an Emerald Rapids Xeon, family 6
// model 207) is not in its table, and it falls back to the SSE3 kernels of a 2004 Pentium 4
// ("Prescott"): every small product then runs at a fraction of the machine's speed. Where
// that happened on a CPU with AVX2 and FMA, this switches OpenBLAS to its Haswell kernels —
// valid on every such CPU, and the kernels the environment pins on machines where OpenBLAS
// misdetects in other ways — by redoing its own start-up with OPENBLAS_CORETYPE set.
// OPENBLAS_CORETYPE set by the user always wins. Exported symbols of OpenBLAS's
// DYNAMIC_ARCH builds only; elsewhere nothing changes.
int replica_openblas_repin(void) {
    if (getenv("OPENBLAS_CORETYPE")) return 0;
    const char *(*corename)(void) = (const char *(*)(void))dlsym(RTLD_DEFAULT, "openblas_get_corename");
    void (*quit)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "gotoblas_dynamic_quit");
    void (*init)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "gotoblas_dynamic_init");
    if (!corename || !quit || !init || strcasecmp(corename(), "prescott") != 0) return 0;
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return 0;
    setenv("OPENBLAS_CORETYPE", "Haswell", 1);
    quit();
    init();
    unsetenv("OPENBLAS_CORETYPE");
    return strcasecmp(corename(), "haswell") == 0;
}
