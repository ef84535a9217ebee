/* json_esc.h — the one rule for escaping text inside a JSON string, used by
 * the JSON log lines (log.c) and the telemetry server's /readyz body
 * (telemetry.c).
 *
 * '"' and '\' are escaped with a backslash, line feed, carriage return and
 * tab as \n, \r, \t, every other control byte (below 0x20) and DEL as
 * \u00XX; every other byte (UTF-8 included) is kept. Pure; any thread.
 */
#ifndef SW_JSON_ESC_H
#define SW_JSON_ESC_H

#include <stddef.h>

#define JSON_ESC_MAX 6 /* longest escape: \u00XX */

/* The escape of byte c into out (not NUL-terminated): its length, or 0
 * when c goes into the string as it is. */
static inline size_t json_esc(unsigned char c, char out[JSON_ESC_MAX])
{
    static const char hex[] = "0123456789abcdef";
    char s = 0;
    switch (c) {
    case '"': s = '"'; break;
    case '\\': s = '\\'; break;
    case '\n': s = 'n'; break;
    case '\r': s = 'r'; break;
    case '\t': s = 't'; break;
    default:
        if (c >= 0x20 && c != 0x7f) return 0;
        out[0] = '\\';
        out[1] = 'u';
        out[2] = '0';
        out[3] = '0';
        out[4] = hex[c >> 4];
        out[5] = hex[c & 15];
        return 6;
    }
    out[0] = '\\';
    out[1] = s;
    return 2;
}

#endif
