/* server/route_transfer.c — transfer learning over HTTP: derived weight files
 * (GET …/weights?layers= ?exclude= ?for= ?format=), GET …/layers,
 * GET …/compatibility?with=, GET …/diff/{other}.
 *
 * Owns the derived-file cache under <data>/cache/ and the one mutex that
 * serialises every libhdf5 call of the server process (Debian's libhdf5 is
 * built without thread safety). Does not own matching, selection or the
 * HDF5 layout (engine/transfer.c, validate.c, write.c).
 *
 * - Uploaded files are never opened with libhdf5 here: their structure comes
 *   from the sandboxed child (srv_sandbox_summary), tensor bytes are read
 *   with pread through the summary's offsets. libhdf5 only WRITES the new
 *   file's metadata (eng_write_layout) under h5_lock.
 * - No tensor byte is copied: a derived file is its skeleton (the layout
 *   without the tensor data, eng_write_skeleton) around ranges of the
 *   version's blob, sent as segments (srv_reply_segments). The blob is
 *   content-addressed and immutable, so the ranges stay right for as long
 *   as a version holds it.
 * - Identity: key = "<eng_write_id()>\n<blob digest>\narch=<model's
 *   architecture id|->\nfor=<id|->\nformat=<keras2|keras3|->\n" then
 *   "layers=<names sorted, deduplicated, comma-joined>\n" and the same for
 *   "exclude=" when given. ETag = "derived:<sha256 hex of the key>": known
 *   before anything is derived, the same across restarts and cache rebuilds,
 *   and it changes whenever the bytes could (another blob, selection,
 *   format, writer or libhdf5 version).
 * - Cache: cache/<hex>.skel and cache/<hex>.json {"v","etag","layers",
 *   "format","source","source_size","size","skeleton_size",
 *   "skeleton_sha256","tensor_bytes","pieces":[[0 skeleton|1 blob, off,
 *   len]…]}. The .skel is renamed into place before the .json, so an entry
 *   exists once its .json does; an entry is served only when its .json is
 *   of this format, names the version's blob and ETag, every piece lies
 *   inside the sizes it states and the skeleton's size and sha256 match
 *   (else it is rebuilt). A hit needs no sandbox and no libhdf5. The blob
 *   is opened by digest when the answer starts: a version that still exists
 *   holds its blob (gc removes only unreferenced blobs, then empties cache/),
 *   and an open blob stays readable even if gc unlinks it meanwhile.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <openssl/evp.h>

#include "log.h"
#include "params.h"
#include "reply.h"
#include "routes.h"
#include "sandbox.h"

#define CACHE_FORMAT   2          /* of cache/<stem>.json; other formats are rebuilt */
#define MAX_QUERY_LIST (1u << 20) /* bytes of one ?layers= / ?exclude= list */

static pthread_mutex_t h5_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- shared helpers -------------------------------------------------------- */

/* Load a stored architecture; unknown → 404. Answers on failure. */
static int load_arch(srv_req *r, const char *id, const char *what, eng_arch **out)
{
    char *config = NULL;
    st_error serr = {0};
    eng_error err = {0};
    if (srv_check_arch_id(r, what, id)) return -1;
    if (st_arch_config(r->srv->st, id, &config, &serr)) {
        if (serr.code == ST_ERR_NOT_FOUND) {
            st_error_release(&serr);
            srv_reply_error(r, SRV_E_NOT_FOUND, json_pack("{s:s}", what, id),
                            "architecture %s is not registered; POST it to /v1/architectures first",
                            id);
        } else {
            srv_reply_storage_error(r, &serr);
        }
        return -1;
    }
    eng_code c = eng_arch_parse(config, strlen(config), out, &err);
    free(config);
    if (c) {
        srv_reply_engine_error(r, &err);
        return -1;
    }
    return 0;
}

