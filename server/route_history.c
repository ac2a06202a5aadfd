/* server/route_history.c — /v1/models/{model}/history and …/runs: reading
 * the three forms Keras writes history in (one epoch as on_epoch_end sends
 * it, a History.history dict, a CSVLogger file) into one storage batch, and
 * answering history as JSON columns or CSVLogger-compatible CSV.
 * Does not own: storing or reading rows (storage/history.c), the metrics a
 * checkpoint upload records (route_versions.c → st_version_create).
 *
 * Input rules (the README repeats them):
 * - Values are finite numbers. null (JSON) or NA (CSV, what CSVLogger itself
 *   writes for a missing key) means "no value at this epoch"; nan, inf, an
 *   empty or non-numeric cell is a 400 naming the row/metric and column.
 * - CSV: comma separated, first column `epoch`, \n or \r\n line ends, an
 *   optional UTF-8 BOM, RFC 4180 quotes; blank lines are skipped; a header
 *   line again later (files concatenated, or appended to after a resume)
 *   sets the columns of the rows after it. `row` in errors is the 1-based
 *   line number in the file (the header is row 1).
 * - An epoch given twice in one request: the later one wins.
 */
#include <ctype.h>
#include <stdarg.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>

#include "numtext.h"
#include "params.h"
#include "reply.h"
#include "routes.h"

/* Columns of one CSV line: epoch + ST_HISTORY_MAX_METRICS; one more to
 * notice a line with too many. */
#define HIST_CSV_MAX_FIELDS (ST_HISTORY_MAX_METRICS + 2)

/* ---- the batch being built ------------------------------------------------ */

struct hist_in {
    const char *run;                       /* borrowed (body or query) */
    char *metrics[ST_HISTORY_MAX_METRICS]; /* owned */
    size_t nmetrics;
    int64_t *epochs; /* owned */
    double *values;  /* owned, nepochs x nmetrics, NAN = none */
    size_t nepochs;
};

static void hist_in_release(struct hist_in *in)
{
    for (size_t j = 0; j < in->nmetrics; j++) free(in->metrics[j]);
    free(in->epochs);
    free(in->values);
}

