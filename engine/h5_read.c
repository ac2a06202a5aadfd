/* engine/h5_read.c — reads the structure of a Keras weight file with libhdf5
 * into an eng_summary (engine.h). Owns: format detection (legacy save_weights,
 * legacy model.save, Keras 3 .weights.h5, Keras 3 .keras zip), the string
 * attribute encodings Keras has used (fixed NULLPAD, vlen ASCII, vlen UTF-8;
 * split attributes name0, name1, ...), and the refusal of every HDF5
 * construct that could make a tensor's bytes come from anywhere but one
 * contiguous range of this file: soft/external links, external storage,
 * virtual datasets, filters, chunking, compact storage.
 * Does not own: tensor data (summary.c reads it with pread, no libhdf5), the
 * zip format (zip.c), the summary's JSON form (summary.c).
 *
 * Layouts (see shared/fixtures/keras/SOURCES.md):
 *  - legacy: <container>@layer_names lists the layers in model order; each
 *    <container>/<layer>@weight_names lists dataset paths relative to the
 *    layer group ("conv2d_1/kernel:0" is the dataset conv2d_1/conv2d_1/kernel:0).
 *    container = "/" (save_weights) or "/model_weights" (model.save).
 *  - Keras 3: layers/<name>/vars/<N>; a group that has a vars subgroup is a
 *    layer, named by its path below layers/ ("dense_1",
 *    "sequential/layers/random_flip", "mha/query_dense"); every other
 *    subgroup is walked too (nested models, sub-layers). Groups are visited in
 *    HDF5 name order, vars in numeric order. optimizer* groups are ignored.
 *    The root vars group (the model's own variables; empty in every file
 *    seen) becomes a layer named "/" only when it holds variables; other
 *    top-level groups (a subclassed model's attributes) are walked like
 *    layers/ but named by their full path and kept only when they hold
 *    variables.
 *
 * libhdf5 never prints: error stacks are switched off before every call.
 * Every hid_t is closed on every path (goto out). The reader is meant to run
 * in a sandboxed child (libhdf5 1.10 has known crashes on crafted files), but
 * refuses what it can by itself. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>

#include "h5_int.h"

#define MAX_VISITS \
    65536 /* groups visited in a Keras 3 walk: hard links may form a DAG;
                            * 16x ENG_MAX_LAYERS leaves room for container groups */

typedef struct rd {
    hid_t file;
    uint64_t base;       /* hdf5_offset */
    uint64_t image_size; /* bytes of the HDF5 image: tensor data must lie inside */
    eng_summary *s;
    size_t cap_layers;
    size_t ntensors; /* over all layers, bounded by ENG_MAX_TENSORS */
    size_t visits;
    eng_error *err;
} rd;

static void close_id(hid_t *id, herr_t (*fn)(hid_t))
{
    if (*id >= 0) fn(*id);
    *id = H5I_INVALID_HID;
}

