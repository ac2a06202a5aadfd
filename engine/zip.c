/* engine/zip.c — just enough of the zip format to find a member of a Keras 3
 * .keras archive: end-of-central-directory record, central directory, local
 * header. Owns: locating STORED members and reading small ones.
 * Does not own: decompression (Keras writes its members STORED; anything else
 * is refused by the caller), zip64 (only needed beyond 4 GiB: refused here),
 * writing archives. No libzip: the format parts used are a few fixed-size
 * records, all read with bounds from the file size. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "h5_int.h"

#define ZIP_EOCD_SIG    0x06054b50u
#define ZIP_CDIR_SIG    0x02014b50u
#define ZIP_LOCAL_SIG   0x04034b50u
#define ZIP_EOCD_LEN    22u
#define ZIP_CDIR_LEN    46u
#define ZIP_LOCAL_LEN   30u
#define ZIP_MAX_COMMENT 0xffffu    /* the EOCD comment length is 16 bits */
#define ZIP_MAX_CDIR    (4u << 20) /* a .keras has 3 members; 4 MiB allows ~40k names */

static uint16_t rd16(const unsigned char *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}
static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

int eng_zip_is_zip(int fd)
{
    unsigned char b[4];
    int r = eng_h5_pread_full(fd, b, sizeof b, 0);
    if (r < 0) return -1;
    if (r > 0) return 0;
    return rd32(b) == ZIP_LOCAL_SIG;
}

