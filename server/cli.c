/* server/cli.c — the command line: strata serve|migrate|verify|gc|inspect|token.
 *
 * Owns: one options table {name, env, default, help, commands} that parses
 * argv and the environment and prints every --help, and one commands table
 * {name, fn, summary}. Each command is a small function below.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "auth.h"
#include "log.h"
#include "sandbox.h"

enum opt_type { OPT_STR, OPT_INT, OPT_SIZE, OPT_FLAG };

/* Which commands take an option (bit mask). */
enum {
    C_SERVE = 1 << 0,
    C_MIGRATE = 1 << 1,
    C_VERIFY = 1 << 2,
    C_GC = 1 << 3,
    C_INSPECT = 1 << 4,
    C_TOKEN = 1 << 5,
    C_DATA = C_SERVE | C_MIGRATE | C_VERIFY | C_GC | C_TOKEN,
};

enum opt_id {
    O_LISTEN,
    O_DATA,
    O_AUTH,
    O_THREADS,
    O_MAX_BODY,
    O_MAX_JSON,
    O_SANDBOX_TIMEOUT,
    O_SANDBOX_MEM,
    O_CONN_TIMEOUT,
    O_MAX_CONNS,
    O_MAX_CONNS_IP,
    O_LOG_FORMAT,
    O_QUIET,
    O_DRY_RUN,
    O_GRACE,
    O_ARCH,
    O_SCOPE,
    O_NAME,
    O_ID,
    O__COUNT
};

struct option_def {
    const char *name; /* --name */
    const char *env;  /* STRATA_… */
    enum opt_type type;
    const char *def; /* default, as text */
    unsigned commands;
    const char *help;
};

static const struct option_def options[O__COUNT] = {
    [O_LISTEN] =
        {"listen", "STRATA_LISTEN", OPT_STR, "127.0.0.1:8080", C_SERVE,
         "address to listen on, HOST:PORT (port 0 picks a free one); beyond loopback auth is always on"},
    [O_DATA] = {"data", "STRATA_DATA", OPT_STR, "./strata-data", C_DATA,
                "data directory: strata.db, blobs/, cache/, tmp/ (created on first use)"},
    [O_AUTH] = {"auth", "STRATA_AUTH", OPT_FLAG, "0", C_SERVE,
                "require bearer tokens on every route but /healthz and /metrics"},
    [O_THREADS] = {"threads", "STRATA_THREADS", OPT_INT, "8", C_SERVE,
                   "HTTP worker threads (uploads validate on them)"},
    [O_MAX_BODY] = {"max-body", "STRATA_MAX_BODY", OPT_SIZE, "8G", C_SERVE,
                    "largest upload accepted (413 above, refused before the body is read)"},
    [O_MAX_JSON] = {"max-json", "STRATA_MAX_JSON", OPT_SIZE, "4M", C_SERVE,
                    "largest JSON request body (architectures are the big ones)"},
    [O_SANDBOX_TIMEOUT] = {"sandbox-timeout-ms", "STRATA_SANDBOX_TIMEOUT_MS", OPT_INT, "10000",
                           C_SERVE,
                           "wall-clock deadline of the HDF5 parsing child; killed past it (422)"},
    [O_SANDBOX_MEM] = {"sandbox-mem", "STRATA_SANDBOX_MEM", OPT_SIZE, "1G", C_SERVE,
                       "address-space limit of the HDF5 parsing child"},
    [O_CONN_TIMEOUT] = {"conn-timeout", "STRATA_CONN_TIMEOUT", OPT_INT, "60", C_SERVE,
                        "seconds a connection may stay idle"},
    [O_MAX_CONNS] = {"max-conns", "STRATA_MAX_CONNS", OPT_INT, "1000", C_SERVE,
                     "connections in total"},
    [O_MAX_CONNS_IP] = {"max-conns-per-ip", "STRATA_MAX_CONNS_PER_IP", OPT_INT, "128", C_SERVE,
                        "connections from one IP address"},
    [O_LOG_FORMAT] = {"log-format", "STRATA_LOG_FORMAT", OPT_STR, "text", C_SERVE,
                      "access log format: text or json"},
    [O_QUIET] = {"quiet", "STRATA_QUIET", OPT_FLAG, "0", C_SERVE, "no access log"},
    [O_DRY_RUN] = {"dry-run", NULL, OPT_FLAG, "0", C_GC,
                   "report what would be freed, change nothing"},
    [O_GRACE] = {"grace", "STRATA_GC_GRACE", OPT_INT, "3600", C_GC,
                 "seconds an unreferenced blob is kept (an upload may be committing it)"},
    [O_ARCH] = {"architecture", NULL, OPT_STR, NULL, C_INSPECT,
                "a model.to_json() file to validate the weights against"},
    [O_SCOPE] = {"scope", NULL, OPT_STR, "read", C_TOKEN, "token create: read, write or admin"},
    [O_NAME] = {"name", NULL, OPT_STR, NULL, C_TOKEN, "token create: a label for the token"},
    [O_ID] = {"id", NULL, OPT_INT, NULL, C_TOKEN, "token revoke: the token's id (see token list)"},
};