/* Answer 400 with details (STOLEN); returns -1 for `return bad(...)`. */
static int bad(srv_req *r, json_t *details, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int bad(srv_req *r, json_t *details, const char *fmt, ...)
{
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    srv_reply_error(r, SRV_E_BAD_REQUEST, details, "%s", msg);
    return -1;
}

/* Index of metric name in in->metrics, adding it when new; -1 after a 400. */
static int metric_index(srv_req *r, struct hist_in *in, const char *name, long long row)
{
    for (size_t j = 0; j < in->nmetrics; j++)
        if (strcmp(in->metrics[j], name) == 0) return (int)j;
    if (!st_metric_name_valid(name)) {
        json_t *d = row > 0 ? json_pack("{s:I,s:s}", "row", (json_int_t)row, "column", name)
                            : json_pack("{s:s}", "metric", name);
        char where[48] = "";
        if (row > 0) snprintf(where, sizeof where, "row %lld: ", row);
        srv_reply_error(r, SRV_E_BAD_REQUEST, d,
                        "%smetric name '%.140s' must be 1..%d printable "
                        "ASCII characters without space, ',' or '\"', and not 'epoch'",
                        where, name, ST_METRIC_NAME_MAX);
        return -1;
    }
    if (in->nmetrics == ST_HISTORY_MAX_METRICS) {
        srv_reply_error(r, SRV_E_BAD_REQUEST, json_pack("{s:i}", "limit", ST_HISTORY_MAX_METRICS),
                        "more than %d metrics in one request", ST_HISTORY_MAX_METRICS);
        return -1;
    }
    if (!(in->metrics[in->nmetrics] = strdup(name))) {
        srv_reply_error(r, SRV_E_INTERNAL, NULL, "out of memory");
        return -1;
    }
    return (int)in->nmetrics++;
}

/* Room for nepochs x nmetrics values, all NAN. -1 after a 400/500. */
static int hist_alloc(srv_req *r, struct hist_in *in, size_t nepochs)
{
    if (nepochs == 0) return bad(r, NULL, "no epochs given");
    if (nepochs > ST_HISTORY_MAX_EPOCHS || nepochs * in->nmetrics > ST_HISTORY_MAX_VALUES) {
        srv_reply_error(r, SRV_E_BAD_REQUEST,
                        json_pack("{s:i,s:i}", "max_epochs", ST_HISTORY_MAX_EPOCHS, "max_values",
                                  ST_HISTORY_MAX_VALUES),
                        "%zu epochs x %zu metrics: at most %d epochs and %d values per request; "
                        "send the history in parts",
                        nepochs, in->nmetrics, ST_HISTORY_MAX_EPOCHS, ST_HISTORY_MAX_VALUES);
        return -1;
    }
    in->epochs = calloc(nepochs, sizeof *in->epochs);
    in->values = malloc(nepochs * (in->nmetrics ? in->nmetrics : 1) * sizeof *in->values);
    if (!in->epochs || !in->values) {
        srv_reply_error(r, SRV_E_INTERNAL, NULL, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < nepochs * in->nmetrics; i++) in->values[i] = NAN;
    in->nepochs = nepochs;
    return 0;
}

/* ---- JSON forms ------------------------------------------------------------ */

/* A JSON metric value: number → it, null → NAN (no value). -1 when neither. */
static int json_value(json_t *v, double *out)
{
    if (json_is_null(v)) {
        *out = NAN;
        return 0;
    }
    if (!json_is_number(v) || !isfinite(json_number_value(v))) return -1;
    *out = json_number_value(v);
    return 0;
}

static int keys_allowed(srv_req *r, json_t *body, const char *const *allowed, const char *form)
{
    const char *k;
    json_t *v;
    json_object_foreach (body, k, v) {
        int ok = 0;
        for (size_t i = 0; allowed[i]; i++) ok |= strcmp(k, allowed[i]) == 0;
        if (!ok)
            return bad(r, json_pack("{s:s}", "field", k), "unknown field '%.140s' in %s", k, form);
    }
    return 0;
}

/* {"run", "epoch": 3, "metrics": {"loss": 0.2}} */
static int parse_one_epoch(srv_req *r, json_t *body, struct hist_in *in)
{
    static const char *const allowed[] = {"run", "epoch", "metrics", NULL};
    json_t *je = json_object_get(body, "epoch"), *jm = json_object_get(body, "metrics"), *v;
    const char *k;
    size_t j = 0;

    if (keys_allowed(r, body, allowed, "one epoch {\"run\", \"epoch\", \"metrics\"}")) return -1;
    if (!json_is_integer(je) || json_integer_value(je) < 0)
        return bad(r, json_pack("{s:s}", "field", "epoch"),
                   "'epoch' must be an integer >= 0 (Keras counts epochs from 0)");
    if (!json_is_object(jm) || json_object_size(jm) == 0)
        return bad(r, json_pack("{s:s}", "field", "metrics"),
                   "'metrics' must be a non-empty object of numbers, like {\"loss\": 0.2}");
    if (json_object_size(jm) > ST_HISTORY_MAX_METRICS)
        return bad(r, json_pack("{s:i}", "limit", ST_HISTORY_MAX_METRICS),
                   "too many metrics in one epoch");
    json_object_foreach (jm, k, v)
        if (metric_index(r, in, k, 0) < 0) return -1;
    if (hist_alloc(r, in, 1)) return -1;
    in->epochs[0] = json_integer_value(je);
    json_object_foreach (jm, k, v) {
        if (json_value(v, &in->values[j++]))
            return bad(r, json_pack("{s:s}", "metric", k),
                       "metric '%.140s' must be a finite number (or null for none)", k);
    }
    return 0;
}

/* {"epoch": 3, "loss": 0.2, "accuracy": 0.9} — what Keras' own
 * RemoteMonitor(send_as_json=True) posts: the epoch beside the logs, the run
 * from ?run= (or a "run" string). Every other key is a metric. */
static int parse_flat_epoch(srv_req *r, json_t *body, struct hist_in *in)
{
    json_t *je = json_object_get(body, "epoch"), *v;
    const char *k;
    size_t j = 0;

    if (!json_is_integer(je) || json_integer_value(je) < 0)
        return bad(r, json_pack("{s:s}", "field", "epoch"),
                   "'epoch' must be an integer >= 0 (Keras counts epochs from 0)");
    if (json_object_size(body) > ST_HISTORY_MAX_METRICS + 2)
        return bad(r, json_pack("{s:i}", "limit", ST_HISTORY_MAX_METRICS),
                   "too many metrics in one epoch");
    json_object_foreach (body, k, v)
        if (strcmp(k, "epoch") && strcmp(k, "run") && metric_index(r, in, k, 0) < 0) return -1;
    if (in->nmetrics == 0)
        return bad(r, NULL,
                   "no metrics beside 'epoch': expected {\"epoch\": 3, \"loss\": 0.2, …} "
                   "as Keras RemoteMonitor(send_as_json=True) sends it");
    if (hist_alloc(r, in, 1)) return -1;
    in->epochs[0] = json_integer_value(je);
    json_object_foreach (body, k, v) {
        if (!strcmp(k, "epoch") || !strcmp(k, "run")) continue;
        if (json_value(v, &in->values[j++]))
            return bad(r, json_pack("{s:s}", "metric", k),
                       "metric '%.140s' must be a finite number (or null for none)", k);
    }
    return 0;
}

/* {"run", "history": {"loss": [...], ...}, "initial_epoch": 0 | "epochs": [...]} */
static int parse_history_dict(srv_req *r, json_t *body, struct hist_in *in)
{
    static const char *const allowed[] = {"run", "history", "initial_epoch", "epochs", NULL};
    json_t *jh = json_object_get(body, "history"), *ji = json_object_get(body, "initial_epoch");
    json_t *jes = json_object_get(body, "epochs"), *v;
    const char *k, *first = NULL;
    size_t n = 0, j = 0;
    int64_t initial = 0;

    if (keys_allowed(r, body, allowed, "a History dict {\"run\", \"history\", \"initial_epoch\"}"))
        return -1;
    if (!json_is_object(jh) || json_object_size(jh) == 0)
        return bad(r, json_pack("{s:s}", "field", "history"),
                   "'history' must be a non-empty object "
                   "of lists, as Keras History.history: {\"loss\": [0.5, 0.3]}");
    if (json_object_size(jh) > ST_HISTORY_MAX_METRICS)
        return bad(r, json_pack("{s:i}", "limit", ST_HISTORY_MAX_METRICS),
                   "too many metrics in 'history'");
    if (ji && jes)
        return bad(r, json_pack("{s:s}", "field", "epochs"),
                   "give 'initial_epoch' or 'epochs', not both");
    if (ji && !json_is_null(ji)) {
        if (!json_is_integer(ji) || json_integer_value(ji) < 0)
            return bad(r, json_pack("{s:s}", "field", "initial_epoch"),
                       "'initial_epoch' must be an integer >= 0");
        initial = json_integer_value(ji);
    }
    json_object_foreach (jh, k, v) {
        if (!json_is_array(v))
            return bad(r, json_pack("{s:s}", "metric", k),
                       "history['%.140s'] must be a list of numbers", k);
        if (!first) {
            first = k;
            n = json_array_size(v);
        } else if (json_array_size(v) != n) {
            srv_reply_error(r, SRV_E_BAD_REQUEST,
                            json_pack("{s:s,s:I,s:s,s:I}", "metric", k, "length",
                                      (json_int_t)json_array_size(v), "expected_from", first,
                                      "expected", (json_int_t)n),
                            "ragged history: '%.140s' has %zu values but '%.140s' has %zu; every "
                            "list needs one value per epoch (null for none)",
                            k, json_array_size(v), first, n);
            return -1;
        }
        if (metric_index(r, in, k, 0) < 0) return -1;
    }
    if (jes && !(json_is_array(jes) && json_array_size(jes) == n))
        return bad(r, json_pack("{s:s}", "field", "epochs"),
                   "'epochs' must be a list with one epoch number per value");
    if (n > ST_HISTORY_MAX_EPOCHS || initial > INT64_MAX - (int64_t)n)
        return bad(r, json_pack("{s:i}", "limit", ST_HISTORY_MAX_EPOCHS),
                   "too many epochs in one request");
    if (hist_alloc(r, in, n)) return -1;
    for (size_t i = 0; i < n; i++) {
        json_t *e = jes ? json_array_get(jes, i) : NULL;
        if (e && !(json_is_integer(e) && json_integer_value(e) >= 0)) {
            srv_reply_error(r, SRV_E_BAD_REQUEST,
                            json_pack("{s:s,s:I}", "field", "epochs", "index", (json_int_t)i),
                            "epochs[%zu] must be an integer >= 0", i);
            return -1;
        }
        in->epochs[i] = e ? json_integer_value(e) : initial + (int64_t)i;
    }
    json_object_foreach (jh, k, v) {
        size_t i;
        json_t *x;
        json_array_foreach (v, i, x) {
            if (json_value(x, &in->values[i * in->nmetrics + j])) {
                srv_reply_error(r, SRV_E_BAD_REQUEST,
                                json_pack("{s:s,s:I,s:I}", "metric", k, "index", (json_int_t)i,
                                          "epoch", (json_int_t)in->epochs[i]),
                                "history['%.140s'][%zu] must be a finite number (or null for none)",
                                k, i);
                return -1;
            }
        }
        j++;
    }
    return 0;
}

static int parse_json(srv_req *r, struct hist_in *in, json_t **doc)
{
    json_t *body = srv_body_json(r), *jr;
    *doc = body;
    if (!body) return -1;
    if (!json_is_object(body))
        return bad(r, NULL,
                   "body must be a JSON object: one epoch {\"run\", \"epoch\", \"metrics\"} "
                   "or a History dict {\"run\", \"history\", \"initial_epoch\"}");
    jr = json_object_get(body, "run");
    if (jr && !json_is_string(jr))
        return bad(r, json_pack("{s:s}", "field", "run"), "'run' must be a string");
    in->run = jr ? json_string_value(jr) : srv_query(r, "run");
    if (json_object_get(body, "history")) return parse_history_dict(r, body, in);
    if (json_object_get(body, "epoch") && json_object_get(body, "metrics"))
        return parse_one_epoch(r, body, in);
    if (json_object_get(body, "epoch")) return parse_flat_epoch(r, body, in);
    return bad(r, NULL,
               "expected one epoch {\"run\", \"epoch\", \"metrics\"}, a Keras History "
               "dict {\"run\", \"history\", \"initial_epoch\"}, or RemoteMonitor's "
               "{\"epoch\", <logs>} with ?run=");
}

/* ---- CSV (Keras CSVLogger) --------------------------------------------------- */

struct csv_line {
    const char *p; /* start, in the body */
    size_t len;    /* without \r\n */
    long long row; /* 1-based line number */
};

/* Next line of [*pos, end); 0 at the end. */
static int csv_next(const char **pos, const char *end, struct csv_line *l)
{
    const char *s = *pos, *nl;
    if (s >= end) return 0;
    nl = memchr(s, '\n', (size_t)(end - s));
    l->p = s;
    l->len = (size_t)((nl ? nl : end) - s);
    if (l->len && s[l->len - 1] == '\r') l->len--;
    l->row++;
    *pos = nl ? nl + 1 : end;
    return 1;
}

/* Split a line into NUL-terminated fields in scratch (RFC 4180 quotes,
 * spaces around unquoted fields trimmed). *n = count; -1 on a bad quote,
 * -2 on too many fields. */
static int csv_split(const struct csv_line *l, char *scratch, char **fields, size_t *n)
{
    const char *s = l->p, *e = l->p + l->len;
    char *o = scratch;
    *n = 0;
    for (;;) {
        if (*n == HIST_CSV_MAX_FIELDS) return -2;
        while (s < e && *s == ' ') s++;
        fields[(*n)++] = o;
        if (s < e && *s == '"') {
            for (s++;; s++) {
                if (s >= e) return -1;
                if (*s == '"') {
                    if (s + 1 < e && s[1] == '"') {
                        *o++ = '"';
                        s++;
                        continue;
                    }
                    s++;
                    break;
                }
                *o++ = *s;
            }
            while (s < e && *s == ' ') s++;
            if (s < e && *s != ',') return -1;
        } else {
            const char *c = memchr(s, ',', (size_t)(e - s));
            const char *fe = c ? c : e;
            while (fe > s && fe[-1] == ' ') fe--;
            memcpy(o, s, (size_t)(fe - s));
            o += fe - s;
            s = c ? c : e;
        }
        *o++ = '\0';
        if (s >= e) return 0;
        s++; /* the comma */
    }
}

/* Plain decimal or exponent notation, finite. 0 ok, -1 not a number,
 * -2 nan/inf (written by Keras for a diverged loss). */
static int csv_number(const char *s, double *out)
{
    char *end;
    if (!*s) return -1;
    if (strcasecmp(s, "nan") == 0 || strcasecmp(s, "inf") == 0 || strcasecmp(s, "-inf") == 0 ||
        strcasecmp(s, "+inf") == 0 || strcasecmp(s, "infinity") == 0 ||
        strcasecmp(s, "-infinity") == 0)
        return -2;
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p) && !strchr("+-.eE", *p)) return -1;
    errno = 0;
    *out = strtod(s, &end);
    if (*end || end == s) return -1;
    return isfinite(*out) ? 0 : -2;
}

