/* server/route_arch.c — POST/GET /v1/architectures: Keras model configs
 * parsed by the engine and stored by their canonical digest. */
#include <stdlib.h>
#include <string.h>

#include "archs.h"
#include "params.h"
#include "reply.h"
#include "routes.h"

int srv_arch_store(srv_req *r, json_t *config, const char *name, char **id_out, int *created,
                   json_t **answer)
{
    eng_arch *a = NULL;
    eng_error eerr = {0};
    st_error serr = {0};
    char *text = NULL, *summary_text = NULL;
    json_t *summary = NULL;
    int rc = -1;

    if (name && srv_check_name(r, SRV_NAME_ARCH, name)) goto out;
    text = json_dumps(config, JSON_COMPACT);
    if (!text) {
        srv_reply_error(r, SRV_E_INTERNAL, NULL, "out of memory");
        goto out;
    }
    if (eng_arch_parse(text, strlen(text), &a, &eerr)) {
        srv_reply_engine_error(r, &eerr);
        goto out;
    }
    summary = eng_arch_to_json(a);
    summary_text = json_dumps(summary, JSON_COMPACT);
    if (st_arch_put(r->srv->st, eng_arch_id(a), name, eng_arch_canonical(a), summary_text, created,
                    &serr)) {
        srv_reply_storage_error(r, &serr);
        goto out;
    }
    if (answer && st_arch_get(r->srv->st, eng_arch_id(a), answer, &serr)) {
        srv_reply_storage_error(r, &serr);
        goto out;
    }
    if (answer) json_object_del(*answer, "config");
    *id_out = strdup(eng_arch_id(a));
    rc = 0;
out:
    free(text);
    free(summary_text);
    json_decref(summary);
    eng_arch_free(a);
    return rc;
}

eng_code srv_arch_load(srv_server *srv, const char *id, eng_arch **out, eng_error *err)
{
    char *config = NULL;
    st_error serr = {0};
    if (st_arch_config(srv->st, id, &config, &serr)) {
        err->code = ENG_ERR_INTERNAL;
        snprintf(err->msg, sizeof err->msg, "architecture %.80s: %.400s", id, serr.msg);
        st_error_release(&serr);
        return err->code;
    }
    eng_code c = eng_arch_parse(config, strlen(config), out, err);
    free(config);
    return c;
}

void srv_h_arch_create(srv_req *r)
{
    json_t *body = srv_body_json(r), *answer = NULL;
    char *id = NULL;
    int created = 0;
    if (!body) return;
    if (!json_is_object(body)) {
        srv_reply_error(
            r, SRV_E_BAD_REQUEST, NULL,
            "an architecture is a Keras model config object as written by model.to_json()");
        goto out;
    }
    if (srv_arch_store(r, body, srv_query(r, "name"), &id, &created, &answer)) goto out;
    srv_reply_json(r, created ? 201 : 200, answer);
out:
    free(id);
    json_decref(body);
}

void srv_h_arch_list(srv_req *r)
{
    int limit;
    const char *after;
    json_t *out = NULL;
    st_error err = {0};
    if (srv_query_page(r, &limit, &after)) return;
    if (st_arch_list(r->srv->st, limit, after, &out, &err)) {
        srv_reply_storage_error(r, &err);
        return;
    }
    srv_reply_json(r, 200, out);
}

void srv_h_arch_get(srv_req *r)
{
    json_t *out = NULL;
    st_error err = {0};
    const char *id = srv_param(r, "id");
    if (srv_check_arch_id(r, "id", id)) return;
    if (st_arch_get(r->srv->st, id, &out, &err)) {
        srv_reply_storage_error(r, &err);
        return;
    }
    srv_reply_json(r, 200, out);
}