static void free_strings(char **v, size_t n)
{
    if (!v) return;
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

static char *join3(const char *a, const char *sep, const char *b)
{
    size_t la = strlen(a), ls = strlen(sep), lb = strlen(b);
    char *p = malloc(la + ls + lb + 1);
    if (!p) return NULL;
    memcpy(p, a, la);
    memcpy(p + la, sep, ls);
    memcpy(p + la + ls, b, lb + 1);
    return p;
}

/* ---- links ---------------------------------------------------------------- */

/* Names taken from the file are used as HDF5 paths relative to a group; an
 * empty component ("a//b", a leading "/") or "." would reach outside it. */
static int relpath_ok(const char *p)
{
    if (!*p) return 0;
    for (const char *c = p;;) {
        const char *e = strchr(c, '/');
        size_t n = e ? (size_t)(e - c) : strlen(c);
        if (n == 0 || (n == 1 && c[0] == '.')) return 0;
        if (!e) return 1;
        c = e + 1;
    }
}

static const char *link_type_name(H5L_type_t t)
{
    switch (t) {
    case H5L_TYPE_SOFT: return "a soft";
    case H5L_TYPE_EXTERNAL: return "an external";
    default: return "a user-defined";
    }
}

/* Every component of rel (below loc, whose HDF5 path is where) must exist as
 * a HARD link: soft links may point anywhere, external links to other files.
 * *missing = 1 and ENG_OK when a component does not exist. */
static eng_code links_check(rd *r, hid_t loc, const char *where, const char *rel, int *missing)
{
    char buf[ENG_H5_MAX_PATH + 1];
    size_t len = strlen(rel);
    *missing = 0;
    if (len > ENG_H5_MAX_PATH)
        return eng_h5_fail(r->err, ENG_ERR_LIMIT, "path '%s/%.64s...' longer than %d bytes", where,
                           rel, ENG_H5_MAX_PATH);
    if (!relpath_ok(rel))
        return eng_h5_fail(r->err, ENG_ERR_FORMAT,
                           "bad object name '%s' in '%s' "
                           "(empty or '.' path component)",
                           rel, where);
    memcpy(buf, rel, len + 1);
    for (size_t i = 0; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0') continue;
        char save = buf[i];
        buf[i] = '\0';
        htri_t ex = H5Lexists(loc, buf, H5P_DEFAULT);
        if (ex <= 0) {
            *missing = 1;
            return ENG_OK;
        }
        H5L_info_t li;
        if (H5Lget_info(loc, buf, &li, H5P_DEFAULT) < 0)
            return eng_h5_fail(r->err, ENG_ERR_FORMAT, "cannot read link '%s/%s'", where, buf);
        if (li.type != H5L_TYPE_HARD)
            return eng_h5_fail(r->err, ENG_ERR_FORMAT,
                               "'%s/%s' is %s link; strata refuses links "
                               "that may leave the file",
                               where, buf, link_type_name(li.type));
        buf[i] = save;
    }
    return ENG_OK;
}

/* Open rel below loc as an object of the wanted kind (H5I_GROUP or
 * H5I_DATASET) after links_check. *id < 0 and *missing = 1 when absent. */
static eng_code open_checked(rd *r, hid_t loc, const char *where, const char *rel, H5I_type_t want,
                             hid_t *id, int *missing)
{
    *id = H5I_INVALID_HID;
    eng_code rc = links_check(r, loc, where, rel, missing);
    if (rc || *missing) return rc;
    hid_t o = H5Oopen(loc, rel, H5P_DEFAULT);
    if (o < 0) return eng_h5_fail(r->err, ENG_ERR_FORMAT, "cannot open object '%s/%s'", where, rel);
    if (H5Iget_type(o) != want) {
        H5Oclose(o);
        return eng_h5_fail(r->err, ENG_ERR_FORMAT, "'%s/%s' is not a %s", where, rel,
                           want == H5I_GROUP ? "group" : "dataset");
    }
    *id = o;
    return ENG_OK;
}

/* ---- string attributes ---------------------------------------------------- */

/* Read attribute `name` of obj as an array of strings, each at most maxlen
 * bytes, at most maxn of them. An empty non-string attribute (Keras writes
 * an empty weight_names as float64 shape (0,)) reads as zero strings. */
static eng_code attr_strings(rd *r, hid_t obj, const char *where, const char *name, size_t maxn,
                             size_t maxlen, char ***out, size_t *nout)
{
    eng_code rc = ENG_OK;
    hid_t a = H5I_INVALID_HID, sp = H5I_INVALID_HID, ft = H5I_INVALID_HID, mt = H5I_INVALID_HID;
    char **v = NULL, *fixed = NULL, **ptrs = NULL;
    size_t n = 0;
    int reclaim = 0;

    a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) {
        rc = eng_h5_fail(r->err, ENG_ERR_FORMAT, "cannot open attribute '%s' of '%s'", name, where);
        goto out;
    }
    sp = H5Aget_space(a);
    ft = H5Aget_type(a);
    if (sp < 0 || ft < 0) {
        rc = eng_h5_fail(r->err, ENG_ERR_FORMAT, "cannot read attribute '%s' of '%s'", name, where);
        goto out;
    }
    H5S_class_t sc = H5Sget_simple_extent_type(sp);
    hssize_t np = sc == H5S_NULL ? 0 : H5Sget_simple_extent_npoints(sp);
    if (sc == H5S_NO_CLASS || np < 0) {
        rc = eng_h5_fail(r->err, ENG_ERR_FORMAT, "attribute '%s' of '%s' has a bad dataspace", name,
                         where);
        goto out;
    }
    if ((uint64_t)np > maxn) {
        rc = eng_h5_fail(r->err, ENG_ERR_LIMIT,
                         "attribute '%s' of '%s' has %lld entries, more than %zu", name, where,
                         (long long)np, maxn);
        goto out;
    }
    n = (size_t)np;
    H5T_class_t tc = H5Tget_class(ft);
    if (tc != H5T_STRING) {
        if (n == 0) goto done;
        rc = eng_h5_fail(r->err, ENG_ERR_FORMAT, "attribute '%s' of '%s' is not a string array",
                         name, where);
        goto out;
    }
    if (n == 0) goto done;
    v = calloc(n, sizeof *v);
    if (!v) {
        rc = eng_h5_fail(r->err, ENG_ERR_NOMEM, "out of memory");
        goto out;
    }
    htri_t isv = H5Tis_variable_str(ft);
    if (isv < 0) {
        rc = eng_h5_fail(r->err, ENG_ERR_FORMAT, "attribute '%s' of '%s': bad string type", name,
                         where);
        goto out;
    }
    if (isv) {
        mt = H5Tcopy(H5T_C_S1);
        H5T_cset_t cs = H5Tget_cset(ft);
        if (mt < 0 || H5Tset_size(mt, H5T_VARIABLE) < 0 ||
            H5Tset_cset(mt, cs == H5T_CSET_UTF8 ? H5T_CSET_UTF8 : H5T_CSET_ASCII) < 0) {
            rc = eng_h5_fail(r->err, ENG_ERR_INTERNAL, "cannot build a string type");
            goto out;
        }
        ptrs = calloc(n, sizeof *ptrs);
        if (!ptrs) {
            rc = eng_h5_fail(r->err, ENG_ERR_NOMEM, "out of memory");
            goto out;
        }
        if (H5Aread(a, mt, ptrs) < 0) {
            rc = eng_h5_fail(r->err, ENG_ERR_FORMAT, "cannot read attribute '%s' of '%s'", name,
                             where);
            goto out;
        }
        reclaim = 1;
        for (size_t i = 0; i < n; i++) {
            const char *p = ptrs[i] ? ptrs[i] : "";
            size_t l = strnlen(p, maxlen + 1);
            if (l > maxlen) {
                rc = eng_h5_fail(r->err, ENG_ERR_LIMIT,
                                 "attribute '%s' of '%s': entry %zu longer than %zu bytes", name,
                                 where, i, maxlen);
                goto out;
            }
            if (!(v[i] = strndup(p, l))) {
                rc = eng_h5_fail(r->err, ENG_ERR_NOMEM, "out of memory");
                goto out;
            }
        }
    } else {
        size_t sz = H5Tget_size(ft);
        H5T_str_t pad = H5Tget_strpad(ft);
        if (sz == 0 || sz > ENG_H5_MAX_STRATTR / n) {
            rc = eng_h5_fail(r->err, ENG_ERR_LIMIT,
                             "attribute '%s' of '%s': %zu strings of %zu bytes exceed %u bytes",
                             name, where, n, sz, ENG_H5_MAX_STRATTR);
            goto out;
        }
        mt = H5Tcopy(ft);
        fixed = malloc(n * sz);
        if (mt < 0 || !fixed) {
            rc = eng_h5_fail(r->err, ENG_ERR_NOMEM, "out of memory");
            goto out;
        }
        if (H5Aread(a, mt, fixed) < 0) {
            rc = eng_h5_fail(r->err, ENG_ERR_FORMAT, "cannot read attribute '%s' of '%s'", name,
                             where);
            goto out;
        }
        for (size_t i = 0; i < n; i++) {
            const char *p = fixed + i * sz;
            size_t l = strnlen(p, sz);
            if (pad == H5T_STR_SPACEPAD)
                while (l > 0 && p[l - 1] == ' ') l--;
            if (l > maxlen) {
                rc = eng_h5_fail(r->err, ENG_ERR_LIMIT,
                                 "attribute '%s' of '%s': entry %zu longer than %zu bytes", name,
                                 where, i, maxlen);
                goto out;
            }
            if (!(v[i] = strndup(p, l))) {
                rc = eng_h5_fail(r->err, ENG_ERR_NOMEM, "out of memory");
                goto out;
            }
        }
    }
done:
    *out = v;
    *nout = n;
    v = NULL;
out:
    if (reclaim) H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, ptrs);
    free(ptrs);
    free(fixed);
    if (v) free_strings(v, n);
    close_id(&mt, H5Tclose);
    close_id(&ft, H5Tclose);
    close_id(&sp, H5Sclose);
    close_id(&a, H5Aclose);
    return rc;
}

