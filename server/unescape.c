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
#include <stdlib.h>
#include <string.h>

#include "http_int.h"

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

size_t srv_unescape(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls;
    (void)conn;
    size_t n = strlen(s), nd = 0, out = 0;
    /* dec[k]: the k-th decoded byte; src[k]: where its text starts in s;
     * esc[k]: whether it was written as an escape. */
    unsigned char *dec = malloc(n + 1);
    size_t *src = malloc((n + 1) * sizeof *src);
    char *orig = strdup(s);
    if (!dec || !src || !orig) goto out;           /* leave s undecoded */

    for (size_t i = 0; i < n;) {
        int h, l;
        src[nd] = i;
        if (s[i] == '%' && i + 2 < n && (h = hexval(s[i + 1])) >= 0 &&
            (l = hexval(s[i + 2])) >= 0) {
            dec[nd++] = (unsigned char)(h << 4 | l);
            i += 3;
        } else {
            dec[nd++] = (unsigned char)s[i++];
        }
    }
    src[nd] = n;

    for (size_t k = 0; k < nd;) {
        size_t len = dec[k] ? utf8_len(dec + k, nd - k) : 0;
        if (len) {
            memcpy(s + out, dec + k, len);
            out += len;
            k += len;
            continue;
        }
        /* Not decodable: an escape stays as written, a raw byte becomes '?'. */
        size_t w = src[k + 1] - src[k];
        if (w == 3) {
            memcpy(s + out, orig + src[k], 3);
            out += 3;
        } else {
            s[out++] = '?';
        }
        k++;
    }
    s[out] = 0;
    n = out;
out:
    free(dec);
    free(src);
    free(orig);
    return n;
}
