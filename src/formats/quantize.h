/* Weight quantization to the released formats (MODEL.md §2): FP8 e4m3 with
 * ue8m0 128x128 block scales, FP4 e2m1 with ue8m0 per-32 scales. Used by the
 * model generator and `v4c quantize`. */
#ifndef V4C_QUANTIZE_H
#define V4C_QUANTIZE_H

#include <stdint.h>

uint8_t e4m3_encode(float v); /* round to nearest e4m3 (ties even), saturating */
uint8_t e2m1_encode(float v); /* 4-bit code */
uint8_t e8m0_encode_pow2(float s); /* s must be a power of two */

/* w [rows, cols] float -> codes [rows, cols], scales [ceil(rows/128), ceil(cols/128)]. */
void quantize_fp8_matrix(const float *w, int rows, int cols, uint8_t *codes, uint8_t *scales);
/* w [rows, cols] (cols % 32 == 0) -> packed [rows, cols/2] (even index in
 * the low nibble), scales [rows, cols/32]. */
void quantize_fp4_matrix(const float *w, int rows, int cols, uint8_t *packed, uint8_t *scales);

#endif
