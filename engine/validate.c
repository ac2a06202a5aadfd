/* engine/validate.c — check a weight file against an architecture.
 *
 * Owns eng_validate and eng_fit_layers, THE layer-matching rule (which file
 * layer an architecture layer maps to, weight count, stored shapes, dtypes)
 * that upload validation, ?for= and compatibility (transfer.c) all use.
 * Validation = the fits' problems + the file layers no architecture layer
 * claims ("unexpected") + NaN/Inf found while forward.c's eng_model_build
 * reads the weights + the probe forward pass; then the contract's layers
 * array with per-layer digests. Every problem is listed, not only the first.
 *
 * Probe input (documented, fixed): one sample, x[i] = 0.5 * sin(0.1 * i) for
 * i = 0 … input_size-1 in the architecture's input layout; every output must
 * be finite. probe_output holds the first (up to) 16 output values.
 * Digest of a layer: sha256 over its tensors' raw bytes as stored in the
 * file, in the file's weight order (read with pread; NULL without weights).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arch_int.h"

#define PROBE_VALUES 16

/* ---- THE matching rule ------------------------------------------------------ */

eng_code eng_fit_layers(const eng_arch *a, const eng_summary *s, eng_fit **out, size_t *n,
                        eng_error *err)
{
    if (!a || !s || !out || !n)
        return eng_arch_fail(err, ENG_ERR_INTERNAL, NULL, "eng_fit_layers: NULL argument");
    eng_fit *f = calloc(a->nlayers > 0 ? (size_t)a->nlayers : 1, sizeof *f);
    if (!f) return eng_arch_fail(err, ENG_ERR_NOMEM, NULL, "out of memory");
    bool legacy = s->format == ENG_FMT_KERAS2_WEIGHTS || s->format == ENG_FMT_KERAS2_MODEL;
    for (int i = 0; i < a->nlayers; i++) {
        const eng_layer *L = &a->layers[i];
        eng_fit *x = &f[i];
        bool th = eng_layer_th_kernel(L, s);
        x->name = L->name;
        x->cls = L->cls;
        x->file_name = legacy ? L->name : L->k3name;
        x->file = eng_map_layer(L, s);
        x->nweights = L->nw;
        for (int w = 0; w < L->nw && w < ENG_MAX_WEIGHTS; w++) {
            x->wname[w] = L->w[w].name;
            x->rank[w] = L->w[w].rank;
            for (int d = 0; d < L->w[w].rank && d < 4; d++) x->expected[w][d] = L->w[w].shape[d];
            if (th && w == 0 && L->w[0].rank == 4) { /* (kh,kw,in,out) stored as (out,in,kh,kw) */
                x->expected[0][0] = L->w[0].shape[3];
                x->expected[0][1] = L->w[0].shape[2];
                x->expected[0][2] = L->w[0].shape[0];
                x->expected[0][3] = L->w[0].shape[1];
            }
        }
        if (!x->file) {
            x->status = L->nw ? ENG_FIT_MISSING : ENG_FIT_WEIGHTLESS;
            continue;
        }
        if (x->file->ntensors != (size_t)L->nw) {
            x->status = ENG_FIT_COUNT;
            continue;
        }
        if (L->nw == 0) {
            x->status = ENG_FIT_WEIGHTLESS;
            continue;
        }
        for (int w = 0; w < L->nw && w < ENG_MAX_WEIGHTS; w++) {
            const eng_tensor *t = &x->file->tensors[w];
            bool same = t->rank == x->rank[w];
            for (int d = 0; same && d < t->rank; d++) same = t->shape[d] == x->expected[w][d];
            if (!same) x->bad_shape |= 1u << w;
            if (t->dtype != ENG_DT_F32 && t->dtype != ENG_DT_F64 && t->dtype != ENG_DT_F16)
                x->bad_dtype |= 1u << w;
        }
        x->status = x->bad_shape || x->bad_dtype ? ENG_FIT_MISMATCH : ENG_FIT_MATCH;
    }
    *out = f;
    *n = (size_t)a->nlayers;
    return ENG_OK;
}

static json_t *dims(const int64_t *d, int rank)
{
    json_t *j = json_array();
    for (int i = 0; i < rank; i++) json_array_append_new(j, json_integer(d[i]));
    return j;
}

