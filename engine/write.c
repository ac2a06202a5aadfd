/* engine/write.c — derived Keras weight files (partial layer sets, layout
 * conversion).
 *
 * Owns eng_write_layout / eng_write_data / eng_write_skeleton /
 * eng_write_id / eng_copy_plan_* and eng_out_spec_release. Does not own
 * what goes into a file (transfer.c builds the spec) nor reading uploads
 * (h5_read.c, in the sandbox).
 *
 * Layout, as Keras and h5py write it (SOURCES.md):
 * - legacy (keras2): root attrs layer_names (fixed-length NULLPAD strings,
 *   split into layer_names0, layer_names1, … past 64512 bytes as Keras'
 *   save_attributes_to_hdf5_group does), backend, keras_version; a group per
 *   layer with attr weight_names (an empty float64 array when the layer has
 *   none, as Keras writes it) and the datasets at <layer>/<weight name>
 *   ("conv2d_1/kernel:0" makes the intermediate group conv2d_1/conv2d_1).
 * - Keras 3: root group vars (attr name = the model's name when known),
 *   group layers, per layer the vars group with datasets 0, 1, …
 * - Deterministic: superblock 0 / old-style groups (libhdf5's defaults, like
 *   h5py), no object timestamps, objects created in one fixed order, every
 *   dataset contiguous, allocated at creation and never filled by libhdf5:
 *   eng_write_data then writes each tensor's bytes at its address with
 *   pwrite, read from the upload with pread. Only eng_write_layout calls
 *   libhdf5 (the caller serialises it); data never passes through libhdf5.
 * - Or no tensor byte is copied at all: eng_write_skeleton squeezes the
 *   layout file down to its metadata (the "skeleton") and describes the
 *   derived file as pieces — skeleton ranges and ranges of the upload — that
 *   the server sends one after the other. Every tensor of a derived file is
 *   a plain byte copy of a contiguous, unfiltered dataset of the upload (the
 *   reader refuses filters; no layout conversion changes a tensor's bytes),
 *   so both forms give the same bytes.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <hdf5.h>
#include <openssl/evp.h>

#include "h5_int.h"

#define ATTR_LIMIT 64512u     /* Keras' HDF5_OBJECT_HEADER_LIMIT: bytes of one attribute */
#define COPY_CHUNK (4u << 20) /* bytes per pread/pwrite: bounded memory */

typedef struct copy_region {
    uint64_t dst, src, n;
} copy_region;

struct eng_copy_plan {
    size_t n, cap;
    copy_region *r;
    uint64_t bytes;
};

void eng_copy_plan_free(eng_copy_plan *p)
{
    if (!p) return;
    free(p->r);
    free(p);
}

uint64_t eng_copy_plan_bytes(const eng_copy_plan *p)
{
    return p ? p->bytes : 0;
}

void eng_out_spec_release(eng_out_spec *spec)
{
    if (!spec) return;
    for (size_t i = 0; i < spec->nlayers; i++) {
        eng_out_layer *l = &spec->layers[i];
        if (l->dnames && l->src)
            for (size_t k = 0; k < l->src->ntensors; k++) free(l->dnames[k]);
        free(l->dnames);
        free(l->name);
        free(l->vars_name);
    }
    free(spec->layers);
    free(spec->keras_version);
    free(spec->backend);
    free(spec->model_name);
    memset(spec, 0, sizeof *spec);
}

/* ---- libhdf5 helpers ------------------------------------------------------- */

typedef struct wr {
    hid_t file, gcpl, dcpl_proto, lcpl;
    eng_error *err;
    eng_copy_plan *plan;
} wr;

static void close_id(hid_t *id, herr_t (*fn)(hid_t))
{
    if (*id >= 0) fn(*id);
    *id = H5I_INVALID_HID;
}

