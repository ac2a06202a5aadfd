/* engine/arch.c — Keras model configs: parse, wire, infer shapes, describe.
 *
 * Owns eng_arch_parse/free/canonical/id/to_json and the architecture's error
 * details; the helpers the layer kinds share (JSON getters, activations,
 * shapes) are in layer_util.c, below both this file and layer_*.c. Reads the to_json()
 * text of Keras 1.x, 2.x / tf.keras and 3.x, Sequential (config a bare list
 * before Keras 2.2.3, else {name, layers}) or Functional ("Model" /
 * "Functional" with inbound_nodes in the Keras 1/2 list form or the Keras 3
 * {"args": [__keras_tensor__ …]} form). Does not own single layer kinds
 * (layer_*.c) nor weights (validate.c, forward.c).
 *
 * Decisions:
 * - Keras version: the top-level keras_version when present; else Keras 3
 *   when the JSON carries Keras 3 markers ("module", "batch_shape", dtype
 *   policy objects); else Keras 1 when layers use Keras 1 keys (nb_filter,
 *   output_dim, border_mode, dim_ordering); else Keras 2. It selects
 *   hard_sigmoid's definition (Keras 1/2: clip(0.2x+0.5); Keras 3:
 *   clip(x/6+0.5)).
 * - Canonical text: the parsed JSON re-dumped with JSON_COMPACT |
 *   JSON_SORT_KEYS (duplicate keys refused); id = "sha256:" + hex of it.
 * - Every input dimension must be known (no None besides the batch), shared
 *   layers (more than one inbound node), nested models, several model inputs
 *   or outputs are refused with a reason naming the layer.
 */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

#include "arch_int.h"
#include "layers.h"

#define ARCH_MAX_JSON (64u << 20) /* to_json of the largest Keras CNNs is ~1 MiB */

/* ---- errors ---------------------------------------------------------------- */

eng_code eng_arch_fail(eng_error *err, eng_code code, json_t *details, const char *fmt, ...)
{
    if (!err || err->code != ENG_OK) {
        json_decref(details);
        return code;
    }
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    err->details = details;
    return code;
}

static eng_code layer_fail(eng_error *err, const eng_layer *L, const char *name, const char *cls,
                           const char *path, const char *why)
{
    if (L) {
        name = L->name;
        cls = L->cls;
        path = L->path;
    }
    json_t *d = json_pack("{s:s?, s:s?, s:s, s:s}", "layer", name, "class", cls, "reason", why,
                          "path", path ? path : "config");
    return eng_arch_fail(err, ENG_ERR_ARCH, d, "layer '%s' (%s): %s", name ? name : "?",
                         cls ? cls : "?", why);
}

/* ---- kinds ------------------------------------------------------------------- */

static const struct {
    const char *cls;
    const char *why;
} refused[] = {
    {"Conv1D", "1-D layers are not supported (this engine runs 2-D CNNs)"},
    {"Convolution1D", "1-D layers are not supported (this engine runs 2-D CNNs)"},
    {"MaxPooling1D", "1-D layers are not supported (this engine runs 2-D CNNs)"},
    {"AveragePooling1D", "1-D layers are not supported (this engine runs 2-D CNNs)"},
    {"GlobalAveragePooling1D", "1-D layers are not supported (this engine runs 2-D CNNs)"},
    {"GlobalMaxPooling1D", "1-D layers are not supported (this engine runs 2-D CNNs)"},
    {"Embedding", "Embedding takes integer token inputs; this engine runs float image CNNs"},
    {"Conv3D", "3-D layers are not supported"},
    {"Lambda", "Lambda layers hold Python code that cannot be run here"},
    {"Merge", "the Keras 1 Merge layer is not supported; use Add/Concatenate"},
    {"Sequential", "nested models are not supported"},
    {"Model", "nested models are not supported"},
    {"Functional", "nested models are not supported"},
    {"LSTM", "recurrent layers are not supported"},
    {"GRU", "recurrent layers are not supported"},
    {"SimpleRNN", "recurrent layers are not supported"},
    {"Bidirectional", "recurrent layers are not supported"},
    {"TimeDistributed", "TimeDistributed is not supported"},
};

