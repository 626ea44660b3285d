#ifndef REPLICA_CKERNELS_H
#define REPLICA_CKERNELS_H

/// Row tile and column tile every caller must pad to: m a multiple of REPLICA_DOTS_ROWS,
/// n a multiple of REPLICA_DOTS_COLUMNS.
#define REPLICA_DOTS_ROWS 8
#define REPLICA_DOTS_COLUMNS 32

/// c[i * ldc + j] = Σ_k a[i * d + k] · bt[k * n + j] for i < m, j < n (a row-major [m, d],
/// bt the transposed right operand [d, n]). Every element is one accumulation in k order
/// with the same instruction in every lane, so its value depends only on its own row of a
/// and column of bt: not on its position, m, n or the other rows. Single-threaded; the
/// instruction set (AVX-512, AVX2 + FMA, or baseline) is chosen once per machine.
void replica_dots(const float *a, int m, const float *bt, int n, int d, float *c, int ldc);

/// The instruction set replica_dots uses here: 2 AVX-512, 1 AVX2 + FMA, 0 baseline.
int replica_dots_best_isa(void);
/// replica_dots on a given instruction set (tests; at most replica_dots_best_isa()).
void replica_dots_isa(int isa, const float *a, int m, const float *bt, int n, int d, float *c, int ldc);

#endif
