#ifndef REPLICA_CKERNELS_H
#define REPLICA_CKERNELS_H

#include <stddef.h>

/// Tensor buffers (buffers.c): at least 64-byte aligned, uninitialized; free with the same
/// byte count. Buffers of 1 MiB and more are whole mappings of a size class (eight per power
/// of two) and are kept for reuse when freed; smaller ones come from malloc. NULL when out of
/// memory. Thread-safe.
void *replica_buffer_alloc(size_t bytes);
void replica_buffer_free(void *p, size_t bytes);
/// The bytes a request of `bytes` occupies (its class's size from 1 MiB up).
size_t replica_buffer_class_size(size_t bytes);
/// Unmaps every large block waiting for reuse.
void replica_buffer_release_idle(void);
/// Bytes of large blocks waiting for reuse, and handed out.
void replica_buffer_stats(size_t *idle, size_t *used);

/// Row tile and column tile every caller must pad to: m a multiple of REPLICA_DOTS_ROWS,
/// n a multiple of REPLICA_DOTS_COLUMNS.
#define REPLICA_DOTS_ROWS 8
#define REPLICA_DOTS_COLUMNS 32

/// c[i * ldc + j] = Σ_k a[i * d + k] · b[j, k] for i < m, j < n (a row-major [m, d]); bt is
/// b packed in panels of REPLICA_DOTS_COLUMNS columns, each panel [d, REPLICA_DOTS_COLUMNS]:
/// b[j, k] = bt[(j / 32) * 32 * d + k * 32 + j % 32] (replica_dots_pack writes it). Every
/// element is one accumulation in k order with the same instruction in every lane, so its
/// value depends only on its own row of a and column of b: not on its position, m, n or the
/// other rows. Single-threaded; the instruction set (AVX-512, AVX2 + FMA, or baseline) is
/// chosen once per machine.
void replica_dots(const float *a, int m, const float *bt, int n, int d, float *c, int ldc);
/// Packs b, row-major [n, d], into bt for replica_dots with `columns` (≥ n, a multiple of
/// REPLICA_DOTS_COLUMNS) columns: columns · d floats, the padding columns zero.
void replica_dots_pack(const float *b, int n, int d, int columns, float *bt);

/// The instruction set replica_dots uses here: 2 AVX-512, 1 AVX2 + FMA, 0 baseline.
int replica_dots_best_isa(void);
/// The same, computed once per process: what every kernel of CKernels dispatches on.
int replica_machine_isa(void);
/// replica_dots on a given instruction set (tests; at most replica_dots_best_isa()).
void replica_dots_isa(int isa, const float *a, int m, const float *bt, int n, int d, float *c, int ldc);

/// Pointwise functions of replica_map. Accuracy against the exact value, over all finite
/// floats: exp and log within 1 ulp, tanh 2, sigmoid and softplus 3 (Tests/EngineTests).
#define REPLICA_MAP_EXP 0
#define REPLICA_MAP_LOG 1
#define REPLICA_MAP_SIGMOID 2
#define REPLICA_MAP_TANH 3
#define REPLICA_MAP_SOFTPLUS 4

/// y[i] = f(x[i]) for i < n, f one of REPLICA_MAP_*; single-threaded. Every instruction
/// set gives the same bits (no FMA, no contraction), so results do not depend on the CPU kind.
void replica_map(int fn, const float *x, float *y, long n);
/// gx[i] = g[i] · sigmoid(x[i]): the gradient of softplus.
void replica_softplus_grad(const float *x, const float *g, float *gx, long n);
/// One Adam step over n parameters, in place (the formula is in math.c); the same bits as
/// the scalar loop it replaces.
void replica_adam(float *p, const float *g, float *m, float *v, long n, float beta1, float beta2,
                  float wd, float step, float c2root, float eps);