const struct eng_layer_kind *eng_kind_find(const char *cls, const char **why)
{
    static const struct eng_layer_kind *const fams[] = {
        eng_kinds_conv, eng_kinds_pool, eng_kinds_dense,
        eng_kinds_norm, eng_kinds_misc, eng_kinds_merge,
    };
    *why = NULL;
    if (!cls) {
        *why = "class_name missing";
        return NULL;
    }
    for (size_t f = 0; f < sizeof fams / sizeof fams[0]; f++)
        for (const struct eng_layer_kind *k = fams[f]; k->keras_class; k++)
            if (!strcmp(k->keras_class, cls)) return k;
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        if (!strcmp(refused[i].cls, cls)) {
            *why = refused[i].why;
            return NULL;
        }
    *why = "unsupported layer class";
    return NULL;
}

/* ---- Keras 3 naming ---------------------------------------------------------- */

/* keras.src.utils.naming.to_snake_case: drop non-word chars, then
 * "(.)([A-Z][a-z]+)" -> "\1_\2", then "([a-z])([A-Z])" -> "\1_\2", lower. */
static void to_snake(const char *cls, char *out, size_t n)
{
    char a[ENG_MAX_NAME * 2], b[ENG_MAX_NAME * 3];
    size_t la = 0, lb = 0;
    for (const char *p = cls; *p && la + 1 < sizeof a && la < ENG_MAX_NAME; p++)
        if (isalnum((unsigned char)*p) || *p == '_') a[la++] = *p;
    a[la] = 0;
    /* pass 1: regex semantics — scan left to right, non-overlapping matches */
    for (size_t i = 0; i < la;) {
        if (i + 2 < la && isupper((unsigned char)a[i + 1]) && islower((unsigned char)a[i + 2])) {
            size_t j = i + 2;
            while (j < la && islower((unsigned char)a[j])) j++;
            b[lb++] = a[i];
            b[lb++] = '_';
            for (size_t k = i + 1; k < j; k++) b[lb++] = a[k];
            i = j;
        } else {
            b[lb++] = a[i++];
        }
    }
    b[lb] = 0;
    size_t o = 0;
    for (size_t i = 0; i < lb && o + 2 < n; i++) {
        if (i + 1 < lb && islower((unsigned char)b[i]) && isupper((unsigned char)b[i + 1])) {
            out[o++] = b[i];
            out[o++] = '_';
            out[o++] = (char)tolower((unsigned char)b[i + 1]);
            i++;
            continue;
        }
        out[o++] = (char)tolower((unsigned char)b[i]);
    }
    out[o] = 0;
}

static void assign_k3_names(eng_arch *a)
{
    /* saving_lib numbers objects of one container by class: conv2d, conv2d_1, …
     * in model.layers order (Sequential.layers leaves out the InputLayer). */
    if (a->nlayers <= 0) return;
    char(*seen)[ENG_MAX_NAME] = calloc((size_t)a->nlayers, sizeof *seen);
    int *count = calloc((size_t)a->nlayers, sizeof *count);
    int nseen = 0;
    if (!seen || !count) {
        free(seen);
        free(count);
        return;
    }
    for (int i = 0; i < a->nlayers; i++) {
        eng_layer *L = &a->layers[i];
        if (!a->functional && (L->kind->flags & ENG_K_INPUT)) continue;
        char base[ENG_MAX_NAME];
        to_snake(L->cls, base, sizeof base);
        int j;
        for (j = 0; j < nseen; j++)
            if (!strcmp(seen[j], base)) break;
        if (j == nseen) {
            snprintf(seen[nseen], ENG_MAX_NAME, "%s", base);
            count[nseen++] = 0;
            snprintf(L->k3name, sizeof L->k3name, "%s", base);
        } else {
            count[j]++;
            snprintf(L->k3name, sizeof L->k3name, "%s_%d", base, count[j]);
        }
    }
    free(seen);
    free(count);
}

/* ---- parsing ------------------------------------------------------------------ */

