#include "CKernels.h"
#include <stdint.h>

// Pointwise math and the Adam update, compiled three times (AVX-512, AVX2, baseline x86-64)
// from one body and chosen once per machine. No contraction and no FMA anywhere in this
// file: every variant performs the same IEEE operations in the same order, so all three give
// bit-identical results, and the machine kinds differ in speed only.
#pragma clang fp contract(off)

#define INLINE static inline __attribute__((always_inline))

INLINE float as_float(int32_t i) { float f; __builtin_memcpy(&f, &i, 4); return f; }
INLINE int32_t as_int(float f) { int32_t i; __builtin_memcpy(&i, &f, 4); return i; }

// exp: x = n·ln 2 + r with |r| ≤ ln 2 / 2 (ln 2 split in two so n·ln2_hi is exact), Cephes'
// degree-6 polynomial for e^r, then 2^n applied as two halves so that results in the
// subnormal range are rounded by one multiplication instead of flushed.
INLINE float rp_exp(float x) {
    float xc = x > 88.8f ? 88.8f : x;
    xc = xc < -104.0f ? -104.0f : xc;
    const float shifter = 12582912.0f;   // 1.5 · 2^23: adding it rounds to an integer
    float n = (xc * 1.44269504088896341f + shifter) - shifter;
    float r = xc - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    int32_t k = (int32_t)n, h = k >> 1;
    float y = p * as_float((h + 127) << 23) * as_float((k - h + 127) << 23);
    y = x > 88.72283935546875f ? __builtin_inff() : y;
    y = x < -103.972076416f ? 0.0f : y;
    return x != x ? x : y;
}

// log: x = m · 2^e with m in [√½, √2), Cephes' degree-9 polynomial in f = m − 1.
INLINE float rp_log(float x) {
    int sub = x < 1.17549435e-38f;                 // subnormal (or ≤ 0, handled below)
    float xs = sub ? x * 8388608.0f : x;           // · 2^23
    int32_t i = as_int(xs);
    float e = (float)(((i >> 23) & 0xff) - 127) - (sub ? 23.0f : 0.0f);
    float m = as_float((i & 0x007fffff) | 0x3f800000);   // [1, 2)
    int big = m > 1.41421356237f;
    m = big ? m * 0.5f : m;
    e = big ? e + 1.0f : e;
    float f = m - 1.0f, z = f * f;
    float y = 7.0376836292e-2f;
    y = y * f - 1.1514610310e-1f;
    y = y * f + 1.1676998740e-1f;
    y = y * f - 1.2420140846e-1f;
    y = y * f + 1.4249322787e-1f;
    y = y * f - 1.6668057665e-1f;
    y = y * f + 2.0000714765e-1f;
    y = y * f - 2.4999993993e-1f;
    y = y * f + 3.3333331174e-1f;
    y = y * f * z;
    y = y + e * -2.12194440e-4f;
    y = y - 0.5f * z;
    float r = f + y;
    r = r + e * 0.693359375f;
    r = x == __builtin_inff() ? x : r;
    r = x == 0.0f ? -__builtin_inff() : r;
    return ((x < 0.0f) | (x != x)) ? __builtin_nanf("") : r;
}

// sigmoid: 1 / (1 + e^−x) for x ≥ 0 and e^x / (1 + e^x) below, so that the tail toward −∞
// keeps its relative accuracy instead of rounding 1 + e^−x to infinity.
INLINE float rp_sigmoid(float x) {
    float ax = x < 0.0f ? -x : x;
    float e = rp_exp(-ax), d = 1.0f + e;
    return x < 0.0f ? e / d : 1.0f / d;
}

// log(1 + e^x) = max(x, 0) + log1p(e^−|x|); log1p(t) = log(u) · t / (u − 1) with u = 1 + t
// (exact to a few ulp where u rounds), t itself where u rounds to 1.
INLINE float rp_softplus(float x) {
    float ax = x < 0.0f ? -x : x;
    float t = rp_exp(-ax), u = 1.0f + t;
    float l = u == 1.0f ? t : rp_log(u) * (t / (u - 1.0f));
    return (x > 0.0f ? x : 0.0f) + l;
}

