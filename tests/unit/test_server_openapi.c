/* tests/unit/test_server_openapi.c — every route of the route table is in
 * docs/openapi.yaml (as embedded in the binary and served at /openapi.yaml),
 * and every operation of the document is a route. The document is read
 * line by line in the layout it is written in: "  /path:" then "    get:". */
#include <ctype.h>
#include <string.h>

#include "check.h"
#include "routes.h"

extern const char srv_openapi_yaml[];

struct op {
    char method[8];
    char path[160];
};

static size_t parse_ops(struct op *ops, size_t max)
{
    size_t n = 0;
    char path[160] = "";
    int in_paths = 0;
    const char *p = srv_openapi_yaml;
    while (*p) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char line[512];
        if (len >= sizeof line) len = sizeof line - 1;
        memcpy(line, p, len);
        line[len] = 0;
        if (strcmp(line, "paths:") == 0) in_paths = 1;
        else if (in_paths && line[0] && line[0] != ' ') in_paths = 0;
        else if (in_paths && strncmp(line, "  /", 3) == 0 && line[len - 1] == ':') {
            snprintf(path, sizeof path, "%.*s", (int)(len - 3), line + 2);
        } else if (in_paths && strncmp(line, "    ", 4) == 0 && line[4] != ' ' &&
                   line[len - 1] == ':') {
            static const char *const methods[] = {"get", "post", "put", "delete", "head", "patch"};
            for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
                if (strlen(methods[i]) == len - 5 && strncmp(line + 4, methods[i], len - 5) == 0 &&
                    n < max) {
                    for (size_t k = 0; methods[i][k]; k++)
                        ops[n].method[k] = (char)toupper((unsigned char)methods[i][k]);
                    ops[n].method[strlen(methods[i])] = 0;
                    snprintf(ops[n].path, sizeof ops[n].path, "%s", path);
                    n++;
                }
            }
        }
        p = e ? e + 1 : p + len;
    }
    return n;
}

int main(void)
{
    struct op ops[128];
    size_t n = parse_ops(ops, 128);
    CHECK(n >= 20, "only %zu operations parsed from docs/openapi.yaml", n);
    for (size_t i = 0; i < srv_nroutes; i++) {
        int found = 0;
        for (size_t k = 0; k < n; k++)
            found |= strcmp(ops[k].method, srv_routes[i].method) == 0 &&
                     strcmp(ops[k].path, srv_routes[i].pattern) == 0;
        CHECK(found, "route %s %s is not in docs/openapi.yaml", srv_routes[i].method,
              srv_routes[i].pattern);
    }
    for (size_t k = 0; k < n; k++) {
        int found = 0;
        for (size_t i = 0; i < srv_nroutes; i++)
            found |= strcmp(ops[k].method, srv_routes[i].method) == 0 &&
                     strcmp(ops[k].path, srv_routes[i].pattern) == 0;
        CHECK(found, "docs/openapi.yaml has %s %s, which no route serves", ops[k].method,
              ops[k].path);
    }
    return check_done();
}