static bool has_k3_markers(const json_t *root, const json_t *layers)
{
    if (json_object_get(root, "module")) return true;
    size_t i;
    const json_t *e;
    json_array_foreach (layers, i, e) {
        if (json_object_get(e, "module")) return true;
        const json_t *c = json_object_get(e, "config");
        if (json_object_get(c, "batch_shape")) return true;
        if (json_is_object(json_object_get(c, "dtype"))) return true;
    }
    return false;
}

static bool has_k1_markers(const json_t *layers)
{
    static const char *const keys[] = {
        "nb_filter", "output_dim", "border_mode", "dim_ordering", "subsample", "nb_row", "p"};
    size_t i;
    const json_t *e;
    json_array_foreach (layers, i, e) {
        const json_t *c = json_object_get(e, "config");
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
            if (json_object_get(c, keys[k])) return true;
    }
    return false;
}

static int find_layer(const eng_arch *a, int upto, const char *name)
{
    for (int i = 0; i < upto; i++)
        if (!strcmp(a->layers[i].name, name)) return i;
    return -2;
}

/* Collect the producers named by one Keras 3 args tree. */
static int k3_collect(const json_t *v, const char **names, int *n, int depth)
{
    if (depth > 8) return -1;
    if (json_is_object(v)) {
        const char *cn = eng_json_str(v, "class_name");
        if (cn && !strcmp(cn, "__keras_tensor__")) {
            const json_t *h = json_object_get(json_object_get(v, "config"), "keras_history");
            if (!json_is_array(h) || json_array_size(h) < 1 ||
                !json_is_string(json_array_get(h, 0)))
                return -1;
            if (json_integer_value(json_array_get(h, 1)) != 0) return -2;
            if (*n >= ENG_MAX_INPUTS) return -1;
            names[(*n)++] = json_string_value(json_array_get(h, 0));
        }
        return 0;
    }
    if (json_is_array(v)) {
        size_t i;
        const json_t *e;
        json_array_foreach (v, i, e) {
            int rc = k3_collect(e, names, n, depth + 1);
            if (rc < 0) return rc;
        }
    }
    return 0;
}

static int wire_functional(eng_arch *a, const json_t *layers, eng_error *err)
{
    for (int i = 0; i < a->nlayers; i++) {
        eng_layer *L = &a->layers[i];
        const json_t *nodes = json_object_get(json_array_get(layers, (size_t)i), "inbound_nodes");
        size_t nn = json_array_size(nodes);
        const char *names[ENG_MAX_INPUTS];
        int n = 0;
        if (L->kind->flags & ENG_K_INPUT) {
            if (nn) return layer_fail(err, L, 0, 0, 0, "InputLayer with inbound nodes");
            continue;
        }
        if (nn == 0)
            return layer_fail(err, L, 0, 0, 0, "layer has no inbound node (not connected)");
        if (nn > 1)
            return layer_fail(err, L, 0, 0, 0,
                              "layer is called more than once (shared layers are not supported)");
        const json_t *node = json_array_get(nodes, 0);
        if (json_is_array(node)) { /* Keras 1/2: [["name", node, tensor, {…}], …] */
            size_t k;
            const json_t *e;
            json_array_foreach (node, k, e) {
                if (!json_is_array(e) || !json_is_string(json_array_get(e, 0)) ||
                    n >= ENG_MAX_INPUTS)
                    return layer_fail(err, L, 0, 0, 0, "malformed inbound_nodes entry");
                if (json_integer_value(json_array_get(e, 1)) != 0 ||
                    json_integer_value(json_array_get(e, 2)) != 0)
                    return layer_fail(
                        err, L, 0, 0, 0,
                        "input refers to a node/tensor index other than 0 (shared layers or multi-output layers are not supported)");
                names[n++] = json_string_value(json_array_get(e, 0));
            }
        } else if (json_is_object(node)) { /* Keras 3: {"args": […], "kwargs": {…}} */
            int rc = k3_collect(json_object_get(node, "args"), names, &n, 0);
            if (rc == -2)
                return layer_fail(
                    err, L, 0, 0, 0,
                    "input refers to a node index other than 0 (shared layers are not supported)");
            if (rc < 0) return layer_fail(err, L, 0, 0, 0, "malformed inbound_nodes entry");
        } else {
            return layer_fail(err, L, 0, 0, 0, "malformed inbound_nodes");
        }
        if (n == 0) return layer_fail(err, L, 0, 0, 0, "layer has no input tensor");
        if (n > 1 && !(L->kind->flags & ENG_K_MULTI))
            return layer_fail(err, L, 0, 0, 0, "layer takes one input but is given several");
        for (int k = 0; k < n; k++) {
            int j = find_layer(a, a->nlayers, names[k]);
            if (j < 0) {
                char why[ENG_WHY];
                snprintf(why, sizeof why, "input '%.200s' is not a layer of the model", names[k]);
                return layer_fail(err, L, 0, 0, 0, why);
            }
            if (j == i) return layer_fail(err, L, 0, 0, 0, "layer is its own input");
            L->in[k] = j;
        }
        L->nin = n;
    }
    return 0;
}

