/* engine/validate.c — check a weight file against an architecture.
 *
 * Owns eng_validate. Mapping and loading are forward.c's eng_model_build
 * (missing layers, weight counts, shapes, dtypes, NaN/Inf); this file adds
 * the file layers no architecture layer claims ("unexpected"), the probe
 * forward pass and the contract's layers array with per-layer digests.
 * Every problem is listed, not only the first.
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
#include <openssl/evp.h>

#include "arch_int.h"

#define PROBE_VALUES 16
#define DIGEST_BUF   (1u << 20)

static int pread_all(int fd, unsigned char *buf, size_t n, uint64_t off)
{
    while (n) {
        ssize_t r = pread(fd, buf, n, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        buf += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

/* "sha256:<hex>" of a layer's raw tensor bytes into out[80]. */
static eng_code layer_digest(int fd, const eng_wlayer *wl, unsigned char *buf, char *out, eng_error *err)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    eng_code rc = ENG_OK;
    if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
        rc = eng_arch_fail(err, ENG_ERR_NOMEM, NULL, "out of memory");
        goto out;
    }
    for (size_t t = 0; t < wl->ntensors; t++) {
        const eng_tensor *ts = &wl->tensors[t];
        if (ts->offset == ENG_NO_OFFSET && ts->nbytes) {
            rc = eng_arch_fail(err, ENG_ERR_FORMAT, NULL, "layer '%s': tensor '%s' is not contiguous",
                               wl->name, ts->name ? ts->name : "?");
            goto out;
        }
        for (uint64_t done = 0; done < ts->nbytes;) {
            size_t n = ts->nbytes - done > DIGEST_BUF ? DIGEST_BUF : (size_t)(ts->nbytes - done);
            if (pread_all(fd, buf, n, ts->offset + done) < 0) {
                rc = eng_arch_fail(err, ENG_ERR_IO, NULL, "layer '%s': cannot read tensor '%s'",
                                   wl->name, ts->name ? ts->name : "?");
                goto out;
            }
            EVP_DigestUpdate(ctx, buf, n);
            done += n;
        }
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    char *p = out + sprintf(out, "sha256:");
    for (unsigned i = 0; i < mdlen; i++) p += sprintf(p, "%02x", md[i]);
out:
    EVP_MD_CTX_free(ctx);
    return rc;
}

static json_t *layers_json(const eng_arch *a, const eng_summary *s, int fd, eng_error *err)
{
    json_t *arr = json_array();
    unsigned char *buf = malloc(DIGEST_BUF);
    if (!arr || !buf) goto nomem;
    for (int i = 0; i < a->nlayers; i++) {
        const eng_layer *L = &a->layers[i];
        const eng_wlayer *wl = L->nw ? eng_map_layer(L, s) : NULL;
        json_t *ws = json_array();
        json_int_t params = 0;
        char digest[80] = "";
        if (!ws) goto nomem;
        if (wl) {
            if (layer_digest(fd, wl, buf, digest, err)) { json_decref(ws); goto fail; }
            for (size_t t = 0; t < wl->ntensors; t++) {
                const eng_tensor *ts = &wl->tensors[t];
                json_t *shape = json_array();
                json_int_t n = 1;
                for (int d = 0; d < ts->rank; d++) {
                    json_array_append_new(shape, json_integer(ts->shape[d]));
                    n *= ts->shape[d];
                }
                params += n;
                json_array_append_new(ws, json_pack("{s:s, s:o, s:s}", "name",
                                                    (int)t < L->nw ? L->w[t].name : (ts->name ? ts->name : "?"),
                                                    "shape", shape, "dtype", eng_dtype_name(ts->dtype)));
            }
        }
        json_t *o = json_pack("{s:s, s:s, s:s?, s:I, s:o}", "name", L->name, "class", L->cls,
                              "digest", wl ? digest : NULL, "params", params, "weights", ws);
        if (!o || json_array_append_new(arr, o)) goto nomem;
    }
    free(buf);
    return arr;
nomem:
    eng_arch_fail(err, ENG_ERR_NOMEM, NULL, "out of memory");
fail:
    free(buf);
    json_decref(arr);
    return NULL;
}

