/* server/unescape.c — percent-decoding of the request path and query, for
 * libmicrohttpd (MHD_OPTION_UNESCAPE_CALLBACK).
 *
 * Owns: the one rule for what a %XX escape may decode to. Everything after
 * this point (routing, name checks, error messages, JSON) treats the path and
 * the query values as C strings of valid UTF-8, so a decoded byte that would
 * break either is never produced:
 *   - %00 stays the three characters "%00" (a NUL would cut a name short:
 *     "victim%00xyz" must not act on the model "victim");
 *   - escapes that would decode to invalid UTF-8 (a lone %ff, overlong forms
 *     such as %c0%ae, surrogates, code points past U+10FFFF) stay as they were
 *     written;
 *   - a raw byte that is not valid UTF-8 becomes '?'.
 * No name, tag, ref or run may contain '%' or '?', so such a segment is
 * refused by the name checks with 400 and a message that quotes it readably.
 * The result is never longer than the input, as libmicrohttpd requires.
 */
#include <string.h>

#include "params.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Length of the valid UTF-8 sequence at b[0..n), or 0 when it is not one
 * (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF). */
static size_t utf8_len(const unsigned char *b, size_t n)
{
    unsigned c = b[0];
    size_t len;
    unsigned lo = 0x80, hi = 0xbf;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0) lo = 0xa0;
        if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0) lo = 0x90;
        if (c == 0xf4) hi = 0x8f;
    } else {
        return 0;
    }
    if (n < len) return 0;
    if (b[1] < lo || b[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if (b[i] < 0x80 || b[i] > 0xbf) return 0;
    return len;
}

/* One unit of the input at s[i]: a %XX escape (3 characters) or a raw byte
 * (1). Sets *byte to what it stands for; returns its width in characters. */
static size_t unit_at(const char *s, size_t i, size_t n, unsigned char *byte)
{
    int h, l;
    if (s[i] == '%' && i + 2 < n && (h = hexval(s[i + 1])) >= 0 && (l = hexval(s[i + 2])) >= 0) {
        *byte = (unsigned char)(h << 4 | l);
        return 3;
    }
    *byte = (unsigned char)s[i];
    return 1;
}

/* In place, without allocating: every write lands at or before the unit
 * being read (the output is never longer than what it came from), and the
 * up-to-4 units of a UTF-8 sequence are read before any of them is written. */
size_t srv_unescape(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls;
    (void)conn;
    size_t n = strlen(s), i = 0, out = 0;
    while (i < n) {
        unsigned char b[4];
        size_t w[4], k = 0, at = i;
        while (k < 4 && at < n) {
            w[k] = unit_at(s, at, n, &b[k]);
            at += w[k++];
        }
        size_t len = b[0] ? utf8_len(b, k) : 0;
        if (len) {
            for (size_t j = 0; j < len; j++) i += w[j];
            memcpy(s + out, b, len);
            out += len;
        } else if (w[0] == 3) { /* an escape stays as written */
            memmove(s + out, s + i, 3);
            out += 3;
            i += 3;
        } else { /* a raw non-UTF-8 byte */
            s[out++] = '?';
            i++;
        }
    }
    s[out] = 0;
    return out;
}
