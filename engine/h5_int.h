/* engine/h5_int.h — private to the weight-file reader and writer (h5_read.c,
 * summary.c, zip.c, h5_util.c; transfer.c and write.c use the shared helpers).
 * Not part of the engine's API; nothing outside engine/ includes it.
 * Every symbol here is prefixed eng_h5_ / eng_zip_ so that it cannot collide
 * with the other engine files' own helpers. */
#ifndef STRATA_ENGINE_H5_INT_H
#define STRATA_ENGINE_H5_INT_H

#include <stdarg.h>
#include <stdint.h>
#include <stddef.h>
#include "engine.h"

/* Bounds private to the reader, each with its reason. */
#define ENG_H5_MAX_PATH \
    1024 /* HDF5 path of a dataset: model_weights/<layer>/<weight name>,
                                              * or layers/<nested path>/vars/<N>; 4 names deep */
#define ENG_H5_MAX_CONFIG \
    (16u << 20) /* model_config / config.json: the largest Keras CNN
                                              * configs are ~1 MiB */
#define ENG_H5_MAX_STRATTR \
    (64u << 20) /* bytes of one string attribute (layer_names of
                                              * 4096 layers x 256 bytes = 1 MiB; Keras itself
                                              * splits attributes beyond 64 KiB) */
#define ENG_H5_MAX_DEPTH \
    32                         /* nesting of Keras 3 groups (layers/a/layers/b/...);
                                              * also stops hard-link cycles */
#define ENG_H5_MAX_CHUNKS 1024 /* layer_names0..N pieces of a split attribute */
#define ENG_H5_MAX_DTSIZE 64   /* bytes per element of an "other" dtype */

/* ---- shared helpers (h5_util.c) ------------------------------------------ */

/* Record the first error (first error wins; err may be NULL). Returns code. */
eng_code eng_h5_fail(eng_error *err, eng_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Bytes per element of a known dtype, 0 for ENG_DT_OTHER. */
size_t eng_h5_dtype_size(eng_dtype dt);

/* Elements of a tensor (product of its shape); bounds checked by the reader. */
uint64_t eng_h5_elements(const eng_tensor *t);

/* "sha256:" and the 64 lowercase hex digits of a SHA-256 md, NUL-terminated:
 * THE engine's digest text (layer digests, derived-file ETags). */
void eng_h5_digest_text(const unsigned char md[32], char out[ENG_DIGEST_LEN]);

/* pread exactly n bytes at off (loops on short reads and EINTR). 0 on
 * success, -1 on error, 1 on end of file before n bytes. */
int eng_h5_pread_full(int fd, void *buf, size_t n, uint64_t off);

/* summary.c: check every invariant of a summary (the ones from_json
 * promises): counts, names, ranks, dims, element bounds, dtype sizes, offsets within the HDF5
 * image and the file. ENG_OK or ENG_ERR_FORMAT / ENG_ERR_LIMIT naming the
 * object. Used on what we read and on what a child sends back. */
eng_code eng_h5_summary_check(const eng_summary *s, eng_error *err);

/* ---- zip (zip.c) ---------------------------------------------------------- */

typedef struct eng_zip_member {
    uint64_t data_offset; /* absolute offset of the member's bytes */
    uint64_t size;        /* uncompressed == compressed size (STORED only) */
    unsigned method;      /* 0 = STORED */
} eng_zip_member;

/* 1 when the first bytes of fd are a zip local header ("PK\3\4"), 0 if not,
 * -1 on read error. */
int eng_zip_is_zip(int fd);

/* Find member `name` in the zip on fd (file_size bytes) by its central
 * directory. ENG_OK and *m filled (also for a non-STORED member: the caller
 * decides), ENG_ERR_FORMAT when absent or the archive is malformed. */
eng_code eng_zip_find(int fd, uint64_t file_size, const char *name, eng_zip_member *m,
                      eng_error *err);

/* Read a STORED member of at most max bytes into a NEW NUL-terminated
 * buffer (*out, caller free()s). */
eng_code eng_zip_read(int fd, const eng_zip_member *m, size_t max, const char *name, char **out,
                      eng_error *err);

#endif
