#include "kernels/matrix.h"

#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "formats/dtype.h"
#include "kernels/backend.h"
#include "util/util.h"
#include "util/workmem.h"

const char *const weight_kind_name[WK_COUNT] = {"F32", "BF16", "FP8", "FP4"};
const char *const op_class_name[OP_COUNT] = {"attention", "routed experts", "shared experts", "head", "other"};

matmul_profile matmul_prof;
int matmul_streams = -1; /* -1: from V4C_STREAMS on first use */
void matmul_profile_reset(void) { memset(&matmul_prof, 0, sizeof matmul_prof); }

double matrix_bytes(const v4c_matrix *W, int nrows) {
    double per_row;
    switch (W->kind) {
    case WK_F32: per_row = 4.0 * W->cols; break;
    case WK_BF16: per_row = 2.0 * W->cols; break;
    case WK_FP8: per_row = W->cols + (W->scale_is_f32 ? 4.0 : 1.0) * ((W->cols + 127) / 128) / 128.0; break;
    default: per_row = W->cols / 2.0 + W->cols / 32.0; break;
    }
    return per_row * nrows;
}


int matrix_packable(const v4c_matrix *W) {
    if (W->panels || W->rows % PANEL_ROWS || W->cols <= 0) return 0;
    if (W->kind == WK_FP8 || W->kind == WK_FP4) return W->cols % 128 == 0 && !W->scale_is_f32;
    return W->cols % 16 == 0;
}

/* Row i's first byte in an FP8 panel line: where the decoder's unpacking
 * puts it in 32-bit lane i. */
static int panel_lane(int i) { return 16 * (i / 4) + 2 * (i % 4); }

/* An FP4 row's 32-bit unit of 8 columns c0..c7 (nibbles, c0 lowest) with
 * the even columns in the low 16 bits and the odd ones in the high:
 * c0 c2 c4 c6 c1 c3 c5 c7, two delta swaps (nibbles 1-2 and 5-6, then
 * bytes 1-2). Word 2i + e of a panel line is then row i's columns e, 2 + e,
 * 4 + e, 6 + e: fp4_panel_decode's word permutes. */
static uint32_t fp4_unzip(uint32_t d) {
    uint32_t t = (d ^ (d >> 4)) & 0x00F000F0u;
    d ^= t ^ (t << 4);
    t = (d ^ (d >> 8)) & 0x0000FF00u;
    return d ^ t ^ (t << 8);
}

/* The nibble of FP4 panel column c within its byte (panel_index). */
static int fp4_panel_nibble(int c) { return c % 8 / 2 % 2; }

/* Index of element (r, c) of a panel-packed matrix (matrix.h). */
static size_t panel_index(const v4c_matrix *W, int r, int c) {
    size_t panel = (size_t)(r / PANEL_ROWS) * PANEL_ROWS * W->cols;
    int lane = panel_lane(r % PANEL_ROWS);
    if (W->kind == WK_FP8) return panel + (size_t)(c / 4) * 64 + lane + (c % 4 >= 2 ? 8 : 0) + c % 2;
    if (W->kind == WK_FP4) return panel / 2 + (size_t)(c / 8) * 64 + 4 * (r % PANEL_ROWS) + 2 * (c % 2) + c % 8 / 4; /* the byte; nibble: fp4_panel_nibble */
    if (W->kind == WK_BF16) return panel + (size_t)(c / 2) * 2 * PANEL_ROWS + (r % PANEL_ROWS) * 2 + c % 2;
    return panel + (size_t)c * PANEL_ROWS + r % PANEL_ROWS;
}

