/* Number formats of MODEL.md §2: every e4m3 and e2m1 code, e8m0 scales,
 * grid rounding (ties to even, saturation) and activation quantization on
 * crafted vectors (ties, saturation, power-of-two scale boundaries). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "formats/dtype.h"
#include "formats/safetensors.h"
#include "v4c.h"
#include "test_util.h"

/* e4m3fn by its definition: sign, 4-bit exponent (bias 7), 3-bit mantissa. */
static double e4m3_by_definition(int c) {
    int s = c >> 7, e = (c >> 3) & 15, m = c & 7;
    double mag = e == 0 ? m / 8.0 * pow(2, -6) : (1 + m / 8.0) * pow(2, e - 7);
    return s ? -mag : mag;
}

static void test_e4m3_codes(void) {
    dtype_init_tables();
    for (int c = 0; c < 256; c++) {
        if ((c & 0x7F) == 0x7F) {
            CHECK(isnan(e4m3_table[c]), "code 0x%02X must be NaN", c);
            continue;
        }
        CHECK(e4m3_table[c] == (float)e4m3_by_definition(c), "code 0x%02X: got %g want %g", c, e4m3_table[c], e4m3_by_definition(c));
        CHECK(round_e4m3(e4m3_table[c]) == e4m3_table[c], "code 0x%02X does not round to itself", c);
    }
    CHECK(e4m3_table[0x7E] == 448.0f, "max is 448, got %g", e4m3_table[0x7E]);
    CHECK(e4m3_table[0x01] == ldexpf(1, -9), "smallest subnormal 2^-9, got %g", e4m3_table[0x01]);
    CHECK(e4m3_table[0x08] == ldexpf(1, -6), "smallest normal 2^-6, got %g", e4m3_table[0x08]);
    CHECK(e4m3_table[0x38] == 1.0f && e4m3_table[0xB8] == -1.0f, "0x38 = 1, 0xB8 = -1");
    for (int c = 1; c < 0x7F; c++) CHECK(e4m3_table[c] > e4m3_table[c - 1], "codes increase at 0x%02X", c);
}

static void test_e2m1_codes(void) {
    static const float want[8] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6};
    for (int c = 0; c < 16; c++) {
        float w = (c & 8) ? -want[c & 7] : want[c & 7];
        CHECK(e2m1_table[c] == w, "e2m1 code %d: got %g want %g", c, e2m1_table[c], w);
        CHECK(round_e2m1(w) == w, "e2m1 code %d does not round to itself", c);
    }
}

static void test_e8m0(void) {
    CHECK(e8m0_to_f32(127) == 1.0f, "e8m0 127 = 1");
    CHECK(e8m0_to_f32(128) == 2.0f && e8m0_to_f32(120) == 1.0f / 128, "e8m0 powers of two");
    CHECK(e8m0_to_f32(0) == ldexpf(1, -127), "e8m0 0 = 2^-127");
    CHECK(isnan(e8m0_to_f32(255)), "e8m0 255 is NaN");
}

static void test_rounding(void) {
    /* Midpoints go to the even mantissa. */
    CHECK(round_e4m3(1.0625f) == 1.0f, "1.0625 is between 1 (even) and 1.125: got %g", round_e4m3(1.0625f));
    CHECK(round_e4m3(1.1875f) == 1.25f, "1.1875 is between 1.125 and 1.25 (even): got %g", round_e4m3(1.1875f));
    CHECK(round_e4m3(-1.1875f) == -1.25f, "ties are symmetric");
    CHECK(round_e4m3(ldexpf(1, -10)) == 0.0f, "2^-10 is half the smallest subnormal: ties to 0");
    CHECK(round_e4m3(ldexpf(3, -10)) == ldexpf(2, -9), "3*2^-10 ties to 2*2^-9 (even)");
    CHECK(round_e4m3(15.5f) == 16.0f, "15.5 rounds across the binade to 16");
    CHECK(round_e4m3(1000.0f) == 448.0f && round_e4m3(-1e9f) == -448.0f, "saturates at +-448");
    CHECK(round_e4m3(440.0f) == 448.0f && round_e4m3(424.0f) == 416.0f, "440 -> 448, 424 ties to 416 (even)");
    CHECK(round_e2m1(0.25f) == 0.0f && round_e2m1(0.75f) == 1.0f, "e2m1 ties at 0.25 -> 0, 0.75 -> 1");
    CHECK(round_e2m1(2.5f) == 2.0f && round_e2m1(3.5f) == 4.0f && round_e2m1(5.0f) == 4.0f, "e2m1 ties 2.5->2, 3.5->4, 5->4");
    CHECK(round_e2m1(5.1f) == 6.0f && round_e2m1(100.0f) == 6.0f, "e2m1 rounds up / saturates at 6");
    CHECK(pow2ceil(1.0f) == 1.0f && pow2ceil(1.0000001f) == 2.0f && pow2ceil(0.75f) == 1.0f && pow2ceil(3.0f) == 4.0f, "pow2ceil");
}