struct cli {
    const char *val[O__COUNT]; /* NULL: not given */
    char **args;               /* positional arguments after the command */
    int nargs;
};

typedef int (*cmd_fn)(struct cli *c);
struct command {
    const char *name;
    unsigned bit;
    cmd_fn fn;
    const char *usage;
    const char *summary;
};

static int cmd_serve(struct cli *c);
static int cmd_migrate(struct cli *c);
static int cmd_verify(struct cli *c);
static int cmd_gc(struct cli *c);
static int cmd_inspect(struct cli *c);
static int cmd_token(struct cli *c);

static const struct command commands[] = {
    {"serve", C_SERVE, cmd_serve, "strata serve [options]", "run the HTTP registry"},
    {"migrate", C_MIGRATE, cmd_migrate, "strata migrate [--data DIR]",
     "create or upgrade the data directory's schema"},
    {"verify", C_VERIFY, cmd_verify, "strata verify [--data DIR]",
     "re-hash every blob and check every reference; non-zero on any problem"},
    {"gc", C_GC, cmd_gc, "strata gc [--data DIR] [--dry-run] [--grace S]",
     "remove unreferenced blobs, stale temporaries and the cache"},
    {"inspect", C_INSPECT, cmd_inspect, "strata inspect FILE.h5 [--architecture A.json]",
     "offline: format, layers, shapes, params, validation report"},
    {"token", C_TOKEN, cmd_token,
     "strata token create|list|revoke [--data DIR] [--scope S] [--name N] [--id ID]",
     "manage API tokens"},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

/* ---- parsing ---------------------------------------------------------------- */

static const char *opt_value(const struct cli *c, enum opt_id id)
{
    if (c->val[id]) return c->val[id];
    if (options[id].env) {
        const char *e = getenv(options[id].env);
        if (e && *e) return e;
    }
    return options[id].def;
}

static int parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(s, &end, 10);
    if (end == s || errno) return -1;
    static const struct {
        char suffix;
        unsigned shift;
    } units[] = {
        {'K', 10}, {'k', 10}, {'M', 20}, {'m', 20}, {'G', 30}, {'g', 30}, {'T', 40}, {'t', 40},
    };
    unsigned shift = 0;
    if (*end) {
        size_t i;
        for (i = 0; i < sizeof units / sizeof units[0]; i++)
            if (*end == units[i].suffix) break;
        if (i == sizeof units / sizeof units[0]) return -1;
        shift = units[i].shift;
        end++;
        if (*end == 'i' || *end == 'B') end++;
        if (*end == 'B') end++;
        if (*end) return -1;
    }
    if (shift && n > (~0ULL >> shift)) return -1;
    *out = n << shift;
    return 0;
}

static int opt_int(const struct cli *c, enum opt_id id, long long *out)
{
    const char *v = opt_value(c, id);
    char *end;
    if (!v) return 1;
    errno = 0;
    *out = strtoll(v, &end, 10);
    if (!*v || *end || errno) {
        fprintf(stderr, "strata: --%s takes a whole number, got '%s'\n", options[id].name, v);
        return -1;
    }
    return 0;
}

static int opt_flag(const struct cli *c, enum opt_id id)
{
    const char *v = opt_value(c, id);
    return v && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0 || strcmp(v, "yes") == 0);
}

