/* The Diagonal BiLSTM's scan (van den Oord et al. 2016a, "Pixel Recurrent Neural Networks", section 3.2):
 * the loops of `_scan_forward` and `_scan_backward` in diagonal_scan.py, diagonal after diagonal, each
 * direction on its own thread. Per diagonal and cell row, the three small matrix products and the LSTM's
 * elementwise update run in one pass over memory, instead of a dozen PyTorch operations with a call's
 * overhead each. zoo.native compiles this file on first use; diagonal_scan.py keeps its PyTorch version
 * of the same loops, and the tests hold the two together (and gradcheck both in double).
 *
 * Layout, as in diagonal_scan.py (D directions, N image cells, S slots, B batch, h units, G = 4h, F input
 * features; a "row" is one cell of one image, so a diagonal of n cells has n * B rows):
 *   x     (D, N, B, F)   the cells' input features, in each direction's diagonal order
 *   w_in  (D, F, G), bias (D, G), w_state (D, 2h, G): rows :h act on the cell above, h: on the cell beside
 *   acts  (D, R, B, G)   the gates o | f | i | g; R = N, or (scoring) R = the longest diagonal, a workspace
 *   tcs   (D, R, B, h)   tanh(c), laid out like acts
 *   hs, cs, dh, dc (D, S, B, h)   hidden and cell states and their gradients, by slot
 *   dpre  (D, N, B, G)   d loss / d pre-activations
 *   steps (n_steps, 4)   per diagonal: first cell, n cells, first slot, slot above the first cell; the cells
 *                        beside start one slot after the cells above
 * The functions are written for float and for double (the tests' gradcheck) by one macro.
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

/* exp(x) for float by Cody-Waite range reduction and Cephes' degree-5 polynomial (about 1 ulp), in plain
 * arithmetic so that the compiler vectorises the loops that call it; the round-to-integer adds and
 * subtracts 1.5 * 2^23. Arguments are clamped to where the result is a normal float. */
static inline float exp_f32(float x) {
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    float k = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round(x / ln 2) */
    float r = x - k * 0.693359375f + k * 2.12194440e-4f;            /* x - k ln 2, in two parts */
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)k + 127) << 23; /* 2^k */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

static inline double exp_f64(double x) { return exp(x); }

#define CHUNK 64 /* rows whose gates are computed together (a multiple of 4; 16 KB of float gates at h = 16) */