/* The epoch column: digits only (CSVLogger writes the int). */
static int csv_epoch(const char *s, int64_t *out)
{
    int64_t v = 0;
    if (!*s) return -1;
    for (; *s; s++) {
        if (!isdigit((unsigned char)*s) || v > (INT64_MAX - (*s - '0')) / 10) return -1;
        v = v * 10 + (*s - '0');
    }
    *out = v;
    return 0;
}

/* 400 naming the row (1-based line) and, when known, the column. */
static int csv_error(srv_req *r, long long row, const char *column, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int csv_error(srv_req *r, long long row, const char *column, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    json_t *d = column ? json_pack("{s:I,s:s}", "row", (json_int_t)row, "column", column)
                       : json_pack("{s:I}", "row", (json_int_t)row);
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    srv_reply_error(r, SRV_E_BAD_REQUEST, d, "CSV row %lld: %s", row, msg);
    return -1;
}

static int csv_is_header(char **f, size_t n)
{
    return n > 0 && strcmp(f[0], "epoch") == 0;
}

/* Map a header line's columns to metric indices (adding new metrics). */
static int csv_header(srv_req *r, struct hist_in *in, char **f, size_t n, long long row, int *map)
{
    if (n < 2) return csv_error(r, row, NULL, "the header needs 'epoch' and at least one metric");
    for (size_t c = 1; c < n; c++) {
        for (size_t d = 1; d < c; d++)
            if (strcmp(f[c], f[d]) == 0)
                return csv_error(r, row, f[c], "column '%.140s' appears twice", f[c]);
        if ((map[c] = metric_index(r, in, f[c], row)) < 0) return -1;
    }
    return 0;
}

static int parse_csv(srv_req *r, struct hist_in *in)
{
    const char *start = r->body ? r->body : "", *end = start + r->body_len, *pos;
    char *scratch = NULL, *f[HIST_CSV_MAX_FIELDS];
    int map[HIST_CSV_MAX_FIELDS];
    struct csv_line l;
    size_t n, ncols = 0, nrows = 0, i = 0;
    int rc = -1, s;

    in->run = srv_query(r, "run");
    if (!in->run)
        return bad(r, json_pack("{s:s}", "parameter", "run"),
                   "a CSV history needs ?run=NAME "
                   "(CSVLogger files do not name their run)");
    if (end - start >= 3 && memcmp(start, "\xEF\xBB\xBF", 3) == 0) start += 3;
    scratch = malloc(r->body_len + 1);
    if (!scratch) {
        srv_reply_error(r, SRV_E_INTERNAL, NULL, "out of memory");
        return -1;
    }
    /* Pass 1: every header (the union of metrics) and the row count. */
    memset(&l, 0, sizeof l);
    for (pos = start; csv_next(&pos, end, &l);) {
        if (l.len == 0) continue;
        s = csv_split(&l, scratch, f, &n);
        if (s == -2) {
            csv_error(r, l.row, NULL, "more than %d columns", HIST_CSV_MAX_FIELDS - 1);
            goto out;
        }
        if (s == -1) {
            csv_error(r, l.row, NULL, "unbalanced double quote");
            goto out;
        }
        if (csv_is_header(f, n)) {
            if (csv_header(r, in, f, n, l.row, map)) goto out;
        } else if (ncols == 0) {
            csv_error(r, l.row, NULL,
                      "expected the header 'epoch,<metric>,…' (as CSVLogger "
                      "writes it) first");
            goto out;
        } else {
            nrows++;
        }
        if (csv_is_header(f, n)) ncols = n;
    }
    if (ncols == 0) {
        bad(r, NULL, "empty CSV: expected CSVLogger's 'epoch,<metric>,…' header and rows");
        goto out;
    }
    if (hist_alloc(r, in, nrows)) goto out;
    /* Pass 2: the rows, each under the latest header before it. */
    memset(&l, 0, sizeof l);
    for (pos = start; csv_next(&pos, end, &l);) {
        double *vals;
        int any = 0;
        if (l.len == 0) continue;
        csv_split(&l, scratch, f, &n);
        if (csv_is_header(f, n)) {
            ncols = n;
            if (csv_header(r, in, f, n, l.row, map)) goto out;
            continue;
        }
        if (n != ncols) {
            csv_error(r, l.row, NULL, "%zu cells, the header has %zu columns", n, ncols);
            goto out;
        }
        if (csv_epoch(f[0], &in->epochs[i])) {
            csv_error(r, l.row, "epoch", "epoch '%.60s' is not an integer >= 0", f[0]);
            goto out;
        }
        vals = in->values + i * in->nmetrics;
        for (size_t c = 1; c < n; c++) {
            if (strcmp(f[c], "NA") == 0) continue; /* CSVLogger's "no value" */
            s = csv_number(f[c], &vals[map[c]]);
            if (s == -2) {
                csv_error(r, l.row, in->metrics[map[c]],
                          "column '%s': '%.40s' is not finite; only "
                          "finite numbers are stored (write NA for none, or drop the row)",
                          in->metrics[map[c]], f[c]);
                goto out;
            }
            if (s) {
                csv_error(r, l.row, in->metrics[map[c]],
                          "column '%s': '%.60s' is not a number "
                          "(write NA for none)",
                          in->metrics[map[c]], f[c]);
                goto out;
            }
            any = 1;
        }
        if (!any) {
            csv_error(r, l.row, NULL, "no values in the row (every cell is NA)");
            goto out;
        }
        i++;
    }
    rc = 0;
out:
    free(scratch);
    return rc;
}

static int is_csv(srv_req *r)
{
    const char *ct = srv_header(r, "Content-Type");
    size_t n;
    if (!ct) return 0;
    while (*ct == ' ') ct++;
    n = strcspn(ct, "; ");
    return n == 8 && strncasecmp(ct, "text/csv", 8) == 0;
}

void srv_h_history_post(srv_req *r)
{
    struct hist_in in = {0};
    json_t *doc = NULL;
    st_error err = {0};
    const char *model;
    int64_t added = 0, updated = 0;

    if (srv_model_param(r, &model)) return;
    if (is_csv(r) ? parse_csv(r, &in) : parse_json(r, &in, &doc)) goto out;
    if (!in.run) {
        bad(r, json_pack("{s:s}", "field", "run"),
            "'run' is required: the run these epochs "
            "belong to, like \"r1\"");
        goto out;
    }
    if (srv_check_name(r, SRV_NAME_RUN, in.run)) goto out;
    st_history_batch b = {
        .run = in.run,
        .nmetrics = in.nmetrics,
        .metrics = (const char *const *)in.metrics,
        .nepochs = in.nepochs,
        .epochs = in.epochs,
        .values = in.values,
    };
    if (st_history_put(r->srv->st, model, &b, &added, &updated, &err)) {
        srv_reply_storage_error(r, &err);
        goto out;
    }
    srv_reply_json(r, 201,
                   json_pack("{s:s,s:I,s:I}", "run", in.run, "epochs_added", (json_int_t)added,
                             "epochs_updated", (json_int_t)updated));
out:
    hist_in_release(&in);
    json_decref(doc);
}

/* ---- answers: a growing text buffer ------------------------------------------ */

struct tbuf {
    char *p;
    size_t len, cap;
    int oom;
};

/* A 1 M-value answer is ~21 MB: in 4 KiB pages, first touching it costs
 * ~5 000 page faults (~15 % of the answer's time on this VM); ask for 2 MiB
 * pages where transparent huge pages are on "madvise". Advice only. */
#define TB_HUGE (2u << 20)
static void tb_hugepages(char *p, size_t len)
{
    uintptr_t a = ((uintptr_t)p + TB_HUGE - 1) & ~(uintptr_t)(TB_HUGE - 1);
    uintptr_t e = ((uintptr_t)p + len) & ~(uintptr_t)(TB_HUGE - 1);
    if (len >= 2 * TB_HUGE && e > a) madvise((void *)a, e - a, MADV_HUGEPAGE);
}

/* Room for n more bytes: 0, or -1 once out of memory (then nothing more is
 * written and reply_text answers 500). */
static int tb_room(struct tbuf *b, size_t n)
{
    size_t cap;
    char *np;
    if (b->oom) return -1;
    if (b->len + n <= b->cap) return 0;
    cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n) cap *= 2;
    np = realloc(b->p, cap);
    if (!np) {
        b->oom = 1;
        return -1;
    }
    tb_hugepages(np, cap);
    b->p = np;
    b->cap = cap;
    return 0;
}

