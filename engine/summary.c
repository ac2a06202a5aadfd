/* engine/summary.c — the plain weight-file summary (engine.h) without
 * libhdf5: its invariants, its lossless JSON form for the sandbox pipe, tensor
 * data read with pread and converted to float32, and the contract's "layers"
 * array with per-layer sha256 digests (hashed by a few threads at once, over
 * byte ranges the summary names; see "layer digests" for why that is safe).
 * Owns: eng_summary_free/to_json/from_json, eng_tensor_read_f32,
 * eng_summary_layers_json and the shared invariant check (the reader's
 * small helpers, eng_h5_fail and eng_h5_pread_full among them, are in h5_util.c).
 * Does not own: reading HDF5 structure (h5_read.c), validation against an
 * architecture (validate.c). Every summary that arrives as JSON comes from an
 * untrusted child: from_json re-checks every bound before anything uses it. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "h5_int.h"

#define IO_CHUNK (1u << 20) /* bytes per pread while converting: bounded memory */

/* Strict UTF-8 (no overlongs, surrogates or code points beyond U+10FFFF):
 * the summary's JSON form (jansson) cannot carry anything else, so a name
 * read from the file that is not UTF-8 must be refused here, not turn into
 * a NULL from eng_summary_to_json (found by tests/fuzz/fuzz_h5_summary). */