// tanh: Cephes' odd polynomial below 0.625, 1 − 2 / (e^{2|x|} + 1) above.
INLINE float rp_tanh(float x) {
    float ax = x < 0.0f ? -x : x;
    float big = 1.0f - 2.0f / (rp_exp(2.0f * ax) + 1.0f);
    big = x < 0.0f ? -big : big;
    float z = x * x;
    float s = -5.70498872745e-3f;
    s = s * z + 2.06390887954e-2f;
    s = s * z - 5.37397155531e-2f;
    s = s * z + 1.33314422036e-1f;
    s = s * z - 3.33332819422e-1f;
    float small = s * z * x + x;
    return ax < 0.625f ? small : big;
}

#define MAP_LOOP(F) for (long i = 0; i < n; i++) y[i] = F(x[i]); break;
#define MAP_BODY                                     \
    switch (fn) {                                    \
    case REPLICA_MAP_EXP: MAP_LOOP(rp_exp)           \
    case REPLICA_MAP_LOG: MAP_LOOP(rp_log)           \
    case REPLICA_MAP_SIGMOID: MAP_LOOP(rp_sigmoid)   \
    case REPLICA_MAP_TANH: MAP_LOOP(rp_tanh)         \
    case REPLICA_MAP_SOFTPLUS: MAP_LOOP(rp_softplus) \
    }

// The same body is the gradient of softplus (g · sigmoid(x)).
#define SOFTPLUS_GRAD_BODY for (long i = 0; i < n; i++) gx[i] = g[i] * rp_sigmoid(x[i]);

// Adam (PyTorch's, with L2 weight decay folded into the gradient), in the order of
// NN's Swift loop: m ← β₁m + (1 − β₁)d, v ← β₂v + (1 − β₂)d², p ← p − s·m / (√v / c + ε).
#define ADAM_BODY                                                          \
    for (long i = 0; i < n; i++) {                                         \
        float d = g[i] + wd * p[i];                                        \
        m[i] = beta1 * m[i] + (1.0f - beta1) * d;                          \
        v[i] = beta2 * v[i] + (1.0f - beta2) * d * d;                      \
        p[i] -= step * m[i] / (__builtin_elementwise_sqrt(v[i]) / c2root + eps); \
    }

#define VARIANTS_OF(TYPE, NAME, PARAMS, BODY)                                         \
    __attribute__((target("avx512f,avx512vl"))) static TYPE NAME##_2 PARAMS { BODY } \
    __attribute__((target("avx2"))) static TYPE NAME##_1 PARAMS { BODY }             \
    static TYPE NAME##_0 PARAMS { BODY }

VARIANTS_OF(void, map, (int fn, const float *x, float *y, long n), MAP_BODY)
VARIANTS_OF(void, softplus_grad, (const float *x, const float *g, float *gx, long n), SOFTPLUS_GRAD_BODY)
VARIANTS_OF(void, adam, (float *p, const float *g, float *m, float *v, long n, float beta1, float beta2,
                float wd, float step, float c2root, float eps), ADAM_BODY)

// For each row i: the first j maximising s[i·k + j] − h[j]. The maximum is taken in 16
// lanes (exact whatever the order), then the first index that attains it.
typedef float rp_v16 __attribute__((vector_size(64)));
typedef int32_t rp_i16 __attribute__((vector_size(64)));
#define ARGMAX_BODY                                                                       \
    for (long i = 0; i < m; i++) {                                                        \
        const float *row = s + i * k;                                                     \
        float best = -__builtin_inff();                                                   \
        long j = 0;                                                                       \
        if (k >= 16) {                                                                    \
            rp_v16 acc, a, b;                                                             \
            for (int l = 0; l < 16; l++) acc[l] = -__builtin_inff();                      \
            for (; j + 16 <= k; j += 16) {                                                \
                __builtin_memcpy(&a, row + j, 64);                                        \
                __builtin_memcpy(&b, h + j, 64);                                          \
                acc = __builtin_elementwise_max(acc, a - b);                              \
            }                                                                             \
            best = __builtin_reduce_max(acc);                                             \
        }                                                                                 \
        for (; j < k; j++) { float v = row[j] - h[j]; best = v > best ? v : best; }       \
        long at = 0;                                                                      \
        for (j = 0; j < k; j++) if (row[j] - h[j] == best) { at = j; break; }             \
        out[i] = at;                                                                      \
    }

VARIANTS_OF(void, argmax_rows, (const float *s, const float *h, long m, long k, long *out), ARGMAX_BODY)