/* The validation problems of one fit (nothing for MATCH / WEIGHTLESS). */
static int fit_problems(const eng_fit *x, bool legacy, json_t *problems)
{
    json_t *p;
    switch (x->status) {
    case ENG_FIT_MISSING:
        p = json_pack("{s:s, s:s}", "layer", x->name, "problem", "missing");
        if (p && !legacy) json_object_set_new(p, "file_name", json_string(x->file_name));
        return p ? json_array_append_new(problems, p) : -1;
    case ENG_FIT_COUNT:
        p = json_pack("{s:s, s:s, s:i, s:I}", "layer", x->name, "problem", "weight_count",
                      "expected", x->nweights, "found", (json_int_t)x->file->ntensors);
        return p ? json_array_append_new(problems, p) : -1;
    case ENG_FIT_MISMATCH:
        for (int w = 0; w < x->nweights && w < ENG_MAX_WEIGHTS; w++) {
            const eng_tensor *t = &x->file->tensors[w];
            if ((x->bad_shape >> w) & 1u) {
                p = json_pack("{s:s, s:s, s:o, s:o}", "layer", x->name, "weight", x->wname[w],
                              "expected", dims(x->expected[w], x->rank[w]), "found",
                              dims(t->shape, t->rank));
                if (!p || json_array_append_new(problems, p)) return -1;
            }
            if ((x->bad_dtype >> w) & 1u) {
                p = json_pack("{s:s, s:s, s:s, s:s, s:s}", "layer", x->name, "weight", x->wname[w],
                              "problem", "dtype", "expected", "float32", "found",
                              eng_dtype_name(t->dtype));
                if (!p || json_array_append_new(problems, p)) return -1;
            }
        }
        return 0;
    default: return 0;
    }
}

static json_t *layers_json(const eng_arch *a, const eng_summary *s, int fd, eng_error *err)
{
    json_t *arr = json_array();
    unsigned char *want = calloc(s->nlayers ? s->nlayers : 1, 1);
    char(*hex)[ENG_DIGEST_LEN] = malloc((s->nlayers ? s->nlayers : 1) * sizeof *hex);
    if (!arr || !want || !hex) goto nomem;
    for (int i = 0; i < a->nlayers; i++) { /* digests of the layers the model uses */
        const eng_wlayer *wl = a->layers[i].nw ? eng_map_layer(&a->layers[i], s) : NULL;
        if (wl) want[wl - s->layers] = 1;
    }
    if (eng_summary_layer_digests(fd, s, want, hex, err)) goto fail;
    for (int i = 0; i < a->nlayers; i++) {
        const eng_layer *L = &a->layers[i];
        const eng_wlayer *wl = L->nw ? eng_map_layer(L, s) : NULL;
        json_t *ws = json_array();
        json_int_t params = 0;
        if (!ws) goto nomem;
        if (wl) {
            for (size_t t = 0; t < wl->ntensors; t++) {
                const eng_tensor *ts = &wl->tensors[t];
                json_t *shape = json_array();
                json_int_t n = 1;
                for (int d = 0; d < ts->rank; d++) {
                    json_array_append_new(shape, json_integer(ts->shape[d]));
                    n *= ts->shape[d];
                }
                params += n;
                json_array_append_new(
                    ws, json_pack("{s:s, s:o, s:s}", "name",
                                  (int)t < L->nw ? L->w[t].name : (ts->name ? ts->name : "?"),
                                  "shape", shape, "dtype", eng_dtype_name(ts->dtype)));
            }
        }
        const char *digest = wl && hex[wl - s->layers][0] ? hex[wl - s->layers] : NULL;
        json_t *o = json_pack("{s:s, s:s, s:s?, s:I, s:o}", "name", L->name, "class", L->cls,
                              "digest", digest, "params", params, "weights", ws);
        if (!o || json_array_append_new(arr, o)) goto nomem;
    }
    free(want);
    free(hex);
    return arr;
nomem:
    eng_arch_fail(err, ENG_ERR_NOMEM, NULL, "out of memory");
fail:
    free(want);
    free(hex);
    json_decref(arr);
    return NULL;
}