static void tb_add(struct tbuf *b, const char *s, size_t n)
{
    if (tb_room(b, n)) return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void tb_str(struct tbuf *b, const char *s)
{
    tb_add(b, s, strlen(s));
}

static void tb_i64(struct tbuf *b, int64_t v)
{
    if (tb_room(b, SRV_NUMTEXT_MAX)) return;
    b->len += srv_i64_text(v, b->p + b->len);
}

/* sep (0 for none), then v: "none" when v is NAN (no value at that epoch),
 * else the shortest text that reads back as v (numtext.c: exact round
 * trips, and 0.93 stays "0.93" as Python's repr, so CSVLogger, writes it). */
static void tb_value(struct tbuf *b, char sep, double v, const char *none, size_t nonelen)
{
    char *p;
    if (tb_room(b, 1 + SRV_NUMTEXT_MAX)) return;
    p = b->p + b->len;
    if (sep) *p++ = sep;
    if (isnan(v)) {
        memcpy(p, none, nonelen);
        p += nonelen;
    } else {
        p += srv_double_text(v, p);
    }
    b->len = (size_t)(p - b->p);
}

/* A JSON string (names: printable mostly; escapes what JSON needs). */
static void tb_jstr(struct tbuf *b, const char *s)
{
    tb_add(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            tb_add(b, e, 2);
        } else if (c < 0x20) {
            char e[8];
            snprintf(e, sizeof e, "\\u%04x", c);
            tb_add(b, e, 6);
        } else {
            tb_add(b, s, 1);
        }
    }
    tb_add(b, "\"", 1);
}

