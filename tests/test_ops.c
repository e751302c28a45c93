/* Sinkhorn (mHC), RoPE/YaRN frequencies and rotation, Walsh-Hadamard
 * against the explicit matrix, top-k selection, SwiGLU, the mHC combine. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/ops.h"
#include "model/forward.h"
#include "test_util.h"

static float frand(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    return ((*s >> 8) / 16777216.0f) * 2 - 1;
}

static double row_col_error(const float *C, int hc, double *col_err) {
    double row_err = 0;
    *col_err = 0;
    for (int i = 0; i < hc; i++) {
        double r = 0, c = 0;
        for (int j = 0; j < hc; j++) r += C[i * hc + j], c += C[j * hc + i];
        row_err = fmax(row_err, fabs(r - 1));
        *col_err = fmax(*col_err, fabs(c - 1));
    }
    return row_err;
}

static void test_sinkhorn(void) {
    unsigned seed = 7;
    int hc = 4;
    for (int trial = 0; trial < 20; trial++) {
        float logits[16];
        for (int k = 0; k < 16; k++) logits[k] = 4 * frand(&seed);
        double prev_row = INFINITY;
        int iters[] = {1, 3, 10, 20, 50};
        for (int t = 0; t < 5; t++) {
            float C[16];
            memcpy(C, logits, sizeof C);
            hc_sinkhorn(C, hc, iters[t], 1e-6f);
            double col, row = row_col_error(C, hc, &col);
            /* The last step divides columns by (sum + eps): exact to ~eps once
             * the sums are near 1; after one step a small column sum s
             * leaves eps/s. */
            double col_tol = iters[t] >= 3 ? 1e-5 : 1e-4;
            CHECK(col < col_tol, "trial %d, %d iterations: columns sum to 1 within %g (err %g)", trial, iters[t], col_tol, col);
            CHECK(row <= prev_row + 1e-6, "trial %d: row error shrinks with iterations (%g after %d, was %g)", trial, row, iters[t], prev_row);
            for (int k = 0; k < 16; k++) CHECK(C[k] > 0, "entries stay positive");
            prev_row = row;
        }
        CHECK(prev_row < 1e-3, "trial %d: rows near 1 after 50 iterations (err %g)", trial, prev_row);
    }
}

static void test_rope_freqs(void) {
    int R = 64;
    float f[32];
    rope_freqs(f, R, 10000.0f, 1.0f, 0, 0, 0);
    for (int i = 0; i < R / 2; i++) CHECK(fabsf(f[i] - (float)pow(10000.0, -2.0 * i / R)) <= 1e-7f * fmaxf(f[i], 1e-30f) + 1e-12f, "plain freq %d", i);
    /* YaRN with the Flash settings: base 160000, factor 16, original 65536, beta 32/1. */
    rope_freqs(f, R, 160000.0f, 16.0f, 65536, 32.0f, 1.0f);
    double base = 160000, lo = floor(R * log(65536 / (32 * 2 * M_PI)) / (2 * log(base)));
    double hi = ceil(R * log(65536 / (1 * 2 * M_PI)) / (2 * log(base)));
    CHECK(lo == 15 && hi == 25, "correction range [%g, %g] for the Flash settings", lo, hi);
    for (int i = 0; i < R / 2; i++) {
        double f0 = pow(base, -2.0 * i / R), ramp = fmin(fmax((i - lo) / (hi - lo), 0), 1);
        double want = f0 / 16 * ramp + f0 * (1 - ramp);
        CHECK(fabs(f[i] - want) <= 1e-6 * want, "yarn freq %d: got %g want %g", i, f[i], want);
    }
    CHECK(fabsf(f[0] - 1.0f) < 1e-7f, "fastest frequency untouched (%g)", f[0]);
    CHECK(fabs(f[31] - pow(base, -62.0 / 64) / 16) < 1e-6 * f[31], "slowest frequency divided by the factor");
}

static void test_rope_rotation(void) {
    int R = 64;
    float f[32], v[64], orig[64];
    unsigned seed = 3;
    rope_freqs(f, R, 10000.0f, 1.0f, 0, 0, 0);
    for (int i = 0; i < R; i++) orig[i] = v[i] = frand(&seed);
    rope(v, R, f, 37, 0);
    /* pair 0 rotates by 37 rad exactly */
    float c = cosf(37.0f), s = sinf(37.0f);
    CHECK(fabsf(v[0] - (orig[0] * c - orig[1] * s)) < 1e-6f && fabsf(v[1] - (orig[0] * s + orig[1] * c)) < 1e-6f, "adjacent pairs rotate");
    for (int i = 0; i < R; i += 2) {
        float n0 = hypotf(orig[i], orig[i + 1]), n1 = hypotf(v[i], v[i + 1]);
        CHECK(fabsf(n0 - n1) < 1e-5f, "rotation keeps pair %d's norm", i / 2);
    }
    rope(v, R, f, 37, 1);
    for (int i = 0; i < R; i++) CHECK(fabsf(v[i] - orig[i]) < 1e-5f, "inverse rotation restores element %d", i);
}

static void test_hadamard(void) {
    unsigned seed = 11;
    for (int n = 1; n <= 128; n *= 2) {
        float v[128], want[128];
        for (int i = 0; i < n; i++) v[i] = frand(&seed);
        /* Sylvester order: H[i][j] = (-1)^popcount(i & j). */
        for (int i = 0; i < n; i++) {
            double s = 0;
            for (int j = 0; j < n; j++) s += (__builtin_popcount(i & j) & 1 ? -1 : 1) * v[j];
            want[i] = (float)s;
        }
        hadamard(v, n);
        double err = 0;
        for (int i = 0; i < n; i++) err = fmax(err, fabs(v[i] - want[i]));
        CHECK(err < 1e-4, "hadamard n=%d: max error %g", n, err);
    }
}

