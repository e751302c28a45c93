/* Every SIMD backend the CPU supports against the portable kernels, for
 * each weight kind, several input counts (1..9: the 4-input passes and
 * their tails) and row ranges, and the fast path's own properties. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/dtype.h"
#include "formats/quantize.h"
#include "kernels/attend.h"
#include "kernels/backend.h"
#include "test_util.h"

static unsigned seed = 1;
static float frand(void) {
    seed = seed * 1664525u + 1013904223u;
    return ((seed >> 8) / 16777216.0f) * 2 - 1;
}

typedef struct {
    v4c_matrix W;
    void *data, *scale;
} owned_matrix;

static owned_matrix make(weight_kind kind, int rows, int cols) {
    owned_matrix m = {.W = {.kind = kind, .rows = rows, .cols = cols}};
    float *w = malloc(sizeof(float) * rows * cols);
    for (int i = 0; i < rows * cols; i++) w[i] = frand() * (i % 13 == 0 ? 8.0f : 0.05f); /* wide dynamic range */
    switch (kind) {
    case WK_F32:
        m.data = w;
        w = NULL;
        break;
    case WK_BF16: {
        uint16_t *b = malloc(2 * (size_t)rows * cols);
        for (int i = 0; i < rows * cols; i++) {
            union { float f; uint32_t u; } v = {w[i]};
            b[i] = (uint16_t)(v.u >> 16);
        }
        m.data = b;
        break;
    }
    case WK_FP8:
        m.data = malloc((size_t)rows * cols);
        m.scale = malloc((size_t)((rows + 127) / 128) * ((cols + 127) / 128));
        quantize_fp8_matrix(w, rows, cols, m.data, m.scale);
        break;
    case WK_FP4:
        m.data = malloc((size_t)rows * cols / 2);
        m.scale = malloc((size_t)rows * cols / 32);
        quantize_fp4_matrix(w, rows, cols, m.data, m.scale);
        break;
    default:
        break;
    }
    free(w);
    m.W.data = m.data;
    m.W.scale = m.scale;
    return m;
}

/* A backend's rows against the portable kernel. Exact backends agree to
 * one float ulp; the fast one (float32 sums flushed to double) to a float
 * summation error of sum |w x|, and gives each input the same bits whether
 * it comes alone or in a batch. */
static void check_backend(const kernel_backend *be, int exact) {
    const int rows = 40, cols = 1024; /* two 512-column flushes */
    for (int kind = 0; kind < WK_COUNT; kind++) {
        if (!be->rows[kind]) continue; /* this kind goes elsewhere (check_dot) */
        owned_matrix m = make(kind, rows, cols);
        float *alone = calloc(rows, sizeof(float)), *row = malloc(sizeof(float) * cols);
        float *x = malloc(sizeof(float) * 9 * cols); /* n inputs: the first n of these */
        for (int i = 0; i < 9 * cols; i++) x[i] = frand();
        /* The fast backend's FP8 rows take the inputs that are not quantized
         * (wo_a); quantized ones go through check_dot's path. */
        if (kind == WK_FP4 || (kind == WK_FP8 && exact))
            for (int j = 0; j < 9; j++) fp8_quant(x + j * cols, cols, 128);
        for (int n = 1; n <= 9; n += 2) {
            float *want = calloc((size_t)n * rows, sizeof(float)), *got = calloc((size_t)n * rows, sizeof(float));
            double *xd = matmul_prepare_input(kind, x, cols, n, cols);
            double *scratch = aligned_alloc(64, ((KERNEL_SCRATCH(cols) * sizeof(double)) + 63) / 64 * 64);
            backend_ref.rows[kind](&m.W, 3, rows, x, xd, cols, n, want, rows, scratch);
            be->rows[kind](&m.W, 3, rows, x, xd, cols, n, got, rows, scratch);
            if (n == 1) memcpy(alone, got, sizeof(float) * rows);
            free(scratch);
            int bad = 0, differ = 0;
            for (int i = 0; i < n * rows; i++) {
                int r = i % rows + 3, j = i / rows;
                if (r >= rows) continue; /* rows 3..rows-1 land in the first rows-3 slots */
                float tol = 1.2e-7f * fabsf(want[i]) + 1e-30f;
                if (!exact) {
                    matrix_row_f32(&m.W, r, row);
                    double mag = 0;
                    for (int k = 0; k < cols; k++) mag += fabs((double)row[k] * x[j * cols + k]);
                    tol = (float)(0x1p-21 * mag) + 0x1p-24f * fabsf(want[i]);
                    if (j == 0 && memcmp(&got[i], &alone[i], sizeof(float))) differ++;
                }
                if (!(fabsf(got[i] - want[i]) <= tol)) bad++;
            }
            CHECK(bad == 0, "%s, %s, n=%d: %d of %d outputs differ from the portable kernel", be->name, weight_kind_name[kind], n, bad,
                  n * (rows - 3));
            CHECK(differ == 0, "%s, %s, n=%d: %d outputs differ from the same input alone", be->name, weight_kind_name[kind], n, differ);
            free(xd), free(want), free(got);
        }
        free(x), free(alone), free(row), free(m.data), free(m.scale);
    }
}