/* Keras' save_attributes_to_hdf5_group splits an attribute larger than the
 * 64 KiB object header limit into name0, name1, ...; its loader reads `name`
 * when present, else the numbered pieces in order. *present = 0 when neither. */
static eng_code attr_strings_split(rd *r, hid_t obj, const char *where, const char *name,
                                   size_t maxn, size_t maxlen, char ***out, size_t *nout,
                                   int *present)
{
    eng_code rc = ENG_OK;
    char **all = NULL, **part = NULL;
    size_t nall = 0, npart = 0;
    char an[ENG_MAX_NAME + 16];

    *present = 0;
    htri_t ex = H5Aexists(obj, name);
    if (ex < 0) return eng_h5_fail(r->err, ENG_ERR_FORMAT, "cannot list attributes of '%s'", where);
    if (ex > 0) {
        *present = 1;
        return attr_strings(r, obj, where, name, maxn, maxlen, out, nout);
    }
    for (unsigned k = 0;; k++) {
        snprintf(an, sizeof an, "%s%u", name, k);
        ex = H5Aexists(obj, an);
        if (ex < 0) {
            rc = eng_h5_fail(r->err, ENG_ERR_FORMAT, "cannot list attributes of '%s'", where);
            goto out;
        }
        if (ex == 0) break;
        if (k >= ENG_H5_MAX_CHUNKS) {
            rc = eng_h5_fail(r->err, ENG_ERR_LIMIT,
                             "attribute '%s' of '%s' split in more than %d pieces", name, where,
                             ENG_H5_MAX_CHUNKS);
            goto out;
        }
        *present = 1;
        rc = attr_strings(r, obj, where, an, maxn - nall, maxlen, &part, &npart);
        if (rc) goto out;
        if (npart) {
            char **grown = realloc(all, (nall + npart) * sizeof *all);
            if (!grown) {
                rc = eng_h5_fail(r->err, ENG_ERR_NOMEM, "out of memory");
                goto out;
            }
            all = grown;
            memcpy(all + nall, part, npart * sizeof *part);
            nall += npart;
            free(part);
            part = NULL;
            npart = 0;
        } else {
            free_strings(part, npart);
            part = NULL;
        }
    }
    *out = all;
    *nout = nall;
    all = NULL;
out:
    free_strings(part, npart);
    free_strings(all, nall);
    return rc;
}

/* One optional scalar string attribute (keras_version, backend,
 * model_config). Absent or not a string: *out stays NULL. */
static eng_code attr_string1(rd *r, hid_t obj, const char *where, const char *name, size_t maxlen,
                             char **out)
{
    htri_t ex = H5Aexists(obj, name);
    if (ex < 0) return eng_h5_fail(r->err, ENG_ERR_FORMAT, "cannot list attributes of '%s'", where);
    if (ex == 0 || *out) return ENG_OK;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT), t = a >= 0 ? H5Aget_type(a) : H5I_INVALID_HID;
    int is_str = t >= 0 && H5Tget_class(t) == H5T_STRING;
    close_id(&t, H5Tclose);
    close_id(&a, H5Aclose);
    if (!is_str) return ENG_OK;
    char **v = NULL;
    size_t n = 0;
    eng_code rc = attr_strings(r, obj, where, name, 1, maxlen, &v, &n);
    if (rc) return rc;
    if (n == 1) {
        *out = v[0];
        v[0] = NULL;
    }
    free_strings(v, n);
    return ENG_OK;
}

/* ---- datasets ------------------------------------------------------------- */

/* IEEE little-endian floats and two's complement little-endian integers are
 * the dtypes the engine converts; everything else is ENG_DT_OTHER. */
static const struct float_kind {
    size_t size, spos, epos, esize, mpos, msize, ebias;
    eng_dtype dt;
} float_kinds[] = {
    {4, 31, 23, 8, 0, 23, 127, ENG_DT_F32},
    {8, 63, 52, 11, 0, 52, 1023, ENG_DT_F64},
    {2, 15, 10, 5, 0, 10, 15, ENG_DT_F16},
};
static const struct int_kind {
    size_t size;
    eng_dtype dt;
} int_kinds[] = {
    {8, ENG_DT_I64},
    {4, ENG_DT_I32},
};

static eng_dtype classify(hid_t t)
{
    H5T_class_t c = H5Tget_class(t);
    size_t sz = H5Tget_size(t);
    if ((c != H5T_FLOAT && c != H5T_INTEGER) || H5Tget_order(t) != H5T_ORDER_LE ||
        H5Tget_offset(t) != 0 || H5Tget_precision(t) != sz * 8)
        return ENG_DT_OTHER;
    if (c == H5T_FLOAT) {
        size_t spos, epos, esize, mpos, msize;
        if (H5Tget_fields(t, &spos, &epos, &esize, &mpos, &msize) < 0) return ENG_DT_OTHER;
        size_t ebias = H5Tget_ebias(t);
        if (H5Tget_norm(t) != H5T_NORM_IMPLIED) return ENG_DT_OTHER;
        for (size_t i = 0; i < sizeof float_kinds / sizeof float_kinds[0]; i++) {
            const struct float_kind *k = &float_kinds[i];
            if (k->size == sz && k->spos == spos && k->epos == epos && k->esize == esize &&
                k->mpos == mpos && k->msize == msize && k->ebias == ebias)
                return k->dt;
        }
        return ENG_DT_OTHER;
    }
    if (H5Tget_sign(t) != H5T_SGN_2) return ENG_DT_OTHER;
    for (size_t i = 0; i < sizeof int_kinds / sizeof int_kinds[0]; i++)
        if (int_kinds[i].size == sz) return int_kinds[i].dt;
    return ENG_DT_OTHER;
}

static const char *filter_name(H5Z_filter_t f)
{
    static const struct {
        H5Z_filter_t id;
        const char *name;
    } names[] = {
        {H5Z_FILTER_DEFLATE, "deflate"},
        {H5Z_FILTER_SHUFFLE, "shuffle"},
        {H5Z_FILTER_FLETCHER32, "fletcher32"},
        {H5Z_FILTER_SZIP, "szip"},
        {H5Z_FILTER_NBIT, "nbit"},
        {H5Z_FILTER_SCALEOFFSET, "scaleoffset"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].id == f) return names[i].name;
    return "third-party";
}