/* "input_layers"/"output_layers": [["name", 0, 0], …] or Keras 3 ["name", 0, 0]. */
static int io_layers(const eng_arch *a, const json_t *cfg, const char *key, int *idx,
                     eng_error *err)
{
    const json_t *v = json_object_get(cfg, key);
    char why[ENG_WHY];
    if (!json_is_array(v) || json_array_size(v) == 0) {
        snprintf(why, sizeof why, "config.%s missing", key);
        return layer_fail(err, NULL, NULL, NULL, "config", why);
    }
    const json_t *first = json_array_get(v, 0);
    if (json_is_array(first)) {
        if (json_array_size(v) != 1) {
            snprintf(why, sizeof why, "models with several %s are not supported", key);
            return layer_fail(err, NULL, NULL, NULL, "config", why);
        }
        first = json_array_get(first, 0);
    }
    const char *name = json_string_value(first);
    int j = name ? find_layer(a, a->nlayers, name) : -2;
    if (j < 0) {
        snprintf(why, sizeof why, "config.%s names no layer of the model", key);
        return layer_fail(err, NULL, name, NULL, "config", why);
    }
    *idx = j;
    return 0;
}

static int topo_order(eng_arch *a, eng_error *err)
{
    int n = a->nlayers;
    if (n <= 0) return 0;
    int *indeg = calloc((size_t)n, sizeof *indeg);
    int *queue = a->order;
    if (!indeg) return eng_arch_fail(err, ENG_ERR_NOMEM, NULL, "out of memory");
    for (int i = 0; i < n; i++)
        for (int k = 0; k < a->layers[i].nin; k++)
            if (a->layers[i].in[k] >= 0) indeg[i]++;
    int head = 0, tail = 0;
    for (int i = 0; i < n; i++)
        if (!indeg[i]) queue[tail++] = i;
    while (head < tail) {
        int u = queue[head++];
        for (int i = 0; i < n; i++) /* O(n^2) at worst: n <= ENG_MAX_LAYERS */
            for (int k = 0; k < a->layers[i].nin; k++)
                if (a->layers[i].in[k] == u && --indeg[i] == 0) queue[tail++] = i;
    }
    free(indeg);
    if (tail != n) {
        for (int i = 0; i < n; i++) {
            bool in_q = false;
            for (int k = 0; k < tail; k++)
                if (queue[k] == i) in_q = true;
            if (!in_q) return layer_fail(err, &a->layers[i], 0, 0, 0, "layer is part of a cycle");
        }
    }
    return 0;
}

static void nhwc_of(const eng_shape *s, bool cf, eng_shape *o)
{
    *o = *s;
    if (cf && s->rank >= 2) { /* (C, d1, …) -> (d1, …, C) */
        for (int i = 1; i < s->rank; i++) o->d[i - 1] = s->d[i];
        o->d[s->rank - 1] = s->d[0];
    }
}

static void cf_of(const eng_shape *s, bool cf, eng_shape *o)
{
    *o = *s;
    if (cf && s->rank >= 2) { /* (d1, …, C) -> (C, d1, …) */
        o->d[0] = s->d[s->rank - 1];
        for (int i = 1; i < s->rank; i++) o->d[i] = s->d[i - 1];
    }
}