/* The portable kernel itself against a direct double-precision sum of the
 * decoded weights: correctly rounded. */
static void check_reference(void) {
    for (int kind = 0; kind < WK_COUNT; kind++) {
        owned_matrix m = make(kind, 8, 256);
        float x[256], y[8], row[256];
        for (int i = 0; i < 256; i++) x[i] = frand();
        double *xd = matmul_prepare_input(kind, x, 256, 1, 256);
        backend_ref.rows[kind](&m.W, 0, 8, x, xd, 256, 1, y, 8, NULL);
        for (int r = 0; r < 8; r++) {
            matrix_row_f32(&m.W, r, row);
            double s = 0;
            for (int i = 0; i < 256; i++) s += (double)row[i] * x[i];
            CHECK(y[r] == (float)s, "portable %s row %d: %.9g vs %.9g", weight_kind_name[kind], r, y[r], (float)s);
        }
        free(xd), free(m.data), free(m.scale);
    }
}

/* The BF16 dot-product path (FP8/FP4) against the exact kernel: within a
 * float32 summation error of sum |w x|; bit-identical for one token and for
 * a batch (the same chain); exact fallbacks when the input is not
 * bf16-representable or a scale could leave the normal range. */
static void run_dot(const v4c_matrix *W, const float *x, int n, float *y, int float_input) {
    void *buf = aligned_alloc(64, (size_t)(n + DOT_TOKENS) * W->cols * 4);
    void *scratch = aligned_alloc(64, (DOT_SCRATCH(W->rows, W->cols) + 63) / 64 * 64);
    dot_input in = {x, W->cols, n, NULL, NULL, 0};
    if (float_input) {
        in.xf_scalable = float_prepare(x, W->cols, n, W->cols, buf);
        in.xf = buf;
    } else {
        CHECK(dot_prepare(W->kind, x, W->cols, n, W->cols, buf), "%s: quantized input not accepted", weight_kind_name[W->kind]);
        in.xb = buf;
    }
    dot_rows(W, 0, W->rows, &in, y, W->rows, scratch);
    free(buf), free(scratch);
}