/* A CSV cell (RFC 4180: quoted when it holds , " CR or LF). */
static void tb_csvstr(struct tbuf *b, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        tb_str(b, s);
        return;
    }
    tb_add(b, "\"", 1);
    for (; *s; s++) {
        if (*s == '"') tb_add(b, "\"", 1);
        tb_add(b, s, 1);
    }
    tb_add(b, "\"", 1);
}

static void reply_text(srv_req *r, struct tbuf *b, const char *type)
{
    struct MHD_Response *resp;
    if (b->oom) {
        free(b->p);
        srv_reply_error(r, SRV_E_INTERNAL, NULL, "out of memory building the answer");
        return;
    }
    resp = MHD_create_response_from_buffer(b->len, b->p, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(b->p);
        srv_reply_error(r, SRV_E_INTERNAL, NULL, "out of memory building the answer");
        return;
    }
    MHD_add_response_header(resp, "Content-Type", type);
    r->bytes_out = b->len;
    srv_reply_response(r, 200, resp);
}

static void history_json(struct tbuf *b, const st_history *h)
{
    tb_str(b, "{\"runs\":[");
    for (size_t k = 0; k < h->nruns; k++) {
        const st_history_run *run = &h->runs[k];
        if (k) tb_add(b, ",", 1);
        tb_str(b, "{\"run\":");
        tb_jstr(b, run->run);
        tb_str(b, ",\"created_at\":");
        tb_jstr(b, run->created_at);
        tb_str(b, ",\"epochs\":[");
        for (size_t i = 0; i < run->nepochs; i++) {
            if (i) tb_add(b, ",", 1);
            tb_i64(b, run->epochs[i]);
        }
        tb_str(b, "],\"metrics\":{");
        for (size_t j = 0; j < run->nmetrics; j++) {
            if (j) tb_add(b, ",", 1);
            tb_jstr(b, run->metrics[j]);
            tb_str(b, ":[");
            for (size_t i = 0; i < run->nepochs; i++)
                tb_value(b, i ? ',' : 0, run->columns[j][i], "null", 4);
            tb_add(b, "]", 1);
        }
        tb_str(b, "},\"checkpoints\":[");
        for (size_t c = 0; c < run->ncheckpoints; c++) {
            if (c) tb_add(b, ",", 1);
            tb_str(b, "{\"epoch\":");
            if (run->checkpoints[c].epoch < 0) tb_str(b, "null");
            else tb_i64(b, run->checkpoints[c].epoch);
            tb_str(b, ",\"version\":");
            tb_i64(b, run->checkpoints[c].version);
            tb_add(b, "}", 1);
        }
        tb_str(b, "]}");
    }
    tb_str(b, "]}\n");
}

