/* engine/arch_int.h — private: the parsed architecture and the loaded model.
 *
 * Owns the in-memory form of an eng_arch (layers, shapes, weight specs,
 * execution order) and of an eng_model (weights per layer, buffer plan).
 * Does not own JSON parsing of single layer kinds (layer_*.c) nor the public
 * API (engine.h).
 *
 * Tensors live in the architecture's LOGICAL layout (the shape Keras reports,
 * without the batch dim): a channels_first layer sees (C,H,W). Spatial kinds
 * compute and run in NHWC; arch.c / forward.c transpose around a
 * channels_first layer. So Keras 1 'th' models flatten in CHW order exactly as
 * Keras does, and predict inputs are in the architecture's input shape.
 */
#ifndef STRATA_ENGINE_ARCH_INT_H
#define STRATA_ENGINE_ARCH_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include "engine.h"

typedef struct eng_shape {
    int rank;
    int64_t d[ENG_MAX_RANK];
} eng_shape;

/* Activations (Keras names in eng_act_parse). */
enum eng_act {
    ENG_ACT_LINEAR = 0,
    ENG_ACT_RELU,
    ENG_ACT_RELU6,
    ENG_ACT_SIGMOID,
    ENG_ACT_HARD_SIGMOID_K2, /* clip(0.2x + 0.5, 0, 1): Keras 1/2, tf.keras */
    ENG_ACT_HARD_SIGMOID_K3, /* clip(x/6 + 0.5, 0, 1): Keras 3 */
    ENG_ACT_TANH,
    ENG_ACT_SOFTMAX,
    ENG_ACT_ELU,
    ENG_ACT_SELU,
    ENG_ACT_SOFTPLUS,
    ENG_ACT_SOFTSIGN,
    ENG_ACT_SWISH,
    ENG_ACT_GELU,
    ENG_ACT_EXPONENTIAL,
    ENG_ACT_MISH
};

#define ENG_MAX_INPUTS 64 /* merge layers: inputs of one Add/Concatenate */

typedef struct eng_wspec {
    char name[24]; /* Keras 2 weight name: "kernel", "bias", ... */
    int rank;
    int64_t shape[4];
    bool trainable;
} eng_wspec;

/* Per-kind parameters; each kind uses the fields it needs. */
typedef struct eng_lparams {
    int filters, kh, kw, sh, sw, dh, dw, dm, groups;
    bool same, use_bias;
    int act; /* enum eng_act applied after the layer */
    /* ReLU / LeakyReLU / ELU layers */
    float alpha, max_value, threshold;
    bool has_max;
    /* padding / cropping (top, bottom, left, right), up-sampling */
    int pad[4];
    int up[2];
    int out_pad[2];
    bool has_out_pad;
    /* Dense */
    int units;
    /* BatchNormalization, Softmax, Concatenate (negative: from the end) */
    int axis;
    float eps;
    bool center, scale;
    bool bn_k1; /* Keras 1: gamma, beta, running_mean, running_std */
    bool keepdims;
    int merge_op;    /* layer_merge.c */
    int target_rank; /* Reshape */
    int64_t target[ENG_MAX_RANK];
    float rs_scale, rs_offset; /* Rescaling */
    bool flatten_cf;           /* Flatten(data_format='channels_first') */
} eng_lparams;

struct eng_layer_kind;

typedef struct eng_layer {
    char *name;
    char *cls; /* class_name as written in the config */
    const struct eng_layer_kind *kind;
    char path[48];                  /* "config.layers[3]" */
    char k3name[ENG_MAX_NAME + 16]; /* Keras 3 weight-group name ("conv2d_1"), or "" */
    int nin;
    int in[ENG_MAX_INPUTS]; /* producing layer indexes; -1 = the model input */
    eng_shape ish;          /* first input's shape (logical) */
    eng_shape out;          /* output shape (logical, no batch dim) */
    int nw;
    eng_wspec w[ENG_MAX_WEIGHTS];
    bool trainable;
    bool cf; /* channels_first (data_format / dim_ordering 'th') */
    eng_lparams p;
} eng_layer;

