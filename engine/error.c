/* engine/error.c — names of the engine's error codes, dtypes and formats.
 * Owns only these tables; every other engine file uses them. */
#include "engine.h"

static const char *const code_names[] = {
    [ENG_OK] = "ok",
    [ENG_ERR_ARCH] = "invalid architecture",
    [ENG_ERR_WEIGHTS] = "invalid weights",
    [ENG_ERR_FORMAT] = "not a Keras weight file",
    [ENG_ERR_INPUT] = "bad input",
    [ENG_ERR_IO] = "I/O error",
    [ENG_ERR_NOMEM] = "out of memory",
    [ENG_ERR_LIMIT] = "limit exceeded",
    [ENG_ERR_INTERNAL] = "internal error",
};

const char *eng_strerror(eng_code code)
{
    if ((unsigned)code < sizeof code_names / sizeof code_names[0] && code_names[code])
        return code_names[code];
    return "unknown error";
}

void eng_error_release(eng_error *err)
{
    if (!err) return;
    json_decref(err->details);
    err->details = NULL;
}

static const char *const dtype_names[] = {
    [ENG_DT_F32] = "float32", [ENG_DT_F64] = "float64", [ENG_DT_F16] = "float16",
    [ENG_DT_I64] = "int64",   [ENG_DT_I32] = "int32",   [ENG_DT_OTHER] = "other",
};

const char *eng_dtype_name(eng_dtype dt)
{
    if ((unsigned)dt < sizeof dtype_names / sizeof dtype_names[0]) return dtype_names[dt];
    return "other";
}

static const char *const format_names[] = {
    [ENG_FMT_KERAS2_WEIGHTS] = "keras2-weights",
    [ENG_FMT_KERAS2_MODEL] = "keras2-model",
    [ENG_FMT_KERAS3_WEIGHTS] = "keras3-weights",
    [ENG_FMT_KERAS3_ARCHIVE] = "keras3-archive",
};

const char *eng_format_name(eng_format f)
{
    if ((unsigned)f < sizeof format_names / sizeof format_names[0]) return format_names[f];
    return "unknown";
}
