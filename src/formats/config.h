/* config.json → v4c_config, every key of MODEL.md §1 validated. */
#ifndef V4C_CONFIG_H
#define V4C_CONFIG_H

#include "v4c.h"

/* Parse and validate; returns 0 or -1 with err naming the key. */
int config_load(v4c_config *c, const char *path, char *err);
int config_parse(v4c_config *c, const char *json_text, const char *path, char *err);


/* Write c as a Hugging Face config.json (with quantization_config when
 * fp8 is set). Returns 0 or -1 with err. */
int config_save(const v4c_config *c, const char *path, int fp8, char *err);
#endif