eng_code eng_validate(const eng_arch *a, const eng_summary *s, int fd, json_t **report,
                      json_t **layers, eng_error *err)
{
    eng_code rc = ENG_OK;
    eng_model *m = NULL;
    eng_workspace *ws = NULL;
    float *in = NULL, *outv = NULL;
    json_t *problems = json_array(), *lj = NULL, *rep = NULL, *scratch = NULL;
    eng_fit *fits = NULL;
    size_t nfits = 0;
    if (!a || !s) {
        rc = eng_arch_fail(err, ENG_ERR_INTERNAL, NULL, "eng_validate: NULL argument");
        goto out;
    }
    if (!problems) {
        rc = eng_arch_fail(err, ENG_ERR_NOMEM, NULL, "out of memory");
        goto out;
    }

    /* file layers with weights that no architecture layer claims */
    for (size_t k = 0; k < s->nlayers; k++) {
        const eng_wlayer *wl = &s->layers[k];
        if (!wl->ntensors) continue;
        bool claimed = false;
        for (int i = 0; i < a->nlayers && !claimed; i++)
            claimed = eng_map_layer(&a->layers[i], s) == wl;
        if (!claimed && json_array_append_new(problems, json_pack("{s:s, s:s}", "layer", wl->name,
                                                                  "problem", "unexpected"))) {
            rc = eng_arch_fail(err, ENG_ERR_NOMEM, NULL, "out of memory");
            goto out;
        }
    }
    /* structure: the one matching rule, in execution order */
    if ((rc = eng_fit_layers(a, s, &fits, &nfits, err))) goto out;
    bool legacy = s->format == ENG_FMT_KERAS2_WEIGHTS || s->format == ENG_FMT_KERAS2_MODEL;
    for (int oi = 0; oi < a->nlayers; oi++)
        if (fit_problems(&fits[a->order[oi]], legacy, problems)) {
            rc = eng_arch_fail(err, ENG_ERR_NOMEM, NULL, "out of memory");
            goto out;
        }
    /* values: eng_model_build reads the weights; of what it reports, only the
     * value problems (NaN/Inf, unreadable) are new — structure was judged above */
    if (!(scratch = json_array())) {
        rc = eng_arch_fail(err, ENG_ERR_NOMEM, NULL, "out of memory");
        goto out;
    }
    rc = eng_model_build(a, s, fd, scratch, &m, err);
    if (rc && rc != ENG_ERR_WEIGHTS) goto out;
    rc = ENG_OK;
    size_t pi;
    json_t *p;
    json_array_foreach (scratch, pi, p) {
        const char *kind = json_string_value(json_object_get(p, "problem"));
        if (kind && (!strcmp(kind, "nan") || !strcmp(kind, "unreadable")) &&
            json_array_append(problems, p)) {
            rc = eng_arch_fail(err, ENG_ERR_NOMEM, NULL, "out of memory");
            goto out;
        }
    }
    if (!m && !json_array_size(problems) &&
        json_array_extend(problems, scratch)) { /* rules disagree: say all */
        rc = eng_arch_fail(err, ENG_ERR_NOMEM, NULL, "out of memory");
        goto out;
    }
    if (!m && !json_array_size(problems))
        json_array_append_new(problems, json_pack("{s:s, s:s}", "layer", a->layers[a->output].name,
                                                  "problem", "unloadable"));

    if (!json_array_size(problems)) {
        size_t nin = eng_model_input_size(m), nout = eng_model_output_size(m);
        in = malloc((nin ? nin : 1) * sizeof *in);
        outv = malloc((nout ? nout : 1) * sizeof *outv);
        ws = eng_workspace_new();
        if (!in || !outv || !ws) {
            rc = eng_arch_fail(err, ENG_ERR_NOMEM, NULL, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < nin; i++) in[i] = (float)(0.5 * sin(0.1 * (double)i));
        if ((rc = eng_model_predict(m, ws, in, 1, outv, err))) goto out;
        size_t bad = 0;
        for (size_t i = 0; i < nout; i++)
            if (!isfinite(outv[i])) bad++;
        if (bad)
            json_array_append_new(problems,
                                  json_pack("{s:s, s:s, s:s, s:I}", "layer",
                                            a->layers[a->output].name, "problem", "nan", "where",
                                            "probe_output", "count", (json_int_t)bad));
        else {
            json_t *po = json_array();
            for (size_t i = 0; i < nout && i < PROBE_VALUES; i++)
                json_array_append_new(po, json_real(outv[i]));
            rep = json_pack("{s:s, s:o}", "status", "passed", "probe_output", po);
            if (!rep) {
                rc = eng_arch_fail(err, ENG_ERR_NOMEM, NULL, "out of memory");
                goto out;
            }
        }
    }
    if (json_array_size(problems)) {
        char msg[sizeof err->msg];
        eng_problems_message(problems, msg, sizeof msg);
        rc = eng_arch_fail(err, ENG_ERR_WEIGHTS, json_pack("{s:O}", "problems", problems), "%s",
                           msg);
        goto out;
    }
    if (!(lj = layers_json(a, s, fd, err))) {
        rc = err && err->code ? err->code : ENG_ERR_NOMEM;
        goto out;
    }
    if (report) {
        *report = rep;
        rep = NULL;
    }
    if (layers) {
        *layers = lj;
        lj = NULL;
    }
out:
    free(fits);
    json_decref(scratch);
    json_decref(problems);
    json_decref(lj);
    json_decref(rep);
    eng_model_free(m);
    eng_workspace_free(ws);
    free(in);
    free(outv);
    return rc;
}