/// out[i] = the first j < k maximising s[i·k + j] − h[j], for each row i < m (k-means'
/// nearest centroid from x·c and ‖c‖²/2); single-threaded, the same on every instruction set.
void replica_argmax_rows(const float *s, const float *h, long m, long k, long *out);
/// The first j in [from, n) with x[j] > t (never for a NaN), or n if there is none.
long replica_first_above(const float *x, long from, long n, float t);
/// replica_first_above on a given instruction set (tests; at most replica_dots_best_isa()).
long replica_first_above_isa(int isa, const float *x, long from, long n, float t);

/// b[j·ldb + i] = a[i·lda + j] for i < rows, j < cols: a rows × cols matrix transposed.
void replica_transpose(const float *a, long rows, long cols, long lda, float *b, long ldb);

/// log Σ exp(x[i]) over i < n, shifted by the maximum m (m itself when m is infinite); tmp
/// (n floats) receives exp(x[i] − m). Sums in sixteen lanes, rp_exp / rp_log: the same bits on
/// every instruction set.
float replica_logsumexp_row(const float *x, long n, float *tmp);
/// log softmax's gradient along a row: gx[i] = g[i] − exp(y[i]) · Σ g (y the log softmax).
void replica_log_softmax_grad_row(const float *g, const float *y, float *gx, long n);

/// Binary cross-entropy on logits: Σ softplus(x[i]) − x[i]·t[i] in double (eight interleaved
/// partial sums, then the tail), and its gradient gx[i] = k·(sigmoid(x[i]) − t[i]); the same
/// bits on every instruction set.
double replica_bce_logits_sum(const float *x, const float *t, long n);
void replica_bce_logits_grad(const float *x, const float *t, float *gx, long n, float k);

/// Σ x[i]² for i < n, in double (eight interleaved partial sums, then the tail), the same
/// bits on every instruction set.
double replica_sum_squares(const float *x, long n);

/// Batch-norm sums over one plane of n floats, in float: Σ p[i]; Σ (p[i] − mu)²; and
/// Σ g[i] into *sg with Σ g[i]·(x[i] − mu) into *sgx, where g[i] counts as 0 unless
/// x[i]·scale + shift > 0 when relu is non-zero (a fused ReLU: the forward pass's
/// per-channel scale and shift, the product rounded before the sum). Sixteen interleaved partial sums
/// (lane l takes the i ≡ l mod 16 in order), added lane 0 to 15, then the tail: the same
/// bits on every instruction set.
float replica_plane_sum(const float *p, long n);
float replica_plane_sqdev(const float *p, long n, float mu);
void replica_plane_grad(const float *g, int relu, float scale, float shift, const float *x, long n, float mu, float *sg, float *sgx);
/// Batch norm's training-mode input gradient on one plane: d[i] = k·(m·g[i] − sg −
/// (x[i] − mu)·inv·sgx), with g masked by relu as in replica_plane_grad.
void replica_plane_dx(const float *g, int relu, float scale, float shift, const float *x, float *d, long n, float mu, float inv, float k, float m, float sg, float sgx);

/// The same on a given instruction set (tests; at most replica_dots_best_isa()).
float replica_plane_sum_isa(int isa, const float *p, long n);
float replica_plane_sqdev_isa(int isa, const float *p, long n, float mu);
void replica_plane_grad_isa(int isa, const float *g, int relu, float scale, float shift, const float *x, long n, float mu, float *sg, float *sgx);
void replica_plane_dx_isa(int isa, const float *g, int relu, float scale, float shift, const float *x, float *d, long n, float mu, float inv, float k, float m,
                          float sg, float sgx);
double replica_sum_squares_isa(int isa, const float *x, long n);
double replica_bce_logits_sum_isa(int isa, const float *x, const float *t, long n);
void replica_bce_logits_grad_isa(int isa, const float *x, const float *t, float *gx, long n, float k);
float replica_logsumexp_row_isa(int isa, const float *x, long n, float *tmp);
void replica_log_softmax_grad_row_isa(int isa, const float *g, const float *y, float *gx, long n);
void replica_transpose_isa(int isa, const float *a, long rows, long cols, long lda, float *b, long ldb);
void replica_map_isa(int isa, int fn, const float *x, float *y, long n);
void replica_softplus_grad_isa(int isa, const float *x, const float *g, float *gx, long n);
void replica_adam_isa(int isa, float *p, const float *g, float *m, float *v, long n, float beta1,
                      float beta2, float wd, float step, float c2root, float eps);