static hid_t dtype_of(eng_dtype dt)
{
    switch (dt) {
    case ENG_DT_F32: return H5T_IEEE_F32LE;
    case ENG_DT_F64: return H5T_IEEE_F64LE;
    case ENG_DT_I64: return H5T_STD_I64LE;
    case ENG_DT_I32: return H5T_STD_I32LE;
    default: return H5I_INVALID_HID;
    }
}

/* Open group `path` (relative to the root), creating it and every missing
 * parent with our gcpl (no timestamps). NEW id or <0. */
static hid_t group_at(wr *w, const char *path)
{
    char buf[ENG_H5_MAX_PATH + 1];
    size_t len = strlen(path);
    if (len == 0) return H5Gopen2(w->file, "/", H5P_DEFAULT);
    if (len > ENG_H5_MAX_PATH) return -1;
    memcpy(buf, path, len + 1);
    for (size_t i = 0; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != 0) continue;
        char c = buf[i];
        buf[i] = 0;
        if (buf[0]) {
            htri_t e = H5Lexists(w->file, buf, H5P_DEFAULT);
            if (e < 0) return -1;
            if (!e) {
                hid_t g = H5Gcreate2(w->file, buf, H5P_DEFAULT, w->gcpl, H5P_DEFAULT);
                if (g < 0) return -1;
                if (c == 0) return g;
                H5Gclose(g);
            }
        }
        buf[i] = c;
    }
    return H5Gopen2(w->file, path, H5P_DEFAULT);
}

/* Fixed-length NULLPAD string attribute: a scalar (one value v[0]) or a 1-D
 * array of n values, each `width` bytes wide (at least the longest). */
static int attr_strings(hid_t obj, const char *name, const char *const *v, size_t n, int scalar,
                        size_t width)
{
    size_t count = scalar ? 1 : n;
    if (!width) width = 1;
    for (size_t i = 0; i < count; i++) {
        size_t l = strlen(v[i]);
        if (l > width) width = l;
    }
    char *buf = calloc(count ? count : 1, width);
    if (!buf) return -1;
    for (size_t i = 0; i < count; i++) memcpy(buf + i * width, v[i], strlen(v[i]));
    hid_t t = H5Tcopy(H5T_C_S1), sp = H5I_INVALID_HID, a = H5I_INVALID_HID;
    int rc = -1;
    hsize_t dim = count;
    if (t < 0 || H5Tset_size(t, width) < 0 || H5Tset_strpad(t, H5T_STR_NULLPAD) < 0 ||
        H5Tset_cset(t, H5T_CSET_ASCII) < 0)
        goto out;
    sp = scalar ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &dim, NULL);
    if (sp < 0) goto out;
    a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, t, buf) < 0) goto out;
    rc = 0;
out:
    if (a >= 0) H5Aclose(a);
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    free(buf);
    return rc;
}

/* Keras' save_attributes_to_hdf5_group: an empty list is a float64 (0,)
 * array; a list whose array exceeds ATTR_LIMIT bytes is split with
 * numpy.array_split into name0, name1, … of the same string width. */
static int attr_list(hid_t obj, const char *name, const char *const *v, size_t n)
{
    if (n == 0) {
        hsize_t dim = 0;
        hid_t sp = H5Screate_simple(1, &dim, NULL);
        if (sp < 0) return -1;
        hid_t a = H5Acreate2(obj, name, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
        int rc = a < 0 ? -1 : 0;
        if (a >= 0) H5Aclose(a);
        H5Sclose(sp);
        return rc;
    }
    size_t width = 1;
    for (size_t i = 0; i < n; i++)
        if (strlen(v[i]) > width) width = strlen(v[i]);
    size_t chunks = 1;
    while (((n + chunks - 1) / chunks) * width > ATTR_LIMIT) chunks++;
    if (chunks == 1) return attr_strings(obj, name, v, n, 0, width);
    /* one width for every chunk, as numpy keeps the array's dtype */
    size_t at = 0;
    for (size_t c = 0; c < chunks; c++) {
        size_t len = n / chunks + (c < n % chunks ? 1 : 0);
        char key[ENG_MAX_NAME + 16];
        snprintf(key, sizeof key, "%s%zu", name, c);
        if (attr_strings(obj, key, v + at, len, 0, width)) return -1;
        at += len;
    }
    return 0;
}

static int plan_add(eng_copy_plan *p, uint64_t dst, uint64_t src, uint64_t n)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        copy_region *r = realloc(p->r, cap * sizeof *r);
        if (!r) return -1;
        p->r = r;
        p->cap = cap;
    }
    p->r[p->n++] = (copy_region){dst, src, n};
    p->bytes += n;
    return 0;
}

