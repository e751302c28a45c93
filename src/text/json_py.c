#include "text/json_py.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void json_py_string(strbuf *out, const char *s, size_t len) {
    static const char hex[] = "0123456789abcdef";
    strbuf_putc(out, '"');
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[7];
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        default:
            if (c < 0x20) {
                memcpy(u, "\\u00", 4);
                u[4] = hex[c >> 4];
                u[5] = hex[c & 15];
                u[6] = '\0';
                esc = u;
            }
        }
        if (!esc) continue;
        strbuf_append(out, s + run, i - run);
        strbuf_puts(out, esc);
        run = i + 1;
    }
    strbuf_append(out, s + run, len - run);
    strbuf_putc(out, '"');
}

/* Python's float repr: the shortest digits that read back to the same
 * double, positional for 1e-4 <= |x| < 1e16, else d.ddde±XX. */
static void py_real(strbuf *out, double x) {
    if (isnan(x)) {
        strbuf_puts(out, "NaN");
        return;
    }
    if (isinf(x)) {
        strbuf_puts(out, x < 0 ? "-Infinity" : "Infinity");
        return;
    }
    char sci[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(sci, sizeof sci, "%.*e", prec - 1, x);
        if (strtod(sci, NULL) == x) break;
    }
    /* sci is [-]d[.ddd]e±XX: collect the digits and the decimal exponent. */
    const char *p = sci;
    int negative = *p == '-';
    if (negative) p++;
    char digits[24];
    int n_digits = 0;
    for (; *p && *p != 'e'; p++)
        if (*p != '.') digits[n_digits++] = *p;
    int exp10 = atoi(p + 1);
    while (n_digits > 1 && digits[n_digits - 1] == '0') n_digits--;
    int decpt = exp10 + 1; /* value = 0.digits × 10^decpt */
    char buf[64];
    size_t k = 0;
    if (negative) buf[k++] = '-';
    if (decpt > -4 && decpt <= 16) {
        if (decpt <= 0) {
            buf[k++] = '0';
            buf[k++] = '.';
            for (int i = 0; i < -decpt; i++) buf[k++] = '0';
            for (int i = 0; i < n_digits; i++) buf[k++] = digits[i];
        } else if (decpt >= n_digits) {
            for (int i = 0; i < n_digits; i++) buf[k++] = digits[i];
            for (int i = n_digits; i < decpt; i++) buf[k++] = '0';
            buf[k++] = '.';
            buf[k++] = '0';
        } else {
            for (int i = 0; i < n_digits; i++) {
                if (i == decpt) buf[k++] = '.';
                buf[k++] = digits[i];
            }
        }
        buf[k] = '\0';
    } else {
        buf[k++] = digits[0];
        if (n_digits > 1) {
            buf[k++] = '.';
            for (int i = 1; i < n_digits; i++) buf[k++] = digits[i];
        }
        snprintf(buf + k, sizeof buf - k, "e%c%02d", exp10 < 0 ? '-' : '+', abs(exp10));
    }
    strbuf_puts(out, buf);
}

void json_py_dump(strbuf *out, const json_t *v) {
    json_t *value = (json_t *)v; /* Jansson's iteration macros take non-const */
    switch (json_typeof(value)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *item;
        int first = 1;
        strbuf_putc(out, '{');
        json_object_foreach(value, key, item) {
            if (!first) strbuf_puts(out, ", ");
            first = 0;
            json_py_string(out, key, strlen(key));
            strbuf_puts(out, ": ");
            json_py_dump(out, item);
        }
        strbuf_putc(out, '}');
        break;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *item;
        strbuf_putc(out, '[');
        json_array_foreach(value, i, item) {
            if (i) strbuf_puts(out, ", ");
            json_py_dump(out, item);
        }
        strbuf_putc(out, ']');
        break;
    }
    case JSON_STRING: json_py_string(out, json_string_value(value), json_string_length(value)); break;
    case JSON_INTEGER: {
        char num[32];
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(value));
        strbuf_puts(out, num);
        break;
    }
    case JSON_REAL: py_real(out, json_real_value(value)); break;
    case JSON_TRUE: strbuf_puts(out, "true"); break;
    case JSON_FALSE: strbuf_puts(out, "false"); break;
    case JSON_NULL: strbuf_puts(out, "null"); break;
    }
}

int json_py_truthy(const json_t *v) {
    if (!v) return 0;
    switch (json_typeof(v)) {
    case JSON_OBJECT: return json_object_size(v) > 0;
    case JSON_ARRAY: return json_array_size(v) > 0;
    case JSON_STRING: return json_string_length(v) > 0;
    case JSON_INTEGER: return json_integer_value(v) != 0;
    case JSON_REAL: return json_real_value(v) != 0.0;
    case JSON_TRUE: return 1;
    default: return 0;
    }
}