static void test_fp8_quant(void) {
    float v[128];
    /* amax exactly 448: scale 1, values on the grid stay. */
    for (int i = 0; i < 128; i++) v[i] = e4m3_table[i % 0x7E];
    v[5] = 448.0f;
    float orig[128];
    memcpy(orig, v, sizeof v);
    fp8_quant(v, 128, 128);
    CHECK(!memcmp(v, orig, sizeof v), "grid values with amax 448 are unchanged");
    /* amax just above 448: the scale becomes 2, so 1.0 + 2^-7 (= 1.0078125) -> 1.0 */
    for (int i = 0; i < 128; i++) v[i] = 0;
    v[0] = 449.0f;
    v[1] = 3.0f;      /* 3/2 = 1.5 on the grid -> 3 */
    v[2] = 2.125f;    /* 2.125/2 = 1.0625: tie -> 1.0 -> 2 */
    v[3] = -2.375f;   /* -1.1875: tie -> -1.25 -> -2.5 */
    fp8_quant(v, 128, 128);
    CHECK(v[0] == 448.0f, "449 with scale 2 -> 224.5 -> 224 -> 448, got %g", v[0]);
    CHECK(v[1] == 3.0f && v[2] == 2.0f && v[3] == -2.5f, "scale-2 ties: %g %g %g", v[1], v[2], v[3]);
    /* All-zero block: amax floored at 1e-4, values stay 0 and nothing divides by zero. */
    for (int i = 0; i < 128; i++) v[i] = 0;
    fp8_quant(v, 128, 128);
    CHECK(v[0] == 0.0f && v[127] == 0.0f, "zero block stays zero");
    /* Tiny block below the floor: s = pow2ceil(1e-4/448) = 2^-22. */
    for (int i = 0; i < 128; i++) v[i] = 0;
    v[0] = 3e-5f;
    fp8_quant(v, 128, 128);
    float s = ldexpf(1, -22);
    CHECK(v[0] == round_e4m3(3e-5f / s) * s, "floor on amax sets the scale: got %g", v[0]);
    /* Blocks are independent: block size 64 on 128 values. */
    for (int i = 0; i < 128; i++) v[i] = i < 64 ? 1.0f : 1000.0f;
    v[1] = 1.0625f;
    fp8_quant(v, 128, 64);
    CHECK(v[1] == 1.0f && v[0] == 1.0f, "first block scale 2^-8 keeps 1.0, ties 1.0625 -> 1.0: %g", v[1]);
    CHECK(v[100] == 1024.0f, "second block: 1000 with scale 4 -> 250 -> 256 -> 1024, got %g", v[100]);
}

static void test_fp4_quant(void) {
    float v[32] = {0};
    v[0] = 6.0f;   /* amax 6: scale 1 */
    v[1] = 2.5f;   /* tie -> 2 */
    v[2] = -0.25f; /* tie -> -0 */
    v[3] = 5.0f;   /* tie -> 4 */
    v[4] = 0.3f;   /* -> 0.5 */
    fp4_quant(v, 32, 32);
    CHECK(v[0] == 6.0f && v[1] == 2.0f && v[2] == 0.0f && v[3] == 4.0f && v[4] == 0.5f, "fp4 scale 1: %g %g %g %g %g", v[0], v[1], v[2], v[3], v[4]);
    for (int i = 0; i < 32; i++) v[i] = 0;
    v[0] = 6.5f;   /* amax/6 > 1: scale 2; 3.25 -> 3 -> 6 */
    v[1] = 3.0f;   /* 1.5 -> 3 */
    v[2] = 5.0f;   /* 2.5 tie -> 2 -> 4 */
    fp4_quant(v, 32, 32);
    CHECK(v[0] == 6.0f && v[1] == 3.0f && v[2] == 4.0f, "fp4 scale 2: %g %g %g", v[0], v[1], v[2]);
    for (int i = 0; i < 32; i++) v[i] = 0;
    fp4_quant(v, 32, 32);
    CHECK(v[0] == 0.0f, "fp4 zero block");
}

/* The vectorised fp8_quant equals the scalar definition bit for bit: ties,
 * the subnormal range, saturation, zeros, infinities and NaN included. */