/* The model's architecture id (NEW string) or NULL; -1 after an answer. */
static int model_arch_id(srv_req *r, const char *model, char **id)
{
    json_t *m = NULL;
    st_error serr = {0};
    *id = NULL;
    if (st_model_get(r->srv->st, model, &m, &serr)) {
        srv_reply_storage_error(r, &serr);
        return -1;
    }
    json_t *a = json_object_get(m, "architecture");
    const char *s =
        json_is_string(a) ? json_string_value(a) : json_string_value(json_object_get(a, "id"));
    if (s && !(*id = strdup(s))) {
        json_decref(m);
        srv_reply_error(r, SRV_E_INTERNAL, NULL, "out of memory");
        return -1;
    }
    json_decref(m);
    return 0;
}

/* A version's blob fd and its summary read in the sandbox. Answers on failure. */
static int open_version(srv_req *r, json_t *v, int *fd, eng_summary **s)
{
    st_error serr = {0};
    uint64_t size = 0;
    char path[64];
    const char *digest = srv_version_digest(r, v);
    if (!digest) return -1;
    if (st_blob_open(r->srv->st, digest, fd, &size, &serr)) {
        srv_reply_storage_error(r, &serr);
        return -1;
    }
    snprintf(path, sizeof path, "/proc/self/fd/%d", *fd);
    if (srv_summary_of_blob(r, digest, path, s)) {
        close(*fd);
        *fd = -1;
        return -1;
    }
    return 0;
}

/* Everything a read of one version needs. */
typedef struct vctx {
    json_t *v;
    int fd;
    eng_summary *s;
    eng_arch *a; /* the model's architecture or NULL */
    eng_view *view;
} vctx;

static void vctx_release(vctx *c)
{
    if (c->fd >= 0) close(c->fd);
    eng_view_free(c->view);
    eng_arch_free(c->a);
    eng_summary_free(c->s);
    json_decref(c->v);
    memset(c, 0, sizeof *c);
    c->fd = -1;
}

static int vctx_open(srv_req *r, const char *model, const char *ref, const char *arch_id, vctx *c)
{
    st_error serr = {0};
    eng_error err = {0};
    if (!c->v && st_version_get(r->srv->st, model, ref, &c->v, &serr)) {
        srv_reply_storage_error(r, &serr);
        return -1;
    }
    if (arch_id && !c->a && load_arch(r, arch_id, "architecture", &c->a)) return -1;
    if (open_version(r, c->v, &c->fd, &c->s)) return -1;
    if (eng_view_build(c->a, c->s, &c->view, &err)) {
        srv_reply_engine_error(r, &err);
        return -1;
    }
    return 0;
}

static json_t *shape_json(const eng_tensor *t)
{
    json_t *j = json_array();
    for (int i = 0; i < t->rank; i++) json_array_append_new(j, json_integer(t->shape[i]));
    return j;
}

static json_t *num_or_null(double d)
{
    return isfinite(d) ? json_real(d) : json_null();
}

/* ---- derived weight files ------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A comma list sorted and deduplicated, appended to key as "k=a,b\n". */
static int norm_list(const char *k, const char *list, char **key)
{
    char *copy = strdup(list ? list : ""), **v = NULL, *tok, *save = NULL, *out = NULL;
    size_t n = 0, cap = 0, len = 0;
    int rc = -1;
    if (!copy) return -1;
    for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ') tok++;
        size_t l = strlen(tok);
        while (l && tok[l - 1] == ' ') tok[--l] = 0;
        if (!l) continue;
        if (n == cap) {
            char **g = realloc(v, (cap = cap ? cap * 2 : 16) * sizeof *v);
            if (!g) goto out;
            v = g;
        }
        v[n++] = tok;
        len += l + 1;
    }
    qsort(v, n, sizeof *v, cmp_str);
    size_t old = *key ? strlen(*key) : 0;
    if (!(out = realloc(*key, old + strlen(k) + len + 4))) goto out;
    *key = out;
    char *p = out + old;
    p += sprintf(p, "%s=", k);
    for (size_t i = 0; i < n; i++) {
        if (i && !strcmp(v[i], v[i - 1])) continue;
        p += sprintf(p, "%s%s", p[-1] == '=' ? "" : ",", v[i]);
    }
    sprintf(p, "\n");
    rc = 0;
out:
    free(v);
    free(copy);
    return rc;
}

/* sha256 of fd's first `size` bytes as hex; -1 on a read error or a file
 * shorter than size. */