// The first j ≥ from with x[j] > t: 16 lanes compared at a time, then the block that holds
// one scanned in order (a NaN compares false either way).
#define FIRST_ABOVE_BODY                                                                  \
    rp_v16 tv, a;                                                                         \
    for (int l = 0; l < 16; l++) tv[l] = t;                                               \
    long j = from;                                                                        \
    for (; j + 16 <= n; j += 16) {                                                        \
        __builtin_memcpy(&a, x + j, 64);                                                  \
        if (__builtin_reduce_or((rp_i16)(a > tv))) break;                                 \
    }                                                                                     \
    for (; j < n; j++) if (x[j] > t) return j;                                            \
    return n;

VARIANTS_OF(long, first_above, (const float *x, long from, long n, float t), FIRST_ABOVE_BODY)

long replica_first_above_isa(int isa, const float *x, long from, long n, float t) {
    return isa >= 2 ? first_above_2(x, from, n, t) : isa == 1 ? first_above_1(x, from, n, t) : first_above_0(x, from, n, t);
}
long replica_first_above(const float *x, long from, long n, float t) {
    return replica_first_above_isa(replica_machine_isa(), x, from, n, t);
}

void replica_argmax_rows_isa(int isa, const float *s, const float *h, long m, long k, long *out) {
    if (isa >= 2) argmax_rows_2(s, h, m, k, out); else if (isa == 1) argmax_rows_1(s, h, m, k, out); else argmax_rows_0(s, h, m, k, out);
}
void replica_argmax_rows(const float *s, const float *h, long m, long k, long *out) {
    replica_argmax_rows_isa(replica_machine_isa(), s, h, m, k, out);
}

void replica_map_isa(int isa, int fn, const float *x, float *y, long n) {
    if (isa >= 2) map_2(fn, x, y, n); else if (isa == 1) map_1(fn, x, y, n); else map_0(fn, x, y, n);
}
void replica_map(int fn, const float *x, float *y, long n) { replica_map_isa(replica_machine_isa(), fn, x, y, n); }

void replica_softplus_grad_isa(int isa, const float *x, const float *g, float *gx, long n) {
    if (isa >= 2) softplus_grad_2(x, g, gx, n); else if (isa == 1) softplus_grad_1(x, g, gx, n); else softplus_grad_0(x, g, gx, n);
}
void replica_softplus_grad(const float *x, const float *g, float *gx, long n) {
    replica_softplus_grad_isa(replica_machine_isa(), x, g, gx, n);
}

void replica_adam_isa(int isa, float *p, const float *g, float *m, float *v, long n, float beta1, float beta2,
                      float wd, float step, float c2root, float eps) {
    if (isa >= 2) adam_2(p, g, m, v, n, beta1, beta2, wd, step, c2root, eps);
    else if (isa == 1) adam_1(p, g, m, v, n, beta1, beta2, wd, step, c2root, eps);
    else adam_0(p, g, m, v, n, beta1, beta2, wd, step, c2root, eps);
}
void replica_adam(float *p, const float *g, float *m, float *v, long n, float beta1, float beta2,
                  float wd, float step, float c2root, float eps) {
    replica_adam_isa(replica_machine_isa(), p, g, m, v, n, beta1, beta2, wd, step, c2root, eps);
}

// b[j·ldb + i] = a[i·lda + j] for i < rows, j < cols, in 16 × 16 tiles (full tiles have
// constant bounds, which the compiler turns into register shuffles).
#define TRANSPOSE_BODY                                                                     \
    long i = 0;                                                                           \
    for (; i + 16 <= rows; i += 16) {                                                     \
        long j = 0;                                                                       \
        for (; j + 16 <= cols; j += 16)                                                   \
            for (int jj = 0; jj < 16; jj++)                                               \
                for (int ii = 0; ii < 16; ii++) b[(j + jj) * ldb + i + ii] = a[(i + ii) * lda + j + jj]; \
        for (; j < cols; j++)                                                             \
            for (int ii = 0; ii < 16; ii++) b[j * ldb + i + ii] = a[(i + ii) * lda + j];  \
    }                                                                                     \
    for (; i < rows; i++)                                                                 \
        for (long j = 0; j < cols; j++) b[j * ldb + i] = a[i * lda + j];

VARIANTS_OF(void, transpose, (const float *a, long rows, long cols, long lda, float *b, long ldb), TRANSPOSE_BODY)