static void check_dot(void) {
    const int rows = 136, n = 9; /* rows: a partial second FP8 row block */
    const int col_cases[] = {128, 384, 1152}; /* below, between and above the 512-column flush */
    /* mode 0: FP8 with quantized input, 1: FP4, 2: FP8 with a float input
     * (wo_a), 3: the same with one tiny input (the block scales then stay on
     * the weights for one token too) */
    for (int mode = 0; mode < 4; mode++)
        for (int ci = 0; ci < 3; ci++) {
            int cols = col_cases[ci], kind = mode == 1 ? WK_FP4 : WK_FP8, float_input = mode >= 2;
            owned_matrix m = make(kind, rows, cols);
            m.W.rows = rows;
            float *x = malloc(sizeof(float) * n * cols), *row = malloc(sizeof(float) * cols);
            for (int i = 0; i < n * cols; i++) x[i] = frand() * (i % 7 == 0 ? 30.0f : 1.0f);
            if (!float_input)
                for (int j = 0; j < n; j++) fp8_quant(x + j * cols, cols, 128);
            if (mode == 3)
                for (int j = 0; j < n; j++) x[j * cols + 17] = 0x1p-100f;
            float *batch = malloc(sizeof(float) * n * rows), *one = malloc(sizeof(float) * rows);
            run_dot(&m.W, x, n, batch, float_input);
            int bad = 0, differ = 0;
            for (int j = 0; j < n; j++) {
                run_dot(&m.W, x + (size_t)j * cols, 1, one, float_input);
                for (int r = 0; r < rows; r++) {
                    matrix_row_f32(&m.W, r, row);
                    double exact = 0, mag = 0;
                    for (int k = 0; k < cols; k++) exact += (double)row[k] * x[j * cols + k], mag += fabs((double)row[k] * x[j * cols + k]);
                    float got = batch[j * rows + r];
                    if (!(fabs(got - exact) <= 0x1p-21 * mag + 0x1p-24 * fabs(exact))) bad++;
                    if (memcmp(&got, &one[r], sizeof got)) differ++;
                }
            }
            CHECK(bad == 0, "dot %s%s cols %d: %d outputs beyond float summation error", weight_kind_name[kind], float_input ? " (float input)" : "",
                  cols, bad);
            CHECK(differ == 0, "dot %s%s cols %d: %d outputs differ between one token and a batch", weight_kind_name[kind],
                  float_input ? " (float input)" : "", cols, differ);
            /* a few tokens (decoded on the fly) give the same bits as well */
            for (int few = 2; few <= 8; few += 3) {
                int fdiffer = 0;
                run_dot(&m.W, x, few, batch, float_input);
                for (int j = 0; j < few; j++) {
                    run_dot(&m.W, x + (size_t)j * cols, 1, one, float_input);
                    for (int r = 0; r < rows; r++) fdiffer += memcmp(&batch[j * rows + r], &one[r], sizeof(float)) != 0;
                }
                CHECK(fdiffer == 0, "dot %s%s cols %d, %d tokens: %d outputs differ from one token alone", weight_kind_name[kind],
                      float_input ? " (float input)" : "", cols, few, fdiffer);
            }
            /* An input that is not bf16-exact is refused (the caller then runs the exact kernels). */
            uint16_t *xb = malloc((size_t)(1 + DOT_TOKENS) * cols * 2);
            x[5] = 1.0f + 0x1p-12f;
            CHECK(!dot_prepare(kind, x, cols, 1, cols, xb), "dot %s: inexact input accepted", weight_kind_name[kind]);
            free(xb);
            free(x), free(row), free(batch), free(one), free(m.data), free(m.scale);
        }
    /* Scales far outside the normal range: those rows (FP4) or row blocks
     * (FP8) are computed exactly. */
    for (int kind = WK_FP8; kind <= WK_FP4; kind++) {
        const int cols = 256;
        owned_matrix m = make(kind, rows, cols);
        uint8_t *sc = m.scale;
        size_t nsc = kind == WK_FP8 ? (size_t)((rows + 127) / 128) * (cols / 128) : (size_t)rows * cols / 32;
        for (size_t i = 0; i < nsc; i += 3) sc[i] = (uint8_t)(i % 2 ? 200 : 50);
        float x[3 * 256], *row = malloc(sizeof(float) * cols);
        for (int i = 0; i < 3 * cols; i++) x[i] = frand();
        for (int j = 0; j < 3; j++) fp8_quant(x + j * cols, cols, 128);
        float *y1 = malloc(sizeof(float) * 3 * rows);
        run_dot(&m.W, x, 3, y1, 0);
        int bad = 0;
        for (int j = 0; j < 3; j++)
            for (int r = 0; r < rows; r++) {
                matrix_row_f32(&m.W, r, row);
                double exact = 0, mag = 0;
                for (int k = 0; k < cols; k++) exact += (double)row[k] * x[j * cols + k], mag += fabs((double)row[k] * x[j * cols + k]);
                if (!(fabs(y1[j * rows + r] - exact) <= 0x1p-21 * mag + 0x1p-24 * fabs(exact))) bad++;
            }
        CHECK(bad == 0, "dot %s with extreme scales: %d outputs wrong", weight_kind_name[kind], bad);
        free(row), free(y1), free(m.data), free(m.scale);
    }
}

/* The backend's streams (stream) give the same bits as the batch kernels
 * over the same rows: for every kind at one token, FP8/FP4 with a quantized
 * input and FP8 with a float input (scales on x or, with a huge input, on
 * the weights) at up to 8 tokens, and rows or blocks with
 * extreme scales (which go exact). Rows 3..148: several 128-row blocks,
 * 4 streams of 36 (or 2 of 73) and a tail. */
