/* JSON written the way the reference encoder writes it: Python's
 * json.dumps(v, ensure_ascii=False) — ", " and ": " separators, non-ASCII
 * kept, keys in their given order, floats as Python's repr. */
#ifndef V4C_TEXT_JSON_PY_H
#define V4C_TEXT_JSON_PY_H

#include <jansson.h>

#include "text/buf.h"

void json_py_dump(strbuf *out, const json_t *v);
void json_py_string(strbuf *out, const char *s, size_t len);

/* Python truthiness of a JSON value: null, false, 0, "", [] and {} are false. */
int json_py_truthy(const json_t *v);

#endif