void replica_transpose_isa(int isa, const float *a, long rows, long cols, long lda, float *b, long ldb) {
    if (isa >= 2) transpose_2(a, rows, cols, lda, b, ldb); else if (isa == 1) transpose_1(a, rows, cols, lda, b, ldb); else transpose_0(a, rows, cols, lda, b, ldb);
}
void replica_transpose(const float *a, long rows, long cols, long lda, float *b, long ldb) {
    replica_transpose_isa(replica_machine_isa(), a, rows, cols, lda, b, ldb);
}

// log Σ exp(x[i]) over a row of n: the maximum m (16 lanes; exact in any order), e^(x − m)
// into tmp, their sum in 16 lanes (lane 0…15, then the tail), m + log of it; m itself when
// m is infinite. The gradient of log softmax: gx = g − e^y · Σg (Σg in 16 lanes).
#define LSE_ROW_BODY                                                                       \
    rp_v16 mx, a;                                                                         \
    for (int l = 0; l < 16; l++) mx[l] = -__builtin_inff();                               \
    long i = 0;                                                                           \
    for (; i + 16 <= n; i += 16)                                                          \
        for (int l = 0; l < 16; l++) mx[l] = x[i + l] > mx[l] ? x[i + l] : mx[l];          \
    float m = -__builtin_inff();                                                          \
    for (int l = 0; l < 16; l++) m = mx[l] > m ? mx[l] : m;                               \
    for (; i < n; i++) m = x[i] > m ? x[i] : m;                                           \
    for (i = 0; i < n; i++) tmp[i] = rp_exp(x[i] - m);                                    \
    rp_v16 acc = {0};                                                                     \
    for (i = 0; i + 16 <= n; i += 16) { __builtin_memcpy(&a, tmp + i, 64); acc += a; }     \
    float s = 0;                                                                          \
    for (int l = 0; l < 16; l++) s += acc[l];                                             \
    for (; i < n; i++) s += tmp[i];                                                       \
    return m - m == 0 ? m + rp_log(s) : m;
#define LOG_SOFTMAX_GRAD_BODY                                                              \
    rp_v16 acc = {0}, a;                                                                  \
    long i = 0;                                                                           \
    for (; i + 16 <= n; i += 16) { __builtin_memcpy(&a, g + i, 64); acc += a; }           \
    float s = 0;                                                                          \
    for (int l = 0; l < 16; l++) s += acc[l];                                             \
    for (; i < n; i++) s += g[i];                                                         \
    for (i = 0; i < n; i++) gx[i] = g[i] - rp_exp(y[i]) * s;

VARIANTS_OF(float, logsumexp_row, (const float *x, long n, float *tmp), LSE_ROW_BODY)
VARIANTS_OF(void, log_softmax_grad_row, (const float *g, const float *y, float *gx, long n), LOG_SOFTMAX_GRAD_BODY)

float replica_logsumexp_row_isa(int isa, const float *x, long n, float *tmp) {
    return isa >= 2 ? logsumexp_row_2(x, n, tmp) : isa == 1 ? logsumexp_row_1(x, n, tmp) : logsumexp_row_0(x, n, tmp);
}
float replica_logsumexp_row(const float *x, long n, float *tmp) { return replica_logsumexp_row_isa(replica_machine_isa(), x, n, tmp); }
void replica_log_softmax_grad_row_isa(int isa, const float *g, const float *y, float *gx, long n) {
    if (isa >= 2) log_softmax_grad_row_2(g, y, gx, n); else if (isa == 1) log_softmax_grad_row_1(g, y, gx, n); else log_softmax_grad_row_0(g, y, gx, n);
}
void replica_log_softmax_grad_row(const float *g, const float *y, float *gx, long n) {
    replica_log_softmax_grad_row_isa(replica_machine_isa(), g, y, gx, n);
}

// Binary cross-entropy on logits, Σ softplus(x) − x·t in double (lane l of eight sums the
// i ≡ l mod 8 in order, lanes added 0…7, then the tail), and its gradient k·(σ(x) − t).
#define BCE_SUM_BODY                                                                       \
    double lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                           \
    long i = 0;                                                                           \
    for (; i + 8 <= n; i += 8) {                                                          \
        float e[8];                                                                       \
        for (int l = 0; l < 8; l++) e[l] = rp_softplus(x[i + l]) - x[i + l] * t[i + l];  \
        for (int l = 0; l < 8; l++) lanes[l] += (double)e[l];                             \
    }                                                                                     \
    double total = 0;                                                                     \
    for (int l = 0; l < 8; l++) total += lanes[l];                                        \
    for (; i < n; i++) total += (double)(rp_softplus(x[i]) - x[i] * t[i]);                \
    return total;