static int infer_shapes(eng_arch *a, eng_error *err)
{
    for (int oi = 0; oi < a->nlayers; oi++) {
        eng_layer *L = &a->layers[a->order[oi]];
        eng_shape ins[ENG_MAX_INPUTS];
        char why[ENG_WHY] = "";
        for (int k = 0; k < L->nin; k++) {
            int j = L->in[k];
            eng_shape s = j < 0 ? a->in_shape : a->layers[j].out;
            if (L->kind->flags & ENG_K_SPATIAL) {
                if (s.rank != 3) {
                    snprintf(why, sizeof why, "expects a rank-3 input (H,W,C), got rank %d",
                             s.rank);
                    return layer_fail(err, L, 0, 0, 0, why);
                }
                nhwc_of(&s, L->cf, &ins[k]);
            } else {
                ins[k] = s;
            }
        }
        L->ish = L->nin ? (L->in[0] < 0 ? a->in_shape : a->layers[L->in[0]].out) : L->out;
        eng_shape out = L->out;
        if (L->kind->shape && L->kind->shape(L, ins, L->nin, why) < 0)
            return layer_fail(err, L, 0, 0, 0, why);
        out = L->out;
        if (L->kind->flags & ENG_K_SPATIAL) cf_of(&out, L->cf, &L->out);
        int64_t cnt = 1;
        for (int d = 0; d < L->out.rank; d++) {
            if (L->out.d[d] < 1 || L->out.d[d] > (1 << 30))
                return layer_fail(err, L, 0, 0, 0,
                                  "inconsistent shapes: an output dimension is not positive");
            cnt *= L->out.d[d];
            if ((uint64_t)cnt > ENG_MAX_ELEMENTS)
                return eng_arch_fail(err, ENG_ERR_LIMIT,
                                     json_pack("{s:s, s:s, s:s}", "layer", L->name, "reason",
                                               "output too large", "path", L->path),
                                     "layer '%s': output has more than %llu elements", L->name,
                                     (unsigned long long)ENG_MAX_ELEMENTS);
        }
        L->nw = 0;
        if (L->kind->weights && L->kind->weights(L, L->nin ? &ins[0] : &L->out, why) < 0)
            return layer_fail(err, L, 0, 0, 0, why);
        for (int w = 0; w < L->nw; w++) {
            int64_t n = 1;
            for (int d = 0; d < L->w[w].rank; d++) {
                if (L->w[w].shape[d] < 0)
                    return layer_fail(err, L, 0, 0, 0,
                                      "inconsistent shapes: a weight dimension is negative");
                n *= L->w[w].shape[d];
                if ((uint64_t)n > ENG_MAX_ELEMENTS)
                    return eng_arch_fail(err, ENG_ERR_LIMIT,
                                         json_pack("{s:s, s:s, s:s}", "layer", L->name, "reason",
                                                   "weight too large", "path", L->path),
                                         "layer '%s': weight '%s' too large", L->name,
                                         L->w[w].name);
            }
            a->params += n;
            if (L->trainable && L->w[w].trainable) a->trainable_params += n;
        }
    }
    return 0;
}

static int parse_version(const char *v)
{
    if (!v) return 0;
    int m = atoi(v);
    return (m >= 1 && m <= 9) ? m : 0;
}

static void layers_free(eng_arch *a)
{
    for (int i = 0; i < a->nlayers; i++) {
        free(a->layers[i].name);
        free(a->layers[i].cls);
    }
    free(a->layers);
    a->layers = NULL;
}

void eng_arch_free(eng_arch *a)
{
    if (!a) return;
    if (atomic_fetch_sub(&a->refs, 1) > 1) return;
    layers_free(a);
    free(a->order);
    free(a->canonical);
    free(a->keras_version);
    free(a);
}

const char *eng_arch_canonical(const eng_arch *a)
{
    return a ? a->canonical : NULL;
}
const char *eng_arch_id(const eng_arch *a)
{
    return a ? a->id : NULL;
}

static int make_id(eng_arch *a)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(a->canonical, strlen(a->canonical), md, &mdlen, EVP_sha256(), NULL)) return -1;
    char *p = a->id + sprintf(a->id, "sha256:");
    for (unsigned i = 0; i < mdlen; i++) p += sprintf(p, "%02x", md[i]);
    return 0;
}