static int cmp_desc(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

static void test_topk(void) {
    unsigned seed = 5;
    float s[300], sorted[300];
    for (int i = 0; i < 300; i++) sorted[i] = s[i] = frand(&seed);
    qsort(sorted, 300, sizeof(float), cmp_desc);
    int idx[50];
    topk_indices(s, 300, 50, idx);
    for (int k = 0; k < 50; k++) CHECK(s[idx[k]] >= sorted[49], "top-50 member %d is among the 50 largest", k);
    for (int a = 0; a < 50; a++)
        for (int b = a + 1; b < 50; b++) CHECK(idx[a] != idx[b], "distinct indices");
    int all[300], seen[300] = {0};
    topk_indices(s, 300, 300, all);
    for (int k = 0; k < 300; k++) seen[all[k]]++;
    for (int k = 0; k < 300; k++) CHECK(seen[k] == 1, "k = n selects every index once (%d)", k);
}

/* SwiGLU with the clamp against double precision, over the whole range:
 * inside and beyond the clamp, far negative (silu -> -0), a row length
 * that leaves a tail after the 16-wide steps. */
static void test_swiglu(void) {
    enum { N = 1000 + 7 };
    static float h1[N], h3[N], want[N];
    unsigned seed = 13;
    const float lim = 7.0f, gain = 0.37f;
    for (int i = 0; i < N; i++) {
        float scale = i % 5 == 0 ? 200.0f : i % 5 == 1 ? 0.01f : 12.0f;
        h1[i] = frand(&seed) * scale, h3[i] = frand(&seed) * scale;
    }
    h1[3] = -1e30f, h1[4] = 1e30f, h1[5] = -88.5f, h1[6] = 0.0f;
    for (int i = 0; i < N; i++) {
        double x = fmin(h1[i], lim), up = fmax(fmin(h3[i], lim), -lim);
        want[i] = (float)(up * (x / (1 + exp(-x))) * gain);
    }
    swiglu_row(h1, h3, gain, lim, N);
    int bad = 0;
    for (int i = 0; i < N; i++)
        if (!(fabsf(h1[i] - want[i]) <= 4e-7f * fabsf(want[i]) + 1e-30f)) bad++; /* e^-x overflows where x e^x < 1e-35 */
    CHECK(bad == 0, "swiglu: %d of %d outputs beyond 4e-7 relative", bad, N);
    CHECK(h1[3] == 0.0f && h1[6] == 0.0f, "swiglu: silu(-1e30) = %g, silu(0) = %g", h1[3], h1[6]);
}

/* The mHC combine and the weighted row sum (both SIMD where the CPU has
 * it) against the loops written out, bit for bit: the same multiplies and
 * adds in the same order. D leaves a tail after the 16-wide steps; hc 4
 * (the models') and 16 (the most config.c allows). */
static void test_hc_combine(void) {
    enum { D = 1000 + 5 };
    static float X[16 * D], want[16 * D], a[D], y[D], ywant[D];
    float post[16], comb[256], w[16];
    unsigned seed = 29;
    for (int hc = 4; hc <= 16; hc += 12) {
        for (int i = 0; i < hc * D; i++) X[i] = frand(&seed) * 3;
        for (int d = 0; d < D; d++) a[d] = frand(&seed);
        for (int i = 0; i < hc; i++) post[i] = frand(&seed) + 1, w[i] = frand(&seed);
        for (int k = 0; k < hc * hc; k++) comb[k] = frand(&seed) * 0.5f + 0.5f;
        for (int j = 0; j < hc; j++)
            for (int d = 0; d < D; d++) {
                volatile float v = post[j] * a[d]; /* volatile: no fused multiply-add */
                for (int i = 0; i < hc; i++) {
                    volatile float p = comb[i * hc + j] * X[i * D + d];
                    v = v + p;
                }
                want[j * D + d] = v;
            }
        for (int d = 0; d < D; d++) {
            volatile float v = 0;
            for (int i = 0; i < hc; i++) {
                volatile float p = w[i] * X[i * D + d];
                v = v + p;
            }
            ywant[d] = v;
        }
        weighted_rows(y, X, w, hc, D);
        CHECK(!memcmp(y, ywant, sizeof y), "weighted_rows, hc %d: the written-out sums' bits", hc);
        hc_combine(X, a, post, comb, hc, D);
        CHECK(!memcmp(X, want, (size_t)hc * D * sizeof(float)), "hc_combine, hc %d: the written-out update's bits", hc);
    }
}

/* rmsnorm_rows (8 rows side by side) against rmsnorm row by row, bit for
 * bit: 37 rows leave 5 after four steps. */
static void test_rmsnorm_rows(void) {
    enum { ROWS = 37, N = 515 };
    static float v[ROWS * N], want[ROWS * N];
    unsigned seed = 41;
    for (int i = 0; i < ROWS * N; i++) v[i] = want[i] = frand(&seed) * (i % 3 ? 1.0f : 40.0f);
    for (int r = 0; r < ROWS; r++) rmsnorm(want + r * N, want + r * N, NULL, N, 1e-6f);
    rmsnorm_rows(v, ROWS, N, 1e-6f);
    CHECK(!memcmp(v, want, sizeof v), "rmsnorm_rows: rmsnorm's bits row by row");
}

int main(void) {
    test_rmsnorm_rows();
    test_hc_combine();
    test_swiglu();
    test_sinkhorn();
    test_rope_freqs();
    test_rope_rotation();
    test_hadamard();
    test_topk();
    return test_done("test_ops");
}