/* 16 floats as one vector (GCC and Clang vector extensions: one AVX-512 register, or two AVX, or four SSE) */
typedef float v16 __attribute__((vector_size(64)));
static inline v16 load16(const float *p) {
    v16 v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void store16(float *p, v16 v) { memcpy(p, &v, sizeof v); }

/* float, G = 64 (h = 16, the release's width), 4 rows at once: a[r] = b + x[r] @ wi + above[r] @ wa +
 * beside[r] @ ws for r < 4, with rows of x F apart and rows of above/beside h apart; a (4, 64). */
static void gates4_h16(const float *restrict x, long F, const float *restrict above, const float *restrict beside,
                       const float *restrict wi, const float *restrict b, const float *restrict wa,
                       const float *restrict ws, float *restrict a) {
    v16 acc[4][4];
    for (int q = 0; q < 4; q++)
        for (int r = 0; r < 4; r++) acc[r][q] = load16(b + 16 * q);
    for (int part = 0; part < 3; part++) {
        const float *in = part == 0 ? x : (part == 1 ? above : beside), *w = part == 0 ? wi : (part == 1 ? wa : ws);
        long K = part == 0 ? F : 16;
        for (long k = 0; k < K; k++) {
            v16 w0 = load16(w + k * 64), w1 = load16(w + k * 64 + 16), w2 = load16(w + k * 64 + 32),
                w3 = load16(w + k * 64 + 48);
            for (int r = 0; r < 4; r++) {
                float v = in[r * K + k];
                acc[r][0] += v * w0;
                acc[r][1] += v * w1;
                acc[r][2] += v * w2;
                acc[r][3] += v * w3;
            }
        }
    }
    for (int r = 0; r < 4; r++)
        for (int q = 0; q < 4; q++) store16(a + r * 64 + 16 * q, acc[r][q]);
}

/* float, h = 16, 4 rows at once: dh_above[r] += dp[r] @ wa^T, dh_beside[r] += dp[r] @ ws^T, where waT and
 * wsT are the transposed taps (64, 16); rows of dp 64 apart, of dh 16 apart (dh_beside = dh_above + 16). */
static void back4_h16(const float *restrict dp, const float *restrict waT, const float *restrict wsT, float *dh_above,
                      float *dh_beside) {
    v16 acc_a[4], acc_s[4];
    for (int r = 0; r < 4; r++) acc_a[r] = acc_s[r] = (v16){0};
    for (long j = 0; j < 64; j++) {
        v16 wa = load16(waT + j * 16), ws = load16(wsT + j * 16);
        for (int r = 0; r < 4; r++) {
            float v = dp[r * 64 + j];
            acc_a[r] += v * wa;
            acc_s[r] += v * ws;
        }
    }
    /* above then beside, row by row: row r's beside slot is row r+1's above slot (the next cell's) */
    for (int r = 0; r < 4; r++) {
        store16(dh_above + r * 16, load16(dh_above + r * 16) + acc_a[r]);
        store16(dh_beside + r * 16, load16(dh_beside + r * 16) + acc_s[r]);
    }
}

#define DEFINE_SCAN(T, SUFFIX, FAST)                                                                          \
    /* The pre-activations of `rows` rows: a = b + x @ wi + above @ wa + beside @ ws. */                     \
    static void gates_##SUFFIX(long rows, const T *restrict x, long F, const T *restrict above,             \
                               const T *restrict beside, const T *restrict wi, const T *restrict b,          \
                               const T *restrict wa, const T *restrict ws, T *restrict a, long h) {          \
        long G = 4 * h, r = 0;                                                                               \
        if (FAST && h == 16)                                                                                 \
            for (; r + 4 <= rows; r += 4)                                                                    \
                gates4_h16((const float *)x + r * F, F, (const float *)above + r * 16,                       \
                           (const float *)beside + r * 16, (const float *)wi, (const float *)b,              \
                           (const float *)wa, (const float *)ws, (float *)a + r * 64);                       \
        for (; r < rows; r++) {                                                                              \
            T *ar = a + r * G;                                                                               \
            for (long j = 0; j < G; j++) ar[j] = b[j];                                                       \
            for (long k = 0; k < F; k++)                                                                     \
                for (long j = 0; j < G; j++) ar[j] += x[r * F + k] * wi[k * G + j];                          \
            for (long k = 0; k < h; k++)                                                                     \
                for (long j = 0; j < G; j++) ar[j] += above[r * h + k] * wa[k * G + j];                      \
            for (long k = 0; k < h; k++)                                                                     \
                for (long j = 0; j < G; j++) ar[j] += beside[r * h + k] * ws[k * G + j];                     \
        }                                                                                                    \
    }                                                                                                        \
                                                                                                             \
    /* One direction forward: per diagonal its gates, then the cells: the nonlinearities (tanh as            \
     * 2 sigmoid(2x) - 1, as zoo.nn.fast_tanh), c = f c_side + i g, tanh(c), h = o tanh(c). */              \
    static void forward_##SUFFIX(const T *restrict x, const T *restrict wi, const T *restrict b,              \
                                 const T *restrict w_state, T *restrict acts, T *restrict tcs, T *restrict hs, \
                                 T *restrict cs, const int64_t *steps, long n_steps, long B, long h, long F,  \
                                 int keep) {                                                                 \
        long G = 4 * h;                                                                                      \
        for (long t = 0; t < n_steps; t++) {                                                                 \
            long first = steps[4 * t], n = steps[4 * t + 1], start = steps[4 * t + 2], above = steps[4 * t + 3]; \
            long at = keep ? first : 0, rows = n * B;                                                        \
            T *a0 = acts + at * B * G, *tc0 = tcs + at * B * h, *h0 = hs + start * B * h, *c0 = cs + start * B * h; \
            const T *side0 = cs + (above + 1) * B * h;                                                       \
            for (long r0 = 0; r0 < rows; r0 += CHUNK) { /* a chunk's gates, then its cells, while in cache */ \
                long r1 = r0 + CHUNK < rows ? r0 + CHUNK : rows;                                             \
                gates_##SUFFIX(r1 - r0, x + (first * B + r0) * F, F, hs + (above * B + r0) * h,             \
                               hs + ((above + 1) * B + r0) * h, wi, b, w_state, w_state + h * G, a0 + r0 * G, h); \
                for (long r = r0; r < r1; r++) {                                                             \
                T *a = a0 + r * G, *tc = tc0 + r * h, *hr = h0 + r * h, *cr = c0 + r * h;                    \
                const T *side = side0 + r * h;                                                               \
                for (long j = 0; j < 3 * h; j++) a[j] = 1 / (1 + exp_##SUFFIX(-a[j]));                       \
                for (long j = 0; j < h; j++) {                                                               \
                    T g = 2 / (1 + exp_##SUFFIX(-2 * a[3 * h + j])) - 1;                                     \
                    T c = a[h + j] * side[j] + a[2 * h + j] * g;                                             \
                    T tch = 2 / (1 + exp_##SUFFIX(-2 * c)) - 1;                                              \
                    a[3 * h + j] = g;                                                                        \
                    cr[j] = c;                                                                               \
                    tc[j] = tch;                                                                             \
                    hr[j] = a[j] * tch;                                                                      \
                }                                                                                            \
            }                                                                                                \
            }                                                                                                \
        }                                                                                                    \
    }                                                                                                        \
                                                                                                             \
    /* One direction backward, diagonals in reverse: from dh (accumulated in place: the output's gradient,   \
     * then what later diagonals send back) and dc (from the cell beside), d pre-activations into dpre;      \
     * dc of the cells beside into their slots; dh of the cells above and beside through the taps. */        \
    static void backward_##SUFFIX(const T *restrict acts, const T *restrict tcs, T *restrict dh,             \
                                  T *restrict dc, const T *restrict cs, T *restrict dpre,                    \
                                  const T *restrict w_state, const int64_t *steps, long n_steps, long B,     \
                                  long h) {                                                                  \
        long G = 4 * h;                                                                                      \
        T wT[2 * 64 * 16]; /* the taps transposed, (2, G, h), for h = 16 */                                  \
        int fast = FAST && h == 16;                                                                          \
        if (fast)                                                                                            \
            for (long s = 0; s < 2; s++)                                                                     \
                for (long k = 0; k < h; k++)                                                                 \
                    for (long j = 0; j < G; j++) wT[(s * G + j) * h + k] = w_state[(s * h + k) * G + j];     \
        for (long t = n_steps - 1; t >= 0; t--) {                                                            \
            long first = steps[4 * t], n = steps[4 * t + 1], start = steps[4 * t + 2], above = steps[4 * t + 3]; \
            long rows = n * B;                                                                               \
            const T *a0 = acts + first * B * G, *tc0 = tcs + first * B * h;                                 \
            const T *dh0 = dh + start * B * h, *dc0 = dc + start * B * h, *side0 = cs + (above + 1) * B * h; \
            T *dp0 = dpre + first * B * G, *dside0 = dc + (above + 1) * B * h;                               \
            for (long r = 0; r < rows; r++) {                                                                \
                const T *a = a0 + r * G, *tc = tc0 + r * h, *dhr = dh0 + r * h, *dcr = dc0 + r * h;          \
                const T *side = side0 + r * h;                                                               \
                T *dp = dp0 + r * G, *dside = dside0 + r * h;                                                \
                for (long j = 0; j < h; j++) {                                                               \
                    T o = a[j], f = a[h + j], i = a[2 * h + j], g = a[3 * h + j], tch = tc[j], y = dhr[j];   \
                    T c = dcr[j] + y * o * (1 - tch * tch); /* h = o tanh(c) */                              \
                    dp[j] = y * tch * o * (1 - o);          /* sigmoid' = s (1 - s) */                       \
                    dp[h + j] = c * side[j] * f * (1 - f);                                                   \
                    dp[2 * h + j] = c * g * i * (1 - i);                                                     \
                    dp[3 * h + j] = c * i * (1 - g * g); /* tanh' = 1 - t^2 */                               \
                    dside[j] = c * f;                    /* c = f c_side + i g */                            \
                }                                                                                            \
            }                                                                                                \
            /* to the cells above and beside: dh[above + r] += dp[r] @ wa^T, dh[above + 1 + r] += dp[r] @ ws^T */ \
            T *dh_above = dh + above * B * h;                                                                \
            long r = 0;                                                                                      \
            if (fast)                                                                                        \
                for (; r + 4 <= rows; r += 4)                                                                \
                    back4_h16((const float *)dp0 + r * 64, (const float *)wT, (const float *)wT + 64 * 16,   \
                              (float *)dh_above + r * 16, (float *)dh_above + (r + B) * 16);                 \
            for (; r < rows; r++)                                                                            \
                for (long s = 0; s < 2; s++) {                                                               \
                    T *out = dh_above + (r + s * B) * h;                                                     \
                    const T *w = w_state + s * h * G, *dp = dp0 + r * G;                                     \
                    for (long k = 0; k < h; k++) {                                                           \
                        T sum = 0;                                                                           \
                        for (long j = 0; j < G; j++) sum += dp[j] * w[k * G + j];                            \
                        out[k] += sum;                                                                       \
                    }                                                                                        \
                }                                                                                            \
        }                                                                                                    \
    }                                                                                                        \
                                                                                                             \
    /* The entry points: every direction (D <= 2) forward or backward, direction 1 on a second thread when  \
     * `threads` > 1 (the directions share no memory). Offsets per direction as in the layout above. */     \
    struct args_##SUFFIX {                                                                                   \
        const T *x, *wi, *b, *w_state, *cs;                                                                  \
        T *acts, *tcs, *hs, *dh, *dc, *dpre;                                                                 \
        const int64_t *steps;                                                                                \
        long n_steps, B, h, F;                                                                               \
        int keep, backward;                                                                                  \
    };                                                                                                       \
    static void *run_##SUFFIX(void *p) {                                                                     \
        struct args_##SUFFIX *a = p;                                                                         \
        if (a->backward)                                                                                     \
            backward_##SUFFIX(a->acts, a->tcs, a->dh, a->dc, a->cs, a->dpre, a->w_state, a->steps, a->n_steps, \
                              a->B, a->h);                                                                   \
        else                                                                                                 \
            forward_##SUFFIX(a->x, a->wi, a->b, a->w_state, a->acts, a->tcs, a->hs, (T *)a->cs, a->steps,    \
                             a->n_steps, a->B, a->h, a->F, a->keep);                                         \
        return NULL;                                                                                         \
    }                                                                                                        \
    static void run_directions_##SUFFIX(struct args_##SUFFIX *args, long D, int threads) {                  \
        pthread_t second;                                                                                    \
        int spawned = threads > 1 && D > 1 && pthread_create(&second, NULL, run_##SUFFIX, &args[1]) == 0;   \
        for (long d = 0; d < D; d++)                                                                         \
            if (!(d == 1 && spawned)) run_##SUFFIX(&args[d]);                                                \
        if (spawned) pthread_join(second, NULL);                                                             \
    }                                                                                                        \
    int diagonal_scan_forward_##SUFFIX(const T *x, const T *w_in, const T *bias, const T *w_state, T *acts,  \
                                       T *tcs, T *hs, T *cs, const int64_t *steps, long n_steps, long D,     \
                                       long N, long R, long S, long B, long h, long F, int keep, int threads) { \
        struct args_##SUFFIX args[2];                                                                        \
        if (D < 1 || D > 2) return -1;                                                                       \
        long G = 4 * h;                                                                                      \
        for (long d = 0; d < D; d++)                                                                         \
            args[d] = (struct args_##SUFFIX){.x = x + d * N * B * F, .wi = w_in + d * F * G, .b = bias + d * G, \
                                             .w_state = w_state + d * 2 * h * G, .cs = cs + d * S * B * h,   \
                                             .acts = acts + d * R * B * G, .tcs = tcs + d * R * B * h,       \
                                             .hs = hs + d * S * B * h, .steps = steps, .n_steps = n_steps,   \
                                             .B = B, .h = h, .F = F, .keep = keep, .backward = 0};           \
        run_directions_##SUFFIX(args, D, threads);                                                           \
        return 0;                                                                                            \
    }                                                                                                        \
    int diagonal_scan_backward_##SUFFIX(const T *acts, const T *tcs, T *dh, T *dc, const T *cs, T *dpre,     \
                                        const T *w_state, const int64_t *steps, long n_steps, long D, long N, \
                                        long S, long B, long h, int threads) {                               \
        struct args_##SUFFIX args[2];                                                                        \
        if (D < 1 || D > 2) return -1;                                                                       \
        long G = 4 * h;                                                                                      \
        for (long d = 0; d < D; d++)                                                                         \
            args[d] = (struct args_##SUFFIX){.acts = (T *)acts + d * N * B * G, .tcs = (T *)tcs + d * N * B * h, \
                                             .dh = dh + d * S * B * h, .dc = dc + d * S * B * h,             \
                                             .cs = cs + d * S * B * h, .dpre = dpre + d * N * B * G,         \
                                             .w_state = w_state + d * 2 * h * G, .steps = steps,             \
                                             .n_steps = n_steps, .B = B, .h = h, .backward = 1};             \
        run_directions_##SUFFIX(args, D, threads);                                                           \
        return 0;                                                                                            \
    }

DEFINE_SCAN(float, f32, 1)
DEFINE_SCAN(double, f64, 0)