#define BCE_GRAD_BODY for (long i = 0; i < n; i++) gx[i] = k * (rp_sigmoid(x[i]) - t[i]);

VARIANTS_OF(double, bce_logits_sum, (const float *x, const float *t, long n), BCE_SUM_BODY)
VARIANTS_OF(void, bce_logits_grad, (const float *x, const float *t, float *gx, long n, float k), BCE_GRAD_BODY)

double replica_bce_logits_sum_isa(int isa, const float *x, const float *t, long n) {
    return isa >= 2 ? bce_logits_sum_2(x, t, n) : isa == 1 ? bce_logits_sum_1(x, t, n) : bce_logits_sum_0(x, t, n);
}
double replica_bce_logits_sum(const float *x, const float *t, long n) { return replica_bce_logits_sum_isa(replica_machine_isa(), x, t, n); }
void replica_bce_logits_grad_isa(int isa, const float *x, const float *t, float *gx, long n, float k) {
    if (isa >= 2) bce_logits_grad_2(x, t, gx, n, k); else if (isa == 1) bce_logits_grad_1(x, t, gx, n, k); else bce_logits_grad_0(x, t, gx, n, k);
}
void replica_bce_logits_grad(const float *x, const float *t, float *gx, long n, float k) {
    replica_bce_logits_grad_isa(replica_machine_isa(), x, t, gx, n, k);
}

// Σ x[i]² in double: lane l of eight sums the i ≡ l (mod 8) in order, the lanes are then
// added 0…7, then the tail; the same operations on every instruction set.
typedef double rp_d8 __attribute__((vector_size(64)));
#define SUM_SQUARES_BODY                                                                   \
    rp_d8 acc = {0, 0, 0, 0, 0, 0, 0, 0};                                                 \
    long i = 0;                                                                           \
    for (; i + 8 <= n; i += 8) {                                                          \
        rp_d8 v = {x[i], x[i + 1], x[i + 2], x[i + 3], x[i + 4], x[i + 5], x[i + 6], x[i + 7]}; \
        acc += v * v;                                                                     \
    }                                                                                     \
    double total = 0;                                                                     \
    for (int l = 0; l < 8; l++) total += acc[l];                                          \
    for (; i < n; i++) total += (double)x[i] * (double)x[i];                              \
    return total;

VARIANTS_OF(double, sum_squares, (const float *x, long n), SUM_SQUARES_BODY)

double replica_sum_squares_isa(int isa, const float *x, long n) {
    return isa >= 2 ? sum_squares_2(x, n) : isa == 1 ? sum_squares_1(x, n) : sum_squares_0(x, n);
}
double replica_sum_squares(const float *x, long n) { return replica_sum_squares_isa(replica_machine_isa(), x, n); }

// Batch-norm plane sums in float: lane l of sixteen sums the i ≡ l (mod 16) in order, the
// lanes are added 0…15, then the tail. Σ p, Σ (p − μ)², and Σ g with Σ g·(x − μ).
// With a fused ReLU (relu ≠ 0), g counts only where the forward output was positive: where
// x·scale + shift > 0, recomputed exactly as the forward pass computed it (no contraction),
// so the output itself need not be read back.
#define PLANE_MASKED(i) (relu && !(x[i] * scale + shift > 0) ? 0 : g[i])
#define PLANE_SUM_BODY                                                                     \
    rp_v16 acc = {0}, a;                                                                  \
    long i = 0;                                                                           \
    for (; i + 16 <= n; i += 16) { __builtin_memcpy(&a, p + i, 64); acc += a; }           \
    float s = 0;                                                                          \
    for (int l = 0; l < 16; l++) s += acc[l];                                             \
    for (; i < n; i++) s += p[i];                                                         \
    return s;
#define PLANE_SQDEV_BODY                                                                   \
    rp_v16 acc = {0}, a;                                                                  \
    long i = 0;                                                                           \
    for (; i + 16 <= n; i += 16) { __builtin_memcpy(&a, p + i, 64); a -= mu; acc += a * a; } \
    float s = 0;                                                                          \
    for (int l = 0; l < 16; l++) s += acc[l];                                             \
    for (; i < n; i++) { float d = p[i] - mu; s += d * d; }                               \
    return s;