/* Is mod a module Keras 3 writes for its layers ("keras.layers", or an
 * internal path under keras.src.layers)? */
static bool layer_module_known(const char *mod)
{
    return strcmp(mod, "keras.layers") == 0 || strcmp(mod, "keras.src.layers") == 0 ||
           strncmp(mod, "keras.src.layers.", 17) == 0;
}

/* Parse one entry of the layers list into a->layers[i]. */
static int parse_layer(eng_arch *a, int i, const json_t *e, const char *cfgpath,
                       const eng_parse_ctx *pc, eng_error *err)
{
    eng_layer *L = &a->layers[i];
    char path[48], why[ENG_WHY] = "";
    snprintf(path, sizeof path, "%s[%d]", cfgpath, i);
    const char *cls = eng_json_str(e, "class_name");
    const json_t *cfg = json_object_get(e, "config");
    const char *name = eng_json_str(cfg, "name");
    if (!name) name = eng_json_str(e, "name");
    if (!json_is_object(e) || !cls || !json_is_object(cfg))
        return layer_fail(err, NULL, name, cls, path,
                          "layer entry needs class_name and a config object");
    if (!name || !*name) return layer_fail(err, NULL, NULL, cls, path, "layer has no name");
    if (strlen(name) >= ENG_MAX_NAME)
        return eng_arch_fail(err, ENG_ERR_LIMIT,
                             json_pack("{s:s, s:s, s:s}", "class", cls, "reason",
                                       "layer name too long", "path", path),
                             "layer name longer than %d bytes at %s", ENG_MAX_NAME - 1, path);
    if (find_layer(a, i, name) >= 0)
        return layer_fail(err, NULL, name, cls, path, "duplicate layer name");
    const char *kwhy;
    const struct eng_layer_kind *k = eng_kind_find(cls, &kwhy);
    if (!k) return layer_fail(err, NULL, name, cls, path, kwhy);
    /* Keras 3 writes tensor arithmetic (x + 3.0) as an operation node whose
     * class_name names the op ("Add") and whose module is keras.src.ops.*:
     * it is not the layer of that name, so it must not run as one. */
    const char *mod = eng_json_str(e, "module");
    if (mod && !layer_module_known(mod)) {
        char mwhy[ENG_WHY];
        snprintf(mwhy, sizeof mwhy,
                 "module '%.60s' is not a layer module (a Keras operation node such as "
                 "'x + 3.0'); operation nodes are not supported",
                 mod);
        return layer_fail(err, NULL, name, cls, path, mwhy);
    }
    L->name = strdup(name);
    L->cls = strdup(cls);
    if (!L->name || !L->cls) return eng_arch_fail(err, ENG_ERR_NOMEM, NULL, "out of memory");
    snprintf(L->path, sizeof L->path, "%s", path);
    L->kind = k;
    L->trainable = eng_json_bool(cfg, "trainable", true);
    if (k->flags & ENG_K_SPATIAL) {
        int df = eng_json_data_format(cfg);
        if (df < 0) return layer_fail(err, L, 0, 0, 0, "unknown data_format / dim_ordering");
        L->cf = df == 1;
    }
    if (k->parse && k->parse(L, cfg, pc, why) < 0) return layer_fail(err, L, 0, 0, 0, why);
    return 0;
}