/* One dataset `dname` below group g for tensor t: contiguous, allocated now,
 * never filled; its bytes are queued in the plan. */
static eng_code write_dataset(wr *w, hid_t g, const char *gpath, const char *dname,
                              const eng_tensor *t)
{
    eng_code rc = ENG_OK;
    hid_t sp = H5I_INVALID_HID, d = H5I_INVALID_HID, ty = H5I_INVALID_HID;
    hsize_t dims[ENG_MAX_RANK];
    if (t->dtype == ENG_DT_F16) {
        ty = H5Tcopy(H5T_IEEE_F32LE);
        if (ty < 0 || H5Tset_fields(ty, 15, 10, 5, 0, 10) < 0 || H5Tset_size(ty, 2) < 0 ||
            H5Tset_ebias(ty, 15) < 0) {
            rc = eng_h5_fail(w->err, ENG_ERR_INTERNAL, "cannot make the float16 type");
            goto out;
        }
    } else if (dtype_of(t->dtype) >= 0) {
        ty = H5Tcopy(dtype_of(t->dtype));
    }
    if (ty < 0) {
        rc = eng_h5_fail(w->err, ENG_ERR_FORMAT, "'%s/%s': dtype %s cannot be written", gpath,
                         dname, eng_dtype_name(t->dtype));
        goto out;
    }
    for (int i = 0; i < t->rank; i++) dims[i] = (hsize_t)t->shape[i];
    sp = t->rank ? H5Screate_simple(t->rank, dims, NULL) : H5Screate(H5S_SCALAR);
    if (sp < 0) {
        rc = eng_h5_fail(w->err, ENG_ERR_INTERNAL, "'%s/%s': cannot make the dataspace", gpath,
                         dname);
        goto out;
    }
    d = H5Dcreate2(g, dname, ty, sp, w->lcpl, w->dcpl_proto, H5P_DEFAULT);
    if (d < 0) {
        rc = eng_h5_fail(w->err, ENG_ERR_FORMAT, "cannot create dataset '%s/%s'", gpath, dname);
        goto out;
    }
    if (t->nbytes) {
        haddr_t off = H5Dget_offset(d);
        if (off == HADDR_UNDEF || t->offset == ENG_NO_OFFSET) {
            rc = eng_h5_fail(w->err, ENG_ERR_INTERNAL, "'%s/%s': no address for the data", gpath,
                             dname);
            goto out;
        }
        if (H5Dget_storage_size(d) != t->nbytes) {
            rc = eng_h5_fail(w->err, ENG_ERR_INTERNAL, "'%s/%s': %llu bytes allocated, %llu needed",
                             gpath, dname, (unsigned long long)H5Dget_storage_size(d),
                             (unsigned long long)t->nbytes);
            goto out;
        }
        if (plan_add(w->plan, (uint64_t)off, t->offset, t->nbytes)) {
            rc = eng_h5_fail(w->err, ENG_ERR_NOMEM, "out of memory");
            goto out;
        }
    }
out:
    close_id(&d, H5Dclose);
    close_id(&sp, H5Sclose);
    close_id(&ty, H5Tclose);
    return rc;
}

