/* engine/h5_util.c — the small helpers every file of the weight-file reader
 * and writer shares (h5_read.c, summary.c, zip.c, transfer.c, write.c),
 * declared in h5_int.h: the first-error-wins error setter, dtype sizes,
 * element counts, the digest text and a full pread. Owns nothing else and calls no other
 * engine file, so the files above it never call each other for these.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "h5_int.h"

eng_code eng_h5_fail(eng_error *err, eng_code code, const char *fmt, ...)
{
    if (err && err->code == ENG_OK) {
        va_list ap;
        err->code = code;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

static const size_t dtype_sizes[] = {
    [ENG_DT_F32] = 4, [ENG_DT_F64] = 8, [ENG_DT_F16] = 2,
    [ENG_DT_I64] = 8, [ENG_DT_I32] = 4, [ENG_DT_OTHER] = 0,
};

size_t eng_h5_dtype_size(eng_dtype dt)
{
    if ((unsigned)dt < sizeof dtype_sizes / sizeof dtype_sizes[0]) return dtype_sizes[dt];
    return 0;
}

uint64_t eng_h5_elements(const eng_tensor *t)
{
    uint64_t n = 1;
    for (int i = 0; i < t->rank && i < ENG_MAX_RANK; i++) {
        if (t->shape[i] < 0) return 0;
        if (t->shape[i] && n > UINT64_MAX / (uint64_t)t->shape[i]) return UINT64_MAX;
        n *= (uint64_t)t->shape[i];
    }
    return n;
}

int eng_h5_pread_full(int fd, void *buf, size_t n, uint64_t off)
{
    unsigned char *p = buf;
    while (n > 0) {
        if (off > (uint64_t)INT64_MAX) return -1;
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (r == 0) return 1;
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

void eng_h5_digest_text(const unsigned char md[32], char out[ENG_DIGEST_LEN])
{
    static const char digits[] = "0123456789abcdef";
    memcpy(out, "sha256:", 7);
    for (int i = 0; i < 32; i++) {
        out[7 + 2 * i] = digits[md[i] >> 4];
        out[7 + 2 * i + 1] = digits[md[i] & 15];
    }
    out[7 + 64] = 0;
}
