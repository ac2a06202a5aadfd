/* engine/transfer.c — transfer learning on a weight file's summary: the
 * version's layers as the API names them (the view), the selection of a
 * partial set (?layers= ?exclude= ?for=), the compatibility report, per
 * weight statistics, per layer diffs, and the spec of a derived file in
 * either Keras layout.
 *
 * Owns eng_view_*, eng_select, eng_compat_json, eng_layer_scan,
 * eng_layer_diff, eng_derive_spec. Does not own the matching rule
 * (validate.c: eng_fit_layers — every decision here that pairs an
 * architecture layer with a file layer goes through it) nor HDF5 writing
 * (write.c). Tensor data is read with pread through the summary's offsets;
 * no libhdf5 here.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

#include "arch_int.h"
#include "h5_int.h"
#include "layers.h"

#define SCAN_ELEMS (1u << 18) /* floats per chunk while scanning: 1 MiB, bounded memory */

static bool is_legacy(const eng_summary *s)
{
    return s->format == ENG_FMT_KERAS2_WEIGHTS || s->format == ENG_FMT_KERAS2_MODEL;
}

/* ---- the view ------------------------------------------------------------------ */

void eng_view_free(eng_view *v)
{
    if (!v) return;
    free(v->layers);
    free(v->model_name);
    free(v);
}

static char *config_name(const eng_arch *a)
{
    json_t *j = json_loads(a->canonical, 0, NULL);
    const char *n = json_string_value(json_object_get(json_object_get(j, "config"), "name"));
    char *out = n && *n && strlen(n) <= ENG_MAX_NAME ? strdup(n) : NULL;
    json_decref(j);
    return out;
}