static void print_help(const struct command *cmd)
{
    if (!cmd) {
        printf(
            "strata — a model registry for Keras checkpoints\n\nUsage: strata COMMAND [options]\n\nCommands:\n");
        for (size_t i = 0; i < NCOMMANDS; i++)
            printf("  %-8s %s\n", commands[i].name, commands[i].summary);
        printf("\nRun 'strata COMMAND --help' for a command's options. Every option can also be\n"
               "set by its environment variable (shown with the option).\n");
        return;
    }
    printf("Usage: %s\n\n%s\n\nOptions:\n", cmd->usage, cmd->summary);
    for (int i = 0; i < O__COUNT; i++) {
        const struct option_def *o = &options[i];
        if (!(o->commands & cmd->bit)) continue;
        char left[64];
        snprintf(left, sizeof left, "--%s%s", o->name, o->type == OPT_FLAG ? "" : " V");
        printf("  %-24s %s", left, o->help);
        if (o->def && o->type != OPT_FLAG) printf(" [default: %s]", o->def);
        if (o->env) printf(" (env %s)", o->env);
        printf("\n");
    }
    printf("  %-24s this help\n", "--help");
}

/* Parse argv after the command name. Returns 0, 1 for --help shown, -1 on error. */
static int parse_args(const struct command *cmd, int argc, char **argv, struct cli *c)
{
    c->args = calloc((size_t)argc + 1, sizeof *c->args);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            print_help(cmd);
            return 1;
        }
        if (strncmp(a, "--", 2) != 0) {
            c->args[c->nargs++] = argv[i];
            continue;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        int found = -1;
        for (int k = 0; k < O__COUNT; k++)
            if (strlen(options[k].name) == nlen && strncmp(options[k].name, name, nlen) == 0 &&
                (options[k].commands & cmd->bit))
                found = k;
        if (found < 0) {
            fprintf(stderr, "strata %s: unknown option '%.*s'; see 'strata %s --help'\n", cmd->name,
                    (int)(nlen + 2), a, cmd->name);
            return -1;
        }
        if (options[found].type == OPT_FLAG) {
            c->val[found] = eq ? eq + 1 : "1";
        } else if (eq) {
            c->val[found] = eq + 1;
        } else if (i + 1 < argc) {
            c->val[found] = argv[++i];
        } else {
            fprintf(stderr, "strata %s: option '--%s' needs a value\n", cmd->name,
                    options[found].name);
            return -1;
        }
    }
    return 0;
}

/* ---- commands ----------------------------------------------------------------- */

static int open_store(struct cli *c, st_store **st)
{
    st_error err = {0};
    if (st_open(opt_value(c, O_DATA), st, &err)) {
        fprintf(stderr, "strata: cannot open data directory '%s': %s\n", opt_value(c, O_DATA),
                err.msg);
        st_error_release(&err);
        return -1;
    }
    return 0;
}

static int cmd_serve(struct cli *c)
{
    srv_config cfg = {0};
    long long n;
    if (c->nargs) {
        fprintf(stderr, "strata serve: unexpected argument '%s'\n", c->args[0]);
        return 2;
    }
    cfg.listen = opt_value(c, O_LISTEN);
    cfg.data = opt_value(c, O_DATA);
    cfg.auth = opt_flag(c, O_AUTH);
    cfg.quiet = opt_flag(c, O_QUIET);
    cfg.log_format = opt_value(c, O_LOG_FORMAT);
    static const struct {
        enum opt_id id;
        int *dst;
        long long lo, hi;
    } ints[] = {
        {O_THREADS, NULL, 1, 256},         {O_SANDBOX_TIMEOUT, NULL, 100, 600000},
        {O_CONN_TIMEOUT, NULL, 1, 86400},  {O_MAX_CONNS, NULL, 1, 100000},
        {O_MAX_CONNS_IP, NULL, 1, 100000},
    };
    int *dsts[] = {&cfg.threads, &cfg.sandbox_timeout_ms, &cfg.conn_timeout, &cfg.max_conns,
                   &cfg.max_conns_per_ip};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        if (opt_int(c, ints[i].id, &n) < 0) return 2;
        if (n < ints[i].lo || n > ints[i].hi) {
            fprintf(stderr, "strata serve: --%s must be from %lld to %lld\n",
                    options[ints[i].id].name, ints[i].lo, ints[i].hi);
            return 2;
        }
        *dsts[i] = (int)n;
    }
    static const enum opt_id sizes[] = {O_MAX_BODY, O_MAX_JSON, O_SANDBOX_MEM};
    uint64_t *sdst[] = {&cfg.max_body, &cfg.max_json, &cfg.sandbox_mem};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        if (parse_size(opt_value(c, sizes[i]), sdst[i])) {
            fprintf(stderr, "strata serve: --%s takes a size like 512M or 8G, got '%s'\n",
                    options[sizes[i]].name, opt_value(c, sizes[i]));
            return 2;
        }
    }
    if (strcmp(cfg.log_format, "text") && strcmp(cfg.log_format, "json")) {
        fprintf(stderr, "strata serve: --log-format must be text or json\n");
        return 2;
    }
    srv_log_json = strcmp(cfg.log_format, "json") == 0;
    return srv_serve(&cfg);
}

