/* storage/refs.c — a model's version refs to version rows: by number, and
 * a ref (number, "latest" or a tag) as the API accepts it. Below both
 * versions.c and tags.c (each uses it; it uses neither), so that the two
 * never call each other both ways.
 * Does not own: moving tags (tags.c), the version object (versions.c).
 */
#include <string.h>

#include "store_int.h"

st_code st_version_by_number(sqlite3 *db, const char *model, int64_t model_id, int64_t number,
                             int64_t *version_id, st_error *err)
{
    int found = 0;
    st_code rc = st_query_i64(db, err, version_id, &found,
                              "SELECT id FROM versions WHERE model_id = ? AND number = ?", "ii",
                              model_id, number);
    if (rc == ST_OK && !found)
        rc = st_fail(err, ST_ERR_NOT_FOUND, "model '%s' has no version %lld", model,
                     (long long)number);
    return rc;
}

/* ref → version row id: digits = number, "latest" = highest, else a tag. */
st_code st_resolve(sqlite3 *db, const char *model, const char *ref, int64_t *model_id,
                   int64_t *version_id, st_error *err)
{
    int64_t number = 0;
    int found = 0;
    st_code rc = st_model_lookup(db, model, model_id, err);

    if (rc) return rc;
    if (!ref || !*ref) return st_fail(err, ST_ERR_INVALID, "empty version ref");
    if (st_all_digits(ref)) {
        if (!st_parse_i64(ref, &number))
            return st_fail(err, ST_ERR_NOT_FOUND, "model '%s' has no version %.40s", model, ref);
        return st_version_by_number(db, model, *model_id, number, version_id, err);
    }
    if (strcmp(ref, "latest") == 0) {
        rc = st_query_i64(db, err, version_id, &found,
                          "SELECT id FROM versions WHERE model_id = ? "
                          "ORDER BY number DESC LIMIT 1",
                          "i", *model_id);
        if (rc == ST_OK && !found)
            rc = st_fail(err, ST_ERR_NOT_FOUND, "model '%s' has no versions", model);
        return rc;
    }
    if (!st_tag_name_valid(ref))
        return st_fail(err, ST_ERR_INVALID,
                       "ref '%.140s': expected a version number, a tag or "
                       "'latest'",
                       ref);
    rc = st_query_i64(db, err, version_id, &found,
                      "SELECT version_id FROM tags "
                      "WHERE model_id = ? AND name = ?",
                      "it", *model_id, ref);
    if (rc == ST_OK && !found)
        rc = st_fail(err, ST_ERR_NOT_FOUND, "model '%s' has no tag '%s'", model, ref);
    return rc;
}