static eng_code write_layer(wr *w, const eng_out_layer *l, bool keras3)
{
    eng_code rc = ENG_OK;
    size_t nt = l->src ? l->src->ntensors : 0;
    hid_t g = group_at(w, l->name);
    if (g < 0) return eng_h5_fail(w->err, ENG_ERR_FORMAT, "cannot create group '%s'", l->name);
    if (keras3) {
        if (l->vars_name && attr_strings(g, "name", (const char *const *)&l->vars_name, 1, 1, 0)) {
            rc = eng_h5_fail(w->err, ENG_ERR_INTERNAL, "'%s': cannot write the name attribute",
                             l->name);
            goto out;
        }
    } else if (attr_list(g, "weight_names", (const char *const *)l->dnames, nt)) {
        rc = eng_h5_fail(w->err, ENG_ERR_INTERNAL, "'%s': cannot write weight_names", l->name);
        goto out;
    }
    for (size_t k = 0; k < nt && !rc; k++) {
        const char *slash = strrchr(l->dnames[k], '/');
        if (!slash) {
            rc = write_dataset(w, g, l->name, l->dnames[k], &l->src->tensors[k]);
            continue;
        }
        /* "conv2d_1/kernel:0": the intermediate groups first, ours (no timestamps) */
        char sub[ENG_H5_MAX_PATH + 1];
        int len = snprintf(sub, sizeof sub, "%s/%.*s", l->name, (int)(slash - l->dnames[k]),
                           l->dnames[k]);
        if (len < 0 || (size_t)len >= sizeof sub) {
            rc =
                eng_h5_fail(w->err, ENG_ERR_LIMIT, "'%s/%s': path too long", l->name, l->dnames[k]);
            break;
        }
        hid_t sg = group_at(w, sub);
        if (sg < 0) {
            rc = eng_h5_fail(w->err, ENG_ERR_FORMAT, "cannot create group '%s'", sub);
            break;
        }
        rc = write_dataset(w, sg, sub, slash + 1, &l->src->tensors[k]);
        H5Gclose(sg);
    }
out:
    H5Gclose(g);
    return rc;
}