static int file_sha256(int fd, uint64_t size, char hex[65])
{
    unsigned char buf[1u << 16], md[EVP_MAX_MD_SIZE];
    unsigned ml = 0;
    int rc = -1;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (!c || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1) goto out;
    for (uint64_t at = 0; at < size;) {
        size_t want = size - at < sizeof buf ? (size_t)(size - at) : sizeof buf;
        ssize_t got = pread(fd, buf, want, (off_t)at);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) goto out;
        EVP_DigestUpdate(c, buf, (size_t)got);
        at += (uint64_t)got;
    }
    if (EVP_DigestFinal_ex(c, md, &ml) != 1 || ml != 32) goto out;
    srv_hex(md, 32, hex);
    rc = 0;
out:
    EVP_MD_CTX_free(c);
    return rc;
}

static json_int_t jint(const json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

/* A cache entry we may serve: our format, the version's blob, and every
 * piece inside the sizes the entry states (an entry of another format, a
 * half-written or hand-edited one is rebuilt, never served). */
static int meta_ok(const json_t *m, const char *digest, const char *etag)
{
    const json_t *pieces = json_object_get(m, "pieces"), *names = json_object_get(m, "layers"), *p;
    const char *src = json_string_value(json_object_get(m, "source"));
    const char *et = json_string_value(json_object_get(m, "etag"));
    json_int_t skel = jint(m, "skeleton_size"), blob = jint(m, "source_size"), sum = 0;
    size_t i;
    if (jint(m, "v") != CACHE_FORMAT || !src || strcmp(src, digest) || !json_is_array(pieces) ||
        !json_array_size(pieces) || !json_is_array(names) || skel <= 0 || blob < 0 || !et ||
        strcmp(et, etag) || !json_string_value(json_object_get(m, "format")) ||
        !json_string_value(json_object_get(m, "skeleton_sha256")))
        return 0;
    json_array_foreach (names, i, p)
        if (!json_is_string(p)) return 0;
    json_array_foreach (pieces, i, p) {
        json_int_t from = json_integer_value(json_array_get(p, 0)),
                   off = json_integer_value(json_array_get(p, 1)),
                   len = json_integer_value(json_array_get(p, 2)),
                   lim = from == ENG_PIECE_SOURCE ? blob : skel;
        if (json_array_size(p) != 3 || (from != ENG_PIECE_SKELETON && from != ENG_PIECE_SOURCE) ||
            off < 0 || len <= 0 || len > lim || off > lim - len || sum > INT64_MAX - len)
            return 0;
        sum += len;
    }
    return sum == jint(m, "size");
}

/* Answer with a cache entry: its skeleton around ranges of the version's
 * blob (srv_reply_segments). Returns 1 without answering when the skeleton
 * is gone or not the one the entry describes (the caller rebuilds), else 0
 * (answered, also with an error). */
static int serve_derived(srv_req *r, const char *skel_path, json_t *meta, const char *model,
                         json_int_t number)
{
    const char *etag = json_string_value(json_object_get(meta, "etag"));
    const char *fmt = json_string_value(json_object_get(meta, "format"));
    const char *digest = json_string_value(json_object_get(meta, "source"));
    json_t *names = json_object_get(meta, "layers"), *pieces = json_object_get(meta, "pieces");
    size_t np = json_array_size(pieces), nsrc = 0;
    int sfd = -1, bfd = -1, rc = 0;
    char disp[256], hex[65], *hdr = NULL;
    srv_seg *segs = NULL;
    st_error serr = {0};
    struct stat st;
    uint64_t bsize = 0;

    sfd = open(skel_path, O_RDONLY | O_CLOEXEC);
    if (sfd < 0 || fstat(sfd, &st) != 0 || (json_int_t)st.st_size != jint(meta, "skeleton_size") ||
        file_sha256(sfd, (uint64_t)st.st_size, hex) != 0 ||
        strcmp(hex, json_string_value(json_object_get(meta, "skeleton_sha256")))) {
        rc = 1;
        goto out;
    }
    for (size_t i = 0; i < np; i++)
        nsrc +=
            json_integer_value(json_array_get(json_array_get(pieces, i), 0)) == ENG_PIECE_SOURCE;
    if (nsrc) {
        if (st_blob_open(r->srv->st, digest, &bfd, &bsize, &serr)) {
            srv_reply_storage_error(r, &serr);
            goto out;
        }
        if ((json_int_t)bsize != jint(meta, "source_size")) {
            srv_reply_error(r, SRV_E_INTERNAL, NULL,
                            "blob %s has %llu bytes, the derived file expects %lld", digest,
                            (unsigned long long)bsize, (long long)jint(meta, "source_size"));
            goto out;
        }
    }
    /* X-Strata-Layers: what the file holds, in model order */
    size_t hl = 1;
    for (size_t i = 0; i < json_array_size(names); i++)
        hl += strlen(json_string_value(json_array_get(names, i))) + 1;
    if (!(hdr = malloc(hl)) || !(segs = malloc(np * sizeof *segs))) {
        srv_reply_error(r, SRV_E_INTERNAL, NULL, "out of memory");
        goto out;
    }
    hdr[0] = 0;
    for (size_t i = 0, o = 0; i < json_array_size(names); i++)
        o += (size_t)sprintf(hdr + o, "%s%s", i ? "," : "",
                             json_string_value(json_array_get(names, i)));
    for (size_t i = 0; i < np; i++) {
        json_t *p = json_array_get(pieces, i);
        segs[i] =
            (srv_seg){json_integer_value(json_array_get(p, 0)) == ENG_PIECE_SOURCE ? bfd : sfd,
                      (uint64_t)json_integer_value(json_array_get(p, 1)),
                      (uint64_t)json_integer_value(json_array_get(p, 2))};
    }
    snprintf(disp, sizeof disp, "attachment; filename=\"%s-v%lld-partial%s\"", model,
             (long long)number, fmt && !strcmp(fmt, "keras3") ? ".weights.h5" : ".h5");
    srv_reply_segments(r, segs, np, etag, disp, "X-Strata-Layers", hdr); /* steals sfd and bfd */
    sfd = bfd = -1;
out:
    if (sfd >= 0) close(sfd);
    if (bfd >= 0) close(bfd);
    free(segs);
    free(hdr);
    return rc;
}

/* Build the cache entry for this request: the layout under a temp name,
 * compacted to its skeleton, renamed to <stem>.skel, then <stem>.json (the
 * entry exists once its .json does). Answers on failure (-1). */
static int build_derived(srv_req *r, json_t *version, const char *model_arch,
                         const char *sel_layers, const char *sel_exclude, const char *sel_for,
                         const char *sel_format, const char *etag, const char *skel_path,
                         const char *metap, const char *cache_dir, const char *stem)
{
    vctx c = {.fd = -1};
    eng_arch *target = NULL;
    eng_error err = {0};
    eng_out_spec spec = {0};
    eng_copy_plan *plan = NULL;
    eng_piece *pieces = NULL;
    size_t np = 0;
    uint64_t total = 0;
    bool *chosen = NULL;
    json_t *names = NULL, *meta = NULL, *jp = NULL;
    char tmp_skel[4300] = "", tmp_meta[4400] = "", hex[65];
    int rc = -1, dfd = -1, mfd = -1;
    struct stat st;

    c.v = json_incref(version);
    if (sel_for && load_arch(r, sel_for, "for", &target)) goto out;
    if (vctx_open(r, NULL, NULL, model_arch, &c)) goto out;
    if (!(chosen = calloc(c.view->n ? c.view->n : 1, sizeof *chosen))) {
        srv_reply_error(r, SRV_E_INTERNAL, NULL, "out of memory");
        goto out;
    }
    if (eng_select(c.view, c.s, sel_layers, sel_exclude, target, chosen, &err)) {
        srv_reply_engine_error(r, &err);
        goto out;
    }
    names = json_array();
    for (size_t i = 0; i < c.view->n; i++)
        if (chosen[i]) json_array_append_new(names, json_string(c.view->layers[i].name));
    if (!json_array_size(names)) {
        srv_reply_error(
            r, SRV_E_BAD_REQUEST, json_pack("{s:[]}", "layers"),
            sel_for
                ? "no layer of this version fits the target architecture %s (see …/compatibility?with=)"
                : "the selection holds no layer%s",
            sel_for ? sel_for : "");
        goto out;
    }
    int legacy_src = c.s->format == ENG_FMT_KERAS2_WEIGHTS || c.s->format == ENG_FMT_KERAS2_MODEL;
    int keras3 = sel_format ? !strcmp(sel_format, "keras3") : !legacy_src;
    if (keras3 == legacy_src && !c.a) {
        srv_reply_error(
            r, SRV_E_BAD_REQUEST, json_pack("{s:s}", "format", keras3 ? "keras3" : "keras2"),
            "converting a %s file to %s needs the model's architecture (Keras 3 names weight groups "
            "by layer class), and this model has none",
            eng_format_name(c.s->format), keras3 ? "keras3" : "keras2");
        goto out;
    }
    if (eng_derive_spec(c.view, c.s, chosen, keras3, &spec, &err)) {
        srv_reply_engine_error(r, &err);
        goto out;
    }

    snprintf(tmp_skel, sizeof tmp_skel, "%s/.tmp-%s-XXXXXX", cache_dir, stem);
    dfd = mkstemp(tmp_skel);
    if (dfd < 0) {
        tmp_skel[0] = 0;
        srv_reply_error(r, SRV_E_INTERNAL, NULL, "cannot create a file in %s: %s", cache_dir,
                        strerror(errno));
        goto out;
    }
    close(dfd);
    dfd = -1;
    pthread_mutex_lock(&h5_lock);
    eng_code ec = eng_write_layout(&spec, tmp_skel, &plan, &err);
    pthread_mutex_unlock(&h5_lock);
    if (ec) {
        srv_reply_engine_error(r, &err);
        goto out;
    }
    if ((dfd = open(tmp_skel, O_RDWR | O_CLOEXEC)) < 0) {
        srv_reply_error(r, SRV_E_INTERNAL, NULL, "cannot reopen the derived file");
        goto out;
    }
    if (eng_write_skeleton(dfd, plan, &pieces, &np, &total, &err)) {
        srv_reply_engine_error(r, &err);
        goto out;
    }
    if (fstat(dfd, &st) != 0 || file_sha256(dfd, (uint64_t)st.st_size, hex) != 0) {
        srv_reply_error(r, SRV_E_INTERNAL, NULL, "cannot read the skeleton back: %s",
                        strerror(errno));
        goto out;
    }
    if (!(jp = json_array())) {
        srv_reply_error(r, SRV_E_INTERNAL, NULL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < np; i++)
        if (json_array_append_new(jp, json_pack("[i, I, I]", (int)pieces[i].source,
                                                (json_int_t)pieces[i].off,
                                                (json_int_t)pieces[i].len))) {
            srv_reply_error(r, SRV_E_INTERNAL, NULL, "out of memory");
            goto out;
        }
    meta = json_pack("{s:i, s:s, s:O, s:s, s:s, s:I, s:I, s:I, s:s, s:I, s:O}", "v", CACHE_FORMAT,
                     "etag", etag, "layers", names, "format", keras3 ? "keras3" : "keras2",
                     "source", json_string_value(json_object_get(version, "digest")), "source_size",
                     (json_int_t)c.s->file_size, "size", (json_int_t)total, "skeleton_size",
                     (json_int_t)st.st_size, "skeleton_sha256", hex, "tensor_bytes",
                     (json_int_t)eng_copy_plan_bytes(plan), "pieces", jp);
    if (rename(tmp_skel, skel_path) != 0) {
        srv_reply_error(r, SRV_E_INTERNAL, NULL, "cannot write %s: %s", skel_path, strerror(errno));
        goto out;
    }
    tmp_skel[0] = 0;
    snprintf(tmp_meta, sizeof tmp_meta, "%s/.tmp-%s-XXXXXX", cache_dir, stem);
    if ((mfd = mkstemp(tmp_meta)) < 0) tmp_meta[0] = 0;
    if (mfd < 0 || !meta || json_dumpfd(meta, mfd, JSON_COMPACT) != 0 || close(mfd) != 0 ||
        rename(tmp_meta, metap) != 0) {
        srv_reply_error(r, SRV_E_INTERNAL, NULL, "cannot write %s: %s", metap, strerror(errno));
        goto out;
    }
    tmp_meta[0] = 0;
    SRV_LOG(SRV_LOG_INFO,
            "derived %s: %zu layers, %zu pieces, %llu bytes of skeleton around %llu tensor bytes",
            skel_path, json_array_size(names), np, (unsigned long long)st.st_size,
            (unsigned long long)eng_copy_plan_bytes(plan));
    rc = 0;
out:
    if (dfd >= 0) close(dfd);
    if (tmp_skel[0]) unlink(tmp_skel);
    if (tmp_meta[0]) unlink(tmp_meta);
    free(pieces);
    eng_copy_plan_free(plan);
    eng_out_spec_release(&spec);
    free(chosen);
    json_decref(names);
    json_decref(jp);
    json_decref(meta);
    eng_arch_free(target);
    vctx_release(&c);
    return rc;
}

static json_t *read_meta(const char *path)
{
    json_error_t je;
    return json_load_file(path, 0, &je);
}

void srv_weights_derived(srv_req *r, json_t *version)
{
    const char *model = srv_param(r, "model");
    const char *sel_layers = srv_query(r, "layers"), *sel_exclude = srv_query(r, "exclude");
    const char *sel_for = srv_query(r, "for"), *sel_format = srv_query(r, "format");
    const char *digest = NULL;
    json_int_t number = json_integer_value(json_object_get(version, "version"));
    char *arch = NULL, *key = NULL, stem[65], etag[80], skel[4200], metap[4200], cache_dir[4096];
    json_t *meta = NULL;

    if (sel_format && strcmp(sel_format, "keras2") && strcmp(sel_format, "keras3")) {
        srv_reply_error(
            r, SRV_E_BAD_REQUEST,
            json_pack("{s:s, s:[ss]}", "format", sel_format, "valid", "keras2", "keras3"),
            "format must be keras2 or keras3, not '%s'", sel_format);
        return;
    }
    if ((sel_layers && strlen(sel_layers) > MAX_QUERY_LIST) ||
        (sel_exclude && strlen(sel_exclude) > MAX_QUERY_LIST)) {
        srv_reply_error(r, SRV_E_BAD_REQUEST, NULL, "layer lists longer than %u bytes are refused",
                        MAX_QUERY_LIST);
        return;
    }
    if (sel_for && srv_check_arch_id(r, "for", sel_for)) return;
    if (!(digest = srv_version_digest(r, version))) return;
    if (model_arch_id(r, model, &arch)) return;
    size_t kl = strlen(eng_write_id()) + strlen(digest) + 2 * 80 + 64;
    if (!(key = malloc(kl))) {
        free(arch);
        srv_reply_error(r, SRV_E_INTERNAL, NULL, "out of memory");
        return;
    }
    snprintf(key, kl, "%s\n%s\narch=%s\nfor=%s\nformat=%s\n", eng_write_id(), digest,
             arch ? arch : "-", sel_for ? sel_for : "-", sel_format ? sel_format : "-");
    if ((sel_layers && norm_list("layers", sel_layers, &key)) ||
        (sel_exclude && norm_list("exclude", sel_exclude, &key))) {
        srv_reply_error(r, SRV_E_INTERNAL, NULL, "out of memory");
        goto out;
    }
    srv_sha256_hex(key, strlen(key), stem);
    snprintf(etag, sizeof etag, "derived:%s", stem);
    snprintf(cache_dir, sizeof cache_dir, "%s/cache", st_data_dir(r->srv->st));
    snprintf(skel, sizeof skel, "%s/%s.skel", cache_dir, stem);
    snprintf(metap, sizeof metap, "%s/%s.json", cache_dir, stem);
    mkdir(cache_dir, 0755); /* gc may have removed it; EEXIST is fine */

    /* a hit: no sandbox, no libhdf5, no tensor byte read until it is sent */
    if ((meta = read_meta(metap)) && meta_ok(meta, digest, etag) &&
        !serve_derived(r, skel, meta, model, number))
        goto out;
    json_decref(meta);
    meta = NULL;
    if (build_derived(r, version, arch, sel_layers, sel_exclude, sel_for, sel_format, etag, skel,
                      metap, cache_dir, stem))
        goto out;
    if (!(meta = read_meta(metap)) || !meta_ok(meta, digest, etag) ||
        serve_derived(r, skel, meta, model, number))
        srv_reply_error(r, SRV_E_INTERNAL, NULL, "the derived file vanished from %s", cache_dir);
out:
    json_decref(meta);
    free(key);
    free(arch);
}

/* ---- GET …/layers --------------------------------------------------------- */

void srv_h_version_layers(srv_req *r)
{
    const char *model, *ref;
    vctx c = {.fd = -1};
    char *arch = NULL;
    eng_error err = {0};
    eng_wstats *stats = NULL;
    json_t *items = NULL;
    if (srv_model_param(r, &model) || srv_ref_param(r, "ref", &ref) ||
        model_arch_id(r, model, &arch))
        goto out;
    if (vctx_open(r, model, ref, arch, &c)) goto out;
    json_t *stored = json_object_get(c.v, "layers"); /* weight names as the upload listed them */
    items = json_array();
    for (size_t i = 0; i < c.view->n; i++) {
        const eng_vlayer *x = &c.view->layers[i];
        const eng_wlayer *wl = x->file;
        size_t nt = wl ? wl->ntensors : 0;
        char digest[ENG_DIGEST_LEN] = "";
        json_t *sl = NULL, *ws = json_array();
        for (size_t k = 0; k < json_array_size(stored); k++) {
            const char *sn = json_string_value(json_object_get(json_array_get(stored, k), "name"));
            if (sn && !strcmp(sn, x->name)) sl = json_array_get(stored, k);
        }
        free(stats);
        if (!(stats = calloc(nt ? nt : 1, sizeof *stats))) {
            srv_reply_error(r, SRV_E_INTERNAL, NULL, "out of memory");
            goto out;
        }
        if (wl && eng_layer_scan(c.fd, wl, digest, stats, &err)) {
            srv_reply_engine_error(r, &err);
            goto out;
        }
        json_int_t params = 0;
        for (size_t k = 0; k < nt; k++) {
            const eng_tensor *t = &wl->tensors[k];
            json_int_t n = 1;
            for (int d = 0; d < t->rank; d++) n *= t->shape[d];
            params += n;
            const char *wn = (int)k < x->nwnames ? x->wname[k] : NULL;
            if (!wn)
                wn = json_string_value(
                    json_object_get(json_array_get(json_object_get(sl, "weights"), k), "name"));
            if (!wn) wn = t->name;
            json_array_append_new(
                ws, json_pack("{s:s, s:o, s:s, s:o, s:o, s:o, s:o}", "name", wn, "shape",
                              shape_json(t), "dtype", eng_dtype_name(t->dtype), "min",
                              num_or_null(stats[k].min), "max", num_or_null(stats[k].max), "mean",
                              num_or_null(stats[k].mean), "std", num_or_null(stats[k].std)));
            if (stats[k].nonfinite)
                json_object_set_new(json_array_get(ws, json_array_size(ws) - 1), "nonfinite",
                                    json_integer((json_int_t)stats[k].nonfinite));
        }
        json_array_append_new(items, json_pack("{s:s, s:s?, s:I, s:s?, s:o}", "name", x->name,
                                               "class", x->cls, "params", params, "digest",
                                               digest[0] ? digest : NULL, "weights", ws));
    }
    srv_reply_json(r, 200,
                   json_pack("{s:s, s:O, s:s, s:o}", "model", model, "version",
                             json_object_get(c.v, "version"), "format",
                             eng_format_name(c.s->format), "items", items));
    items = NULL;
out:
    json_decref(items);
    free(stats);
    free(arch);
    vctx_release(&c);
}

/* ---- GET …/compatibility?with= -------------------------------------------- */

void srv_h_version_compat(srv_req *r)
{
    const char *model, *ref, *with = srv_query(r, "with");
    vctx c = {.fd = -1};
    char *arch = NULL;
    eng_arch *target = NULL;
    eng_error err = {0};
    json_t *out = NULL;
    if (srv_model_param(r, &model) || srv_ref_param(r, "ref", &ref)) goto done;
    if (!with) {
        srv_reply_error(r, SRV_E_BAD_REQUEST, NULL,
                        "compatibility needs ?with=sha256:<architecture id>");
        goto done;
    }
    if (model_arch_id(r, model, &arch) || load_arch(r, with, "with", &target)) goto done;
    if (vctx_open(r, model, ref, arch, &c)) goto done;
    if (eng_compat_json(target, c.s, c.view, &out, &err)) {
        srv_reply_engine_error(r, &err);
        goto done;
    }
    json_object_set_new(out, "model", json_string(model));
    json_object_set(out, "version", json_object_get(c.v, "version"));
    srv_reply_json(r, 200, out);
done:
    eng_arch_free(target);
    free(arch);
    vctx_release(&c);
}

/* ---- GET …/diff/{other} ---------------------------------------------------- */

static const eng_vlayer *view_get(const eng_view *v, const char *name)
{
    for (size_t i = 0; i < v->n; i++)
        if (!strcmp(v->layers[i].name, name)) return &v->layers[i];
    return NULL;
}

void srv_h_version_diff(srv_req *r)
{
    const char *model, *ref, *other;
    vctx a = {.fd = -1}, b = {.fd = -1};
    char *arch = NULL;
    eng_error err = {0};
    json_t *layers = NULL;
    if (srv_model_param(r, &model) || srv_ref_param(r, "ref", &ref) ||
        srv_ref_param(r, "other", &other))
        goto out;
    if (model_arch_id(r, model, &arch)) goto out;
    if (vctx_open(r, model, ref, arch, &a)) goto out;
    if (arch &&
        eng_arch_parse(eng_arch_canonical(a.a), strlen(eng_arch_canonical(a.a)), &b.a, &err)) {
        srv_reply_engine_error(r, &err);
        goto out;
    }
    if (vctx_open(r, model, other, NULL, &b)) goto out;
    layers = json_array();
    /* layers with weights in either version: a's model order, then b's own */
    for (int pass = 0; pass < 2; pass++) {
        const eng_view *v = pass ? b.view : a.view;
        for (size_t i = 0; i < v->n; i++) {
            const eng_vlayer *x = &v->layers[i];
            const eng_vlayer *y = view_get(pass ? a.view : b.view, x->name);
            bool xw = x->file && x->file->ntensors, yw = y && y->file && y->file->ntensors;
            if (!xw && !yw) continue;
            if (pass && yw) continue; /* already listed from a */
            json_t *o;
            if (!yw) {
                o = json_pack("{s:s, s:s}", "name", x->name, "status",
                              pass ? "only_in_b" : "only_in_a");
            } else if (!xw) {
                o = json_pack("{s:s, s:s}", "name", x->name, "status", "only_in_b");
            } else {
                eng_diff_status st;
                double l2 = 0, na = 0, mx = 0;
                if (eng_layer_diff(a.fd, x->file, b.fd, y->file, &st, &l2, &na, &mx, &err)) {
                    srv_reply_engine_error(r, &err);
                    goto out;
                }
                if (st == ENG_DIFF_SHAPE)
                    o = json_pack("{s:s, s:s}", "name", x->name, "status", "shape_changed");
                else if (st == ENG_DIFF_IDENTICAL)
                    o = json_pack("{s:s, s:s}", "name", x->name, "status", "identical");
                else
                    o = json_pack("{s:s, s:s, s:o, s:o, s:o}", "name", x->name, "status", "changed",
                                  "relative_l2", na > 0 ? num_or_null(l2 / na) : json_null(), "l2",
                                  num_or_null(l2), "max_abs_diff", num_or_null(mx));
            }
            if (!o || json_array_append_new(layers, o)) {
                srv_reply_error(r, SRV_E_INTERNAL, NULL, "out of memory");
                goto out;
            }
        }
    }
    srv_reply_json(r, 200,
                   json_pack("{s:s, s:O, s:O, s:o}", "model", model, "a",
                             json_object_get(a.v, "version"), "b", json_object_get(b.v, "version"),
                             "layers", layers));
    layers = NULL;
out:
    json_decref(layers);
    free(arch);
    vctx_release(&a);
    vctx_release(&b);
}