eng_code eng_view_build(const eng_arch *a, const eng_summary *s, eng_view **out, eng_error *err)
{
    eng_fit *fits = NULL;
    size_t nfits = 0;
    eng_code rc = ENG_OK;
    eng_view *v = calloc(1, sizeof *v);
    size_t cap = s->nlayers + (a ? (size_t)a->nlayers : 0);
    if (!v || !(v->layers = calloc(cap ? cap : 1, sizeof *v->layers))) {
        rc = eng_arch_fail(err, ENG_ERR_NOMEM, NULL, "out of memory");
        goto out;
    }
    bool *claimed = NULL;
    if (a) {
        if ((rc = eng_fit_layers(a, s, &fits, &nfits, err))) goto out;
        v->model_name = config_name(a);
        for (size_t i = 0; i < nfits; i++) {
            const eng_layer *L = &a->layers[i];
            /* an InputLayer the file does not hold is not a layer of the file */
            if (!fits[i].file && (L->kind->flags & ENG_K_INPUT)) continue;
            eng_vlayer *x = &v->layers[v->n++];
            x->name = L->name;
            x->cls = L->cls;
            x->k3name = L->k3name[0] ? L->k3name : NULL;
            x->file = fits[i].file;
            x->L = L;
            x->nwnames = L->nw < ENG_MAX_WEIGHTS ? L->nw : ENG_MAX_WEIGHTS;
            for (int w = 0; w < x->nwnames; w++) x->wname[w] = L->w[w].name;
        }
    }
    claimed = calloc(s->nlayers ? s->nlayers : 1, sizeof *claimed);
    if (!claimed) {
        rc = eng_arch_fail(err, ENG_ERR_NOMEM, NULL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < v->n; i++)
        if (v->layers[i].file) claimed[v->layers[i].file - s->layers] = true;
    for (size_t k = 0; k < s->nlayers; k++) {
        if (claimed[k]) continue;
        /* Keras 3's own root vars ("/") holds no layer */
        if (!is_legacy(s) && !strcmp(s->layers[k].name, "/") && !s->layers[k].ntensors) continue;
        eng_vlayer *x = &v->layers[v->n++];
        x->name = s->layers[k].name;
        x->file = &s->layers[k];
    }
    free(claimed);
out:
    free(fits);
    if (rc) eng_view_free(v);
    else *out = v;
    return rc;
}

static long view_find(const eng_view *v, const char *name, size_t len)
{
    for (size_t i = 0; i < v->n; i++)
        if (strlen(v->layers[i].name) == len && !memcmp(v->layers[i].name, name, len))
            return (long)i;
    return -1;
}

/* Mark the names of a comma list in mark[]; unknown names into unknown[]. */
static int mark_list(const eng_view *v, const char *list, bool *mark, json_t *unknown)
{
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        while (len && (*p == ' ')) {
            p++;
            len--;
        }
        while (len && p[len - 1] == ' ') len--;
        if (len) {
            long i = view_find(v, p, len);
            if (i >= 0 && v->layers[i].file) mark[i] = true;
            else if (json_array_append_new(unknown, json_stringn(p, len))) return -1;
        }
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

eng_code eng_select(const eng_view *v, const eng_summary *s, const char *layers,
                    const char *exclude, const eng_arch *target, bool *chosen, eng_error *err)
{
    eng_code rc = ENG_OK;
    eng_fit *fits = NULL;
    size_t nfits = 0;
    bool *inc = calloc(v->n ? v->n : 1, sizeof *inc), *exc = calloc(v->n ? v->n : 1, sizeof *exc);
    json_t *unknown = json_array();
    if (!inc || !exc || !unknown) {
        rc = eng_arch_fail(err, ENG_ERR_NOMEM, NULL, "out of memory");
        goto out;
    }
    if ((layers && mark_list(v, layers, inc, unknown)) ||
        (exclude && mark_list(v, exclude, exc, unknown))) {
        rc = eng_arch_fail(err, ENG_ERR_NOMEM, NULL, "out of memory");
        goto out;
    }
    if (json_array_size(unknown)) {
        json_t *valid = json_array();
        for (size_t i = 0; i < v->n; i++)
            if (v->layers[i].file) json_array_append_new(valid, json_string(v->layers[i].name));
        const char *first = json_string_value(json_array_get(unknown, 0));
        rc = eng_arch_fail(
            err, ENG_ERR_INPUT, json_pack("{s:O, s:o}", "unknown", unknown, "valid", valid),
            "layer '%.200s' is not a layer of this version; details.valid lists the layers it has",
            first ? first : "?");
        goto out;
    }
    for (size_t i = 0; i < v->n; i++) chosen[i] = v->layers[i].file != NULL;
    if (target) {
        if ((rc = eng_fit_layers(target, s, &fits, &nfits, err))) goto out;
        for (size_t i = 0; i < v->n; i++) {
            bool fit = false;
            for (size_t k = 0; k < nfits && !fit; k++)
                fit = fits[k].status == ENG_FIT_MATCH && fits[k].nweights > 0 &&
                      fits[k].file == v->layers[i].file;
            chosen[i] = chosen[i] && fit;
        }
    }
    for (size_t i = 0; i < v->n; i++) {
        if (layers && !inc[i]) chosen[i] = false;
        if (exclude && exc[i]) chosen[i] = false;
    }
out:
    free(fits);
    free(inc);
    free(exc);
    json_decref(unknown);
    return rc;
}

/* ---- compatibility ------------------------------------------------------------- */

static json_t *dims(const int64_t *d, int rank)
{
    json_t *j = json_array();
    for (int i = 0; i < rank; i++) json_array_append_new(j, json_integer(d[i]));
    return j;
}

eng_code eng_compat_json(const eng_arch *target, const eng_summary *s, const eng_view *v,
                         json_t **out, eng_error *err)
{
    eng_fit *fits = NULL;
    size_t nfits = 0;
    eng_code rc = eng_fit_layers(target, s, &fits, &nfits, err);
    if (rc) return rc;
    json_t *layers = json_array(), *unused = json_array();
    bool *used = calloc(s->nlayers ? s->nlayers : 1, sizeof *used);
    if (!layers || !unused || !used) {
        rc = eng_arch_fail(err, ENG_ERR_NOMEM, NULL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < nfits; i++) {
        const eng_fit *f = &fits[i];
        if (f->file) used[f->file - s->layers] = true;
        if (f->nweights == 0) continue; /* weightless target layers are not listed */
        json_t *o = NULL;
        switch (f->status) {
        case ENG_FIT_MATCH: o = json_pack("{s:s, s:s}", "name", f->name, "status", "match"); break;
        case ENG_FIT_MISSING:
            o = json_pack("{s:s, s:s}", "name", f->name, "status", "missing");
            break;
        case ENG_FIT_COUNT:
            o = json_pack("{s:s, s:s, s:s, s:i, s:I}", "name", f->name, "status", "shape_mismatch",
                          "problem", "weight_count", "expected", f->nweights, "found",
                          (json_int_t)f->file->ntensors);
            break;
        default: { /* the first weight that does not fit */
            int w = 0;
            while (w < f->nweights - 1 && !(((f->bad_shape | f->bad_dtype) >> w) & 1u)) w++;
            const eng_tensor *t = &f->file->tensors[w];
            if ((f->bad_shape >> w) & 1u)
                o = json_pack("{s:s, s:s, s:s, s:o, s:o}", "name", f->name, "status",
                              "shape_mismatch", "weight", f->wname[w], "expected",
                              dims(f->expected[w], f->rank[w]), "found", dims(t->shape, t->rank));
            else
                o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "name", f->name, "status",
                              "shape_mismatch", "weight", f->wname[w], "problem", "dtype",
                              "expected", "float32", "found", eng_dtype_name(t->dtype));
        }
        }
        if (!o || json_array_append_new(layers, o)) {
            rc = eng_arch_fail(err, ENG_ERR_NOMEM, NULL, "out of memory");
            goto out;
        }
    }
    for (size_t i = 0; i < v->n; i++) {
        const eng_wlayer *wl = v->layers[i].file;
        if (wl && wl->ntensors && !used[wl - s->layers] &&
            json_array_append_new(unused, json_string(v->layers[i].name))) {
            rc = eng_arch_fail(err, ENG_ERR_NOMEM, NULL, "out of memory");
            goto out;
        }
    }
    *out = json_pack("{s:O, s:O, s:s}", "layers", layers, "unused", unused, "with",
                     eng_arch_id(target));
    if (!*out) rc = eng_arch_fail(err, ENG_ERR_NOMEM, NULL, "out of memory");
out:
    free(fits);
    free(used);
    json_decref(layers);
    json_decref(unused);
    return rc;
}

/* ---- statistics and diffs ------------------------------------------------------ */

/* Read elements [at, at+k) of t as float32 into dst (the summary's reader on
 * a slice of the tensor). */
static eng_code read_slice(int fd, const eng_tensor *t, uint64_t at, size_t k, float *dst,
                           eng_error *err)
{
    eng_tensor s = *t;
    size_t dsz = eng_h5_dtype_size(t->dtype);
    s.rank = 1;
    s.shape[0] = (int64_t)k;
    s.offset = t->offset + at * dsz;
    s.nbytes = (uint64_t)k * dsz;
    return eng_tensor_read_f32(fd, &s, dst, k, err);
}

eng_code eng_layer_scan(int fd, const eng_wlayer *wl, char digest[ENG_DIGEST_LEN],
                        eng_wstats *stats, eng_error *err)
{
    eng_code rc = ENG_OK;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char *raw = malloc((size_t)SCAN_ELEMS * 8);
    float *f = malloc((size_t)SCAN_ELEMS * sizeof *f);
    digest[0] = 0;
    if (!md || !raw || !f || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        rc = eng_arch_fail(err, ENG_ERR_NOMEM, NULL, "out of memory");
        goto out;
    }
    for (size_t k = 0; k < wl->ntensors; k++) {
        const eng_tensor *t = &wl->tensors[k];
        eng_wstats *st = &stats[k];
        size_t dsz = eng_h5_dtype_size(t->dtype);
        uint64_t n = eng_h5_elements(t);
        double sum = 0, sum2 = 0, shift = 0;
        bool first = true;
        memset(st, 0, sizeof *st);
        st->min = NAN;
        st->max = NAN;
        st->mean = NAN;
        st->std = NAN;
        if (t->nbytes && t->offset == ENG_NO_OFFSET) {
            rc = eng_arch_fail(err, ENG_ERR_FORMAT, NULL,
                               "layer '%s': tensor '%s' has no contiguous data", wl->name, t->name);
            goto out;
        }
        if (dsz == 0) { /* hash only */
            for (uint64_t done = 0; done < t->nbytes;) {
                size_t c = t->nbytes - done < (uint64_t)SCAN_ELEMS * 8 ? (size_t)(t->nbytes - done)
                                                                       : (size_t)SCAN_ELEMS * 8;
                if (eng_h5_pread_full(fd, raw, c, t->offset + done)) {
                    rc = eng_arch_fail(err, ENG_ERR_IO, NULL, "layer '%s': cannot read '%s'",
                                       wl->name, t->name);
                    goto out;
                }
                EVP_DigestUpdate(md, raw, c);
                done += c;
            }
            continue;
        }
        for (uint64_t at = 0; at < n;) {
            size_t c = n - at < SCAN_ELEMS ? (size_t)(n - at) : SCAN_ELEMS;
            if (eng_h5_pread_full(fd, raw, c * dsz, t->offset + at * dsz)) {
                rc = eng_arch_fail(err, ENG_ERR_IO, NULL, "layer '%s': cannot read '%s'", wl->name,
                                   t->name);
                goto out;
            }
            EVP_DigestUpdate(md, raw, c * dsz);
            if ((rc = read_slice(fd, t, at, c, f, err))) goto out; /* page cache: the same bytes */
            for (size_t i = 0; i < c; i++) {
                double x = f[i];
                if (!isfinite(x)) {
                    st->nonfinite++;
                    continue;
                }
                if (first) {
                    shift = x;
                    st->min = st->max = x;
                    first = false;
                }
                if (x < st->min) st->min = x;
                if (x > st->max) st->max = x;
                sum += x - shift; /* shifted sums: stable for large means */
                sum2 += (x - shift) * (x - shift);
                st->count++;
            }
            at += c;
        }
        if (st->count) {
            double m = sum / (double)st->count;
            st->mean = shift + m;
            double var = sum2 / (double)st->count - m * m;
            st->std = sqrt(var > 0 ? var : 0);
        }
    }
    if (wl->ntensors) {
        unsigned char dg[EVP_MAX_MD_SIZE];
        unsigned dl = 0;
        EVP_DigestFinal_ex(md, dg, &dl);
        if (dl == 32) eng_h5_digest_text(dg, digest);
    }
out:
    EVP_MD_CTX_free(md);
    free(raw);
    free(f);
    return rc;
}

eng_code eng_layer_diff(int fd_a, const eng_wlayer *a, int fd_b, const eng_wlayer *b,
                        eng_diff_status *status, double *l2, double *norm_a, double *max_abs,
                        eng_error *err)
{
    eng_code rc = ENG_OK;
    float *fa = NULL, *fb = NULL;
    double d2 = 0, a2 = 0, mx = 0;
    bool differ = false;
    if (a->ntensors != b->ntensors) {
        *status = ENG_DIFF_SHAPE;
        return ENG_OK;
    }
    for (size_t k = 0; k < a->ntensors; k++) {
        const eng_tensor *x = &a->tensors[k], *y = &b->tensors[k];
        bool same = x->rank == y->rank;
        for (int d = 0; same && d < x->rank; d++) same = x->shape[d] == y->shape[d];
        if (!same) {
            *status = ENG_DIFF_SHAPE;
            return ENG_OK;
        }
    }
    fa = malloc((size_t)SCAN_ELEMS * sizeof *fa);
    fb = malloc((size_t)SCAN_ELEMS * sizeof *fb);
    if (!fa || !fb) {
        rc = eng_arch_fail(err, ENG_ERR_NOMEM, NULL, "out of memory");
        goto out;
    }
    for (size_t k = 0; k < a->ntensors; k++) {
        const eng_tensor *x = &a->tensors[k], *y = &b->tensors[k];
        uint64_t n = eng_h5_elements(x);
        if (n && (!eng_h5_dtype_size(x->dtype) || !eng_h5_dtype_size(y->dtype))) {
            rc = eng_arch_fail(err, ENG_ERR_WEIGHTS, NULL,
                               "layer '%s': tensor '%s' has dtype %s, not a number type", a->name,
                               x->name,
                               eng_dtype_name(eng_h5_dtype_size(x->dtype) ? y->dtype : x->dtype));
            goto out;
        }
        for (uint64_t at = 0; at < n;) {
            size_t c = n - at < SCAN_ELEMS ? (size_t)(n - at) : SCAN_ELEMS;
            if ((rc = read_slice(fd_a, x, at, c, fa, err)) ||
                (rc = read_slice(fd_b, y, at, c, fb, err)))
                goto out;
            for (size_t i = 0; i < c; i++) {
                double va = fa[i], vb = fb[i];
                if (va == vb || (isnan(va) && isnan(vb))) {
                    a2 += isfinite(va) ? va * va : 0;
                    continue;
                }
                differ = true;
                double d = fabs(vb - va);
                if (d > mx || isnan(d)) mx = d;
                d2 += d * d;
                a2 += isfinite(va) ? va * va : 0;
            }
            at += c;
        }
    }
    *status = differ ? ENG_DIFF_CHANGED : ENG_DIFF_IDENTICAL;
    *l2 = sqrt(d2);
    *norm_a = sqrt(a2);
    *max_abs = mx;
out:
    free(fa);
    free(fb);
    return rc;
}

/* ---- the spec of a derived file ------------------------------------------------ */

static char *dup_or_null(const char *p)
{
    return p ? strdup(p) : NULL;
}

static char *join(const char *a, const char *b, const char *c)
{
    size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s%s%s", a, b, c);
    return p;
}

/* The vars group of a Keras 3 file layer: where its tensors are, else
 * layers/<name>/vars. */
static char *k3_group_of(const eng_wlayer *wl)
{
    if (wl->ntensors && wl->tensors[0].path) {
        const char *p = wl->tensors[0].path, *slash = strrchr(p, '/');
        if (slash) return strndup(p, (size_t)(slash - p));
    }
    return join("layers/", wl->name, "/vars");
}

eng_code eng_derive_spec(const eng_view *v, const eng_summary *s, const bool *chosen, bool keras3,
                         eng_out_spec *spec, eng_error *err)
{
    eng_code rc = ENG_OK;
    bool src_k3 = !is_legacy(s);
    bool convert = src_k3 != keras3;
    memset(spec, 0, sizeof *spec);
    spec->keras3 = keras3;
    size_t n = 0;
    for (size_t i = 0; i < v->n; i++)
        if (chosen[i]) n++;
    if (!(spec->layers = calloc(n ? n : 1, sizeof *spec->layers))) goto nomem;
    if (!keras3) {
        /* root attributes as the upload had them; a Keras 3 source has none */
        spec->backend = dup_or_null(s->backend ? s->backend : (convert ? "tensorflow" : NULL));
        const char *kv = s->keras_version; /* a Keras 3 .weights.h5 stores none: say "3.0.0" */
        spec->keras_version = dup_or_null(kv ? kv : (convert ? "3.0.0" : NULL));
        if ((s->backend || convert) && !spec->backend) goto nomem;
        if ((kv || convert) && !spec->keras_version) goto nomem;
    } else if (v->model_name && !(spec->model_name = strdup(v->model_name))) {
        goto nomem;
    }
    for (size_t i = 0; i < v->n; i++) {
        if (!chosen[i]) continue;
        const eng_vlayer *x = &v->layers[i];
        const eng_wlayer *wl = x->file;
        eng_out_layer *o = &spec->layers[spec->nlayers++];
        o->src = wl;
        if (convert && !x->L) {
            rc = eng_arch_fail(
                err, ENG_ERR_INPUT, json_pack("{s:s}", "layer", x->name),
                "layer '%s' is not a layer of the model's architecture, so its %s name is unknown; "
                "converting the layout needs the architecture",
                x->name, keras3 ? "Keras 3" : "Keras 2");
            goto out;
        }
        if (convert && x->L && eng_layer_th_kernel(x->L, s)) {
            rc = eng_arch_fail(
                err, ENG_ERR_INPUT, json_pack("{s:s}", "layer", x->name),
                "layer '%s' stores a Keras 1 Theano-layout kernel; converting it to Keras 3 is not supported",
                x->name);
            goto out;
        }
        size_t nt = wl ? wl->ntensors : 0;
        if (nt && !(o->dnames = calloc(nt, sizeof *o->dnames))) goto nomem;
        if (keras3) {
            if (!convert) {
                o->name = k3_group_of(wl);
                o->vars_name = dup_or_null(wl->attr_name);
                if (wl->attr_name && !o->vars_name) goto nomem;
            } else {
                if (!x->k3name) {
                    rc = eng_arch_fail(err, ENG_ERR_INPUT, json_pack("{s:s}", "layer", x->name),
                                       "layer '%s' has no Keras 3 group name in the architecture",
                                       x->name);
                    goto out;
                }
                o->name = join("layers/", x->k3name, "/vars");
                if (!(o->vars_name = strdup(x->name))) goto nomem;
            }
            if (!o->name) goto nomem;
            for (size_t k = 0; k < nt; k++) {
                char idx[24];
                snprintf(idx, sizeof idx, "%zu", k);
                if (!(o->dnames[k] = strdup(idx))) goto nomem;
            }
        } else {
            if (!(o->name = strdup(x->name))) goto nomem;
            for (size_t k = 0; k < nt; k++) {
                if (!convert) o->dnames[k] = strdup(wl->tensors[k].name);
                else {
                    /* tf.keras naming: <layer>/<weight>:0 */
                    char *w = (int)k < x->nwnames ? join(x->name, "/", x->wname[k]) : NULL;
                    char idx[24];
                    if (!w) {
                        snprintf(idx, sizeof idx, "/%zu", k);
                        w = join(x->name, idx, "");
                    }
                    o->dnames[k] = w ? join(w, ":0", "") : NULL;
                    free(w);
                }
                if (!o->dnames[k]) goto nomem;
            }
        }
    }
    return ENG_OK;
nomem:
    rc = eng_arch_fail(err, ENG_ERR_NOMEM, NULL, "out of memory");
out:
    eng_out_spec_release(spec);
    return rc;
}