static void check_stream(const kernel_backend *be) {
    const int rows = 151, r0 = 3, r1 = 149, ld = r1 - r0;
    for (int cols = 1152; cols <= 2176; cols += 1024) /* FP8 rows beyond 2048 columns stream block by block */
    for (int mode = 0; mode < 6; mode++) { /* kinds 0-3; 4: FP8 with a float input; 5: FP8/FP4 extreme scales */
        for (int extreme_kind = WK_FP8; extreme_kind <= (mode == 5 ? WK_FP4 : WK_FP8); extreme_kind++) {
            int kind = mode < 4 ? mode : mode == 4 ? WK_FP8 : extreme_kind, float_input = mode == 4;
            int quantized = kind >= WK_FP8 && !float_input;
            owned_matrix m = make(kind, rows, cols);
            if (mode == 5) { /* FP8: the second row block; FP4: a few rows */
                uint8_t *sc = m.scale;
                if (kind == WK_FP8) sc[cols / 128 + 1] = 200;
                else for (int r = 40; r < 150; r += 37) sc[(size_t)r * cols / 32 + 5] = 30;
            }
            for (int n = 1; n <= (quantized || float_input ? STREAM_TOKENS : 1); n++) {
                float *x = malloc(sizeof(float) * n * cols), *got = calloc((size_t)n * ld, sizeof(float)), *want = calloc((size_t)n * ld, sizeof(float));
                for (int i = 0; i < n * cols; i++) x[i] = frand();
                if (float_input && n % 2 == 0) x[7] = 1e30f; /* beyond what the scales may multiply: weights scaled instead */
                if (quantized)
                    for (int t = 0; t < n; t++) fp8_quant(x + (size_t)t * cols, cols, 128);
                void *buf = aligned_alloc(64, (size_t)(n + DOT_TOKENS) * cols * 4);
                size_t scratch_bytes = DOT_SCRATCH(r1 - r0, cols) + KERNEL_SCRATCH(cols) * sizeof(double);
                void *scratch = aligned_alloc(64, (scratch_bytes + 63) / 64 * 64);
                dot_input in = {x, cols, n, NULL, NULL, 0};
                if (quantized) {
                    CHECK(dot_prepare(kind, x, cols, n, cols, buf), "stream: input refused");
                    in.xb = buf;
                }
                if (float_input) {
                    in.xf_scalable = float_prepare(x, cols, n, cols, buf), in.xf = buf;
                    CHECK(in.xf_scalable == (n % 2), "stream: float_prepare's answer for %d tokens", n);
                }
                if (kind >= WK_FP8) dot_rows(&m.W, r0, r1, &in, want, ld, scratch);
                else be->rows[kind](&m.W, r0, r1, x, NULL, cols, 1, want, ld, scratch);
                be->stream(&m.W, r0, r1, &in, got, ld, scratch);
                int differ = 0;
                for (int i = 0; i < n * ld; i++) differ += memcmp(&got[i], &want[i], sizeof(float)) != 0;
                CHECK(differ == 0, "stream, %s%s%s, %d columns, %d tokens: %d of %d outputs differ from the batch kernels", weight_kind_name[kind],
                      float_input ? " (float input)" : "", mode == 5 ? " (extreme scales)" : "", cols, n, differ, n * ld);
                free(buf), free(scratch), free(x), free(got), free(want);
            }
            free(m.data), free(m.scale);
        }
    }
}

/* F32/BF16 stream up to STREAM_TOKENS tokens: the same bits as the batch
 * kernels, for every token count (4, 2 and 1 streams). */
static void check_stream_tokens(const kernel_backend *be) {
    /* long rows (column-blocked streams), rows of one flush period (8-row
     * groups, their tails), and a row of one step */
    const int shapes[][3] = {{151, 1152, 3}, {151, 128, 3}, {203, 512, 5}, {37, 16, 1}};
    for (size_t sh = 0; sh < sizeof shapes / sizeof *shapes; sh++)
        for (int kind = WK_F32; kind <= WK_BF16; kind++) {
            const int rows = shapes[sh][0], cols = shapes[sh][1], r0 = shapes[sh][2], r1 = rows - 2;
            owned_matrix m = make(kind, rows, cols);
            float *x = malloc(sizeof(float) * STREAM_TOKENS * cols);
            float *got = malloc(sizeof(float) * STREAM_TOKENS * rows), *want = malloc(sizeof(float) * STREAM_TOKENS * rows);
            for (int i = 0; i < STREAM_TOKENS * cols; i++) x[i] = frand();
            void *scratch = aligned_alloc(64, (KERNEL_SCRATCH(cols) * sizeof(double) + 63) / 64 * 64);
            for (int n = 2; n <= STREAM_TOKENS; n++) {
                dot_input in = {x, cols, n, NULL, NULL, 0};
                be->rows[kind](&m.W, r0, r1, x, NULL, cols, n, want, rows, scratch);
                be->stream(&m.W, r0, r1, &in, got, rows, scratch);
                int differ = 0;
                for (int t = 0; t < n; t++)
                    for (int r = 0; r < r1 - r0; r++) differ += memcmp(&got[t * rows + r], &want[t * rows + r], sizeof(float)) != 0;
                CHECK(differ == 0, "stream, %s %dx%d, %d tokens: %d outputs differ from the batch kernels", weight_kind_name[kind], rows, cols, n,
                      differ);
            }
            free(scratch), free(x), free(got), free(want), free(m.data), free(m.scale);
        }
}