/* CSVLogger's layout: epoch, then the metrics sorted; CRLF as Python's csv
 * module writes; NA where an epoch lacks a metric. */
static void history_csv(struct tbuf *b, const st_history_run *run)
{
    tb_str(b, "epoch");
    for (size_t j = 0; j < run->nmetrics; j++) {
        tb_add(b, ",", 1);
        tb_csvstr(b, run->metrics[j]);
    }
    tb_add(b, "\r\n", 2);
    for (size_t i = 0; i < run->nepochs; i++) {
        tb_i64(b, run->epochs[i]);
        for (size_t j = 0; j < run->nmetrics; j++) tb_value(b, ',', run->columns[j][i], "NA", 2);
        tb_add(b, "\r\n", 2);
    }
}

/* About the size of the answer, to allocate it once: a value is mostly
 * 18-20 characters (a float32 logged by Keras needs 16-17 digits as a
 * double), an epoch up to 7, a checkpoint ~30. Too small only costs a
 * realloc. */
static size_t answer_size(const st_history *h)
{
    size_t n = 64;
    for (size_t k = 0; k < h->nruns; k++) {
        const st_history_run *run = &h->runs[k];
        n += 128 + strlen(run->run) + run->ncheckpoints * 32 +
             run->nepochs * (8 + run->nmetrics * 20);
        for (size_t j = 0; j < run->nmetrics; j++) n += 8 + strlen(run->metrics[j]);
    }
    return n;
}

