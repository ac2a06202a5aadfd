/* server/route_tags.c — /v1/models/{model}/tags: create/move with
 * compare-and-set, list, get, delete, and each tag's move history. */
#include <stdlib.h>
#include <string.h>

#include "params.h"
#include "reply.h"
#include "routes.h"

/* Validates the model and tag captures; answers 400 and returns -1 on a bad one. */
static int tag_params(srv_req *r, const char **model, const char **tag)
{
    *tag = srv_param(r, "tag");
    return srv_model_param(r, model) || srv_check_name(r, SRV_NAME_TAG, *tag) ? -1 : 0;
}

void srv_h_tag_put(srv_req *r)
{
    const char *model, *tag;
    json_t *body = NULL, *out = NULL;
    st_error err = {0};
    if (tag_params(r, &model, &tag)) return;
    if (strcmp(tag, "latest") == 0) {
        srv_reply_error(r, SRV_E_BAD_REQUEST, json_pack("{s:s}", "tag", tag),
                        "'latest' is built in (the highest live version) and cannot be set");
        return;
    }
    if (!(body = srv_body_json(r))) return;
    json_t *jv = json_object_get(body, "version");
    if (!json_is_integer(jv) || json_integer_value(jv) < 1) {
        srv_reply_error(r, SRV_E_BAD_REQUEST, NULL, "body must be {\"version\": N} with N >= 1");
        goto out;
    }
    int has_expected = 0;
    int64_t expected = 0;
    json_t *je = json_object_get(body, "expected_version");
    const char *if_match = srv_header(r, "If-Match");
    if (je) {
        has_expected = 1;
        if (json_is_null(je)) expected = 0;
        else if (json_is_integer(je) && json_integer_value(je) >= 1)
            expected = json_integer_value(je);
        else {
            srv_reply_error(r, SRV_E_BAD_REQUEST, NULL,
                            "'expected_version' must be a version number or null");
            goto out;
        }
    } else if (if_match) {
        char *end;
        const char *p = if_match[0] == '"' ? if_match + 1 : if_match;
        long long n = strtoll(p, &end, 10);
        if (end == p || n < 1 || (*end && strcmp(end, "\"") != 0)) {
            srv_reply_error(r, SRV_E_BAD_REQUEST, NULL,
                            "If-Match must be a version number such as \"2\"");
            goto out;
        }
        has_expected = 1;
        expected = n;
    }
    if (st_tag_put(r->srv->st, model, tag, json_integer_value(jv), has_expected, expected, &out,
                   &err)) {
        srv_reply_storage_error(r, &err);
        goto out;
    }
    srv_reply_json(r, 200, out);
out:
    json_decref(body);
}

void srv_h_tag_list(srv_req *r)
{
    json_t *out = NULL;
    st_error err = {0};
    const char *model;
    if (srv_model_param(r, &model)) return;
    if (st_tag_list(r->srv->st, model, &out, &err)) {
        srv_reply_storage_error(r, &err);
        return;
    }
    srv_reply_json(r, 200, out);
}

void srv_h_tag_get(srv_req *r)
{
    const char *model, *tag;
    json_t *list = NULL, *item;
    size_t i;
    st_error err = {0};
    if (tag_params(r, &model, &tag)) return;
    if (st_tag_list(r->srv->st, model, &list, &err)) {
        srv_reply_storage_error(r, &err);
        return;
    }
    json_array_foreach (json_object_get(list, "items"), i, item) {
        if (strcmp(json_string_value(json_object_get(item, "tag")), tag) == 0) {
            srv_reply_json(r, 200, json_incref(item));
            json_decref(list);
            return;
        }
    }
    json_decref(list);
    srv_reply_error(r, SRV_E_NOT_FOUND, json_pack("{s:s,s:s}", "model", model, "tag", tag),
                    "model '%s' has no tag '%s'", model, tag);
}

void srv_h_tag_delete(srv_req *r)
{
    const char *model, *tag;
    st_error err = {0};
    if (tag_params(r, &model, &tag)) return;
    if (strcmp(tag, "latest") == 0) {
        srv_reply_error(r, SRV_E_BAD_REQUEST, NULL, "'latest' is built in and cannot be deleted");
        return;
    }
    if (st_tag_delete(r->srv->st, model, tag, &err)) {
        srv_reply_storage_error(r, &err);
        return;
    }
    srv_reply_json(r, 200, json_pack("{s:s,s:s,s:b}", "model", model, "tag", tag, "deleted", 1));
}

void srv_h_tag_history(srv_req *r)
{
    const char *model, *tag;
    json_t *out = NULL;
    st_error err = {0};
    if (tag_params(r, &model, &tag)) return;
    if (st_tag_history(r->srv->st, model, tag, &out, &err)) {
        srv_reply_storage_error(r, &err);
        return;
    }
    srv_reply_json(r, 200, out);
}