eng_code eng_arch_parse(const char *json_text, size_t len, eng_arch **out, eng_error *err)
{
    json_t *root = NULL;
    eng_arch *a = NULL;
    eng_code rc = ENG_OK;
    json_error_t jerr;
    char why[ENG_WHY] = "";

    if (!json_text) return eng_arch_fail(err, ENG_ERR_ARCH, NULL, "no architecture text");
    if (len > ARCH_MAX_JSON)
        return eng_arch_fail(err, ENG_ERR_LIMIT, json_pack("{s:s}", "reason", "config too large"),
                             "architecture JSON larger than %u bytes", ARCH_MAX_JSON);
    root = json_loadb(json_text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        rc = eng_arch_fail(err, ENG_ERR_ARCH,
                           json_pack("{s:s, s:s, s:i, s:i}", "reason", jerr.text, "path", "$",
                                     "line", jerr.line, "column", jerr.column),
                           "malformed JSON at line %d column %d: %s", jerr.line, jerr.column,
                           jerr.text);
        goto out;
    }
    /* Accept also {"model_config": …}? No: exactly to_json(). */
    const char *top = eng_json_str(root, "class_name");
    const json_t *config = json_object_get(root, "config");
    if (!json_is_object(root) || !top) {
        rc = layer_fail(err, NULL, NULL, NULL, "class_name",
                        "not a Keras model config: no top-level class_name");
        goto out;
    }
    bool functional;
    if (!strcmp(top, "Sequential")) functional = false;
    else if (!strcmp(top, "Model") || !strcmp(top, "Functional")) functional = true;
    else {
        snprintf(why, sizeof why, "top-level class '%.64s' is not Sequential, Model or Functional",
                 top);
        rc = layer_fail(err, NULL, NULL, top, "class_name", why);
        goto out;
    }
    const json_t *layers = json_is_array(config) ? config : json_object_get(config, "layers");
    const char *cfgpath = json_is_array(config) ? "config" : "config.layers";
    if (!json_is_array(layers) || json_array_size(layers) == 0) {
        rc = layer_fail(err, NULL, NULL, top, "config.layers", "config has no layers list");
        goto out;
    }
    if (json_array_size(layers) > ENG_MAX_LAYERS) {
        rc = eng_arch_fail(err, ENG_ERR_LIMIT, json_pack("{s:s}", "reason", "too many layers"),
                           "more than %d layers", ENG_MAX_LAYERS);
        goto out;
    }

    a = calloc(1, sizeof *a);
    if (!a) {
        rc = eng_arch_fail(err, ENG_ERR_NOMEM, NULL, "out of memory");
        goto out;
    }
    atomic_init(&a->refs, 1);
    a->functional = functional;
    a->nlayers = (int)json_array_size(layers);
    a->layers = calloc((size_t)a->nlayers, sizeof *a->layers);
    a->order = calloc((size_t)a->nlayers, sizeof *a->order);
    if (!a->layers || !a->order) {
        rc = eng_arch_fail(err, ENG_ERR_NOMEM, NULL, "out of memory");
        goto out;
    }
    const char *kv = eng_json_str(root, "keras_version");
    if (kv && !(a->keras_version = strdup(kv))) {
        rc = eng_arch_fail(err, ENG_ERR_NOMEM, NULL, "out of memory");
        goto out;
    }
    a->keras_major = parse_version(kv);
    if (!a->keras_major)
        a->keras_major = has_k3_markers(root, layers) ? 3 : has_k1_markers(layers) ? 1 : 2;

    eng_parse_ctx pc = {.keras_major = a->keras_major};
    for (int i = 0; i < a->nlayers; i++)
        if ((rc = parse_layer(a, i, json_array_get(layers, (size_t)i), cfgpath, &pc, err)))
            goto out;

    if (functional) {
        if ((rc = wire_functional(a, layers, err))) goto out;
        int in_idx;
        if ((rc = io_layers(a, config, "input_layers", &in_idx, err))) goto out;
        if ((rc = io_layers(a, config, "output_layers", &a->output, err))) goto out;
        if (!(a->layers[in_idx].kind->flags & ENG_K_INPUT)) {
            rc = layer_fail(err, &a->layers[in_idx], 0, 0, 0, "model input is not an InputLayer");
            goto out;
        }
        for (int i = 0; i < a->nlayers; i++)
            if ((a->layers[i].kind->flags & ENG_K_INPUT) && i != in_idx) {
                rc = layer_fail(err, &a->layers[i], 0, 0, 0,
                                "models with several inputs are not supported");
                goto out;
            }
        a->in_shape = a->layers[in_idx].out;
        if ((rc = topo_order(a, err))) goto out;
    } else {
        /* Sequential: a chain; input from an InputLayer or the first layer's
         * batch_input_shape / batch_shape / input_shape / input_dim, else the
         * model's build_input_shape / build_config. */
        int start = 0;
        bool found = false;
        eng_layer *L0 = &a->layers[0];
        for (int i = 1; i < a->nlayers; i++)
            if (a->layers[i].kind->flags & ENG_K_INPUT) {
                rc = layer_fail(err, &a->layers[i], 0, 0, 0,
                                "InputLayer is only allowed first in a Sequential model");
                goto out;
            }
        if (L0->kind->flags & ENG_K_INPUT) {
            a->in_shape = L0->out;
            found = true;
            start = 1;
        } else {
            const json_t *c0 = json_object_get(json_array_get(layers, 0), "config");
            if (eng_declared_shape(c0, &a->in_shape, &found, why) < 0) {
                rc = layer_fail(err, L0, 0, 0, 0, why);
                goto out;
            }
            const json_t *bis = json_object_get(config, "build_input_shape");
            if (!found && bis && !json_is_null(bis)) {
                if (eng_parse_shape(bis, true, &a->in_shape, why) < 0) {
                    rc = layer_fail(err, L0, 0, 0, 0, why);
                    goto out;
                }
                found = true;
            }
            const json_t *bc =
                json_object_get(json_object_get(root, "build_config"), "input_shape");
            if (!found && bc && !json_is_null(bc)) {
                if (eng_parse_shape(bc, true, &a->in_shape, why) < 0) {
                    rc = layer_fail(err, L0, 0, 0, 0, why);
                    goto out;
                }
                found = true;
            }
        }
        if (!found) {
            rc = layer_fail(
                err, L0, 0, 0, 0,
                "the model's input shape is not declared (no InputLayer, batch_input_shape or build_input_shape)");
            goto out;
        }
        for (int i = 0; i < a->nlayers; i++) {
            a->order[i] = i;
            if (i < start) continue;
            a->layers[i].nin = 1;
            a->layers[i].in[0] = i == 0 ? -1 : i - 1;
        }
        a->output = a->nlayers - 1;
    }
    if ((rc = infer_shapes(a, err))) goto out;
    assign_k3_names(a);

    a->canonical = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    if (!a->canonical || make_id(a) < 0) {
        rc = eng_arch_fail(err, ENG_ERR_NOMEM, NULL, "out of memory");
        goto out;
    }
    *out = a;
    a = NULL;
out:
    json_decref(root);
    eng_arch_free(a);
    return rc;
}

