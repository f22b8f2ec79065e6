/* The LSTM cells of one diagonal of the Diagonal BiLSTM (van den Oord et al. 2016a, "Pixel Recurrent
 * Neural Networks", section 3.2), forward and backward, both directions: the elementwise part of
 * `_scan_forward` and `_scan_backward` in diagonal_scan.py, in one pass over memory instead of a dozen
 * PyTorch operations. The matrix products stay in PyTorch. zoo.native compiles this file on first use;
 * diagonal_scan.py keeps its PyTorch version of the same loops, and the tests hold the two together.
 *
 * Layout, as in diagonal_scan.py (D directions, N image cells, S slots, B batch, h units, G = 4h):
 *   acts (D, N, B, G)  the gates o | f | i | g: pre-activations in, activations out (forward);
 *                      in the scoring forward, a workspace (D, n, B, G) of the diagonal alone
 *   tcs  (D, N, B, h)  tanh(c), or a workspace (D, n, B, h) like acts
 *   hs, cs, dh, dc (D, S, B, h)   hidden and cell states and their gradients, by slot
 *   dpre (D, N, B, G)  d loss / d pre-activations
 * A diagonal is (first cell, n cells, first slot, slot above the first cell); the cells beside start one
 * slot after the cells above. `at` is the diagonal's first row in acts and tcs: `first`, or 0 in a workspace.
 * The functions are written for float and for double (the tests' gradcheck) by one macro.
 */
#include <math.h>
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

#define DEFINE_CELLS(T, SUFFIX)                                                                             \
    /* One diagonal forward: the gates' nonlinearities (tanh as 2 sigmoid(2x) - 1, as zoo.nn.fast_tanh), \
     * c = f c_side + i g, tanh(c), h = o tanh(c). */                                                     \
    void diagonal_cells_forward_##SUFFIX(T *restrict acts, T *restrict tcs, T *restrict hs, T *restrict cs, \
                                         long D, long N, long S, long B, long h, long at, long n, long start, \
                                         long above) {                                                    \
        long rows = n * B, G = 4 * h;                                                                     \
        for (long d = 0; d < D; d++) {                                                                    \
            T *a0 = acts + (d * N + at) * B * G, *tc0 = tcs + (d * N + at) * B * h;                         \
            T *h0 = hs + (d * S + start) * B * h, *c0 = cs + (d * S + start) * B * h;                       \
            const T *side0 = cs + (d * S + above + 1) * B * h;                                            \
            for (long r = 0; r < rows; r++) {                                                             \
                T *a = a0 + r * G, *tc = tc0 + r * h, *hr = h0 + r * h, *cr = c0 + r * h;                  \
                const T *side = side0 + r * h;                                                            \
                for (long j = 0; j < 3 * h; j++)                                                          \
                    a[j] = 1 / (1 + exp_##SUFFIX(-a[j]));                                                 \
                for (long j = 0; j < h; j++) {                                                            \
                    T g = 2 / (1 + exp_##SUFFIX(-2 * a[3 * h + j])) - 1;                                  \
                    T c = a[h + j] * side[j] + a[2 * h + j] * g;                                          \
                    T t = 2 / (1 + exp_##SUFFIX(-2 * c)) - 1;                                             \
                    a[3 * h + j] = g;                                                                     \
                    cr[j] = c;                                                                            \
                    tc[j] = t;                                                                            \
                    hr[j] = a[j] * t;                                                                     \
                }                                                                                         \
            }                                                                                             \
        }                                                                                                 \
    }                                                                                                     \
                                                                                                          \
    /* One diagonal backward, from dh (all paths, summed) and dc (from the cell beside, later in the     \
     * scan): d pre-activations into dpre, and dc of the cells beside into their slots (the previous     \
     * diagonal's). */                                                                                    \
    void diagonal_cells_backward_##SUFFIX(const T *restrict acts, const T *restrict tcs,                  \
                                          const T *restrict dh, T *restrict dc, const T *restrict cs,     \
                                          T *restrict dpre, long D, long N, long S, long B, long h,       \
                                          long first, long n, long start, long above) {                   \
        long rows = n * B, G = 4 * h;                                                                     \
        for (long d = 0; d < D; d++) {                                                                    \
            const T *a0 = acts + (d * N + first) * B * G, *tc0 = tcs + (d * N + first) * B * h;             \
            const T *dh0 = dh + (d * S + start) * B * h, *dc0 = dc + (d * S + start) * B * h;               \
            const T *side0 = cs + (d * S + above + 1) * B * h;                                            \
            T *dp0 = dpre + (d * N + first) * B * G, *dside0 = dc + (d * S + above + 1) * B * h;            \
            for (long r = 0; r < rows; r++) {                                                             \
                const T *a = a0 + r * G, *tc = tc0 + r * h, *dhr = dh0 + r * h, *dcr = dc0 + r * h;         \
                const T *side = side0 + r * h;                                                            \
                T *dp = dp0 + r * G, *dside = dside0 + r * h;                                             \
                for (long j = 0; j < h; j++) {                                                            \
                    T o = a[j], f = a[h + j], i = a[2 * h + j], g = a[3 * h + j], t = tc[j], x = dhr[j];   \
                    T c = dcr[j] + x * o * (1 - t * t); /* h = o tanh(c) */                               \
                    dp[j] = x * t * o * (1 - o);        /* sigmoid' = s (1 - s) */                        \
                    dp[h + j] = c * side[j] * f * (1 - f);                                                \
                    dp[2 * h + j] = c * g * i * (1 - i);                                                  \
                    dp[3 * h + j] = c * i * (1 - g * g); /* tanh' = 1 - t^2 */                            \
                    dside[j] = c * f;                    /* c = f c_side + i g */                         \
                }                                                                                         \
            }                                                                                             \
        }                                                                                                 \
    }

DEFINE_CELLS(float, f32)
DEFINE_CELLS(double, f64)
