#include <cblas.h>
// glibc's allocator tuning (mallopt), used by the engine at start-up; Swift's Glibc module
// does not export <malloc.h>.
#include <malloc.h>
// LAPACK's symmetric eigensolver (in libopenblas), for PCA and the effective rank.
void dsyev_(char *jobz, char *uplo, int *n, double *a, int *lda, double *w, double *work, int *lwork, int *info);