static int cmd_migrate(struct cli *c)
{
    st_store *st;
    int now = 0, total = 0;
    if (open_store(c, &st)) return 1;
    st_migration_counts(st, &now, &total);
    printf("strata: %s is at schema %d/%d (%d applied now)\n", opt_value(c, O_DATA), total, total,
           now);
    st_close(st);
    return 0;
}

static void print_problem(void *ctx, const char *problem)
{
    (void)ctx;
    printf("problem: %s\n", problem);
}

static int cmd_verify(struct cli *c)
{
    st_store *st;
    st_error err = {0};
    uint64_t problems = 0;
    if (open_store(c, &st)) return 1;
    int rc = 0;
    if (st_verify(st, print_problem, NULL, &problems, &err)) {
        fprintf(stderr, "strata verify: %s\n", err.msg);
        st_error_release(&err);
        rc = 1;
    } else if (problems) {
        printf("strata verify: %llu problem(s)\n", (unsigned long long)problems);
        rc = 1;
    } else {
        printf("strata verify: ok\n");
    }
    st_close(st);
    return rc;
}

static int cmd_gc(struct cli *c)
{
    st_store *st;
    st_error err = {0};
    uint64_t files = 0, bytes = 0;
    long long grace = 3600;
    if (opt_int(c, O_GRACE, &grace) < 0 || grace < 0) return 2;
    if (open_store(c, &st)) return 1;
    int dry = opt_flag(c, O_DRY_RUN), rc = 0;
    if (st_gc(st, dry, grace, &files, &bytes, &err)) {
        fprintf(stderr, "strata gc: %s\n", err.msg);
        st_error_release(&err);
        rc = 1;
    } else {
        printf("strata gc: %s %llu file(s), %llu bytes\n", dry ? "would free" : "freed",
               (unsigned long long)files, (unsigned long long)bytes);
    }
    st_close(st);
    return rc;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        if (n >= 0 && n < (64L << 20) && fseek(f, 0, SEEK_SET) == 0 &&
            (buf = malloc((size_t)n + 1))) {
            if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
                free(buf);
                buf = NULL;
            } else {
                buf[n] = 0;
                *len = (size_t)n;
            }
        }
    }
    fclose(f);
    return buf;
}

static int cmd_inspect(struct cli *c)
{
    eng_summary *s = NULL;
    eng_arch *a = NULL;
    eng_error err = {0};
    json_t *layers = NULL, *report = NULL;
    char *arch_text = NULL;
    int fd = -1, rc = 1;

    if (c->nargs != 1) {
        fprintf(stderr, "usage: strata inspect FILE.h5 [--architecture A.json]\n");
        return 2;
    }
    const char *path = c->args[0];
    if (eng_summary_read(path, &s, &err)) {
        fprintf(stderr, "strata inspect: %s: %s\n", path, err.msg);
        goto out;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "strata inspect: %s: %s\n", path, strerror(errno));
        goto out;
    }
    printf("file: %s\nformat: %s\nkeras_version: %s\nbackend: %s\nlayers: %zu\n", path,
           eng_format_name(s->format), s->keras_version ? s->keras_version : "-",
           s->backend ? s->backend : "-", s->nlayers);
    unsigned long long total = 0;
    for (size_t i = 0; i < s->nlayers; i++) {
        const eng_wlayer *l = &s->layers[i];
        printf("  %s\n", l->name);
        for (size_t k = 0; k < l->ntensors; k++) {
            const eng_tensor *t = &l->tensors[k];
            unsigned long long n = 1;
            printf("    %-40s %-8s [", t->name, eng_dtype_name(t->dtype));
            for (int d = 0; d < t->rank; d++) {
                printf("%s%lld", d ? "," : "", (long long)t->shape[d]);
                n *= (unsigned long long)t->shape[d];
            }
            printf("]\n");
            total += n;
        }
    }
    printf("params: %llu\n", total);
    const char *apath = opt_value(c, O_ARCH);
    if (apath) {
        size_t alen = 0;
        if (!(arch_text = read_file(apath, &alen))) {
            fprintf(stderr, "strata inspect: cannot read %s\n", apath);
            goto out;
        }
        if (eng_arch_parse(arch_text, alen, &a, &err)) {
            fprintf(stderr, "strata inspect: architecture %s: %s\n", apath, err.msg);
            goto out;
        }
        if (eng_validate(a, s, fd, &report, &layers, &err)) {
            printf("validation: failed\n%s\n", err.msg);
            if (err.details) {
                char *d = json_dumps(err.details, JSON_INDENT(2));
                printf("%s\n", d);
                free(d);
            }
            goto out;
        }
        printf("validation: passed against %s (%s)\n", apath, eng_arch_id(a));
    }
    rc = 0;