#define PLANE_GRAD_BODY                                                                    \
    rp_v16 acc = {0}, acc2 = {0}, a, b;                                                   \
    long i = 0;                                                                           \
    for (; i + 16 <= n; i += 16) {                                                        \
        __builtin_memcpy(&a, g + i, 64); __builtin_memcpy(&b, x + i, 64);                 \
        if (relu) a = (rp_v16)((rp_i16)a & (b * scale + shift > 0));                     \
        acc += a; acc2 += a * (b - mu);                                                   \
    }                                                                                     \
    float s = 0, s2 = 0;                                                                  \
    for (int l = 0; l < 16; l++) { s += acc[l]; s2 += acc2[l]; }                          \
    for (; i < n; i++) { float gi = PLANE_MASKED(i); s += gi; s2 += gi * (x[i] - mu); }  \
    *sg = s; *sgx = s2;

// Batch norm's input gradient on one plane in training mode, g masked as in PLANE_GRAD_BODY:
// d = k·(m·g − Σg − x̂·Σg·x̂) with x̂ = (x − μ)·invStd (elementwise: the same bits everywhere).
#define PLANE_DX_BODY                                                                      \
    for (long i = 0; i < n; i++) {                                                        \
        float gi = PLANE_MASKED(i);                                                       \
        float xhat = (x[i] - mu) * inv;                                                   \
        d[i] = k * (m * gi - sg - xhat * sgx);                                            \
    }

VARIANTS_OF(float, plane_sum, (const float *p, long n), PLANE_SUM_BODY)
VARIANTS_OF(float, plane_sqdev, (const float *p, long n, float mu), PLANE_SQDEV_BODY)
VARIANTS_OF(void, plane_grad, (const float *g, int relu, float scale, float shift, const float *x, long n, float mu, float *sg, float *sgx), PLANE_GRAD_BODY)
VARIANTS_OF(void, plane_dx, (const float *g, int relu, float scale, float shift, const float *x, float *d, long n, float mu, float inv, float k, float m,
                             float sg, float sgx), PLANE_DX_BODY)

float replica_plane_sum_isa(int isa, const float *p, long n) {
    return isa >= 2 ? plane_sum_2(p, n) : isa == 1 ? plane_sum_1(p, n) : plane_sum_0(p, n);
}
float replica_plane_sum(const float *p, long n) { return replica_plane_sum_isa(replica_machine_isa(), p, n); }
float replica_plane_sqdev_isa(int isa, const float *p, long n, float mu) {
    return isa >= 2 ? plane_sqdev_2(p, n, mu) : isa == 1 ? plane_sqdev_1(p, n, mu) : plane_sqdev_0(p, n, mu);
}
float replica_plane_sqdev(const float *p, long n, float mu) { return replica_plane_sqdev_isa(replica_machine_isa(), p, n, mu); }
void replica_plane_grad_isa(int isa, const float *g, int relu, float scale, float shift, const float *x, long n, float mu, float *sg, float *sgx) {
    if (isa >= 2) plane_grad_2(g, relu, scale, shift, x, n, mu, sg, sgx); else if (isa == 1) plane_grad_1(g, relu, scale, shift, x, n, mu, sg, sgx); else plane_grad_0(g, relu, scale, shift, x, n, mu, sg, sgx);
}
void replica_plane_grad(const float *g, int relu, float scale, float shift, const float *x, long n, float mu, float *sg, float *sgx) {
    replica_plane_grad_isa(replica_machine_isa(), g, relu, scale, shift, x, n, mu, sg, sgx);
}
void replica_plane_dx_isa(int isa, const float *g, int relu, float scale, float shift, const float *x, float *d, long n, float mu, float inv, float k, float m,
                          float sg, float sgx) {
    if (isa >= 2) plane_dx_2(g, relu, scale, shift, x, d, n, mu, inv, k, m, sg, sgx);
    else if (isa == 1) plane_dx_1(g, relu, scale, shift, x, d, n, mu, inv, k, m, sg, sgx);
    else plane_dx_0(g, relu, scale, shift, x, d, n, mu, inv, k, m, sg, sgx);
}
void replica_plane_dx(const float *g, int relu, float scale, float shift, const float *x, float *d, long n, float mu, float inv, float k, float m, float sg, float sgx) {
    replica_plane_dx_isa(replica_machine_isa(), g, relu, scale, shift, x, d, n, mu, inv, k, m, sg, sgx);
}