void replica_argmax_rows_isa(int isa, const float *s, const float *h, long m, long k, long *out);

/// One channel of im2col: from its zero-padded plane (rows of pw floats) to the column
/// matrix rows (ki, kj), each ho · wo values at row stride ld:
/// col[(ki·kw + kj)·ld + oy·wo + ox] = plane[(oy·stride + ki)·pw + kj + ox·stride].
void replica_im2col_plane(const float *plane, long pw, int kh, int kw, int stride, int ho, int wo, float *col, long ld);
/// Its adjoint into one unpadded h × w channel plane x: x[y][x'] += col[…] for every window
/// position inside the image, in the order of the plain loops (ki, kj, oy, ox), so the sums
/// have the same bits on every instruction set.
void replica_col2im_plane(const float *col, long ld, float *x, int h, int w, int kh, int kw, int stride, int pad, int ho, int wo);
/// The same on a given instruction set (tests; at most replica_dots_best_isa()).
void replica_im2col_plane_isa(int isa, const float *plane, long pw, int kh, int kw, int stride, int ho, int wo, float *col, long ld);
void replica_col2im_plane_isa(int isa, const float *col, long ld, float *x, int h, int w, int kh, int kw, int stride, int pad, int ho, int wo);

/// Where OpenBLAS chose narrower kernels than the CPU runs (SSE3 "Prescott", or AVX2
/// "Haswell" / "Zen" on a CPU with AVX-512), switches it to its SkylakeX or Haswell kernels
/// (openblas.c says why); does nothing when OPENBLAS_CORETYPE is set. Returns 1 when it
/// switched to other kernels. Call once, before any OpenBLAS call (the engine's start-up does).
int replica_openblas_repin(void);

/// Loads BLIS (Debian's libblis4-serial) as the engine's GEMM where it is the faster BLAS on
/// this machine: CPUs with AVX-512 (F, CD, BW, DQ, VL), on which it runs its `skx` kernels,
/// whose OpenBLAS runs AVX2 kernels (only where OPENBLAS_CORETYPE pins them: see
/// replica_openblas_repin; call that first).
/// REPLICA_BLAS=openblas keeps OpenBLAS; REPLICA_BLAS=blis asks for BLIS everywhere. Returns
/// 1 when BLIS is in use. Call once, before any GEMM (the engine's start-up does).
int replica_blis_open(void);
/// 1 on an Intel CPU (the GEMM library's shape rule differs by vendor: Linalg.swift).
int replica_cpu_is_intel(void);
/// 1 where the CPU has AVX-512 F (where OpenBLAS may take its small-product "direct" path).
int replica_cpu_has_avx512f(void);
/// "BLIS 0.9.0, kernel skx", or NULL when BLIS is not in use.
const char *replica_blis_name(void);
/// Row-major C = alpha · op(A) · op(B) + beta · C through BLIS (after replica_blis_open
/// returned 1); op transposes where transa / transb is non-zero, as cblas_sgemm.
void replica_blis_sgemm(int transa, int transb, long m, long n, long k, float alpha, const float *a, long lda,
                        const float *b, long ldb, float beta, float *c, long ldc);

/// The machine's single-precision peak, measured: `iters` rounds of 12 independent vector
/// FMA chains at the widest instruction set here (AVX-512, AVX2 + FMA, or SSE multiply +
/// add). Returns the floating-point operations done (2 per FMA lane); *sink receives a sum
/// of the results so the loop cannot be dropped. Single-threaded.
long replica_fma_loop(long iters, float *sink);

#endif
