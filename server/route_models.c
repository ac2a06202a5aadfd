/* server/route_models.c — /v1/models: create (with an architecture id or an
 * inline Keras config), list, get, delete. */
#include <stdlib.h>
#include <string.h>

#include "archs.h"
#include "params.h"
#include "reply.h"
#include "routes.h"

void srv_h_model_create(srv_req *r)
{
    json_t *body = srv_body_json(r), *out = NULL;
    char *arch_id = NULL;
    st_error err = {0};
    st_model_new m = {0};
    if (!body) return;

    json_t *jname = json_object_get(body, "name");
    json_t *jarch = json_object_get(body, "architecture");
    json_t *jdesc = json_object_get(body, "description");
    json_t *jmon = json_object_get(body, "monitor");
    if (!json_is_object(body) || !json_is_string(jname)) {
        srv_reply_error(r, SRV_E_BAD_REQUEST, NULL, "body must be an object with a string 'name'");
        goto out;
    }
    m.name = json_string_value(jname);
    if (srv_check_name(r, SRV_NAME_MODEL, m.name)) goto out;
    if (jdesc && !json_is_null(jdesc)) {
        if (!json_is_string(jdesc)) {
            srv_reply_error(r, SRV_E_BAD_REQUEST, NULL, "'description' must be a string");
            goto out;
        }
        m.description = json_string_value(jdesc);
    }
    if (jmon && !json_is_null(jmon)) {
        const char *metric = json_string_value(json_object_get(jmon, "metric"));
        const char *mode = json_string_value(json_object_get(jmon, "mode"));
        if (!mode) mode = "min";
        if (!metric || !*metric || strlen(metric) > 128 ||
            (strcmp(mode, "min") && strcmp(mode, "max"))) {
            srv_reply_error(
                r, SRV_E_BAD_REQUEST, NULL,
                "'monitor' must be {\"metric\": \"val_loss\", \"mode\": \"min\"|\"max\"}");
            goto out;
        }
        m.monitor_metric = metric;
        m.monitor_mode = mode;
    }
    if (json_is_string(jarch)) {
        m.architecture = json_string_value(jarch);
    } else if (json_is_object(jarch)) {
        int created;
        if (srv_arch_store(r, jarch, NULL, &arch_id, &created, NULL)) goto out;
        m.architecture = arch_id;
    } else if (jarch && !json_is_null(jarch)) {
        srv_reply_error(
            r, SRV_E_BAD_REQUEST, NULL,
            "'architecture' must be an architecture id \"sha256:…\" or a Keras model config object");
        goto out;
    }
    if (st_model_create(r->srv->st, &m, &out, &err)) {
        srv_reply_storage_error(r, &err);
        goto out;
    }
    srv_reply_json(r, 201, out);
out:
    free(arch_id);
    json_decref(body);
}

void srv_h_model_list(srv_req *r)
{
    int limit;
    const char *after;
    json_t *out = NULL;
    st_error err = {0};
    if (srv_query_page(r, &limit, &after)) return;
    if (st_model_list(r->srv->st, limit, after, &out, &err)) {
        srv_reply_storage_error(r, &err);
        return;
    }
    srv_reply_json(r, 200, out);
}

void srv_h_model_get(srv_req *r)
{
    json_t *out = NULL, *arch = NULL;
    st_error err = {0};
    const char *name;
    if (srv_model_param(r, &name)) return;
    if (st_model_get(r->srv->st, name, &out, &err)) {
        srv_reply_storage_error(r, &err);
        return;
    }
    /* Expand the architecture id into its summary, as the contract promises. */
    const char *aid = json_string_value(json_object_get(out, "architecture"));
    if (aid && st_arch_get(r->srv->st, aid, &arch, &err) == ST_OK) {
        json_object_del(arch, "config");
        json_object_set_new(out, "architecture", arch);
    }
    st_error_release(&err);
    srv_reply_json(r, 200, out);
}

void srv_h_model_delete(srv_req *r)
{
    st_error err = {0};
    const char *name;
    if (srv_model_param(r, &name)) return;
    if (st_model_delete(r->srv->st, name, srv_query_flag(r, "force"), &err)) {
        srv_reply_storage_error(r, &err);
        return;
    }
    srv_reply_json(r, 200, json_pack("{s:s,s:b}", "model", name, "deleted", 1));
}
