/* Shapes beyond the golden cases, on generated checkpoints: window 128,
 * HCA ratio 128, several hash layers, an MTP block with CSA, sharded files,
 * prompts shorter than one compression block and longer than the window.
 * Checks: the checkpoint opens, logits are finite, and chunked prefill is
 * bit-identical to token-by-token decode (main and MTP). Also the weight
 * quantizers against the decoders. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/dtype.h"
#include "formats/quantize.h"
#include "model/generate.h"
#include "test_util.h"
#include "v4c.h"

/* The tiny preset, reshaped to what the golden cases do not cover. */
static v4c_config base_config(void) {
    v4c_config c;
    model_preset("tiny", &c);
    c.vocab_size = 300;
    c.n_layers = 5;
    c.window = 128;
    c.index_topk = 6;
    c.n_routed_experts = 6;
    c.n_hash_layers = 3;
    c.yarn_orig_max_pos = 64;
    c.max_position_embeddings = 1024;
    int ratios[6] = {4, 128, 0, 4, 128, 4}; /* HCA 128, and an MTP block with CSA */
    for (int l = 0; l < 6; l++) c.compress_ratios[l] = ratios[l];
    return c;
}

/* logits of the last prompt token, MTP logits after it, then `then` decode
 * steps (main + MTP each): rows of vocab floats. */
static float *run(v4c_model *m, const int32_t *ids, int prompt, int then, int chunk) {
    char err[V4C_ERR_LEN];
    int V = v4c_model_config(m)->vocab_size;
    v4c_session_params sp = {.use_mtp = 1};
    v4c_session *s = v4c_session_new(m, &sp, err);
    float *out = calloc((size_t)2 * (then + 1) * V, sizeof(float));
    for (int i = 0; i < prompt; i += chunk) {
        int k = prompt - i < chunk ? prompt - i : chunk;
        CHECK(v4c_session_feed(s, ids + i, k, i + k == prompt ? out : NULL, err) == 0, "feed: %s", err);
    }
    for (int j = 0; j <= then; j++) {
        if (j) CHECK(v4c_session_feed(s, ids + prompt + j - 1, 1, out + (size_t)2 * j * V, err) == 0, "decode: %s", err);
        CHECK(v4c_session_mtp(s, ids[prompt + j], out + (size_t)(2 * j + 1) * V, err) == 0, "mtp: %s", err);
    }
    v4c_session_free(s);
    return out;
}

static void check_model(const char *what, const v4c_config *c, int fp8, int shards, const int *prompts, int n_prompts) {
    char *dir = test_mkdtemp(), err[V4C_ERR_LEN];
    gen_params gp = {.fp8 = fp8, .seed = 42, .n_shards = shards};
    CHECK(generate_model(c, &gp, dir, err) == 0, "%s: generate: %s", what, err);
    v4c_model *m = v4c_model_open(dir, err);
    CHECK(m != NULL, "%s: open: %s", what, err);
    if (!m) {
        test_rmtree(dir);
        return;
    }
    int V = c->vocab_size, then = 3;
    int32_t ids[400];
    for (int i = 0; i < 400; i++) ids[i] = (i * 131 + 7) % V;
    for (int p = 0; p < n_prompts; p++) {
        int prompt = prompts[p];
        size_t rows = (size_t)2 * (then + 1);
        float *ref = run(m, ids, prompt, then, 1);
        int finite = 1;
        for (size_t i = 0; i < rows * V; i++) finite &= isfinite(ref[i]);
        CHECK(finite, "%s, prompt %d: finite logits", what, prompt);
        int chunks[] = {prompt, 7, 64};
        for (int k = 0; k < 3; k++) {
            float *got = run(m, ids, prompt, then, chunks[k]);
            size_t diff = 0;
            for (size_t i = 0; i < rows * V; i++) diff += got[i] != ref[i];
            CHECK(diff == 0, "%s, prompt %d, chunk %d: %zu logits differ from token-by-token", what, prompt, chunks[k], diff);
            free(got);
        }
        free(ref);
    }
    v4c_model_free(m);
    test_rmtree(dir);
}

static void test_quantizers(void) {
    dtype_init_tables();
    for (int code = 0; code < 256; code++) {
        if ((code & 0x7F) == 0x7F || code == 0x80) continue; /* NaN, -0 */
        CHECK(e4m3_encode(e4m3_table[code]) == code, "e4m3 code 0x%02X round-trips", code);
    }
    for (int code = 0; code < 16; code++)
        if (code != 8) CHECK(e2m1_encode(e2m1_table[code]) == code, "e2m1 code %d round-trips", code);
    int rows = 130, cols = 256;
    float *w = malloc(sizeof(float) * rows * cols);
    uint8_t *codes = malloc(rows * cols), scales8[2 * 2], *packed = malloc(rows * cols / 2), *scales4 = malloc(rows * cols / 32);
    for (int i = 0; i < rows * cols; i++) w[i] = sinf(i * 0.37f) * (1 + (i % 7));
    quantize_fp8_matrix(w, rows, cols, codes, scales8);
    quantize_fp4_matrix(w, rows, cols, packed, scales4);
    double err8 = 0, err4 = 0;
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            float v = w[r * cols + c];
            float d8 = e4m3_table[codes[r * cols + c]] * e8m0_to_f32(scales8[(r / 128) * 2 + c / 128]);
            uint8_t byte = packed[(r * cols + c) / 2];
            float d4 = e2m1_table[c % 2 ? byte >> 4 : byte & 15] * e8m0_to_f32(scales4[r * (cols / 32) + c / 32]);
            /* relative to the block's scale: half a grid step at most */
            err8 = fmax(err8, fabs(d8 - v) / (7 * 448.0 / 448));
            err4 = fmax(err4, fabs(d4 - v) / 7);
        }
    CHECK(err8 <= 1.0 / 16, "fp8 weight error within half a step of the top binade: %g", err8);
    CHECK(err4 <= 1.0 / 3, "fp4 weight error within half a step: %g", err4);
    free(w), free(codes), free(packed), free(scales4);
}

int main(void) {
    test_quantizers();
    v4c_config c = base_config();
    int prompts[] = {3, 200};
    check_model("fp8, window 128, HCA 128, 3 hash layers, 3 shards", &c, 1, 3, prompts, 2);
    c.window = 16;
    c.compress_ratios[1] = 16;
    c.yarn_orig_max_pos = 0;
    int short_prompts[] = {2, 50};
    check_model("bf16, window 16, HCA 16, single file", &c, 0, 1, short_prompts, 2);
    return test_done("test_generated");
}