static int utf8_ok(const char *p)
{
    const unsigned char *s = (const unsigned char *)p;
    while (*s) {
        unsigned c = *s++, n = c < 0x80             ? 0
                               : (c & 0xe0) == 0xc0 ? 1
                               : (c & 0xf0) == 0xe0 ? 2
                               : (c & 0xf8) == 0xf0 ? 3
                                                    : 4;
        if (n == 4 || c == 0xc0 || c == 0xc1 || c > 0xf4) return 0;
        unsigned cp = n ? c & (0x3fu >> n) : c;
        for (unsigned i = 0; i < n; i++, s++) {
            if ((*s & 0xc0) != 0x80) return 0;
            cp = (cp << 6) | (*s & 0x3fu);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
    }
    return 1;
}

static int str_ok(const char *p, size_t max)
{
    return p && *p && strnlen(p, max + 1) <= max && utf8_ok(p);
}

eng_code eng_h5_summary_check(const eng_summary *s, eng_error *err)
{
    if ((unsigned)s->format > ENG_FMT_KERAS3_ARCHIVE)
        return eng_h5_fail(err, ENG_ERR_FORMAT, "summary: unknown format %d", (int)s->format);
    if (s->file_size > (uint64_t)INT64_MAX || s->hdf5_offset > s->file_size ||
        s->hdf5_size > s->file_size - s->hdf5_offset)
        return eng_h5_fail(err, ENG_ERR_FORMAT,
                           "summary: HDF5 image [%llu,+%llu) outside the file (%llu bytes)",
                           (unsigned long long)s->hdf5_offset, (unsigned long long)s->hdf5_size,
                           (unsigned long long)s->file_size);
    if ((s->keras_version && !str_ok(s->keras_version, ENG_MAX_NAME)) ||
        (s->backend && !str_ok(s->backend, ENG_MAX_NAME)))
        return eng_h5_fail(
            err, ENG_ERR_LIMIT,
            "summary: keras_version/backend empty, longer than %d bytes or not UTF-8",
            ENG_MAX_NAME);
    if (s->model_config && strnlen(s->model_config, ENG_H5_MAX_CONFIG + 1) > ENG_H5_MAX_CONFIG)
        return eng_h5_fail(err, ENG_ERR_LIMIT, "summary: model_config longer than %u bytes",
                           ENG_H5_MAX_CONFIG);
    if (s->model_config && !utf8_ok(s->model_config))
        return eng_h5_fail(err, ENG_ERR_FORMAT, "summary: model_config is not UTF-8 text");
    if (s->nlayers > ENG_MAX_LAYERS)
        return eng_h5_fail(err, ENG_ERR_LIMIT, "summary: %zu layers, more than %d", s->nlayers,
                           ENG_MAX_LAYERS);
    if (s->nlayers && !s->layers)
        return eng_h5_fail(err, ENG_ERR_INTERNAL, "summary: layers missing");
    size_t total = 0;
    for (size_t i = 0; i < s->nlayers; i++) {
        const eng_wlayer *l = &s->layers[i];
        if (!str_ok(l->name, ENG_MAX_NAME))
            return eng_h5_fail(err, ENG_ERR_LIMIT,
                               "summary: layer %zu: name empty, longer than %d bytes or not UTF-8",
                               i, ENG_MAX_NAME);
        if (l->attr_name &&
            (strnlen(l->attr_name, ENG_MAX_NAME + 1) > ENG_MAX_NAME || !utf8_ok(l->attr_name)))
            return eng_h5_fail(err, ENG_ERR_LIMIT,
                               "layer '%s': attr_name longer than %d bytes or not UTF-8", l->name,
                               ENG_MAX_NAME);
        if (l->ntensors > ENG_MAX_TENSORS - total)
            return eng_h5_fail(err, ENG_ERR_LIMIT, "summary: more than %d tensors",
                               ENG_MAX_TENSORS);
        total += l->ntensors;
        if (l->ntensors && !l->tensors)
            return eng_h5_fail(err, ENG_ERR_INTERNAL, "layer '%s': tensors missing", l->name);
        for (size_t k = 0; k < l->ntensors; k++) {
            const eng_tensor *t = &l->tensors[k];
            if (!str_ok(t->name, ENG_MAX_NAME))
                return eng_h5_fail(
                    err, ENG_ERR_LIMIT,
                    "layer '%s': tensor %zu: name empty, longer than %d bytes or not UTF-8",
                    l->name, k, ENG_MAX_NAME);
            if (!str_ok(t->path, ENG_H5_MAX_PATH))
                return eng_h5_fail(
                    err, ENG_ERR_LIMIT,
                    "layer '%s': tensor '%s': path empty, longer than %d bytes or not UTF-8",
                    l->name, t->name, ENG_H5_MAX_PATH);
            if (t->rank < 0 || t->rank > ENG_MAX_RANK)
                return eng_h5_fail(err, ENG_ERR_LIMIT,
                                   "layer '%s': tensor '%s': rank %d outside 0..%d", l->name,
                                   t->name, t->rank, ENG_MAX_RANK);
            uint64_t n = 1;
            for (int d = 0; d < t->rank; d++) {
                if (t->shape[d] < 0)
                    return eng_h5_fail(err, ENG_ERR_FORMAT,
                                       "layer '%s': tensor '%s': negative dimension", l->name,
                                       t->name);
                if ((uint64_t)t->shape[d] > ENG_MAX_ELEMENTS ||
                    (t->shape[d] && n > ENG_MAX_ELEMENTS / (uint64_t)t->shape[d]))
                    return eng_h5_fail(err, ENG_ERR_LIMIT,
                                       "layer '%s': tensor '%s': more than %llu elements", l->name,
                                       t->name, (unsigned long long)ENG_MAX_ELEMENTS);
                n *= (uint64_t)t->shape[d];
            }
            if ((unsigned)t->dtype > ENG_DT_OTHER)
                return eng_h5_fail(err, ENG_ERR_FORMAT, "layer '%s': tensor '%s': unknown dtype",
                                   l->name, t->name);
            size_t dsz = eng_h5_dtype_size(t->dtype);
            int size_ok = dsz ? t->nbytes == n * dsz
                              : (n == 0 ? t->nbytes == 0
                                        : t->nbytes % n == 0 && t->nbytes / n >= 1 &&
                                              t->nbytes / n <= ENG_H5_MAX_DTSIZE);
            if (!size_ok)
                return eng_h5_fail(
                    err, ENG_ERR_FORMAT,
                    "layer '%s': tensor '%s': %llu bytes do not match %llu elements of %s", l->name,
                    t->name, (unsigned long long)t->nbytes, (unsigned long long)n,
                    eng_dtype_name(t->dtype));
            if (t->offset != ENG_NO_OFFSET &&
                (t->offset < s->hdf5_offset || t->offset - s->hdf5_offset > s->hdf5_size ||
                 t->nbytes > s->hdf5_size - (t->offset - s->hdf5_offset)))
                return eng_h5_fail(
                    err, ENG_ERR_FORMAT,
                    "layer '%s': tensor '%s': data [%llu,+%llu) outside the HDF5 image "
                    "[%llu,+%llu)",
                    l->name, t->name, (unsigned long long)t->offset, (unsigned long long)t->nbytes,
                    (unsigned long long)s->hdf5_offset, (unsigned long long)s->hdf5_size);
        }
    }
    return ENG_OK;
}

void eng_summary_free(eng_summary *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->nlayers && s->layers; i++) {
        eng_wlayer *l = &s->layers[i];
        for (size_t k = 0; k < l->ntensors && l->tensors; k++) {
            free(l->tensors[k].name);
            free(l->tensors[k].path);
        }
        free(l->tensors);
        free(l->name);
        free(l->attr_name);
    }
    free(s->layers);
    free(s->keras_version);
    free(s->backend);
    free(s->model_config);
    free(s);
}