/* Panel-packed F32/BF16 matrices (matrix.h; the model packs its head):
 * rows decode back unchanged; the fast kernels give every output exactly
 * the chain gemv_avx512_panels.c defines (rendered here with fmaf: a float
 * FMA chain in column order, added to a double every 512 columns), for
 * 1..9 and 17 tokens (streams and row tiles) and any row range; a backend
 * without panel kernels falls back to the exact portable rows. */
static float panel_chain(const float *w, const float *x, int cols) {
    double d = 0;
    float acc = 0;
    for (int c = 0; c < cols; c++) {
        acc = fmaf(w[c], x[c], acc);
        if (c % 512 == 511 || c == cols - 1) d += acc, acc = 0;
    }
    return (float)d;
}

static void check_panels(void) {
    const kernel_backend *fast = &backend_avx512_fast;
    const int rows = 96, col_set[2] = {128, 1280}; /* one flush period; two and a part */
    for (int kind = WK_F32; kind <= WK_BF16; kind++)
        for (int ci = 0; ci < 2; ci++) {
            int cols = col_set[ci];
            owned_matrix m = make(kind, rows, cols);
            v4c_matrix P = m.W;
            CHECK(matrix_packable(&P), "panels: %s %dx%d not packable", weight_kind_name[kind], rows, cols);
            void *packed = malloc(matrix_bytes(&P, rows));
            matrix_pack_panels(&P, packed);
            float *row = malloc(sizeof(float) * cols), *prow = malloc(sizeof(float) * cols);
            int moved = 0;
            for (int r = 0; r < rows; r++) {
                matrix_row_f32(&m.W, r, row), matrix_row_f32(&P, r, prow);
                moved += memcmp(row, prow, sizeof(float) * cols) != 0;
            }
            CHECK(moved == 0, "panels: %d rows of %s %dx%d decode differently packed", moved, weight_kind_name[kind], rows, cols);
            enum { NMAX = 17 };
            float *x = malloc(sizeof(float) * NMAX * cols), *want = malloc(sizeof(float) * NMAX * rows), *got = malloc(sizeof(float) * NMAX * rows);
            for (int i = 0; i < NMAX * cols; i++) x[i] = frand();
            for (int r = 0; r < rows; r++) {
                matrix_row_f32(&m.W, r, row);
                for (int t = 0; t < NMAX; t++) want[t * rows + r] = panel_chain(row, x + (size_t)t * cols, cols);
            }
            const int ranges[2][2] = {{0, rows}, {5, 83}}; /* whole; cut inside panels */
            for (int n = 1; n <= NMAX; n += n < 9 ? 1 : 8)
                for (int ri = 0; ri < 2; ri++) {
                    int r0 = ranges[ri][0], nr = ranges[ri][1] - r0, bad = 0, bad_rows = 0;
                    kernel_backend_set(fast);
                    memset(got, 0, sizeof(float) * NMAX * rows);
                    matmul(got, nr, &P, r0, nr, x, cols, n);
                    for (int t = 0; t < n; t++)
                        for (int i = 0; i < nr; i++) bad += memcmp(&got[t * nr + i], &want[t * rows + r0 + i], sizeof(float)) != 0;
                    double *scratch = aligned_alloc(64, (KERNEL_SCRATCH(cols) * sizeof(double) + 63) / 64 * 64);
                    fast->rows[kind](&P, r0, r0 + nr, x, NULL, cols, n, got, nr, scratch);
                    free(scratch);
                    for (int t = 0; t < n; t++)
                        for (int i = 0; i < nr; i++) bad_rows += memcmp(&got[t * nr + i], &want[t * rows + r0 + i], sizeof(float)) != 0;
                    CHECK(bad == 0 && bad_rows == 0, "panels %s %dx%d, rows [%d, %d), %d tokens: %d (matmul) and %d (row kernel) outputs differ from the chain",
                          weight_kind_name[kind], rows, cols, r0, r0 + nr, n, bad, bad_rows);
                }
            /* a backend without panel kernels: exact rows, as on the rows as stored */
            kernel_backend_set(&backend_ref);
            float *exact = malloc(sizeof(float) * 3 * rows);
            matmul(exact, rows, &m.W, 0, rows, x, cols, 3);
            if (cpu_has_avx2()) kernel_backend_set(&backend_avx2);
            matmul(got, rows, &P, 0, rows, x, cols, 3);
            CHECK(!memcmp(got, exact, sizeof(float) * 3 * rows), "panels %s %dx%d: the fallback differs from the exact rows", weight_kind_name[kind], rows, cols);
            kernel_backend_set(fast);
            free(exact), free(x), free(want), free(got), free(row), free(prow), free(packed), free(m.data), free(m.scale);
        }
    v4c_matrix odd = {.kind = WK_BF16, .rows = 40, .cols = 128};
    CHECK(!matrix_packable(&odd), "panels: 40 rows accepted");
}