static void test_fp8_quant_simd(void) {
    unsigned seed = 3;
    int bad = 0;
    for (int trial = 0; trial < 200; trial++) {
        float a[256], b[256];
        for (int i = 0; i < 256; i++) {
            seed = seed * 1664525u + 1013904223u;
            float r = ((seed >> 8) / 16777216.0f) * 2 - 1;
            float mag = ldexpf(1.0f, (int)(seed % 40) - 20);
            a[i] = r * mag;
            if (i % 17 == 0) a[i] = ldexpf((float)(int)(r * 64), (int)(seed % 7) - 12); /* exact grid points and ties */
        }
        if (trial >= 10 && trial < 20) { /* exact ties of the e4m3 grid: scale 1 (amax 448) */
            for (int i = 0; i < 256; i++) {
                int e = (int)(i % 14) - 6, j = (i / 14) % 8;
                a[i] = e == -6 && i % 3 == 0 ? ldexpf((float)j + 0.5f, -9) : ldexpf(8.0f + (float)j + 0.5f, e - 3);
                if (i % 2) a[i] = -a[i];
            }
            a[0] = 448.0f, a[128] = 448.0f, a[64] = 448.0f, a[192] = 448.0f;
        }
        if (trial == 1) a[3] = 0, a[4] = -0.0f;
        if (trial == 2) a[5] = INFINITY;
        if (trial == 3) a[6] = NAN, a[70] = -INFINITY;
        memcpy(b, a, sizeof a);
        fp8_quant(a, 256, trial % 2 ? 64 : 128);
        fp8_quant_scalar(b, 256, trial % 2 ? 64 : 128);
        for (int i = 0; i < 256; i++)
            if (memcmp(&a[i], &b[i], sizeof(float)) && !(isnan(a[i]) && isnan(b[i]))) bad++;
    }
    CHECK(bad == 0, "fp8_quant: %d values differ from the scalar definition", bad);
}

/* A model that fits in memory is read into huge pages (safetensors.c);
 * V4C_MMAP=1 keeps the file mapping. Both give the file's bytes, and a
 * shard's tensors keep their offsets inside it. */
static void test_resident_load(void) {
    char dir[] = "/tmp/v4c_resident_XXXXXX", path[256], err[V4C_ERR_LEN];
    if (!mkdtemp(dir)) {
        CHECK(0, "mkdtemp");
        return;
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    enum { N = 3 << 20 }; /* spans two huge pages */
    uint8_t *a = malloc(N), b[40];
    for (int i = 0; i < N; i++) a[i] = (uint8_t)(i * 131 + (i >> 11));
    for (int i = 0; i < 40; i++) b[i] = (uint8_t)(255 - i);
    st_write_tensor t[2] = {{"a", DT_U8, 1, {N}, a}, {"b", DT_U8, 2, {5, 8}, b}};
    CHECK(st_write_file(path, t, 2, err) == 0, "write: %s", err);
    for (int mode = 0; mode < 2; mode++) {
        if (mode) setenv("V4C_MMAP", "1", 1);
        st_set st;
        CHECK(st_open_dir(&st, dir, err) == 0, "open (V4C_MMAP=%d): %s", mode, err);
        st_tensor *ta = st_find(&st, "a"), *tb = st_find(&st, "b");
        CHECK(ta && tb && ta->nbytes == N && tb->nbytes == 40, "tensors found (mode %d)", mode);
        if (ta && tb) {
            CHECK(!memcmp(ta->data, a, N) && !memcmp(tb->data, b, 40), "tensor bytes equal the file's (mode %d)", mode);
            CHECK((const uint8_t *)ta->data >= (const uint8_t *)st.files[0].map &&
                      (const uint8_t *)tb->data + 40 <= (const uint8_t *)st.files[0].map + st.files[0].size,
                  "tensors lie inside the file's bytes (mode %d)", mode);
        }
        CHECK(st.files[0].map_size >= st.files[0].size && (mode ? st.files[0].map_size == st.files[0].size : st.files[0].map_size % (2 << 20) == 0),
              "mode %d: %s (map_size %zu)", mode, mode ? "file mapping kept" : "copied into huge-page-sized memory", st.files[0].map_size);
        st_close(&st);
    }
    unsetenv("V4C_MMAP");
    unlink(path);
    rmdir(dir);
    free(a);
}

int main(void) {
    test_resident_load();
    test_fp8_quant_simd();
    test_e4m3_codes();
    test_e2m1_codes();
    test_e8m0();
    test_rounding();
    test_fp8_quant();
    test_fp4_quant();
    return test_done("test_formats");
}