/* Fill t from the dataset at rel below loc (HDF5 path `path`). */
static eng_code read_tensor(rd *r, hid_t loc, const char *where, const char *rel, const char *path,
                            eng_tensor *t)
{
    eng_code rc = ENG_OK;
    hid_t d = H5I_INVALID_HID, dcpl = H5I_INVALID_HID, sp = H5I_INVALID_HID, ty = H5I_INVALID_HID;
    int missing = 0;

    rc = open_checked(r, loc, where, rel, H5I_DATASET, &d, &missing);
    if (rc) goto out;
    if (missing) {
        rc = eng_h5_fail(r->err, ENG_ERR_FORMAT, "dataset '%s' not found", path);
        goto out;
    }

    dcpl = H5Dget_create_plist(d);
    if (dcpl < 0) {
        rc = eng_h5_fail(r->err, ENG_ERR_FORMAT, "dataset '%s': cannot read its storage properties",
                         path);
        goto out;
    }
    int next = H5Pget_external_count(dcpl);
    if (next != 0) {
        rc = eng_h5_fail(r->err, ENG_ERR_FORMAT,
                         "dataset '%s' keeps its data in external files; "
                         "strata reads only data stored in the uploaded file",
                         path);
        goto out;
    }
    H5D_layout_t lay = H5Pget_layout(dcpl);
    if (lay == H5D_VIRTUAL) {
        rc = eng_h5_fail(r->err, ENG_ERR_FORMAT,
                         "dataset '%s' is a virtual dataset (maps other datasets/files); refused",
                         path);
        goto out;
    }
    int nf = H5Pget_nfilters(dcpl);
    if (nf < 0) {
        rc = eng_h5_fail(r->err, ENG_ERR_FORMAT, "dataset '%s': cannot read its filters", path);
        goto out;
    }
    if (nf > 0) {
        unsigned flags = 0, cd[8];
        size_t ncd = 8;
        char fname[64];
        H5Z_filter_t f = H5Pget_filter2(dcpl, 0, &flags, &ncd, cd, sizeof fname, fname, NULL);
        rc = eng_h5_fail(r->err, ENG_ERR_FORMAT,
                         "dataset '%s' is filtered/compressed (filter '%s'); "
                         "strata stores uncompressed contiguous Keras datasets only",
                         path, filter_name(f));
        goto out;
    }
    if (lay == H5D_CHUNKED) {
        rc = eng_h5_fail(r->err, ENG_ERR_FORMAT,
                         "dataset '%s' is chunked; strata stores contiguous Keras datasets only",
                         path);
        goto out;
    }
    if (lay == H5D_COMPACT) {
        rc = eng_h5_fail(
            r->err, ENG_ERR_FORMAT,
            "dataset '%s' uses compact storage; strata stores contiguous Keras datasets only",
            path);
        goto out;
    }
    if (lay != H5D_CONTIGUOUS) {
        rc =
            eng_h5_fail(r->err, ENG_ERR_FORMAT, "dataset '%s' has an unknown storage layout", path);
        goto out;
    }

    sp = H5Dget_space(d);
    if (sp < 0) {
        rc = eng_h5_fail(r->err, ENG_ERR_FORMAT, "dataset '%s': cannot read its dataspace", path);
        goto out;
    }
    H5S_class_t sc = H5Sget_simple_extent_type(sp);
    int rank = 0;
    hsize_t dims[ENG_MAX_RANK];
    if (sc == H5S_SIMPLE) {
        rank = H5Sget_simple_extent_ndims(sp);
        if (rank < 0) {
            rc = eng_h5_fail(r->err, ENG_ERR_FORMAT, "dataset '%s': bad dataspace", path);
            goto out;
        }
        if (rank > ENG_MAX_RANK) {
            rc = eng_h5_fail(r->err, ENG_ERR_LIMIT, "dataset '%s' has rank %d, more than %d", path,
                             rank, ENG_MAX_RANK);
            goto out;
        }
        if (H5Sget_simple_extent_dims(sp, dims, NULL) != rank) {
            rc = eng_h5_fail(r->err, ENG_ERR_FORMAT, "dataset '%s': bad dataspace", path);
            goto out;
        }
    } else if (sc != H5S_SCALAR) {
        rc = eng_h5_fail(r->err, ENG_ERR_FORMAT, "dataset '%s' has a null dataspace", path);
        goto out;
    }
    uint64_t elems = 1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] > (hsize_t)ENG_MAX_ELEMENTS ||
            (dims[i] && elems > ENG_MAX_ELEMENTS / dims[i])) {
            rc = eng_h5_fail(r->err, ENG_ERR_LIMIT, "dataset '%s' has more than %llu elements",
                             path, (unsigned long long)ENG_MAX_ELEMENTS);
            goto out;
        }
        elems *= dims[i];
        t->shape[i] = (int64_t)dims[i];
    }
    if (elems > ENG_MAX_ELEMENTS) {
        rc = eng_h5_fail(r->err, ENG_ERR_LIMIT, "dataset '%s' has more than %llu elements", path,
                         (unsigned long long)ENG_MAX_ELEMENTS);
        goto out;
    }
    t->rank = rank;

    ty = H5Dget_type(d);
    if (ty < 0) {
        rc = eng_h5_fail(r->err, ENG_ERR_FORMAT, "dataset '%s': cannot read its datatype", path);
        goto out;
    }
    t->dtype = classify(ty);
    size_t esz = H5Tget_size(ty);
    if (esz == 0 || esz > ENG_H5_MAX_DTSIZE) {
        rc = eng_h5_fail(r->err, ENG_ERR_FORMAT, "dataset '%s' has elements of %zu bytes", path,
                         esz);
        goto out;
    }
    uint64_t nbytes = elems * esz; /* <= 2^32 * 64: no overflow */
    if (elems == 0) {
        t->offset = ENG_NO_OFFSET;
        t->nbytes = 0;
        goto out;
    }
    hsize_t stored = H5Dget_storage_size(d);
    haddr_t off = H5Dget_offset(d);
    if (off == HADDR_UNDEF) {
        rc = eng_h5_fail(r->err, ENG_ERR_FORMAT, "dataset '%s' has no data stored in the file",
                         path);
        goto out;
    }
    if (stored != nbytes) {
        rc = eng_h5_fail(r->err, ENG_ERR_FORMAT,
                         "dataset '%s' stores %llu bytes, its shape and dtype need %llu", path,
                         (unsigned long long)stored, (unsigned long long)nbytes);
        goto out;
    }
    if (off > r->image_size || r->image_size - off < nbytes) {
        rc = eng_h5_fail(r->err, ENG_ERR_FORMAT,
                         "dataset '%s': data [%llu,+%llu) lies beyond the end of the "
                         "HDF5 file (%llu bytes)",
                         path, (unsigned long long)off, (unsigned long long)nbytes,
                         (unsigned long long)r->image_size);
        goto out;
    }
    t->offset = r->base + off;
    t->nbytes = nbytes;