struct eng_arch {
    atomic_int refs; /* eng_model_load holds a reference */
    char *canonical;
    char id[80];
    char *keras_version; /* top-level keras_version or NULL */
    int keras_major;     /* 1, 2 or 3 (3: Keras 3 markers, no version) */
    bool functional;
    int nlayers;
    eng_layer *layers;
    int *order; /* execution order (topological) */
    int output; /* index of the output layer */
    eng_shape in_shape;
    int64_t params, trainable_params;
};

/* layer_util.c: helpers shared by arch.c and layer_*.c */
int eng_act_parse(const char *name, int keras_major);
const char *eng_act_name(int act);
int64_t eng_shape_count(const eng_shape *s);
/* Keras ints: a number, or a list of n numbers (a single number fills all). */
int eng_json_ints(const json_t *cfg, const char *key, int *out, int n, int def);
double eng_json_num(const json_t *cfg, const char *key, double def);
bool eng_json_bool(const json_t *cfg, const char *key, bool def);
const char *eng_json_str(const json_t *cfg, const char *key);
/* "channels_first"/'th' → true; absent/null/channels_last/'tf' → false; -1 on bad value */
int eng_json_data_format(const json_t *cfg);
/* The layer's activation key ("activation"), default linear; -1 when unknown. */
int eng_json_activation(const json_t *cfg, int keras_major, const char **bad);

/* ---- loaded model (forward.c, validate.c) ---- */

typedef struct eng_mlayer {
    const eng_layer *L;
    float *w[ENG_MAX_WEIGHTS]; /* weights in Keras 2 layout (converted), owned */
    float *aux[2];             /* kind-prepared data (BN scale/shift), owned */
    size_t off;                /* output offset per sample (floats) in the arena */
    size_t size;               /* output elements per sample */
    int alias;                 /* >=-1: output is this input's buffer (identity) */
    bool aliased;
} eng_mlayer;

struct eng_model {
    eng_arch *arch; /* holds a reference */
    eng_mlayer *ml;
    size_t in_size, out_size;
    size_t in_off;             /* model input offset per sample */
    size_t arena;              /* floats per sample for all outputs */
    size_t scratch_fixed;      /* floats of scratch independent of batch */
    size_t scratch_per_sample; /* floats of scratch per sample */
};

/* One forward step's view, always NHWC for spatial kinds. */
typedef struct eng_fwd {
    const eng_mlayer *ml;
    const eng_layer *L;
    int nin;
    const float *in[ENG_MAX_INPUTS];
    const eng_shape *ish[ENG_MAX_INPUTS];
    eng_shape in0;  /* NHWC form of the first input */
    eng_shape outs; /* NHWC form of the output */
    float *out;
    size_t batch;
    float *scratch; /* kind scratch, kind->scratch() floats */
} eng_fwd;

/* Elementwise activation; softmax over rows of length `row`. */
void eng_act_apply(float *x, size_t n, size_t row, int act);

/* Build a model, collecting weight problems into `problems` (may be NULL:
 * then the first problem is an error). validate.c passes an array. */
eng_code eng_model_build(const eng_arch *a, const eng_summary *s, int fd, json_t *problems,
                         eng_model **out, eng_error *err);

/* The file layer holding L's weights (legacy: by name; Keras 3: by k3name), or NULL. */
const eng_wlayer *eng_map_layer(const eng_layer *L, const eng_summary *s);
/* err->msg text for a problems array. */
void eng_problems_message(const json_t *problems, char *msg, size_t n);

/* Keras 1 'th' Conv2D kernels stored (out,in,kh,kw) need a transpose. */
bool eng_layer_th_kernel(const eng_layer *L, const eng_summary *s);

/* error helpers (arch.c) */
eng_code eng_arch_fail(eng_error *err, eng_code code, json_t *details, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