static json_t *shape_json(const int64_t *d, int rank)
{
    json_t *j = json_array();
    for (int i = 0; i < rank; i++) json_array_append_new(j, json_integer(d[i]));
    return j;
}

json_t *eng_arch_to_json(const eng_arch *a)
{
    if (!a) return NULL;
    json_t *layers = json_array();
    for (int i = 0; i < a->nlayers; i++) {
        const eng_layer *L = &a->layers[i];
        json_t *ws = json_array();
        int64_t lp = 0;
        for (int w = 0; w < L->nw; w++) {
            int64_t n = 1;
            for (int d = 0; d < L->w[w].rank; d++) n *= L->w[w].shape[d];
            lp += n;
            json_array_append_new(ws, json_pack("{s:s, s:o, s:s}", "name", L->w[w].name, "shape",
                                                shape_json(L->w[w].shape, L->w[w].rank), "dtype",
                                                "float32"));
        }
        json_array_append_new(layers,
                              json_pack("{s:s, s:s, s:o, s:I, s:o}", "name", L->name, "class",
                                        L->cls, "output_shape", shape_json(L->out.d, L->out.rank),
                                        "params", (json_int_t)lp, "weights", ws));
    }
    json_t *j = json_pack(
        "{s:s, s:o, s:o, s:I, s:I, s:I, s:o}", "framework", "keras", "input_shape",
        shape_json(a->in_shape.d, a->in_shape.rank), "output_shape",
        shape_json(a->layers[a->output].out.d, a->layers[a->output].out.rank), "params",
        (json_int_t)a->params, "trainable_params", (json_int_t)a->trainable_params,
        "non_trainable_params", (json_int_t)(a->params - a->trainable_params), "layers", layers);
    if (j && a->keras_version)
        json_object_set_new(j, "keras_version", json_string(a->keras_version));
    if (j) json_object_set_new(j, "keras_major", json_integer(a->keras_major));
    return j;
}