out:
    close_id(&ty, H5Tclose);
    close_id(&sp, H5Sclose);
    close_id(&dcpl, H5Pclose);
    close_id(&d, H5Oclose);
    return rc;
}

/* ---- layers --------------------------------------------------------------- */

static eng_code add_layer(rd *r, const char *name, eng_wlayer **out)
{
    eng_summary *s = r->s;
    size_t len = strlen(name);
    if (len == 0 || len > ENG_MAX_NAME)
        return eng_h5_fail(r->err, len ? ENG_ERR_LIMIT : ENG_ERR_FORMAT,
                           "layer name '%.64s' is empty or longer than %d bytes", name,
                           ENG_MAX_NAME);
    if (s->nlayers >= ENG_MAX_LAYERS)
        return eng_h5_fail(r->err, ENG_ERR_LIMIT, "more than %d layers", ENG_MAX_LAYERS);
    if (s->nlayers == r->cap_layers) {
        size_t cap = r->cap_layers ? r->cap_layers * 2 : 16;
        eng_wlayer *g = realloc(s->layers, cap * sizeof *g);
        if (!g) return eng_h5_fail(r->err, ENG_ERR_NOMEM, "out of memory");
        s->layers = g;
        r->cap_layers = cap;
    }
    eng_wlayer *l = &s->layers[s->nlayers];
    memset(l, 0, sizeof *l);
    if (!(l->name = strdup(name))) return eng_h5_fail(r->err, ENG_ERR_NOMEM, "out of memory");
    s->nlayers++;
    *out = l;
    return ENG_OK;
}

static eng_code reserve_tensors(rd *r, eng_wlayer *l, size_t n, const char *lname)
{
    if (n > ENG_MAX_TENSORS - r->ntensors)
        return eng_h5_fail(r->err, ENG_ERR_LIMIT, "layer '%s': more than %d tensors in the file",
                           lname, ENG_MAX_TENSORS);
    r->ntensors += n;
    if (n == 0) return ENG_OK;
    l->tensors = calloc(n, sizeof *l->tensors);
    if (!l->tensors) return eng_h5_fail(r->err, ENG_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) l->tensors[i].offset = ENG_NO_OFFSET;
    return ENG_OK;
}

/* Legacy layout below container (HDF5 path cpath: "" for the root). */
static eng_code read_legacy(rd *r, hid_t container, const char *cpath)
{
    eng_code rc = ENG_OK;
    char **names = NULL, **wn = NULL, *lpath = NULL;
    size_t nn = 0, nw = 0;
    hid_t g = H5I_INVALID_HID;
    int present = 0, missing = 0;
    const char *where = *cpath ? cpath : "/";

    rc = attr_strings_split(r, container, where, "layer_names", ENG_MAX_LAYERS, ENG_MAX_NAME,
                            &names, &nn, &present);
    if (rc) goto out;
    for (size_t i = 0; i < nn; i++) {
        for (size_t j = 0; j < i; j++)
            if (strcmp(names[i], names[j]) == 0) {
                rc = eng_h5_fail(r->err, ENG_ERR_FORMAT, "layer_names lists '%s' twice", names[i]);
                goto out;
            }
        if (strchr(names[i], '/')) {
            rc = eng_h5_fail(r->err, ENG_ERR_FORMAT, "layer name '%s' contains '/'", names[i]);
            goto out;
        }
        eng_wlayer *l = NULL;
        rc = add_layer(r, names[i], &l);
        if (rc) goto out;
        free(lpath);
        lpath = *cpath ? join3(cpath, "/", names[i]) : strdup(names[i]);
        if (!lpath) {
            rc = eng_h5_fail(r->err, ENG_ERR_NOMEM, "out of memory");
            goto out;
        }
        rc = open_checked(r, container, where, names[i], H5I_GROUP, &g, &missing);
        if (rc) goto out;
        if (missing) {
            rc = eng_h5_fail(r->err, ENG_ERR_FORMAT,
                             "layer '%s' is listed in layer_names but group '%s' is missing",
                             names[i], lpath);
            goto out;
        }
        rc = attr_strings_split(r, g, lpath, "weight_names", ENG_MAX_TENSORS, ENG_MAX_NAME, &wn,
                                &nw, &present);
        if (rc) goto out;
        if (!present) {
            rc = eng_h5_fail(r->err, ENG_ERR_FORMAT,
                             "layer '%s': group '%s' has no weight_names attribute", names[i],
                             lpath);
            goto out;
        }
        rc = reserve_tensors(r, l, nw, names[i]);
        if (rc) goto out;
        for (size_t k = 0; k < nw; k++) {
            eng_tensor *t = &l->tensors[k];
            l->ntensors = k + 1;
            if (!(t->name = strdup(wn[k])) || !(t->path = join3(lpath, "/", wn[k]))) {
                rc = eng_h5_fail(r->err, ENG_ERR_NOMEM, "out of memory");
                goto out;
            }
            rc = links_check(r, g, lpath, wn[k], &missing);
            if (rc) goto out;
            if (missing) {
                rc = eng_h5_fail(r->err, ENG_ERR_FORMAT,
                                 "layer '%s': weight '%s' listed in weight_names "
                                 "but dataset '%s' is missing",
                                 names[i], wn[k], t->path);
                goto out;
            }
            rc = read_tensor(r, g, lpath, wn[k], t->path, t);
            if (rc) goto out;
        }
        free_strings(wn, nw);
        wn = NULL;
        nw = 0;
        close_id(&g, H5Oclose);
    }
out:
    close_id(&g, H5Oclose);
    free(lpath);
    free_strings(wn, nw);
    free_strings(names, nn);
    return rc;
}

/* ---- Keras 3 -------------------------------------------------------------- */

typedef struct name_list {
    char **v;
    size_t n, cap, max;
    int overflow, toolong;
} name_list;

static herr_t collect_cb(hid_t g, const char *name, const H5L_info_t *info, void *op)
{
    name_list *l = op;
    (void)g;
    (void)info;
    if (l->n >= l->max) {
        l->overflow = 1;
        return 1;
    }
    size_t len = strnlen(name, ENG_MAX_NAME + 1);
    if (len > ENG_MAX_NAME) {
        l->toolong = 1;
        return 1;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **v = realloc(l->v, cap * sizeof *v);
        if (!v) return -1;
        l->v = v;
        l->cap = cap;
    }
    if (!(l->v[l->n] = strndup(name, len))) return -1;
    l->n++;
    return 0;
}