void matrix_pack_panels(v4c_matrix *W, void *dst) {
    /* In 32-bit units, a BF16 column pair or an F32 column: unit u of row i
     * of panel p goes to (p * units + u) * 16 + i, each panel's 16 rows read
     * side by side and its units written in order. The source is read by
     * memcpy: a BF16 tensor of a checkpoint need only be 2-byte aligned. */
    int panels = W->rows / PANEL_ROWS;
    size_t units = W->kind == WK_BF16 ? (size_t)W->cols / 2 : (size_t)W->cols;
    const char *src = W->data;
    uint32_t *out = dst;
#pragma omp parallel for schedule(static)
    for (int p = 0; p < panels; p++)
        for (size_t u = 0; u < units; u++)
            for (int i = 0; i < PANEL_ROWS; i++)
                memcpy(&out[((size_t)p * units + u) * PANEL_ROWS + i], src + (((size_t)p * PANEL_ROWS + i) * units + u) * 4, 4);
    W->data = dst;
    W->panels = PANEL_ROWS;
}

int matrix_pack_simd = 1;

/* One panel's codes (16 rows of row_bytes at dst) packed where they lie,
 * byte by byte: each row's 32-bit units (4 FP8 columns, 8 FP4 ones) in
 * order, one to a line. tmp: 16 * row_bytes bytes. */