/* Sparse MQA attention: the blocked AVX-512 path and the portable one
 * against a double-precision softmax-with-sink over the same keys. */
static void check_attend(void) {
    enum { NH = 13, NK = 37, DH = 96 };
    static float q[NH * DH], keybuf[NK * DH], sink[NH], S[NH * NK], o[NH * DH];
    const float *keys[NK];
    for (int i = 0; i < NH * DH; i++) q[i] = frand() * 3;
    for (int i = 0; i < NK * DH; i++) keybuf[i] = frand();
    for (int k = 0; k < NK; k++) keys[k] = keybuf + (size_t)((k * 7) % NK) * DH; /* gathered out of order */
    for (int h = 0; h < NH; h++) sink[h] = frand() * 2;
    const kernel_backend *paths[2] = {&backend_ref, kernel_backend_active()};
    for (int pi = 0; pi < 2; pi++) {
        kernel_backend_set(paths[pi]);
        attend_heads(q, NH, keys, NK, DH, sink, S, o);
        double worst = 0;
        for (int h = 0; h < NH; h++) {
            double s[NK], mx = -1e300, den = 0;
            for (int k = 0; k < NK; k++) {
                s[k] = 0;
                for (int d = 0; d < DH; d++) s[k] += (double)q[h * DH + d] * keys[k][d];
                s[k] /= sqrt(DH);
                if (s[k] > mx) mx = s[k];
            }
            for (int k = 0; k < NK; k++) den += s[k] = exp(s[k] - mx);
            den += exp(sink[h] - mx);
            for (int d = 0; d < DH; d++) {
                double want = 0;
                for (int k = 0; k < NK; k++) want += s[k] / den * keys[k][d];
                double e = fabs(o[h * DH + d] - want);
                if (e > worst) worst = e;
            }
        }
        CHECK(worst < 2e-6, "attend (%s): max error %.3g against double", paths[pi]->name, worst);
    }
    kernel_backend_set(paths[1]);
}

/* FP8/FP4 packed in panels (matrix_pack_in_place; the model packs its
 * quantized weights so): rows decode back unchanged; through matmul with
 * the fast backend (streams up to 8 tokens, row tiles beyond) every output
 * has the same bits at 1..9 and 17 tokens and within a float chain's error
 * of the exact sum; scales out of range (those blocks or panels go exact),
 * an input that is not bf16-exact, a row range not on panel bounds and a
 * backend without panel kernels all give exact results. */
static double dot_error(const v4c_matrix *W, int r, const float *x, float got, float *row) {
    matrix_row_f32(W, r, row);
    double exact = 0, mag = 0;
    for (int k = 0; k < W->cols; k++) exact += (double)row[k] * x[k], mag += fabs((double)row[k] * x[k]);
    return mag > 0 ? fabs(got - exact) / mag : fabs(got - exact);
}

/* P through matmul at 1..9 and N tokens of x: outputs that differ from
 * the same token alone, and outputs beyond a float chain's error (at most
 * 128 products a group sum, then a float sum of groups per 512 columns). */