/* ---- JSON ------------------------------------------------------------------ */

static json_t *str_or_null(const char *p)
{
    return p ? json_string(p) : json_null();
}

/* json_object_set_new that remembers a failure (NULL value or OOM). */
static void put(json_t *o, const char *k, json_t *v, int *bad)
{
    if (!v || json_object_set_new(o, k, v) != 0) *bad = 1;
}

static json_t *shape_json(const eng_tensor *t)
{
    json_t *a = json_array();
    for (int d = 0; a && d < t->rank; d++)
        if (json_array_append_new(a, json_integer((json_int_t)t->shape[d])) != 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

json_t *eng_summary_to_json(const eng_summary *s)
{
    int bad = 0;
    json_t *o = json_object(), *layers = json_array();
    if (!o || !layers) goto fail;
    put(o, "format", json_string(eng_format_name(s->format)), &bad);
    put(o, "keras_version", str_or_null(s->keras_version), &bad);
    put(o, "backend", str_or_null(s->backend), &bad);
    put(o, "model_config", str_or_null(s->model_config), &bad);
    put(o, "file_size", json_integer((json_int_t)s->file_size), &bad);
    put(o, "hdf5_offset", json_integer((json_int_t)s->hdf5_offset), &bad);
    put(o, "hdf5_size", json_integer((json_int_t)s->hdf5_size), &bad);
    for (size_t i = 0; i < s->nlayers && !bad; i++) {
        const eng_wlayer *l = &s->layers[i];
        json_t *lj = json_object(), *ts = json_array();
        if (!lj || !ts) {
            json_decref(lj);
            json_decref(ts);
            goto fail;
        }
        if (json_array_append_new(layers, lj) != 0) {
            json_decref(ts);
            goto fail;
        }
        put(lj, "name", json_string(l->name), &bad);
        put(lj, "attr_name", str_or_null(l->attr_name), &bad);
        put(lj, "tensors", ts, &bad);
        for (size_t k = 0; k < l->ntensors && !bad; k++) {
            const eng_tensor *t = &l->tensors[k];
            json_t *tj = json_object();
            if (!tj || json_array_append_new(ts, tj) != 0) goto fail;
            put(tj, "name", json_string(t->name), &bad);
            put(tj, "path", json_string(t->path), &bad);
            put(tj, "shape", shape_json(t), &bad);
            put(tj, "dtype", json_string(eng_dtype_name(t->dtype)), &bad);
            put(tj, "offset",
                t->offset == ENG_NO_OFFSET ? json_null() : json_integer((json_int_t)t->offset),
                &bad);
            put(tj, "nbytes", json_integer((json_int_t)t->nbytes), &bad);
        }
    }
    put(o, "layers", layers, &bad);
    layers = NULL;
    if (bad) goto fail;
    return o;
fail:
    json_decref(layers);
    json_decref(o);
    return NULL;
}

/* Strict getters: the value must have the right JSON type. */
static int get_str(const json_t *o, const char *k, int nullable, size_t max, char **out)
{
    const json_t *v = json_object_get(o, k);
    *out = NULL;
    if (!v) return 0;
    if (json_is_null(v)) return nullable;
    if (!json_is_string(v)) return 0;
    size_t len = json_string_length(v);
    const char *p = json_string_value(v);
    if (len > max || strlen(p) != len) return 0; /* no embedded NUL */
    return (*out = strdup(p)) != NULL;
}

static int get_u64(const json_t *o, const char *k, uint64_t *out)
{
    const json_t *v = json_object_get(o, k);
    if (!json_is_integer(v) || json_integer_value(v) < 0) return 0;
    *out = (uint64_t)json_integer_value(v);
    return 1;
}

static int dtype_from_name(const char *n, eng_dtype *dt)
{
    for (int d = ENG_DT_F32; d <= ENG_DT_OTHER; d++)
        if (strcmp(n, eng_dtype_name((eng_dtype)d)) == 0) {
            *dt = (eng_dtype)d;
            return 1;
        }
    return 0;
}

eng_code eng_summary_from_json(const json_t *j, eng_summary **out, eng_error *err)
{
    eng_code rc = ENG_OK;
    eng_summary *s = calloc(1, sizeof *s);
    char *fmt = NULL, *dt = NULL;
    if (!s) return eng_h5_fail(err, ENG_ERR_NOMEM, "out of memory");
    if (!json_is_object(j)) {
        rc = eng_h5_fail(err, ENG_ERR_FORMAT, "summary: not a JSON object");
        goto out;
    }
    if (!get_str(j, "format", 0, 32, &fmt)) {
        rc = eng_h5_fail(err, ENG_ERR_FORMAT, "summary: bad 'format'");
        goto out;
    }
    int f;
    for (f = ENG_FMT_KERAS2_WEIGHTS; f <= ENG_FMT_KERAS3_ARCHIVE; f++)
        if (strcmp(fmt, eng_format_name((eng_format)f)) == 0) break;
    if (f > ENG_FMT_KERAS3_ARCHIVE) {
        rc = eng_h5_fail(err, ENG_ERR_FORMAT, "summary: unknown format '%.32s'", fmt);
        goto out;
    }
    s->format = (eng_format)f;
    if (!get_str(j, "keras_version", 1, ENG_MAX_NAME, &s->keras_version) ||
        !get_str(j, "backend", 1, ENG_MAX_NAME, &s->backend) ||
        !get_str(j, "model_config", 1, ENG_H5_MAX_CONFIG, &s->model_config)) {
        rc = eng_h5_fail(err, ENG_ERR_FORMAT, "summary: bad keras_version/backend/model_config");
        goto out;
    }
    if (!get_u64(j, "file_size", &s->file_size) || !get_u64(j, "hdf5_offset", &s->hdf5_offset) ||
        !get_u64(j, "hdf5_size", &s->hdf5_size)) {
        rc = eng_h5_fail(err, ENG_ERR_FORMAT, "summary: bad file_size/hdf5_offset/hdf5_size");
        goto out;
    }
    const json_t *layers = json_object_get(j, "layers");
    if (!json_is_array(layers)) {
        rc = eng_h5_fail(err, ENG_ERR_FORMAT, "summary: 'layers' is not an array");
        goto out;
    }
    size_t nl = json_array_size(layers), total = 0;
    if (nl > ENG_MAX_LAYERS) {
        rc = eng_h5_fail(err, ENG_ERR_LIMIT, "summary: %zu layers, more than %d", nl,
                         ENG_MAX_LAYERS);
        goto out;
    }
    if (nl && !(s->layers = calloc(nl, sizeof *s->layers))) {
        rc = eng_h5_fail(err, ENG_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < nl; i++) {
        const json_t *lj = json_array_get(layers, i);
        eng_wlayer *l = &s->layers[i];
        s->nlayers = i + 1;
        const json_t *ts = json_object_get(lj, "tensors");
        if (!json_is_object(lj) || !get_str(lj, "name", 0, ENG_MAX_NAME, &l->name) ||
            !get_str(lj, "attr_name", 1, ENG_MAX_NAME, &l->attr_name) || !json_is_array(ts)) {
            rc = eng_h5_fail(err, ENG_ERR_FORMAT, "summary: layer %zu is malformed", i);
            goto out;
        }
        size_t nt = json_array_size(ts);
        if (nt > ENG_MAX_TENSORS - total) {
            rc = eng_h5_fail(err, ENG_ERR_LIMIT, "summary: more than %d tensors", ENG_MAX_TENSORS);
            goto out;
        }
        total += nt;
        if (nt && !(l->tensors = calloc(nt, sizeof *l->tensors))) {
            rc = eng_h5_fail(err, ENG_ERR_NOMEM, "out of memory");
            goto out;
        }
        for (size_t k = 0; k < nt; k++) {
            const json_t *tj = json_array_get(ts, k), *sh = json_object_get(tj, "shape"),
                         *off = json_object_get(tj, "offset");
            eng_tensor *t = &l->tensors[k];
            l->ntensors = k + 1;
            free(dt);
            dt = NULL;
            if (!json_is_object(tj) || !get_str(tj, "name", 0, ENG_MAX_NAME, &t->name) ||
                !get_str(tj, "path", 0, ENG_H5_MAX_PATH, &t->path) ||
                !get_str(tj, "dtype", 0, 16, &dt) || !dtype_from_name(dt, &t->dtype) ||
                !get_u64(tj, "nbytes", &t->nbytes) || !json_is_array(sh) ||
                !(json_is_null(off) || get_u64(tj, "offset", &t->offset))) {
                rc = eng_h5_fail(err, ENG_ERR_FORMAT,
                                 "summary: layer '%s': tensor %zu is malformed", l->name, k);
                goto out;
            }
            if (json_is_null(off)) t->offset = ENG_NO_OFFSET;
            if (json_array_size(sh) > ENG_MAX_RANK) {
                rc = eng_h5_fail(err, ENG_ERR_LIMIT,
                                 "summary: layer '%s': tensor '%s': rank %zu, more than %d",
                                 l->name, t->name, json_array_size(sh), ENG_MAX_RANK);
                goto out;
            }
            t->rank = (int)json_array_size(sh);
            for (int d = 0; d < t->rank; d++) {
                const json_t *dv = json_array_get(sh, (size_t)d);
                if (!json_is_integer(dv) || json_integer_value(dv) < 0) {
                    rc = eng_h5_fail(err, ENG_ERR_FORMAT,
                                     "summary: layer '%s': tensor '%s': bad dimension %d", l->name,
                                     t->name, d);
                    goto out;
                }
                t->shape[d] = (int64_t)json_integer_value(dv);
            }
        }
    }
    rc = eng_h5_summary_check(s, err);
out:
    free(fmt);
    free(dt);
    if (rc) eng_summary_free(s);
    else *out = s;
    return rc;
}

/* ---- tensor data ------------------------------------------------------------ */

static float half_to_float(uint16_t h)
{
    unsigned sign = h >> 15, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    float v;
    if (e == 0) v = ldexpf((float)m, -24); /* zero / subnormal */
    else if (e == 31) v = m ? NAN : INFINITY;
    else v = ldexpf((float)(m | 0x400), (int)e - 25);
    return sign ? -v : v;
}

static uint64_t le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* Convert n little-endian elements of dtype dt at src into dst. src may
 * alias dst for float32 (same width, element by element). */
static void convert(eng_dtype dt, const unsigned char *src, float *dst, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        switch (dt) {
        case ENG_DT_F32: {
            const unsigned char *p = src + 4 * i;
            uint32_t u = (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
                         ((uint32_t)p[3] << 24);
            float f;
            memcpy(&f, &u, 4);
            dst[i] = f;
            break;
        }
        case ENG_DT_F64: {
            uint64_t u = le64(src + 8 * i);
            double d;
            memcpy(&d, &u, 8);
            dst[i] = (float)d;
            break;
        }
        case ENG_DT_F16: {
            const unsigned char *p = src + 2 * i;
            dst[i] = half_to_float((uint16_t)(p[0] | (p[1] << 8)));
            break;
        }
        case ENG_DT_I64: dst[i] = (float)(int64_t)le64(src + 8 * i); break;
        case ENG_DT_I32: {
            const unsigned char *p = src + 4 * i;
            uint32_t u = (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
                         ((uint32_t)p[3] << 24);
            dst[i] = (float)(int32_t)u;
            break;
        }
        default: dst[i] = NAN;
        }
    }
}

eng_code eng_tensor_read_f32(int fd, const eng_tensor *t, float *dst, size_t count, eng_error *err)
{
    eng_code rc = ENG_OK;
    unsigned char *buf = NULL;
    const char *tn = t->name ? t->name : "?";
    if (t->rank < 0 || t->rank > ENG_MAX_RANK)
        return eng_h5_fail(err, ENG_ERR_FORMAT, "tensor '%s': rank %d", tn, t->rank);
    uint64_t n = eng_h5_elements(t);
    size_t dsz = eng_h5_dtype_size(t->dtype);
    if (n != (uint64_t)count)
        return eng_h5_fail(err, ENG_ERR_INTERNAL,
                           "tensor '%s': %zu elements requested, it has %llu", tn, count,
                           (unsigned long long)n);
    if (n == 0) return ENG_OK;
    if (dsz == 0)
        return eng_h5_fail(err, ENG_ERR_WEIGHTS,
                           "tensor '%s': dtype %s cannot be converted to float32", tn,
                           eng_dtype_name(t->dtype));
    if (t->offset == ENG_NO_OFFSET)
        return eng_h5_fail(err, ENG_ERR_FORMAT, "tensor '%s' has no contiguous data in the file",
                           tn);
    if (t->nbytes != n * dsz)
        return eng_h5_fail(err, ENG_ERR_FORMAT, "tensor '%s': %llu bytes for %llu elements of %s",
                           tn, (unsigned long long)t->nbytes, (unsigned long long)n,
                           eng_dtype_name(t->dtype));
    if (t->dtype != ENG_DT_F32 && !(buf = malloc(IO_CHUNK)))
        return eng_h5_fail(err, ENG_ERR_NOMEM, "out of memory");
    size_t per = IO_CHUNK / dsz; /* elements per chunk */
    for (size_t done = 0; done < count;) {
        size_t k = count - done < per ? count - done : per;
        unsigned char *into = buf ? buf : (unsigned char *)(dst + done);
        int r = eng_h5_pread_full(fd, into, k * dsz, t->offset + (uint64_t)done * dsz);
        if (r != 0) {
            rc = eng_h5_fail(err, ENG_ERR_IO, "tensor '%s': %s", tn,
                             r > 0 ? "file ends before the tensor's data" : "read error");
            goto out;
        }
        convert(t->dtype, into, dst + done, k);
        done += k;
    }
out:
    free(buf);
    return rc;
}

/* ---- the contract's layers array ------------------------------------------- */

/* Weight names in the contract are short:
 *  - a trailing ":<digits>" (TensorFlow's variable suffix) is dropped;
 *  - then everything up to and including the LAST path component equal to
 *    the layer name goes ("conv2d_1/kernel:0" -> "kernel",
 *    "sequential/conv2d/kernel" in layer conv2d -> "kernel",
 *    "bidirectional/forward_lstm/kernel:0" -> "forward_lstm/kernel");
 *  - when the layer name is not a component, only the last component stays
 *    ("model/dense/kernel:0" in layer "d" -> "kernel");
 *  - names without "/" stay ("dense_1_W" -> "dense_1_W", Keras 1), and so do
 *    Keras 3 var indices ("0", "1").
 * Returns a NEW string or NULL (out of memory). */
static char *short_name(const char *name, const char *layer)
{
    size_t len = strlen(name);
    const char *colon = strrchr(name, ':');
    if (colon && colon[1]) {
        const char *c = colon + 1;
        while (*c >= '0' && *c <= '9') c++;
        if (!*c && colon > name) len = (size_t)(colon - name);
    }
    size_t ll = strlen(layer);
    const char *start = NULL;
    for (size_t i = 0; ll && i + ll < len; i++)
        if ((i == 0 || name[i - 1] == '/') && name[i + ll] == '/' &&
            memcmp(name + i, layer, ll) == 0)
            start = name + i + ll + 1;
    if (!start) {
        start = name;
        for (size_t i = 0; i < len; i++)
            if (name[i] == '/' && i + 1 < len) start = name + i + 1;
    }
    return strndup(start, len - (size_t)(start - name));
}

/* ---- layer digests --------------------------------------------------------- */

/* Trust: the offsets and sizes hashed here come from a summary that an
 * untrusted child produced (sandbox.c); eng_summary_from_json has checked
 * that every [offset, offset + nbytes) lies inside the uploaded file. A
 * hostile file that makes the child lie can therefore only choose WHICH
 * bytes of its own upload get hashed under which layer name: the digest is
 * still computed here, by the parent, over bytes the parent stores, so the
 * worst outcome is a wrong layer listing (and a wrong diff or compatibility
 * answer) for that same uploader's own version. It cannot read outside the
 * file, make two different stored files share a blob, or affect another
 * model's data; nothing trusts a layer digest for integrity (the blob's own
 * digest, computed while streaming, is what names and checks the bytes). */

#define DIGEST_CHUNK \
    (256u << 10)         /* per-thread pread buffer: stays in L2, pays little first-touch */
#define DIGEST_THREADS 4 /* layers are hashed in parallel; more threads than cores gains nothing */
#define DIGEST_MIN_PAR (8u << 20) /* below this many bytes a thread costs more than it saves */

struct digest_job {
    int fd;
    const eng_summary *s;
    char (*hex)[ENG_DIGEST_LEN]; /* per layer, "" when it has no tensors or is not wanted */
    const unsigned char *want;   /* NULL: every layer */
    atomic_size_t next;          /* next layer to take */
};

struct digest_worker {
    struct digest_job *job;
    eng_error err;    /* this worker's first error ... */
    size_t err_layer; /* ... and the layer it happened in (SIZE_MAX: none) */
};

/* sha256 over one layer's tensor bytes in order, into hex ("sha256:<64>"). */
static eng_code layer_digest(int fd, const eng_wlayer *l, EVP_MD_CTX *md, unsigned char *buf,
                             char *hex, eng_error *err)
{
    unsigned char dg[EVP_MAX_MD_SIZE];
    unsigned dl = 0;
    if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
        return eng_h5_fail(err, ENG_ERR_INTERNAL, "sha256 unavailable");
    for (size_t k = 0; k < l->ntensors; k++) {
        const eng_tensor *t = &l->tensors[k];
        if (t->nbytes && t->offset == ENG_NO_OFFSET)
            return eng_h5_fail(err, ENG_ERR_FORMAT,
                               "layer '%s': tensor '%s' has no contiguous data", l->name, t->name);
        for (uint64_t done = 0; done < t->nbytes;) {
            size_t n = t->nbytes - done < DIGEST_CHUNK ? (size_t)(t->nbytes - done) : DIGEST_CHUNK;
            int r = eng_h5_pread_full(fd, buf, n, t->offset + done);
            if (r != 0)
                return eng_h5_fail(err, ENG_ERR_IO, "layer '%s': tensor '%s': %s", l->name, t->name,
                                   r > 0 ? "file ends before the tensor's data" : "read error");
            if (EVP_DigestUpdate(md, buf, n) != 1)
                return eng_h5_fail(err, ENG_ERR_INTERNAL, "sha256 failed");
            done += n;
        }
    }
    if (EVP_DigestFinal_ex(md, dg, &dl) != 1 || dl != 32)
        return eng_h5_fail(err, ENG_ERR_INTERNAL, "sha256 failed");
    eng_h5_digest_text(dg, hex);
    return ENG_OK;
}

/* Take layers from the shared counter until none is left or one fails. */
static void *digest_worker_run(void *arg)
{
    struct digest_worker *w = arg;
    struct digest_job *job = w->job;
    unsigned char *buf = malloc(DIGEST_CHUNK);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!buf || !md) {
        eng_h5_fail(&w->err, ENG_ERR_NOMEM, "out of memory");
        w->err_layer = 0;
        goto out;
    }
    for (;;) {
        size_t i = atomic_fetch_add(&job->next, 1);
        if (i >= job->s->nlayers) break;
        const eng_wlayer *l = &job->s->layers[i];
        if (!l->ntensors || (job->want && !job->want[i])) continue;
        if (layer_digest(job->fd, l, md, buf, job->hex[i], &w->err)) {
            w->err_layer = i;
            atomic_store(&job->next, job->s->nlayers); /* the others stop early */
            break;
        }
    }
out:
    free(buf);
    EVP_MD_CTX_free(md);
    return NULL;
}

/* Hashed by up to DIGEST_THREADS threads (the calling one included) when
 * the layers are big enough to be worth it. The error of the lowest failing
 * layer wins, so the answer does not depend on scheduling. */
eng_code eng_summary_layer_digests(int fd, const eng_summary *s, const unsigned char *want,
                                   char (*hex)[ENG_DIGEST_LEN], eng_error *err)
{
    struct digest_job job = {.fd = fd, .s = s, .hex = hex, .want = want};
    struct digest_worker w[DIGEST_THREADS];
    pthread_t tid[DIGEST_THREADS];
    int started[DIGEST_THREADS] = {0};
    uint64_t total = 0;
    size_t withdata = 0, nthreads = 1;

    atomic_init(&job.next, 0);
    for (size_t i = 0; i < s->nlayers; i++) {
        hex[i][0] = 0;
        if (want && !want[i]) continue;
        for (size_t k = 0; k < s->layers[i].ntensors; k++) total += s->layers[i].tensors[k].nbytes;
        withdata += s->layers[i].ntensors > 0;
    }
    if (total >= DIGEST_MIN_PAR && withdata > 1) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        nthreads = cpus > 1 ? (size_t)cpus : 1;
        if (nthreads > DIGEST_THREADS) nthreads = DIGEST_THREADS;
        if (nthreads > withdata) nthreads = withdata;
    }
    for (size_t t = 0; t < nthreads; t++) {
        memset(&w[t], 0, sizeof w[t]);
        w[t].job = &job;
        w[t].err_layer = SIZE_MAX;
    }
    /* Threads 1..n-1 are helpers; when one cannot start, the others (and
     * this thread) simply take its share. */
    for (size_t t = 1; t < nthreads; t++)
        started[t] = pthread_create(&tid[t], NULL, digest_worker_run, &w[t]) == 0;
    digest_worker_run(&w[0]);
    for (size_t t = 1; t < nthreads; t++)
        if (started[t]) pthread_join(tid[t], NULL);
    size_t worst = SIZE_MAX, at = 0;
    for (size_t t = 0; t < nthreads; t++)
        if (w[t].err.code && w[t].err_layer < worst) {
            worst = w[t].err_layer;
            at = t;
        }
    if (worst == SIZE_MAX) return ENG_OK;
    return eng_h5_fail(err, w[at].err.code, "%s", w[at].err.msg);
}

eng_code eng_summary_layers_json(int fd, const eng_summary *s, json_t **out, eng_error *err)
{
    eng_code rc = ENG_OK;
    json_t *arr = json_array();
    char *sn = NULL;
    char(*hex)[ENG_DIGEST_LEN] = NULL;

    if (!arr || (s->nlayers && !(hex = malloc(s->nlayers * sizeof *hex)))) {
        rc = eng_h5_fail(err, ENG_ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((rc = eng_summary_layer_digests(fd, s, NULL, hex, err))) goto out;
    for (size_t i = 0; i < s->nlayers; i++) {
        const eng_wlayer *l = &s->layers[i];
        json_t *lj = json_object(), *ws = json_array();
        int bad = 0;
        if (!lj || !ws || json_array_append_new(arr, json_incref(lj)) != 0) {
            json_decref(lj);
            json_decref(ws);
            rc = eng_h5_fail(err, ENG_ERR_NOMEM, "out of memory");
            goto out;
        }
        json_decref(lj); /* arr holds it now */
        put(lj, "name", json_string(l->name), &bad);
        put(lj, "weights", ws, &bad);
        uint64_t params = 0;
        for (size_t k = 0; k < l->ntensors && !bad; k++) {
            const eng_tensor *t = &l->tensors[k];
            params += eng_h5_elements(t);
            json_t *wj = json_object();
            if (!wj || json_array_append_new(ws, wj) != 0 || !(sn = short_name(t->name, l->name))) {
                rc = eng_h5_fail(err, ENG_ERR_NOMEM, "out of memory");
                goto out;
            }
            put(wj, "name", json_string(sn), &bad);
            put(wj, "shape", shape_json(t), &bad);
            put(wj, "dtype", json_string(eng_dtype_name(t->dtype)), &bad);
            free(sn);
            sn = NULL;
        }
        put(lj, "digest", l->ntensors ? json_string(hex[i]) : json_null(), &bad);
        put(lj, "params", json_integer((json_int_t)params), &bad);
        if (bad) {
            rc = eng_h5_fail(err, ENG_ERR_NOMEM, "out of memory");
            goto out;
        }
    }
out:
    free(sn);
    free(hex);
    if (rc) json_decref(arr);
    else *out = arr;
    return rc;
}