out:
    if (fd >= 0) close(fd);
    free(arch_text);
    json_decref(layers);
    json_decref(report);
    eng_error_release(&err);
    eng_arch_free(a);
    eng_summary_free(s);
    return rc;
}

static int cmd_token(struct cli *c)
{
    st_store *st = NULL;
    st_error err = {0};
    int rc = 1;
    const char *sub = c->nargs ? c->args[0] : NULL;
    if (!sub || (strcmp(sub, "create") && strcmp(sub, "list") && strcmp(sub, "revoke"))) {
        fprintf(
            stderr,
            "usage: strata token create|list|revoke [--data DIR] [--scope S] [--name N] [--id ID]\n");
        return 2;
    }
    if (strcmp(sub, "create") == 0 &&
        srv_auth_scope_parse(opt_value(c, O_SCOPE)) == SRV_SCOPE_NONE) {
        fprintf(stderr, "strata token create: --scope must be read, write or admin\n");
        return 2;
    }
    if (open_store(c, &st)) return 1;
    if (strcmp(sub, "create") == 0) {
        char token[80], hash[65];
        int64_t id = 0;
        if (srv_auth_token_new(token, sizeof token, hash)) {
            fprintf(stderr, "strata token: no randomness\n");
            goto out;
        }
        if (st_token_add(st, hash, opt_value(c, O_SCOPE), opt_value(c, O_NAME), &id, &err))
            goto fail;
        printf("%s\n", token);
        fprintf(stderr, "strata: token %lld (scope %s) created; it is shown only this once\n",
                (long long)id, opt_value(c, O_SCOPE));
    } else if (strcmp(sub, "list") == 0) {
        json_t *out = NULL;
        if (st_token_list(st, &out, &err)) goto fail;
        char *text = json_dumps(out, JSON_INDENT(2));
        printf("%s\n", text);
        free(text);
        json_decref(out);
    } else {
        long long id;
        if (opt_int(c, O_ID, &id) != 0) {
            fprintf(stderr, "strata token revoke: --id is required\n");
            rc = 2;
            goto out;
        }
        if (st_token_revoke(st, id, &err)) goto fail;
        printf("strata: token %lld revoked\n", id);
    }
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "strata token %s: %s\n", sub, err.msg);
    st_error_release(&err);
out:
    st_close(st);
    return rc;
}

int srv_cli_main(int argc, char **argv)
{
    struct cli c;
    memset(&c, 0, sizeof c);
    if (argc >= 2 && strcmp(argv[1], "__summary") == 0)
        return srv_sandbox_child_main(argc - 1, argv + 1);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        print_help(NULL);
        return argc < 2 ? 2 : 0;
    }
    const struct command *cmd = NULL;
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(argv[1], commands[i].name) == 0) cmd = &commands[i];
    if (!cmd) {
        fprintf(
            stderr,
            "strata: unknown command '%s'; commands: serve, migrate, verify, gc, inspect, token "
            "(strata --help)\n",
            argv[1]);
        return 2;
    }
    int p = parse_args(cmd, argc - 2, argv + 2, &c);
    int rc = p < 0 ? 2 : p > 0 ? 0 : cmd->fn(&c);
    free(c.args);
    return rc;
}