/* Names of the links in g, in name order, at most max. */
static eng_code list_links(rd *r, hid_t g, const char *where, size_t max, name_list *l)
{
    memset(l, 0, sizeof *l);
    l->max = max;
    herr_t e = H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, collect_cb, l);
    if (l->overflow)
        return eng_h5_fail(r->err, ENG_ERR_LIMIT, "group '%s' has more than %zu members", where,
                           max);
    if (l->toolong)
        return eng_h5_fail(r->err, ENG_ERR_LIMIT,
                           "group '%s' has a member name longer than %d bytes", where,
                           ENG_MAX_NAME);
    if (e < 0) return eng_h5_fail(r->err, ENG_ERR_FORMAT, "cannot list group '%s'", where);
    return ENG_OK;
}

/* Decimal var key "0".."16383" without leading zeros; -1 otherwise. */
static long var_index(const char *k)
{
    size_t n = strlen(k);
    if (n == 0 || n > 5 || (n > 1 && k[0] == '0')) return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (k[i] < '0' || k[i] > '9') return -1;
        v = v * 10 + (k[i] - '0');
    }
    return v < ENG_MAX_TENSORS ? v : -1;
}

/* The vars group of a Keras 3 object: tensors 0..n-1 in numeric order. */
static eng_code read_vars(rd *r, hid_t vars, const char *vpath, const char *lname, int keep_empty)
{
    eng_code rc = ENG_OK;
    name_list nl = {0};
    long *order = NULL;

    rc = list_links(r, vars, vpath, ENG_MAX_TENSORS, &nl);
    if (rc) goto out;
    if (nl.n == 0 && !keep_empty) goto out;
    order = malloc((nl.n ? nl.n : 1) * sizeof *order);
    if (!order) {
        rc = eng_h5_fail(r->err, ENG_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < nl.n; i++) order[i] = -1;
    for (size_t i = 0; i < nl.n; i++) {
        long k = var_index(nl.v[i]);
        if (k < 0 || (size_t)k >= nl.n || order[k] >= 0) {
            rc =
                eng_h5_fail(r->err, ENG_ERR_FORMAT, "layer '%s': '%s/%s' is not a var index 0..%zu",
                            lname, vpath, nl.v[i], nl.n ? nl.n - 1 : 0);
            goto out;
        }
        order[k] = (long)i;
    }
    eng_wlayer *l = NULL;
    rc = add_layer(r, lname, &l);
    if (rc) goto out;
    rc = attr_string1(r, vars, vpath, "name", ENG_MAX_NAME, &l->attr_name);
    if (rc) goto out;
    rc = reserve_tensors(r, l, nl.n, lname);
    if (rc) goto out;
    for (size_t k = 0; k < nl.n; k++) {
        const char *key = nl.v[order[k]];
        eng_tensor *t = &l->tensors[k];
        l->ntensors = k + 1;
        if (!(t->name = strdup(key)) || !(t->path = join3(vpath, "/", key))) {
            rc = eng_h5_fail(r->err, ENG_ERR_NOMEM, "out of memory");
            goto out;
        }
        rc = read_tensor(r, vars, vpath, key, t->path, t);
        if (rc) goto out;
    }
out:
    free(order);
    free_strings(nl.v, nl.n);
    return rc;
}

/* Visit the Keras 3 object group g (HDF5 path gpath, layer name lname or ""
 * for a pure container): a vars subgroup makes it a layer; every other
 * subgroup is visited in name order. */
static eng_code k3_visit(rd *r, hid_t g, const char *gpath, const char *lname, int depth,
                         int keep_empty)
{
    eng_code rc = ENG_OK;
    name_list nl = {0};
    hid_t c = H5I_INVALID_HID;
    char *cpath = NULL, *cname = NULL;
    int missing = 0;

    if (depth > ENG_H5_MAX_DEPTH) {
        rc = eng_h5_fail(r->err, ENG_ERR_LIMIT, "group '%s' nested deeper than %d levels", gpath,
                         ENG_H5_MAX_DEPTH);
        goto out;
    }
    if (++r->visits > MAX_VISITS) {
        rc = eng_h5_fail(r->err, ENG_ERR_LIMIT, "more than %d groups below layers/", MAX_VISITS);
        goto out;
    }
    rc = list_links(r, g, gpath, ENG_MAX_TENSORS, &nl);
    if (rc) goto out;
    /* Pre-order: the object's own vars before its children, so that
     * "sequential" precedes "sequential/layers/random_flip". */
    for (size_t i = 0; i < nl.n; i++)
        if (strcmp(nl.v[i], "vars") == 0 && i > 0) {
            char *v = nl.v[i];
            memmove(nl.v + 1, nl.v, i * sizeof *nl.v);
            nl.v[0] = v;
            break;
        }
    for (size_t i = 0; i < nl.n; i++) {
        const char *cn = nl.v[i];
        free(cpath);
        cpath = join3(gpath, "/", cn);
        if (!cpath) {
            rc = eng_h5_fail(r->err, ENG_ERR_NOMEM, "out of memory");
            goto out;
        }
        rc = links_check(r, g, gpath, cn, &missing);
        if (rc) goto out;
        if (missing) continue;
        hid_t o = H5Oopen(g, cn, H5P_DEFAULT);
        if (o < 0) {
            rc = eng_h5_fail(r->err, ENG_ERR_FORMAT, "cannot open '%s'", cpath);
            goto out;
        }
        if (H5Iget_type(o) != H5I_GROUP) {
            H5Oclose(o);
            continue;
        } /* Keras keeps no datasets here */
        c = o;
        if (strcmp(cn, "vars") == 0) {
            if (*lname) rc = read_vars(r, c, cpath, lname, keep_empty);
            else rc = eng_h5_fail(r->err, ENG_ERR_FORMAT, "unexpected vars group '%s'", cpath);
        } else {
            free(cname);
            cname = *lname ? join3(lname, "/", cn) : strdup(cn);
            if (!cname) {
                rc = eng_h5_fail(r->err, ENG_ERR_NOMEM, "out of memory");
                goto out;
            }
            if (strlen(cname) > ENG_MAX_NAME) {
                rc = eng_h5_fail(r->err, ENG_ERR_LIMIT,
                                 "layer path '%.64s...' longer than %d bytes", cname, ENG_MAX_NAME);
                goto out;
            }
            rc = k3_visit(r, c, cpath, cname, depth + 1, keep_empty);
        }
        close_id(&c, H5Oclose);
        if (rc) goto out;
    }
out:
    close_id(&c, H5Oclose);
    free(cpath);
    free(cname);
    free_strings(nl.v, nl.n);
    return rc;
}

/* Keras 3 .weights.h5: layers/ (every layer kept, also without variables),
 * then the root vars and other top-level groups (kept only with variables);
 * optimizer* ignored. */
static eng_code read_keras3(rd *r)
{
    eng_code rc = ENG_OK;
    name_list nl = {0};
    hid_t g = H5I_INVALID_HID;
    int missing = 0;

    rc = open_checked(r, r->file, "", "layers", H5I_GROUP, &g, &missing);
    if (rc) goto out;
    if (!missing) rc = k3_visit(r, g, "layers", "", 0, 1);
    close_id(&g, H5Oclose);
    if (rc) goto out;

    rc = list_links(r, r->file, "/", ENG_MAX_TENSORS, &nl);
    if (rc) goto out;
    for (size_t i = 0; i < nl.n; i++) {
        const char *cn = nl.v[i];
        if (strcmp(cn, "layers") == 0 || strncmp(cn, "optimizer", 9) == 0) continue;
        rc = links_check(r, r->file, "", cn, &missing);
        if (rc) goto out;
        if (missing) continue;
        hid_t o = H5Oopen(r->file, cn, H5P_DEFAULT);
        if (o < 0) {
            rc = eng_h5_fail(r->err, ENG_ERR_FORMAT, "cannot open '/%s'", cn);
            goto out;
        }
        if (H5Iget_type(o) != H5I_GROUP) {
            H5Oclose(o);
            continue;
        }
        g = o;
        if (strcmp(cn, "vars") == 0) rc = read_vars(r, g, "vars", "/", 0);
        else rc = k3_visit(r, g, cn, cn, 1, 0);
        close_id(&g, H5Oclose);
        if (rc) goto out;
    }
out:
    close_id(&g, H5Oclose);
    free_strings(nl.v, nl.n);
    return rc;
}

/* ---- file images for the .keras archive ----------------------------------- */

/* libhdf5's core driver reads the inner model.weights.h5 straight from our
 * mapping of the archive: these callbacks hand it the mapped bytes instead of
 * letting it copy them (as H5LTopen_file_image's DONT_COPY mode does). The
 * file is opened read-only, so the image is never resized or written. */
typedef struct img_udata {
    void *buf;
    size_t size;
} img_udata;

static void *img_malloc(size_t size, H5FD_file_image_op_t op, void *ud)
{
    img_udata *u = ud;
    (void)op;
    return size == u->size ? u->buf : NULL;
}
static void *img_memcpy(void *dst, const void *src, size_t size, H5FD_file_image_op_t op, void *ud)
{
    (void)size;
    (void)op;
    (void)ud;
    return dst == src ? dst : NULL;
}
static void *img_realloc(void *p, size_t size, H5FD_file_image_op_t op, void *ud)
{
    (void)p;
    (void)size;
    (void)op;
    (void)ud;
    return NULL;
}
static herr_t img_free(void *p, H5FD_file_image_op_t op, void *ud)
{
    img_udata *u = ud;
    (void)op;
    return p == u->buf ? 0 : -1;
}
static void *img_udata_copy(void *ud)
{
    return ud;
}
static herr_t img_udata_free(void *ud)
{
    (void)ud;
    return 0;
}

/* ---- entry point ---------------------------------------------------------- */

static const unsigned char hdf5_sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};