eng_code eng_write_layout(const eng_out_spec *spec, const char *path, eng_copy_plan **out,
                          eng_error *err)
{
    eng_code rc = ENG_OK;
    wr w = {.file = H5I_INVALID_HID,
            .gcpl = H5I_INVALID_HID,
            .dcpl_proto = H5I_INVALID_HID,
            .lcpl = H5I_INVALID_HID,
            .err = err};
    hid_t fcpl = H5I_INVALID_HID, fapl = H5I_INVALID_HID, root = H5I_INVALID_HID;
    const char **names = NULL;

    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    if (!(w.plan = calloc(1, sizeof *w.plan)))
        return eng_h5_fail(err, ENG_ERR_NOMEM, "out of memory");
    fcpl = H5Pcreate(H5P_FILE_CREATE);
    fapl = H5Pcreate(H5P_FILE_ACCESS);
    w.gcpl = H5Pcreate(H5P_GROUP_CREATE);
    w.dcpl_proto = H5Pcreate(H5P_DATASET_CREATE);
    w.lcpl = H5Pcreate(H5P_LINK_CREATE);
    if (fcpl < 0 || fapl < 0 || w.gcpl < 0 || w.dcpl_proto < 0 || w.lcpl < 0 ||
        H5Pset_obj_track_times(fcpl, 0) < 0 || H5Pset_obj_track_times(w.gcpl, 0) < 0 ||
        H5Pset_obj_track_times(w.dcpl_proto, 0) < 0 ||
        H5Pset_layout(w.dcpl_proto, H5D_CONTIGUOUS) < 0 ||
        H5Pset_alloc_time(w.dcpl_proto, H5D_ALLOC_TIME_EARLY) < 0 ||
        H5Pset_fill_time(w.dcpl_proto, H5D_FILL_TIME_NEVER) < 0 ||
        H5Pset_create_intermediate_group(w.lcpl, 0) < 0 || H5Pset_fapl_sec2(fapl) < 0 ||
        H5Pset_file_locking(fapl, 0, 1) < 0) {
        rc = eng_h5_fail(err, ENG_ERR_INTERNAL, "cannot set up HDF5 property lists");
        goto out;
    }
    w.file = H5Fcreate(path, H5F_ACC_TRUNC, fcpl, fapl);
    if (w.file < 0) {
        rc = eng_h5_fail(err, ENG_ERR_IO, "cannot create '%s'", path);
        goto out;
    }
    root = H5Gopen2(w.file, "/", H5P_DEFAULT);
    if (root < 0) {
        rc = eng_h5_fail(err, ENG_ERR_INTERNAL, "cannot open the root group");
        goto out;
    }

    if (!spec->keras3) {
        names = calloc(spec->nlayers ? spec->nlayers : 1, sizeof *names);
        if (!names) {
            rc = eng_h5_fail(err, ENG_ERR_NOMEM, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < spec->nlayers; i++) names[i] = spec->layers[i].name;
        /* Keras' order: backend, keras_version, layer_names */
        if ((spec->backend &&
             attr_strings(root, "backend", (const char *const *)&spec->backend, 1, 1, 0)) ||
            (spec->keras_version &&
             attr_strings(root, "keras_version", (const char *const *)&spec->keras_version, 1, 1,
                          0)) ||
            attr_list(root, "layer_names", names, spec->nlayers)) {
            rc = eng_h5_fail(err, ENG_ERR_INTERNAL, "cannot write the root attributes");
            goto out;
        }
    } else {
        hid_t g = group_at(&w, "layers");
        if (g < 0) {
            rc = eng_h5_fail(err, ENG_ERR_INTERNAL, "cannot create group 'layers'");
            goto out;
        }
        H5Gclose(g);
    }
    for (size_t i = 0; i < spec->nlayers && !rc; i++)
        rc = write_layer(&w, &spec->layers[i], spec->keras3);
    if (rc) goto out;
    if (spec->keras3) {
        hid_t g = group_at(&w, "vars");
        if (g < 0) {
            rc = eng_h5_fail(err, ENG_ERR_INTERNAL, "cannot create group 'vars'");
            goto out;
        }
        int bad = spec->model_name &&
                  attr_strings(g, "name", (const char *const *)&spec->model_name, 1, 1, 0);
        H5Gclose(g);
        if (bad) {
            rc = eng_h5_fail(err, ENG_ERR_INTERNAL, "cannot write vars@name");
            goto out;
        }
    }
    close_id(&root, H5Gclose);
    herr_t e = H5Fclose(w.file);
    w.file = H5I_INVALID_HID;
    if (e < 0) {
        rc = eng_h5_fail(err, ENG_ERR_IO, "cannot finish '%s'", path);
        goto out;
    }
out:
    free(names);
    close_id(&root, H5Gclose);
    close_id(&w.file, H5Fclose);
    close_id(&fcpl, H5Pclose);
    close_id(&fapl, H5Pclose);
    close_id(&w.gcpl, H5Pclose);
    close_id(&w.dcpl_proto, H5Pclose);
    close_id(&w.lcpl, H5Pclose);
    if (rc) eng_copy_plan_free(w.plan);
    else *out = w.plan;
    return rc;
}

/* ---- data: pread/pwrite, one sha256 pass over the finished file ----------- */

static int cmp_region(const void *a, const void *b)
{
    const copy_region *x = a, *y = b;
    return x->dst < y->dst ? -1 : x->dst > y->dst;
}

static int pwrite_all(int fd, const unsigned char *p, size_t n, uint64_t off)
{
    while (n) {
        ssize_t k = pwrite(fd, p, n, (off_t)off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p += k;
        n -= (size_t)k;
        off += (uint64_t)k;
    }
    return 0;
}

/* Hash [from, to) of dst as libhdf5 left it (metadata; zeros past its end). */
static int hash_dst(int fd, EVP_MD_CTX *md, unsigned char *buf, uint64_t from, uint64_t to,
                    uint64_t size)
{
    while (from < to) {
        size_t k = to - from < COPY_CHUNK ? (size_t)(to - from) : COPY_CHUNK;
        size_t have = from >= size ? 0 : (size - from < k ? (size_t)(size - from) : k);
        if (have && eng_h5_pread_full(fd, buf, have, from) != 0) return -1;
        memset(buf + have, 0, k - have);
        EVP_DigestUpdate(md, buf, k);
        from += k;
    }
    return 0;
}

eng_code eng_write_data(int src_fd, int dst_fd, const eng_copy_plan *plan,
                        char etag[ENG_DIGEST_LEN], eng_error *err)
{
    eng_code rc = ENG_OK;
    unsigned char *buf = malloc(COPY_CHUNK);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    copy_region *r = NULL;
    struct stat st;
    if (!buf || !md || (plan->n && !(r = malloc(plan->n * sizeof *r)))) {
        rc = eng_h5_fail(err, ENG_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (fstat(dst_fd, &st) != 0 || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        rc = eng_h5_fail(err, ENG_ERR_IO, "cannot read the derived file");
        goto out;
    }
    if (plan->n) memcpy(r, plan->r, plan->n * sizeof *r);
    qsort(r, plan->n, sizeof *r, cmp_region);
    uint64_t meta_size = (uint64_t)st.st_size, pos = 0, end = meta_size;
    for (size_t i = 0; i < plan->n; i++) {
        if (r[i].dst < pos) {
            rc = eng_h5_fail(err, ENG_ERR_INTERNAL, "overlapping datasets in the plan");
            goto out;
        }
        if (r[i].dst + r[i].n > end) end = r[i].dst + r[i].n;
    }
    for (size_t i = 0; i <= plan->n; i++) {
        uint64_t next = i < plan->n ? r[i].dst : end;
        if (hash_dst(dst_fd, md, buf, pos, next, meta_size)) {
            rc = eng_h5_fail(err, ENG_ERR_IO, "cannot read the derived file");
            goto out;
        }
        if (i == plan->n) break;
        for (uint64_t done = 0; done < r[i].n;) {
            size_t k = r[i].n - done < COPY_CHUNK ? (size_t)(r[i].n - done) : COPY_CHUNK;
            int e = eng_h5_pread_full(src_fd, buf, k, r[i].src + done);
            if (e != 0) {
                rc = eng_h5_fail(err, ENG_ERR_IO, "cannot read the upload: %s",
                                 e > 0 ? "it ends early" : strerror(errno));
                goto out;
            }
            if (pwrite_all(dst_fd, buf, k, r[i].dst + done)) {
                rc = eng_h5_fail(err, ENG_ERR_IO, "cannot write the derived file: %s",
                                 strerror(errno));
                goto out;
            }
            EVP_DigestUpdate(md, buf, k);
            done += k;
        }
        pos = r[i].dst + r[i].n;
    }
    if (end > meta_size && ftruncate(dst_fd, (off_t)end) != 0) {
        rc = eng_h5_fail(err, ENG_ERR_IO, "cannot size the derived file: %s", strerror(errno));
        goto out;
    }
    unsigned char dg[EVP_MAX_MD_SIZE];
    unsigned dl = 0;
    if (EVP_DigestFinal_ex(md, dg, &dl) != 1 || dl != 32) {
        rc = eng_h5_fail(err, ENG_ERR_INTERNAL, "sha256 failed");
        goto out;
    }
    eng_h5_digest_text(dg, etag);
out:
    free(r);
    free(buf);
    EVP_MD_CTX_free(md);
    return rc;
}

/* ---- the skeleton: the derived file without its tensor bytes --------------- */

static char write_id[64];

static void write_id_init(void)
{
    unsigned maj = 0, min = 0, rel = 0;
    H5get_libversion(&maj, &min, &rel);
    snprintf(write_id, sizeof write_id, "%s hdf5-%u.%u.%u", ENG_WRITE_VERSION, maj, min, rel);
}

const char *eng_write_id(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, write_id_init);
    return write_id;
}

/* Append a piece; one that continues the previous piece of the same source
 * merges with it (in the output they are adjacent by construction). */
static void piece_add(eng_piece *p, size_t *n, eng_piece_source source, uint64_t off, uint64_t len)
{
    if (!len) return;
    eng_piece *last = *n ? &p[*n - 1] : NULL;
    if (last && last->source == source && last->off + last->len == off) last->len += len;
    else p[(*n)++] = (eng_piece){source, off, len};
}

/* Move [from, from+n) of fd to `to` (to <= from: each chunk is read before
 * anything at or past it is written). Bytes past `size` read as zeros, as
 * they do in the file libhdf5 left. */
static int move_down(int fd, unsigned char *buf, uint64_t from, uint64_t to, uint64_t n,
                     uint64_t size)
{
    for (uint64_t done = 0; done < n;) {
        size_t k = n - done < COPY_CHUNK ? (size_t)(n - done) : COPY_CHUNK;
        uint64_t at = from + done;
        size_t have = at >= size ? 0 : (size - at < k ? (size_t)(size - at) : k);
        if (have && eng_h5_pread_full(fd, buf, have, at) != 0) return -1;
        memset(buf + have, 0, k - have);
        if (to + done != at && pwrite_all(fd, buf, k, to + done)) return -1;
        done += k;
    }
    return 0;
}

eng_code eng_write_skeleton(int fd, const eng_copy_plan *plan, eng_piece **out, size_t *nout,
                            uint64_t *total, eng_error *err)
{
    eng_code rc = ENG_OK;
    unsigned char *buf = malloc(COPY_CHUNK);
    copy_region *r = NULL;
    eng_piece *p = calloc(2 * plan->n + 1, sizeof *p);
    size_t np = 0;
    struct stat st;
    if (!buf || !p || (plan->n && !(r = malloc(plan->n * sizeof *r)))) {
        rc = eng_h5_fail(err, ENG_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (fstat(fd, &st) != 0) {
        rc = eng_h5_fail(err, ENG_ERR_IO, "cannot read the derived file: %s", strerror(errno));
        goto out;
    }
    if (plan->n) memcpy(r, plan->r, plan->n * sizeof *r);
    qsort(r, plan->n, sizeof *r, cmp_region);
    uint64_t layout_size = (uint64_t)st.st_size, pos = 0, end = layout_size, w = 0;
    for (size_t i = 0; i < plan->n; i++) {
        if (r[i].dst < (i ? r[i - 1].dst + r[i - 1].n : 0)) {
            rc = eng_h5_fail(err, ENG_ERR_INTERNAL, "overlapping datasets in the plan");
            goto out;
        }
        if (r[i].dst + r[i].n > end) end = r[i].dst + r[i].n;
    }
    for (size_t i = 0; i <= plan->n; i++) {
        uint64_t next = i < plan->n ? r[i].dst : end;
        if (move_down(fd, buf, pos, w, next - pos, layout_size)) {
            rc = eng_h5_fail(err, ENG_ERR_IO, "cannot compact the derived file: %s",
                             strerror(errno));
            goto out;
        }
        piece_add(p, &np, ENG_PIECE_SKELETON, w, next - pos);
        w += next - pos;
        if (i == plan->n) break;
        piece_add(p, &np, ENG_PIECE_SOURCE, r[i].src, r[i].n);
        pos = r[i].dst + r[i].n;
    }
    if (ftruncate(fd, (off_t)w) != 0) {
        rc = eng_h5_fail(err, ENG_ERR_IO, "cannot size the skeleton: %s", strerror(errno));
        goto out;
    }
    *out = p;
    *nout = np;
    *total = end;
    p = NULL;
out:
    free(p);
    free(r);
    free(buf);
    return rc;
}