static void panel_bits(const v4c_matrix *P, const float *x, int N, float *got, float *one, float *row, int *differ, int *bad) {
    int rows = P->rows, cols = P->cols;
    for (int n = 1; n <= N; n = n == 9 ? N : n + 1) {
        matmul(got, rows, P, 0, rows, x, cols, n);
        for (int j = 0; j < n; j++) {
            matmul(one, rows, P, 0, rows, x + (size_t)j * cols, cols, 1);
            for (int r = 0; r < rows; r++) {
                *differ += memcmp(&got[j * rows + r], &one[r], sizeof(float)) != 0;
                *bad += !(dot_error(P, r, x + (size_t)j * cols, got[j * rows + r], row) <= 0x1p-18);
            }
        }
    }
}

static void check_dot_panels(void) {
    const kernel_backend *fast = &backend_avx512_fast;
    const int rows = 160, N = 17, col_set[3] = {128, 640, 1152}; /* rows: a 128-row block and 2 panels; cols: under, over and past 2 flushes */
    for (int kind = WK_FP8; kind <= WK_FP4; kind++)
        for (int ci = 0; ci < 3; ci++)
            for (int extreme = 0; extreme < 2; extreme++) {
                int cols = col_set[ci];
                owned_matrix m = make(kind, rows, cols);
                size_t nsc = kind == WK_FP8 ? (size_t)((rows + 127) / 128) * (cols / 128) : (size_t)rows * cols / 32;
                if (extreme) /* the second FP8 row block; FP4 rows 20 and 150 (panels 1 and 9) */
                    for (size_t i = 0; i < nsc; i++)
                        if (kind == WK_FP8 ? i >= (size_t)cols / 128 : i / (cols / 32) == 20 || i / (cols / 32) == 150) ((uint8_t *)m.scale)[i] = 0; /* 2^-127: not a normal float */
                v4c_matrix P = m.W;
                size_t bytes = kind == WK_FP8 ? (size_t)rows * cols : (size_t)rows * cols / 2;
                P.data = malloc(bytes), P.scale = malloc(nsc);
                memcpy((void *)P.data, m.data, bytes), memcpy((void *)P.scale, m.scale, nsc);
                CHECK(matrix_packable(&P), "dot panels: %s %dx%d not packable", weight_kind_name[kind], rows, cols);
                v4c_matrix Q = m.W; /* the portable packer, for the AVX-512 one's bytes */
                Q.data = malloc(bytes), Q.scale = malloc(nsc);
                memcpy((void *)Q.data, m.data, bytes), memcpy((void *)Q.scale, m.scale, nsc);
                matrix_pack_in_place(&P);
                matrix_pack_simd = 0;
                matrix_pack_in_place(&Q);
                matrix_pack_simd = 1;
                CHECK(memcmp(P.data, m.data, bytes) != 0, "dot panels: %s packing moved nothing", weight_kind_name[kind]);
                CHECK(!memcmp(P.data, Q.data, bytes) && !memcmp(P.scale, Q.scale, nsc), "dot panels: %s %dx%d: the packers differ", weight_kind_name[kind],
                      rows, cols);
                free((void *)Q.data), free((void *)Q.scale);
                float *a = malloc(sizeof(float) * cols), *b = malloc(sizeof(float) * cols);
                int moved = 0;
                for (int r = 0; r < rows; r++) {
                    matrix_row_f32(&m.W, r, a), matrix_row_f32(&P, r, b);
                    moved += memcmp(a, b, sizeof(float) * cols) != 0;
                }
                CHECK(moved == 0, "dot panels: %s %dx%d: %d rows decode differently packed", weight_kind_name[kind], rows, cols, moved);
                float *x = malloc(sizeof(float) * N * cols), *one = malloc(sizeof(float) * rows), *got = malloc(sizeof(float) * N * rows);
                for (int i = 0; i < N * cols; i++) x[i] = frand() * (i % 7 == 0 ? 30.0f : 1.0f);
                for (int j = 0; j < N; j++) fp8_quant(x + (size_t)j * cols, cols, 128);
                kernel_backend_set(fast);
                int differ = 0, bad = 0;
                panel_bits(&P, x, N, got, one, a, &differ, &bad);
                CHECK(differ == 0, "dot panels: %s %dx%d%s: %d outputs differ from one token alone", weight_kind_name[kind], rows, cols,
                      extreme ? " (extreme scales)" : "", differ);
                CHECK(bad == 0, "dot panels: %s %dx%d%s: %d outputs beyond a float chain's error", weight_kind_name[kind], rows, cols,
                      extreme ? " (extreme scales)" : "", bad);
                /* An input whose group sums round (2^16 beside values whose bits lie far below a running sum's last place), so that the
                 * order of the products decides bits; one token (FP4 on Intel: float FMAs, fast_fp4_fma) and
                 * batches (vdpbf16ps) must still agree */
                for (int i = 0; i < N * cols; i++) /* bf16 values (what the kernels take), not only e4m3 ones */
                    x[i] = ldexpf(1.0f + (float)((i * 37) % 128) / 128, i % 2 == 0 ? 16 : -(i % 9)) * ((i * 7) % 5 < 2 ? -1.0f : 1.0f);
                differ = 0, bad = 0;
                panel_bits(&P, x, N, got, one, a, &differ, &bad);
                CHECK(differ == 0 && bad == 0, "dot panels: %s %dx%d%s, wide input: %d outputs differ from one token alone, %d beyond a float chain's error",
                      weight_kind_name[kind], rows, cols, extreme ? " (extreme scales)" : "", differ, bad);
                /* FP8 with a float input (wo_a's): the float chain, the same bits for every token count */
                if (kind == WK_FP8) {
                    for (int i = 0; i < N * cols; i++) x[i] = frand() * (i % 5 == 0 ? 1e3f : 1.0f);
                    differ = 0, bad = 0;
                    panel_bits(&P, x, N, got, one, a, &differ, &bad);
                    CHECK(differ == 0 && bad == 0, "dot panels: FP8 %dx%d%s, float input: %d outputs differ from one token alone, %d beyond a float chain's error",
                          rows, cols, extreme ? " (extreme scales)" : "", differ, bad);
                }
                /* rows 3..157 (not on panel bounds: those off them exact), FP4 with an inexact input (exact), another backend (exact) */
                for (int j = 0; j < N; j++) fp8_quant(x + (size_t)j * cols, cols, 128);
                x[cols + 5] = 1.0f + 0x1p-12f;
                bad = 0;
                matmul(got, rows, &P, 3, rows - 6, x, cols, 3);
                for (int j = 0; j < 3; j++)
                    for (int r = 3; r < rows - 3; r++)
                        bad += !(dot_error(&P, r, x + (size_t)j * cols, got[j * rows + r - 3], a) <= (r < 16 || r >= 144 || (kind == WK_FP4 && j == 1) ? 0x1p-23 : 0x1p-18));
                matmul(got, rows, &P, 0, rows, x + cols, cols, 1);
                for (int r = 0; r < rows; r++) bad += !(dot_error(&P, r, x + cols, got[r], a) <= (kind == WK_FP4 ? 0x1p-23 : 0x1p-18));
                kernel_backend_set(cpu_has_avx2() ? &backend_avx2 : &backend_ref);
                matmul(got, rows, &P, 0, rows, x, cols, 2);
                for (int j = 0; j < 2; j++)
                    for (int r = 0; r < rows; r++) bad += !(dot_error(&P, r, x + (size_t)j * cols, got[j * rows + r], a) <= 0x1p-23);
                kernel_backend_set(fast);
                CHECK(bad == 0, "dot panels: %s %dx%d%s: %d exact outputs wrong", weight_kind_name[kind], rows, cols, extreme ? " (extreme scales)" : "",
                      bad);
                free(x), free(one), free(got), free(a), free(b), free((void *)P.data), free((void *)P.scale), free(m.data), free(m.scale);
            }
}

int main(void) {
    dtype_init_tables();
    check_attend();
    check_reference();
    if (dot_supported()) check_backend(&backend_avx512_fast, 0), check_dot(), check_stream(&backend_avx512_fast), check_stream_tokens(&backend_avx512_fast), check_panels(),
                            check_dot_panels();
    else printf("no AVX-512 BF16/VBMI on this CPU: dot path skipped\n");
    if (cpu_has_avx2()) check_backend(&backend_avx2, 1);
    else printf("no AVX2 on this CPU: skipped\n");
    if (cpu_has_avx512()) check_backend(&backend_avx512, 1);
    else printf("no AVX-512 on this CPU: skipped\n");
    return test_done("test_kernels");
}