/* metadata.json's keras_version, or NULL (optional: absent in old archives). */
static char *archive_keras_version(int fd, uint64_t size)
{
    eng_zip_member m;
    eng_error e = {0};
    char *txt = NULL, *ver = NULL;
    if (eng_zip_find(fd, size, "metadata.json", &m, &e) == ENG_OK &&
        eng_zip_read(fd, &m, 65536, "metadata.json", &txt, &e) == ENG_OK) {
        json_t *j = json_loads(txt, 0, NULL);
        const char *v = json_string_value(json_object_get(j, "keras_version"));
        if (v && strlen(v) <= ENG_MAX_NAME) ver = strdup(v);
        json_decref(j);
    }
    eng_error_release(&e);
    free(txt);
    return ver;
}

eng_code eng_summary_read(const char *path, eng_summary **out, eng_error *err)
{
    eng_code rc = ENG_OK;
    int fd = -1;
    void *map = NULL;
    size_t map_len = 0;
    img_udata ud = {0};
    hid_t fapl = H5I_INVALID_HID, root_mw = H5I_INVALID_HID;
    rd r = {.file = H5I_INVALID_HID, .err = err};
    eng_summary *s = NULL;
    struct stat st;
    int missing = 0;

    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = eng_h5_fail(err, ENG_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = eng_h5_fail(err, ENG_ERR_IO, "'%s' is not a regular file", path);
        goto out;
    }
    s = calloc(1, sizeof *s);
    if (!s) {
        rc = eng_h5_fail(err, ENG_ERR_NOMEM, "out of memory");
        goto out;
    }
    r.s = s;
    s->file_size = (uint64_t)st.st_size;

    fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0 || H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0) {
        rc = eng_h5_fail(err, ENG_ERR_INTERNAL, "cannot create an HDF5 access property list");
        goto out;
    }
    int iz = eng_zip_is_zip(fd);
    if (iz < 0) {
        rc = eng_h5_fail(err, ENG_ERR_IO, "cannot read '%s'", path);
        goto out;
    }
    if (iz) {
        eng_zip_member m;
        s->format = ENG_FMT_KERAS3_ARCHIVE;
        rc = eng_zip_find(fd, s->file_size, "model.weights.h5", &m, err);
        if (rc) goto out;
        if (m.method != 0) {
            rc = eng_h5_fail(err, ENG_ERR_FORMAT,
                             "zip member 'model.weights.h5' is compressed (method %u); "
                             "Keras stores it uncompressed",
                             m.method);
            goto out;
        }
        eng_zip_member cm;
        rc = eng_zip_find(fd, s->file_size, "config.json", &cm, err);
        if (rc) goto out;
        rc = eng_zip_read(fd, &cm, ENG_H5_MAX_CONFIG, "config.json", &s->model_config, err);
        if (rc) goto out;
        s->keras_version = archive_keras_version(fd, s->file_size);
        s->hdf5_offset = m.data_offset;
        s->hdf5_size = m.size;
        if (m.size < sizeof hdf5_sig) {
            rc = eng_h5_fail(err, ENG_ERR_FORMAT,
                             "zip member 'model.weights.h5' is not an HDF5 file");
            goto out;
        }
        if (s->file_size > SIZE_MAX) {
            rc = eng_h5_fail(err, ENG_ERR_LIMIT, "archive too large to map");
            goto out;
        }
        map_len = (size_t)s->file_size;
        map = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            map = NULL;
            rc = eng_h5_fail(err, ENG_ERR_IO, "cannot map '%s': %s", path, strerror(errno));
            goto out;
        }
        ud.buf = (unsigned char *)map + m.data_offset;
        ud.size = (size_t)m.size;
        if (memcmp(ud.buf, hdf5_sig, sizeof hdf5_sig) != 0) {
            rc = eng_h5_fail(err, ENG_ERR_FORMAT,
                             "zip member 'model.weights.h5' is not an HDF5 file");
            goto out;
        }
        H5FD_file_image_callbacks_t cb = {img_malloc,     img_memcpy,     img_realloc, img_free,
                                          img_udata_copy, img_udata_free, &ud};
        if (H5Pset_fapl_core(fapl, 1 << 16, 0) < 0 || H5Pset_file_image_callbacks(fapl, &cb) < 0 ||
            H5Pset_file_image(fapl, ud.buf, ud.size) < 0) {
            rc = eng_h5_fail(err, ENG_ERR_INTERNAL, "cannot set up the in-memory HDF5 image");
            goto out;
        }
        r.file = H5Fopen("model.weights.h5", H5F_ACC_RDONLY, fapl);
        if (r.file < 0) {
            rc = eng_h5_fail(err, ENG_ERR_FORMAT,
                             "zip member 'model.weights.h5' is not a readable HDF5 file");
            goto out;
        }
    } else {
        unsigned char sig[8];
        if (eng_h5_pread_full(fd, sig, sizeof sig, 0) != 0 ||
            memcmp(sig, hdf5_sig, sizeof sig) != 0) {
            rc = eng_h5_fail(err, ENG_ERR_FORMAT,
                             "not an HDF5 file (no HDF5 signature at offset 0) "
                             "and not a .keras archive");
            goto out;
        }
        s->hdf5_offset = 0;
        s->hdf5_size = s->file_size;
        /* No file locks: the file is ours alone and read-only, and a
         * sandboxed child may not be allowed flock(). */
        if (H5Pset_fapl_sec2(fapl) < 0 || H5Pset_file_locking(fapl, 0, 1) < 0) {
            rc = eng_h5_fail(err, ENG_ERR_INTERNAL, "cannot select the sec2 driver");
            goto out;
        }
        r.file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
        if (r.file < 0) {
            rc = eng_h5_fail(err, ENG_ERR_FORMAT,
                             "not an HDF5 file libhdf5 can open (corrupt or truncated)");
            goto out;
        }
    }
    r.base = s->hdf5_offset;
    r.image_size = s->hdf5_size;

    if (s->format == ENG_FMT_KERAS3_ARCHIVE) {
        rc = read_keras3(&r);
        goto check;
    }
    /* Legacy save_weights: layer_names at the root. */
    htri_t ln = H5Aexists(r.file, "layer_names");
    htri_t ln0 = ln > 0 ? 0 : H5Aexists(r.file, "layer_names0");
    if (ln < 0 || ln0 < 0) {
        rc = eng_h5_fail(err, ENG_ERR_FORMAT, "cannot read the root group's attributes");
        goto out;
    }
    if (ln > 0 || ln0 > 0) {
        s->format = ENG_FMT_KERAS2_WEIGHTS;
        if ((rc =
                 attr_string1(&r, r.file, "/", "keras_version", ENG_MAX_NAME, &s->keras_version)) ||
            (rc = attr_string1(&r, r.file, "/", "backend", ENG_MAX_NAME, &s->backend)))
            goto out;
        rc = read_legacy(&r, r.file, "");
        goto check;
    }
    /* Legacy model.save: model_weights group with layer_names. */
    rc = open_checked(&r, r.file, "", "model_weights", H5I_GROUP, &root_mw, &missing);
    if (rc) goto out;
    if (!missing) {
        ln = H5Aexists(root_mw, "layer_names");
        ln0 = ln > 0 ? 0 : H5Aexists(root_mw, "layer_names0");
        if (ln < 0 || ln0 < 0) {
            rc = eng_h5_fail(err, ENG_ERR_FORMAT, "cannot read the attributes of 'model_weights'");
            goto out;
        }
        if (ln == 0 && ln0 == 0) {
            rc = eng_h5_fail(err, ENG_ERR_FORMAT,
                             "group 'model_weights' has no layer_names attribute");
            goto out;
        }
        s->format = ENG_FMT_KERAS2_MODEL;
        if ((rc =
                 attr_string1(&r, r.file, "/", "keras_version", ENG_MAX_NAME, &s->keras_version)) ||
            (rc = attr_string1(&r, root_mw, "model_weights", "keras_version", ENG_MAX_NAME,
                               &s->keras_version)) ||
            (rc = attr_string1(&r, r.file, "/", "backend", ENG_MAX_NAME, &s->backend)) ||
            (rc = attr_string1(&r, root_mw, "model_weights", "backend", ENG_MAX_NAME,
                               &s->backend)) ||
            (rc = attr_string1(&r, r.file, "/", "model_config", ENG_H5_MAX_CONFIG,
                               &s->model_config)))
            goto out;
        rc = read_legacy(&r, root_mw, "model_weights");
        goto check;
    }
    /* Keras 3 .weights.h5: layers group. */
    htri_t hl = H5Lexists(r.file, "layers", H5P_DEFAULT);
    if (hl < 0) {
        rc = eng_h5_fail(err, ENG_ERR_FORMAT, "cannot read the root group");
        goto out;
    }
    if (hl == 0) {
        rc = eng_h5_fail(err, ENG_ERR_FORMAT,
                         "HDF5 file without a Keras weight layout: no layer_names "
                         "attribute, no model_weights group, no layers group");
        goto out;
    }
    s->format = ENG_FMT_KERAS3_WEIGHTS;
    rc = read_keras3(&r);
check:
    if (rc) goto out;
    rc = eng_h5_summary_check(s, err);
out:
    close_id(&root_mw, H5Oclose);
    if (r.file >= 0) H5Fclose(r.file);
    close_id(&fapl, H5Pclose);
    if (map) munmap(map, map_len);
    if (fd >= 0) close(fd);
    if (rc) eng_summary_free(s);
    else *out = s;
    return rc;
}