static void pack_panel(uint8_t *dst, size_t row_bytes, int fp4, uint8_t *tmp) {
    memcpy(tmp, dst, PANEL_ROWS * row_bytes);
    for (int i = 0; i < PANEL_ROWS; i++) {
        const uint8_t *src = tmp + (size_t)i * row_bytes;
        int lane = panel_lane(i);
        for (size_t u = 0; u < row_bytes / 4; u++) {
            const uint8_t *q = src + 4 * u;
            if (!fp4) {
                uint8_t *o = dst + 64 * u + lane;
                o[0] = q[0], o[1] = q[1], o[8] = q[2], o[9] = q[3];
            } else { /* source byte q[h] holds columns 2h (low nibble) and 2h + 1 */
                uint32_t d = fp4_unzip((uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24);
                uint8_t *o = dst + 64 * u + 4 * i;
                o[0] = (uint8_t)d, o[1] = (uint8_t)(d >> 8), o[2] = (uint8_t)(d >> 16), o[3] = (uint8_t)(d >> 24);
            }
        }
    }
}

/* FP8 line of 4 columns: row i's bytes of columns 0-1 at its lane, 2-3
 * eight bytes on (fp8_decode's unpacklo/unpackhi). FP4 line of 8
 * columns: row i's 4 bytes at 4i, its even columns' nibbles in the low
 * word and the odd ones' in the high (fp4_unzip; fp4_panel_decode). Each
 * panel is the same bytes as its 16 rows stored, so a copy of one panel at
 * a time does. */
void matrix_pack_in_place(v4c_matrix *W) {
    int cols = W->cols, groups = cols / 32, fp8 = W->kind == WK_FP8, panels = W->rows / PANEL_ROWS, simd = matrix_pack_simd && dot_supported();
    size_t row_bytes = fp8 ? (size_t)cols : (size_t)cols / 2, bytes = PANEL_ROWS * row_bytes;
    uint8_t *data = (uint8_t *)W->data, *scale = (uint8_t *)W->scale;
#pragma omp parallel
    {
        uint8_t *tmp = xmalloc(bytes + (size_t)PANEL_ROWS * groups);
#pragma omp for schedule(static)
        for (int p = 0; p < panels; p++) {
            uint8_t *dst = data + (size_t)p * bytes;
            if (simd) dot_pack_panel(dst, row_bytes, !fp8, tmp);
            else pack_panel(dst, row_bytes, !fp8, tmp);
            if (!fp8) { /* scales [rows][groups] -> per panel [groups][16] */
                uint8_t *s = scale + (size_t)p * PANEL_ROWS * groups;
                memcpy(tmp, s, (size_t)PANEL_ROWS * groups);
                for (int i = 0; i < PANEL_ROWS; i++)
                    for (int g = 0; g < groups; g++) s[g * PANEL_ROWS + i] = tmp[i * groups + g];
            }
        }
        free(tmp);
    }
    W->panels = PANEL_ROWS;
    W->scales_ok = matrix_scales_in_range(W); /* once here, not per product (dot_panels) */
}

int matrix_scales_in_range(const v4c_matrix *W) {
    int groups = W->cols / 32;
    size_t n = W->kind == WK_FP8 ? (size_t)((W->rows + 127) / 128) * (W->cols / 128) : (size_t)W->rows * groups;
    const uint8_t *scale = W->scale;
    for (size_t i = 0; i < n; i++)
        if (scale[i] < 127 - SCALE_EXP_LIMIT || scale[i] > 127 + SCALE_EXP_LIMIT) return 0;
    return 1;
}

void matrix_row_f32(const v4c_matrix *W, int r, float *out) {
    int n = W->cols;
    if (W->panels && W->kind == WK_FP8) {
        for (int c = 0; c < n; c++) out[c] = e4m3_table[((const uint8_t *)W->data)[panel_index(W, r, c)]] * fp8_block_scale(W, r, c / 128);
        return;
    }
    if (W->panels && W->kind == WK_FP4) {
        const uint8_t *sc = (const uint8_t *)W->scale + (size_t)(r / PANEL_ROWS) * PANEL_ROWS * (n / 32) + r % PANEL_ROWS;
        for (int c = 0; c < n; c++) {
            uint8_t byte = ((const uint8_t *)W->data)[panel_index(W, r, c)];
            out[c] = e2m1_table[(byte >> (4 * fp4_panel_nibble(c))) & 15] * e8m0_to_f32(sc[(c / 32) * PANEL_ROWS]);
        }
        return;
    }
    if (W->panels) {
        for (int c = 0; c < n; c++) {
            size_t i = panel_index(W, r, c);
            out[c] = W->kind == WK_BF16 ? bf16_to_f32(((const uint16_t *)W->data)[i]) : ((const float *)W->data)[i];
        }
        return;
    }
    switch (W->kind) {
    case WK_F32:
        memcpy(out, (const float *)W->data + (size_t)r * n, n * sizeof(float));
        break;
    case WK_BF16: {
        const uint16_t *p = (const uint16_t *)W->data + (size_t)r * n;
        for (int i = 0; i < n; i++) out[i] = bf16_to_f32(p[i]);
        break;
    }
    case WK_FP8: {
        const uint8_t *p = (const uint8_t *)W->data + (size_t)r * n;
        for (int b = 0; b < n; b += 128) {
            float s = fp8_block_scale(W, r, b / 128);
            int end = b + 128 < n ? b + 128 : n;
            for (int i = b; i < end; i++) out[i] = e4m3_table[p[i]] * s;
        }
        break;
    }
    case WK_FP4: {
        const uint8_t *p = (const uint8_t *)W->data + (size_t)r * (n / 2);
        const uint8_t *sc = (const uint8_t *)W->scale + (size_t)r * (n / 32);
        for (int b = 0; b < n; b += 32) {
            float s = e8m0_to_f32(sc[b / 32]);
            for (int i = b; i < b + 32; i += 2) {
                uint8_t byte = p[i / 2];
                out[i] = e2m1_table[byte & 15] * s; /* even index: low nibble */
                out[i + 1] = e2m1_table[byte >> 4] * s;
            }
        }
        break;
    }
    default:
        abort();
    }
}

double *matmul_prepare_input(weight_kind kind, const float *x, int ldx, int n, int cols) {
    double *xd = xmalloc((size_t)n * cols * sizeof(double));
    for (int j = 0; j < n; j++) {
        const float *xj = x + (size_t)j * ldx;
        double *dj = xd + (size_t)j * cols;
        if (kind == WK_FP4 && cols % 16 == 0) {
            for (int g = 0; g < cols; g += 16)
                for (int i = 0; i < 8; i++) {
                    dj[g + i] = xj[g + 2 * i];
                    dj[g + 8 + i] = xj[g + 2 * i + 1];
                }
        } else {
            for (int i = 0; i < cols; i++) dj[i] = xj[i];
        }
    }
    return xd;
}

enum { ROW_TILE = 64 }; /* divides 128: a tile never straddles an FP8 scale block; whole panels */
enum { PANEL_SHARE = 12 * PANEL_ROWS }; /* a stream share of packed rows: whole groups of 3 and of 4 panels (panel_product) */
enum { QUANT_SHARE = 4 * PANEL_ROWS };  /* of packed FP8/FP4 rows: 4 panels, what dot_panels takes side by side */

/* Buffers owned by the calling thread and reused across calls: allocating
 * them per call costs page faults that dominate decode. */
typedef struct {
    void *p;
    size_t size;
} reuse_buf;
static pthread_key_t reuse_key;
static pthread_once_t reuse_once = PTHREAD_ONCE_INIT;
static void reuse_free(void *v) {
    reuse_buf *b = v;
    work_free(b[0].p), work_free(b[1].p), free(b);
}
static void reuse_init(void) { pthread_key_create(&reuse_key, reuse_free); }

/* 64-byte aligned buffer `which` (0 or 1) of at least size bytes. */
static void *reuse_get(int which, size_t size) {
    pthread_once(&reuse_once, reuse_init);
    reuse_buf *b = pthread_getspecific(reuse_key);
    if (!b) {
        b = xcalloc(2, sizeof *b);
        pthread_setspecific(reuse_key, b);
    }
    if (b[which].size < size) {
        work_free(b[which].p);
        size = (size + 4095) & ~(size_t)4095;
        b[which].p = work_alloc(size); /* in huge pages from 1 MB: panels and prepared inputs are read many times */
        b[which].size = size;
    }
    return b[which].p;
}

static int streams_on(void) {
    if (matmul_streams < 0) {
        const char *env = getenv("V4C_STREAMS");
        matmul_streams = !env || !*env || atoi(env) != 0;
    }
    return matmul_streams;
}

/* The dot path's input for W (xb or xf set) in buf, if W takes it. */
static dot_input dot_input_for(const kernel_backend *be, const v4c_matrix *W, const float *x, int ldx, int n, void *buf) {
    dot_input in = {x, ldx, n, NULL, NULL, 0};
    /* Packed: the panel kernels, with x in bf16 when every value is one (a
     * quantized input always is), else for FP8 with x as it is (wo_a's);
     * FP4 otherwise through the exact rows. */
    if (matrix_quantizes_input(W) && W->panels) {
        if (be->panels && be->dot && dot_prepare_pairs(x, ldx, n, W->cols, buf)) in.xb = buf;
    } else if (be->dot && matrix_quantizes_input(W) && !W->scale_is_f32 && W->cols % 64 == 0) {
        if (dot_prepare(W->kind, x, ldx, n, W->cols, buf)) in.xb = buf;
        else if (W->kind == WK_FP8) in.xf_scalable = float_prepare(x, ldx, n, W->cols, buf), in.xf = buf;
    }
    return in;
}

/* Whether packed FP8/FP4 W with this input goes through the panel kernels
 * (dot_panels: a bf16 input, or FP8 with x as it is); else the exact rows. */
static int panel_dot(const kernel_backend *be, const v4c_matrix *W, const dot_input *in) {
    return be->panels && be->dot && (in->xb || W->kind == WK_FP8);
}

/* Whether W with this input goes through be->stream. */
static int stream_path(const kernel_backend *be, const v4c_matrix *W, const dot_input *in) {
    if (!streams_on() || !be->stream || (W->panels && !be->panels)) return 0;
    if (W->panels && matrix_quantizes_input(W)) return panel_dot(be, W, in);
    return in->n <= STREAM_TOKENS && (in->xb || in->xf || W->kind == WK_F32 || W->kind == WK_BF16);
}

/* Whether n tokens over nrows x cols are worth a parallel region. */
static int worth_threads(int nrows, int cols, int n) { return (size_t)nrows * cols * (n + 1) > 65536; }

/* Whether a product may open a parallel region of its own: only outside
 * every other one. Inside an active region it would get one thread
 * anyway; inside an inactive one (`if` false) it would be a nested
 * region, for which libgomp starts fresh threads at every call (the
 * indexer's one-token products: 1.5 ms each, until the fourth session of
 * 2026-11-29). Inside any region a product runs on the calling thread. */
static int may_fork(void) { return omp_get_level() == 0; }

/* A streamed job's rows [r0, r1) as one work item. */
typedef struct {
    int job, r0, r1;
} stream_share;

/* Shorter streams read slower, longer ones leave a longer wait at the end:
 * decode on the bench model in a fast phase (read 77-80 GB/s), alternating
 * builds, 4 rounds: 512 KB 30.7-32.4 tok/s, 1 MB 25.1-31.7, 2 MB 29.3-31.0. */
enum { MIN_SHARE = 512 << 10 };

/* The streamed jobs' rows as shares taken in order as threads come free
 * (memory speed differs between cores from moment to moment: decode,
 * alternating runs, 10.0-13.1 -> 15.2-18.7 tok/s against one static half
 * per thread), largest first, as OpenMP's guided schedule but over the
 * whole region's bytes: each about the bytes left / (2 x threads), at
 * least MIN_SHARE, so that the last ones, which decide how long one core
 * waits for the other, are short. Equal shares (1 MB, up to 8 a thread)
 * left a core idle for half a share at each product's end: on the
 * Flash-shaped bench model's decode 3.2-5.6 thread-ms a token of 38-42 ms,
 * now 1.4-2.1 (the head's alone 1.0-2.5 -> 0.16). A product worth a
 * parallel region gets a share per thread at least. Packed rows go in
 * whole groups of panels (unit). Returns the number of shares. */
static int plan_shares(const matmul_job *jobs, const int *rows, const int *streamed, int count, int threads, stream_share *out) {
    double left = 0;
    for (int j = 0; j < count; j++)
        if (streamed[j]) left += matrix_bytes(jobs[j].W, rows[j]);
    int items = 0;
    for (int j = 0; j < count; j++) {
        if (!streamed[j]) continue;
        const v4c_matrix *W = jobs[j].W;
        double job = matrix_bytes(W, rows[j]), per_row = job / rows[j];
        int unit = !W->panels ? 1 : matrix_quantizes_input(W) ? QUANT_SHARE : PANEL_SHARE;
        double least = worth_threads(rows[j], W->cols, jobs[j].n) ? job / threads : job;
        if (least > MIN_SHARE) least = MIN_SHARE;
        for (int r0 = 0; r0 < rows[j];) {
            double want = left / (2.0 * threads);
            int nr = (int)((want > least ? want : least) / per_row + 0.5);
            nr = (nr + unit - 1) / unit * unit;
            if (nr < unit) nr = unit;
            int r1 = rows[j] - r0 <= nr ? rows[j] : r0 + nr;
            out[items++] = (stream_share){j, r0, r1};
            left -= (r1 - r0) * per_row;
            r0 = r1;
        }
    }
    return items;
}

/* A bound on plan_shares' count for one job. */
static int shares_bound(const v4c_matrix *W, int nrows, int threads) { return (int)(matrix_bytes(W, nrows) / MIN_SHARE) + threads + 2; }

/* The batch kernels' scratch for a row tile, and room for the streams'
 * double sums and packed inputs beside it (dot_kblock). */
static size_t stream_scratch(int cols) {
    size_t a = DOT_SCRATCH(ROW_TILE, cols), b = KERNEL_SCRATCH(cols) * sizeof(double);
    return ((a > b ? a : b) + (size_t)32 * cols + 65536 + 63) & ~(size_t)63;
}

/* Products called from inside a parallel region (the indexer's, one per
 * token) run on their thread alone and count in the caller's operation:
 * matmul_prof is the calling thread's view. */
static void profile_add(const v4c_matrix *W, int nrows, int n, const dot_input *in, double seconds) {
    if (omp_in_parallel()) return;
    matmul_prof.seconds[W->op] += seconds;
    matmul_prof.flops[W->op] += 2.0 * nrows * W->cols * n;
    if (in->xb) matmul_prof.dot_flops[W->op] += 2.0 * nrows * W->cols * n;
    matmul_prof.bytes[W->op] += matrix_bytes(W, nrows);
}

/* A batch through the row-tile kernels, in its own parallel region. */
static void matmul_tiles(const kernel_backend *be, const v4c_matrix *W, int row0, int nrows, const dot_input *in, float *y, int ldy) {
    int cols = W->cols, n = in->n, ldx = in->ldx, tiles = (nrows + ROW_TILE - 1) / ROW_TILE, max_threads = omp_get_max_threads();
    const float *x = in->x;
    /* Work items: row tiles, and for a matrix of fewer tiles than threads
     * with many inputs (mHC's 24-row mixes, in prefill) slices of the inputs
     * too. Every output is its own summation chain, so the split does not
     * change a bit. */
    int slice = n, slices = 1;
    if (tiles < max_threads && n >= 2 * DOT_TOKENS) {
        slice = (n + max_threads - 1) / max_threads;
        slice = (slice + DOT_TOKENS - 1) / DOT_TOKENS * DOT_TOKENS;
        slices = (n + slice - 1) / slice;
    }
    int items = tiles * slices;
    int parallel = items > 1 && worth_threads(nrows, cols, n) && may_fork();
    int quant_panels = W->panels && matrix_quantizes_input(W);
    int threads = parallel ? max_threads : 1, dot = quant_panels ? panel_dot(be, W, in) : in->xb || in->xf != NULL;
    size_t per_thread = dot ? DOT_SCRATCH(ROW_TILE, cols) : KERNEL_SCRATCH(cols) * sizeof(double);
    per_thread = (per_thread + 63) & ~(size_t)63;
    char *scratch = reuse_get(1, threads * per_thread);
    rows_kernel k = be->rows[W->kind] ? be->rows[W->kind] : be->exact->rows[W->kind];
    if (W->panels && (!be->panels || quant_panels)) k = backend_ref.rows[W->kind]; /* decodes its rows through matrix_row_f32 (unless dot) */
    /* The exact kernels take the inputs in double; the fast ones do not (the
     * copy would be n x cols doubles per call). */
    double *xd = dot || (be->exact && be->rows[W->kind]) ? NULL : matmul_prepare_input(W->kind, x, ldx, n, cols);
    /* Each weight row is read once per item and used for all its inputs. */
#pragma omp parallel for schedule(static) if (parallel)
    for (int it = 0; it < items; it++) {
        int t = it / slices, j0 = it % slices * slice, nj = n - j0 < slice ? n - j0 : slice;
        int r0 = t * ROW_TILE, r1 = r0 + ROW_TILE < nrows ? r0 + ROW_TILE : nrows;
        void *mine = scratch + (size_t)omp_get_thread_num() * per_thread;
        float *yt = y + (size_t)j0 * ldy + r0;
        if (dot) {
            dot_input part = {x + (size_t)j0 * ldx, ldx, nj, in->xb ? in->xb + (size_t)j0 * cols : NULL, in->xf ? in->xf + (size_t)j0 * cols : NULL,
                              in->xf_scalable};
            be->dot(W, row0 + r0, row0 + r1, &part, yt, ldy, mine);
        } else {
            k(W, row0 + r0, row0 + r1, x + (size_t)j0 * ldx, xd ? xd + (size_t)j0 * cols : NULL, ldx, nj, yt, ldy, mine);
        }
    }
    free(xd);
}

/* Bytes of a prepared input for n tokens of `cols` columns (dot_prepare,
 * float_prepare), rounded to a cache line. */
static size_t input_bytes(int n, int cols) { return ((size_t)(n + DOT_TOKENS) * cols * 4 + 63) & ~(size_t)63; }

void matmul_many(const matmul_job *jobs, int count) {
    double t_start = omp_get_wtime(), batch_seconds = 0;
    const kernel_backend *be = kernel_backend_active();
    int threads = omp_get_max_threads(), items = 0, cols_max = 0;
    size_t in_total = 0, in_at = 0;
    for (int j = 0; j < count; j++)
        if (jobs[j].n <= STREAM_TOKENS) in_total += input_bytes(jobs[j].n, jobs[j].W->cols);
    char *bufs = work_alloc(in_total); /* the streamed jobs' inputs: they run together, after all are prepared */
    float **owned = work_alloc(count * sizeof *owned);
    dot_input *in = work_alloc(count * sizeof *in);
    int *streamed = work_alloc(count * sizeof *streamed), *rows = work_alloc(count * sizeof *rows), bound = 0;
    for (int j = 0; j < count; j++) {
        const matmul_job *jb = &jobs[j];
        const v4c_matrix *W = jb->W;
        const float *x = jb->x;
        int n = jb->n, ldx = jb->ldx ? jb->ldx : W->cols;
        double t0 = omp_get_wtime();
        owned[j] = NULL;
        if (jb->quantize) x = linear_input(W, x, n, &owned[j]), ldx = W->cols;
        rows[j] = jb->nrows ? jb->nrows : W->rows;
        streamed[j] = 0;
        int few = n <= STREAM_TOKENS;
        in[j] = dot_input_for(be, W, x, ldx, n, few ? bufs + in_at : reuse_get(0, input_bytes(n, W->cols)));
        if (few && stream_path(be, W, &in[j])) {
            in_at += input_bytes(n, W->cols);
            streamed[j] = 1;
            bound += shares_bound(W, rows[j], threads);
            cols_max = W->cols > cols_max ? W->cols : cols_max;
        } else {
            matmul_tiles(be, W, jb->row0, rows[j], &in[j], jb->y, jb->ldy ? jb->ldy : rows[j]);
            profile_add(W, rows[j], n, &in[j], omp_get_wtime() - t0);
            batch_seconds += omp_get_wtime() - t0;
        }
    }
    stream_share *shares = bound ? work_alloc(bound * sizeof *shares) : NULL;
    items = bound ? plan_shares(jobs, rows, streamed, count, threads, shares) : 0;
    double bytes = 0, op_bytes[OP_COUNT] = {0};
    size_t per_thread = stream_scratch(cols_max);
    char *scratch = items ? reuse_get(1, threads * per_thread) : NULL;
#pragma omp parallel for schedule(dynamic, 1) if (items > 1 && may_fork())
    for (int it = 0; it < items; it++) {
        int j = shares[it].job, r0 = shares[it].r0, r1 = shares[it].r1, row0 = jobs[j].row0, ldy = jobs[j].ldy ? jobs[j].ldy : rows[j];
        be->stream(jobs[j].W, row0 + r0, row0 + r1, &in[j], jobs[j].y + r0, ldy, scratch + (size_t)omp_get_thread_num() * per_thread);
    }
    /* The streamed jobs' time (with their preparation), split over their
     * operations by bytes. */
    double seconds = omp_get_wtime() - t_start - batch_seconds;
    for (int j = 0; j < count; j++)
        if (streamed[j]) {
            double b = matrix_bytes(jobs[j].W, rows[j]);
            bytes += b, op_bytes[jobs[j].W->op] += b;
            profile_add(jobs[j].W, rows[j], in[j].n, &in[j], 0);
        }
    for (int o = 0; o < OP_COUNT && !omp_in_parallel(); o++)
        if (op_bytes[o] > 0) matmul_prof.seconds[o] += seconds * op_bytes[o] / bytes;
    for (int j = 0; j < count; j++) work_free(owned[j]);
    work_free(shares), work_free(rows), work_free(streamed), work_free(in), work_free(owned), work_free(bufs);
}

void matmul(float *y, int ldy, const v4c_matrix *W, int row0, int nrows, const float *x, int ldx, int n) {
    if (nrows <= 0 || n <= 0) return;
    matmul_job job = {y, ldy, W, row0, nrows, x, ldx, n, 0};
    matmul_many(&job, 1);
}

const float *linear_input(const v4c_matrix *W, const float *x, int n, float **owned) {
    *owned = NULL;
    if (!matrix_quantizes_input(W)) return x;
    size_t len = (size_t)n * W->cols;
    *owned = work_alloc(len * sizeof(float));
    memcpy(*owned, x, len * sizeof(float));
    for (int j = 0; j < n; j++) fp8_quant(*owned + (size_t)j * W->cols, W->cols, 128);
    return *owned;
}

void linear(float *y, const v4c_matrix *W, const float *x, int n) {
    float *owned;
    const float *in = linear_input(W, x, n, &owned);
    matmul(y, W->rows, W, 0, W->rows, in, W->cols, n);
    work_free(owned);
}