eng_code eng_zip_find(int fd, uint64_t file_size, const char *name, eng_zip_member *m,
                      eng_error *err)
{
    eng_code rc = ENG_OK;
    unsigned char *tail = NULL, *cdir = NULL;
    size_t namelen = strlen(name);

    if (file_size < ZIP_EOCD_LEN) {
        rc = eng_h5_fail(err, ENG_ERR_FORMAT, "zip archive too short (%llu bytes)",
                         (unsigned long long)file_size);
        goto out;
    }
    /* The EOCD is the last record; only a comment (<= 64 KiB) may follow it. */
    size_t tail_len =
        (size_t)(file_size < ZIP_EOCD_LEN + ZIP_MAX_COMMENT ? file_size
                                                            : ZIP_EOCD_LEN + ZIP_MAX_COMMENT);
    uint64_t tail_off = file_size - tail_len;
    tail = malloc(tail_len);
    if (!tail) {
        rc = eng_h5_fail(err, ENG_ERR_NOMEM, "out of memory reading zip directory");
        goto out;
    }
    if (eng_h5_pread_full(fd, tail, tail_len, tail_off) != 0) {
        rc = eng_h5_fail(err, ENG_ERR_IO, "cannot read zip end of central directory");
        goto out;
    }
    const unsigned char *eocd = NULL;
    for (size_t i = tail_len - ZIP_EOCD_LEN + 1; i-- > 0;) {
        if (rd32(tail + i) == ZIP_EOCD_SIG && i + ZIP_EOCD_LEN + rd16(tail + i + 20) == tail_len) {
            eocd = tail + i;
            break;
        }
    }
    if (!eocd) {
        rc =
            eng_h5_fail(err, ENG_ERR_FORMAT, "zip archive without end of central directory record");
        goto out;
    }
    uint16_t disk = rd16(eocd + 4), cd_disk = rd16(eocd + 6);
    uint16_t nent = rd16(eocd + 10);
    uint32_t cd_size = rd32(eocd + 12), cd_off = rd32(eocd + 16);
    if (disk != 0 || cd_disk != 0 || rd16(eocd + 8) != nent) {
        rc = eng_h5_fail(err, ENG_ERR_FORMAT, "multi-disk zip archives are not supported");
        goto out;
    }
    if (nent == 0xffff || cd_size == 0xffffffffu || cd_off == 0xffffffffu) {
        rc = eng_h5_fail(err, ENG_ERR_FORMAT, "zip64 archives are not supported");
        goto out;
    }
    uint64_t eocd_off = tail_off + (uint64_t)(eocd - tail);
    if ((uint64_t)cd_off + cd_size > eocd_off) {
        rc = eng_h5_fail(err, ENG_ERR_FORMAT,
                         "zip central directory [%u,+%u) beyond its end record", cd_off, cd_size);
        goto out;
    }
    if (cd_size > ZIP_MAX_CDIR) {
        rc = eng_h5_fail(err, ENG_ERR_LIMIT, "zip central directory of %u bytes exceeds %u",
                         cd_size, ZIP_MAX_CDIR);
        goto out;
    }
    cdir = malloc(cd_size ? cd_size : 1);
    if (!cdir) {
        rc = eng_h5_fail(err, ENG_ERR_NOMEM, "out of memory reading zip directory");
        goto out;
    }
    if (eng_h5_pread_full(fd, cdir, cd_size, cd_off) != 0) {
        rc = eng_h5_fail(err, ENG_ERR_IO, "cannot read zip central directory");
        goto out;
    }

    size_t pos = 0;
    int found = 0;
    for (unsigned i = 0; i < nent; i++) {
        if (cd_size - pos < ZIP_CDIR_LEN || rd32(cdir + pos) != ZIP_CDIR_SIG) {
            rc = eng_h5_fail(err, ENG_ERR_FORMAT, "zip central directory entry %u is malformed", i);
            goto out;
        }
        const unsigned char *e = cdir + pos;
        size_t nl = rd16(e + 28), xl = rd16(e + 30), cl = rd16(e + 32);
        if (cd_size - pos - ZIP_CDIR_LEN < nl + xl + cl) {
            rc = eng_h5_fail(err, ENG_ERR_FORMAT,
                             "zip central directory entry %u overruns the directory", i);
            goto out;
        }
        if (nl == namelen && memcmp(e + ZIP_CDIR_LEN, name, nl) == 0) {
            uint16_t flags = rd16(e + 8), method = rd16(e + 10);
            uint32_t csize = rd32(e + 20), usize = rd32(e + 24), lho = rd32(e + 42);
            if (found) {
                rc = eng_h5_fail(err, ENG_ERR_FORMAT, "zip archive holds '%s' twice", name);
                goto out;
            }
            found = 1;
            if (flags & 1u) {
                rc = eng_h5_fail(err, ENG_ERR_FORMAT, "zip member '%s' is encrypted", name);
                goto out;
            }
            if (csize == 0xffffffffu || usize == 0xffffffffu || lho == 0xffffffffu) {
                rc = eng_h5_fail(err, ENG_ERR_FORMAT,
                                 "zip member '%s' uses zip64 sizes (not supported)", name);
                goto out;
            }
            /* The local header repeats the name and has its own extra field
             * length: the data starts after both. */
            unsigned char lh[ZIP_LOCAL_LEN];
            if ((uint64_t)lho + ZIP_LOCAL_LEN > cd_off ||
                eng_h5_pread_full(fd, lh, sizeof lh, lho) != 0 || rd32(lh) != ZIP_LOCAL_SIG) {
                rc = eng_h5_fail(err, ENG_ERR_FORMAT, "zip member '%s': bad local header at %u",
                                 name, lho);
                goto out;
            }
            uint64_t data = (uint64_t)lho + ZIP_LOCAL_LEN + rd16(lh + 26) + rd16(lh + 28);
            if (rd16(lh + 26) != nl || data > cd_off || cd_off - data < csize) {
                rc = eng_h5_fail(err, ENG_ERR_FORMAT,
                                 "zip member '%s': data [%llu,+%u) overlaps the central directory",
                                 name, (unsigned long long)data, csize);
                goto out;
            }
            if (method == 0 && csize != usize) {
                rc = eng_h5_fail(err, ENG_ERR_FORMAT,
                                 "zip member '%s' is STORED but sizes differ (%u, %u)", name, csize,
                                 usize);
                goto out;
            }
            m->data_offset = data;
            m->size = csize;
            m->method = method;
        }
        pos += ZIP_CDIR_LEN + nl + xl + cl;
    }
    if (!found) rc = eng_h5_fail(err, ENG_ERR_FORMAT, "zip archive has no member '%s'", name);
out:
    free(tail);
    free(cdir);
    return rc;
}

eng_code eng_zip_read(int fd, const eng_zip_member *m, size_t max, const char *name, char **out,
                      eng_error *err)
{
    if (m->method != 0)
        return eng_h5_fail(err, ENG_ERR_FORMAT,
                           "zip member '%s' is compressed (method %u); "
                           "Keras stores members uncompressed",
                           name, m->method);
    if (m->size > max)
        return eng_h5_fail(err, ENG_ERR_LIMIT, "zip member '%s' of %llu bytes exceeds %zu", name,
                           (unsigned long long)m->size, max);
    char *buf = malloc((size_t)m->size + 1);
    if (!buf) return eng_h5_fail(err, ENG_ERR_NOMEM, "out of memory reading '%s'", name);
    if (eng_h5_pread_full(fd, buf, (size_t)m->size, m->data_offset) != 0) {
        free(buf);
        return eng_h5_fail(err, ENG_ERR_IO, "cannot read zip member '%s'", name);
    }
    buf[m->size] = '\0';
    *out = buf;
    return ENG_OK;
}