/* ?metrics=loss,val_loss → names (pointers into *copy, NEW). -1 after a 400. */
static int query_metrics(srv_req *r, char **copy, const char **names, size_t *n)
{
    const char *q = srv_query(r, "metrics");
    char *save = NULL, *tok;
    *n = 0;
    if (!q) return 0;
    if (!(*copy = strdup(q))) {
        srv_reply_error(r, SRV_E_INTERNAL, NULL, "out of memory");
        return -1;
    }
    for (tok = strtok_r(*copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (*n == ST_HISTORY_MAX_METRICS)
            return bad(r, json_pack("{s:s}", "parameter", "metrics"),
                       "'metrics' lists more than 256 names");
        if (!st_metric_name_valid(tok))
            return bad(r, json_pack("{s:s,s:s}", "parameter", "metrics", "metric", tok),
                       "'metrics': '%.140s' is not a metric name", tok);
        names[(*n)++] = tok;
    }
    if (*n == 0)
        return bad(r, json_pack("{s:s}", "parameter", "metrics"),
                   "'metrics' must list names, like metrics=loss,val_loss");
    return 0;
}

void srv_h_history_get(srv_req *r)
{
    const char *model, *format = srv_query(r, "format"), *names[ST_HISTORY_MAX_METRICS];
    char *mcopy = NULL;
    st_history_query q = {0};
    st_history *h = NULL;
    st_error err = {0};
    struct tbuf b = {0};
    int csv;

    if (srv_model_param(r, &model)) return;
    if (format && strcmp(format, "json") && strcmp(format, "csv")) {
        bad(r, json_pack("{s:s}", "parameter", "format"),
            "'format' must be json or csv, got "
            "'%.40s'",
            format);
        return;
    }
    csv = format && strcmp(format, "csv") == 0;
    q.run = srv_query(r, "run");
    if (q.run && srv_check_name(r, SRV_NAME_RUN, q.run)) return;
    if (csv && !q.run) {
        bad(r, json_pack("{s:s}", "parameter", "run"),
            "format=csv answers one run (a CSVLogger "
            "file): add run=NAME (GET …/runs lists them)");
        return;
    }
    if (srv_query_int(r, "from_epoch", 0, INT64_MAX, &q.from_epoch, &q.has_from) ||
        srv_query_int(r, "to_epoch", 0, INT64_MAX, &q.to_epoch, &q.has_to))
        return;
    if (q.has_from && q.has_to && q.from_epoch > q.to_epoch) {
        bad(r, json_pack("{s:s}", "parameter", "from_epoch"), "from_epoch is after to_epoch");
        return;
    }
    if (query_metrics(r, &mcopy, names, &q.nmetrics)) goto out;
    q.metrics = q.nmetrics ? names : NULL;
    if (st_history_get(r->srv->st, model, &q, &h, &err)) {
        srv_reply_storage_error(r, &err);
        goto out;
    }
    tb_room(&b, answer_size(h));
    if (csv && h->nruns == 1) {
        history_csv(&b, &h->runs[0]);
        reply_text(r, &b, "text/csv; charset=utf-8");
    } else {
        history_json(&b, h);
        reply_text(r, &b, "application/json; charset=utf-8");
    }
out:
    st_history_free(h);
    free(mcopy);
}

void srv_h_runs(srv_req *r)
{
    const char *model, *after;
    json_t *out = NULL;
    st_error err = {0};
    int limit;

    if (srv_model_param(r, &model) || srv_query_page(r, &limit, &after)) return;
    if (st_run_list(r->srv->st, model, limit, after, &out, &err)) {
        srv_reply_storage_error(r, &err);
        return;
    }
    srv_reply_json(r, 200, out);
}