eng_code eng_validate(const eng_arch *a, const eng_summary *s, int fd,
                      json_t **report, json_t **layers, eng_error *err)
{
    eng_code rc = ENG_OK;
    eng_model *m = NULL;
    eng_workspace *ws = NULL;
    float *in = NULL, *outv = NULL;
    json_t *problems = json_array(), *lj = NULL, *rep = NULL;
    if (!a || !s) { rc = eng_arch_fail(err, ENG_ERR_INTERNAL, NULL, "eng_validate: NULL argument"); goto out; }
    if (!problems) { rc = eng_arch_fail(err, ENG_ERR_NOMEM, NULL, "out of memory"); goto out; }

    /* file layers with weights that no architecture layer claims */
    for (size_t k = 0; k < s->nlayers; k++) {
        const eng_wlayer *wl = &s->layers[k];
        if (!wl->ntensors) continue;
        bool claimed = false;
        for (int i = 0; i < a->nlayers && !claimed; i++) claimed = eng_map_layer(&a->layers[i], s) == wl;
        if (!claimed &&
            json_array_append_new(problems, json_pack("{s:s, s:s}", "layer", wl->name, "problem", "unexpected"))) {
            rc = eng_arch_fail(err, ENG_ERR_NOMEM, NULL, "out of memory");
            goto out;
        }
    }
    rc = eng_model_build(a, s, fd, problems, &m, err);
    if (rc && rc != ENG_ERR_WEIGHTS) goto out;
    rc = ENG_OK;

    if (!json_array_size(problems)) {
        size_t nin = eng_model_input_size(m), nout = eng_model_output_size(m);
        in = malloc((nin ? nin : 1) * sizeof *in);
        outv = malloc((nout ? nout : 1) * sizeof *outv);
        ws = eng_workspace_new();
        if (!in || !outv || !ws) { rc = eng_arch_fail(err, ENG_ERR_NOMEM, NULL, "out of memory"); goto out; }
        for (size_t i = 0; i < nin; i++) in[i] = (float)(0.5 * sin(0.1 * (double)i));
        if ((rc = eng_model_predict(m, ws, in, 1, outv, err))) goto out;
        size_t bad = 0;
        for (size_t i = 0; i < nout; i++) if (!isfinite(outv[i])) bad++;
        if (bad)
            json_array_append_new(problems, json_pack("{s:s, s:s, s:s, s:I}", "layer",
                                                      a->layers[a->output].name, "problem", "nan",
                                                      "where", "probe_output", "count", (json_int_t)bad));
        else {
            json_t *po = json_array();
            for (size_t i = 0; i < nout && i < PROBE_VALUES; i++) json_array_append_new(po, json_real(outv[i]));
            rep = json_pack("{s:s, s:o}", "status", "passed", "probe_output", po);
            if (!rep) { rc = eng_arch_fail(err, ENG_ERR_NOMEM, NULL, "out of memory"); goto out; }
        }
    }
    if (json_array_size(problems)) {
        char msg[sizeof err->msg];
        eng_problems_message(problems, msg, sizeof msg);
        rc = eng_arch_fail(err, ENG_ERR_WEIGHTS, json_pack("{s:O}", "problems", problems), "%s", msg);
        goto out;
    }
    if (!(lj = layers_json(a, s, fd, err))) { rc = err && err->code ? err->code : ENG_ERR_NOMEM; goto out; }
    if (report) { *report = rep; rep = NULL; }
    if (layers) { *layers = lj; lj = NULL; }
out:
    json_decref(problems);
    json_decref(lj);
    json_decref(rep);
    eng_model_free(m);
    eng_workspace_free(ws);
    free(in);
    free(outv);
    return rc;
}
