/* engine/engine.h — the one public header of strata's engine library.
 *
 * Owns: Keras model configs (to_json of Keras 1/2/tf.keras/3), shape
 * inference, Keras HDF5 weight files (read into a plain summary, written
 * back as partial sets), validation of weights against an architecture, and
 * the CNN forward pass on OpenBLAS.
 * Does not own: HTTP, SQL, files other than the one it is handed.
 *
 * Conventions
 * - Fallible calls return eng_code (0 = ENG_OK) and fill the caller-owned
 *   eng_error (first error wins); out-parameters are set only on success.
 * - json_t results are NEW references (caller json_decref); field names are
 *   the API contract's (shared/design/api.md).
 * - An eng_arch and an eng_model are immutable once built and may be shared
 *   between threads; each predict call brings its own eng_workspace.
 * - Never prints, exits or aborts on bad input; messages name the subject:
 *   "layer 'dense_1': kernel shape [5408,12], expected [5408,10]".
 */
#ifndef STRATA_ENGINE_H
#define STRATA_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

typedef enum eng_code {
    ENG_OK = 0,
    ENG_ERR_ARCH = 1,    /* invalid or unsupported architecture (422 invalid_architecture) */
    ENG_ERR_WEIGHTS = 2, /* weights do not fit / not finite (422 invalid_weights) */
    ENG_ERR_FORMAT = 3,  /* not HDF5, not a Keras layout, refused construct (422 invalid_weights) */
    ENG_ERR_INPUT = 4,   /* bad predict input (400) */
    ENG_ERR_IO = 5,
    ENG_ERR_NOMEM = 6,
    ENG_ERR_LIMIT = 7, /* a bound in ENG_MAX_* exceeded (422) */
    ENG_ERR_INTERNAL = 8
} eng_code;

/* Caller-owned. details is NULL or a NEW json object, e.g.
 * {"layer":"conv2d_1","reason":"…","path":"config.layers[3]"} for an
 * architecture, or {"problems":[…]} for weights; release with eng_error_release(). */
typedef struct eng_error {
    eng_code code;
    char msg[512];
    json_t *details;
} eng_error;

const char *eng_strerror(eng_code code);
void eng_error_release(eng_error *err); /* err may be NULL */

/* Bounds on untrusted input; each with its reason. */
#define ENG_MAX_RANK     8    /* Keras CNN tensors have rank <= 5 */
#define ENG_MAX_LAYERS   4096 /* far above any Keras CNN */
#define ENG_MAX_TENSORS  16384
#define ENG_MAX_NAME     256          /* layer / weight names */
#define ENG_MAX_ELEMENTS (1ULL << 32) /* per tensor: 16 GiB of float32 */
#define ENG_MAX_WEIGHTS \
    4 /* weights of one supported layer kind: at most 4
                                        * (SeparableConv2D, BatchNormalization) */

/* Room for a digest as text, "sha256:<64 hex>" and its NUL. */
#define ENG_DIGEST_LEN (7 + 64 + 1)

typedef enum eng_dtype {
    ENG_DT_F32 = 0,
    ENG_DT_F64,
    ENG_DT_F16,
    ENG_DT_I64,
    ENG_DT_I32,
    ENG_DT_OTHER
} eng_dtype;
const char *eng_dtype_name(eng_dtype dt); /* "float32", "float64", ... */

/* ---- architectures ------------------------------------------------------ */

typedef struct eng_arch eng_arch; /* opaque, immutable after parse */

/* Parse model.to_json() text (Keras 1.x, 2.x, tf.keras, 3.x; Sequential or
 * Functional), infer every layer's output shape and weight specs.
 * ENG_ERR_ARCH names the layer and reason in err->details. */
eng_code eng_arch_parse(const char *json_text, size_t len, eng_arch **out, eng_error *err);
void eng_arch_free(eng_arch *a); /* NULL ok */

/* Canonical config text (sorted keys, compact) whose sha256 is the id;
 * borrowed. */
const char *eng_arch_canonical(const eng_arch *a);
/* "sha256:<hex>" of eng_arch_canonical(); borrowed. */
const char *eng_arch_id(const eng_arch *a);
/* {"framework":"keras","keras_version"?,"input_shape":[…],"output_shape":[…],
 *  "params":N,"trainable_params":N,"non_trainable_params":N,
 *  "layers":[{"name","class","output_shape":[…],"weights":[{"name","shape","dtype"}…]}…]} */
json_t *eng_arch_to_json(const eng_arch *a);

/* ---- weight files ------------------------------------------------------- */

typedef enum eng_format {
    ENG_FMT_KERAS2_WEIGHTS = 0, /* save_weights: root layer_names (Keras 1/2/tf.keras) */
    ENG_FMT_KERAS2_MODEL,       /* model.save('x.h5'): model_weights group */
    ENG_FMT_KERAS3_WEIGHTS,     /* Keras 3 .weights.h5: layers/<name>/vars/N */
    ENG_FMT_KERAS3_ARCHIVE      /* Keras 3 .keras zip holding model.weights.h5 */
} eng_format;
const char *eng_format_name(
    eng_format f); /* "keras2-weights", "keras2-model", "keras3-weights", "keras3-archive" */

/* One dataset of a layer. */
typedef struct eng_tensor {
    char *name; /* Keras weight name as the file says it: "conv2d_1/kernel:0",
                          * "dense_1_W", or the var index "0" for Keras 3 */
    char *path; /* HDF5 path of the dataset inside the HDF5 file */
    int rank;
    int64_t shape[ENG_MAX_RANK];
    eng_dtype dtype;
    uint64_t offset; /* absolute file offset of the contiguous raw data
                          * (archive member offset already added), or
                          * ENG_NO_OFFSET when not contiguous (then unreadable) */
    uint64_t nbytes; /* raw size in the file */
} eng_tensor;
#define ENG_NO_OFFSET UINT64_MAX

typedef struct eng_wlayer {
    char *name;      /* legacy: the layer_names entry; Keras 3: the group path
                          * below layers/ ("dense_1", "sequential/layers/random_flip") */
    char *attr_name; /* Keras 3.6+ vars@name attribute, or NULL */
    size_t ntensors;
    eng_tensor *tensors; /* legacy: weight_names order; Keras 3: numeric var order */
} eng_wlayer;

/* The plain summary of a weight file: everything the server needs without
 * libhdf5. Safe to produce in a sandboxed child and send back as JSON. */
typedef struct eng_summary {
    eng_format format;
    char *keras_version; /* or NULL */
    char *backend;       /* or NULL */
    char *model_config;  /* JSON text embedded in the file (model_config attr or
                              * the archive's config.json), or NULL */
    uint64_t file_size;
    uint64_t hdf5_offset; /* where the HDF5 image starts (0, or inside a zip) */
    uint64_t hdf5_size;
    size_t nlayers;
    eng_wlayer *layers; /* legacy: layer_names order; Keras 3: HDF5 order */
} eng_summary;

/* Read the file's structure with libhdf5. Refuses external links, external
 * storage, virtual datasets, filters, and declared sizes beyond the file
 * (ENG_ERR_FORMAT with a reason). Reads no tensor data beyond what the
 * structure needs. */
eng_code eng_summary_read(const char *path, eng_summary **out, eng_error *err);
void eng_summary_free(eng_summary *s); /* NULL ok */
/* Lossless JSON form (for the sandbox pipe) and back. from_json re-checks
 * every bound (rank, counts, offset + nbytes within file_size). */
json_t *eng_summary_to_json(const eng_summary *s);
eng_code eng_summary_from_json(const json_t *j, eng_summary **out, eng_error *err);

/* Read one tensor's data as float32 into dst (count elements) with pread on
 * fd, converting from its stored dtype; no libhdf5. */
eng_code eng_tensor_read_f32(int fd, const eng_tensor *t, float *dst, size_t count, eng_error *err);

/* The contract's "layers" array for a file without an architecture:
 * [{"name","digest":"sha256:…","params","weights":[{"name","shape","dtype"}]}]
 * digest = sha256 over the layer's raw tensor bytes in order (NULL when it has none). */
eng_code eng_summary_layers_json(int fd, const eng_summary *s, json_t **out, eng_error *err);
/* The layer digests alone, "sha256:<64 hex>" into hex[i] for every layer i
 * of s with tensors and want[i] (want NULL: all); "" for the others. Big
 * files are hashed on several threads; the error of the lowest failing
 * layer is reported. Used by the above and by eng_validate. */
eng_code eng_summary_layer_digests(int fd, const eng_summary *s, const unsigned char *want,
                                   char (*hex)[ENG_DIGEST_LEN], eng_error *err);

/* ---- validation and compatibility --------------------------------------- */

/* Check a weight file against an architecture: layers mapped by name
 * (legacy) or by Keras 3 naming in model order; count, shapes, dtypes,
 * finiteness; then one forward pass on the fixed probe input must be finite.
 * ENG_OK: *report = {"status":"passed","probe_output":[…]} and *layers the
 * contract's "layers" array, named as the architecture names them.
 * ENG_ERR_WEIGHTS: err->details = {"problems":[{"layer","weight","expected","found"} |
 * {"layer","problem":"missing"|"unexpected"|"nan"|"dtype"}…]} listing every problem. */
eng_code eng_validate(const eng_arch *a, const eng_summary *s, int fd, json_t **report,
                      json_t **layers, eng_error *err);

/* ---- forward pass ------------------------------------------------------- */

typedef struct eng_model eng_model;         /* arch + weights, immutable */
typedef struct eng_workspace eng_workspace; /* per caller, reused across calls */

eng_code eng_model_load(const eng_arch *a, const eng_summary *s, int fd, eng_model **out,
                        eng_error *err);
void eng_model_free(eng_model *m); /* NULL ok */
/* Elements of one input (H*W*C) and one output. */
size_t eng_model_input_size(const eng_model *m);
size_t eng_model_output_size(const eng_model *m);
eng_workspace *eng_workspace_new(void);
void eng_workspace_free(eng_workspace *ws); /* NULL ok */
/* in: batch * input_size floats, channels last; out: batch * output_size. */
eng_code eng_model_predict(const eng_model *m, eng_workspace *ws, const float *in, size_t batch,
                           float *out, eng_error *err);

/* ---- matching, views and selections (transfer.c) ------------------------ */

/* How one architecture layer fits a weight file. THE matching rule, shared
 * by upload validation (eng_validate), ?for= and compatibility: the file
 * layer is found by name (legacy files: the layer name; Keras 3 files: the
 * class-derived group name), then weight count, each weight's stored shape
 * (Keras 1 'th' kernels transposed) and dtype (float16/32/64) are compared. */
typedef enum eng_fit_status {
    ENG_FIT_MATCH = 0, /* every weight fits */
    ENG_FIT_MISSING,   /* the architecture layer has weights, the file has no such layer */
    ENG_FIT_COUNT,     /* the file layer holds another number of weights */
    ENG_FIT_MISMATCH,  /* some weight's shape (bad_shape) or dtype (bad_dtype) does not fit */
    ENG_FIT_WEIGHTLESS /* no weights expected and none found */
} eng_fit_status;

typedef struct eng_fit {
    const char *name, *cls; /* the architecture layer (borrowed from the arch) */
    const char *file_name;  /* the name the rule looks for in the file (borrowed) */
    const eng_wlayer *file; /* the file layer, or NULL (borrowed from the summary) */
    eng_fit_status status;
    int nweights;                       /* weights the architecture expects */
    const char *wname[ENG_MAX_WEIGHTS]; /* "kernel", "bias", … */
    int rank[ENG_MAX_WEIGHTS];
    int64_t expected[ENG_MAX_WEIGHTS][ENG_MAX_RANK]; /* expected STORED shape */
    unsigned bad_shape, bad_dtype;                   /* bit w set: weight w does not fit */
} eng_fit;

/* One eng_fit per architecture layer, in the architecture's layer order.
 * *out is NEW (free()); it borrows from a and s. */
eng_code eng_fit_layers(const eng_arch *a, const eng_summary *s, eng_fit **out, size_t *n,
                        eng_error *err);

struct eng_layer; /* an architecture layer; its body is engine-private */
/* A version's layers as the API names them ("the view"): with an
 * architecture, its layers in model order, each on the file layer the
 * matching rule finds (weightless layers the file lacks are kept, file = NULL),
 * then the file layers no architecture layer claims; without one, the file's
 * layers in file order. */
typedef struct eng_vlayer {
    const char *name;          /* the architecture's layer name, else the file's */
    const char *cls;           /* architecture class, or NULL */
    const char *k3name;        /* Keras 3 group name by Keras' class-derived naming, or NULL */
    const eng_wlayer *file;    /* or NULL */
    const struct eng_layer *L; /* architecture layer or NULL (engine-private) */
    int nwnames;
    const char *wname[ENG_MAX_WEIGHTS]; /* architecture weight names ("kernel") */
} eng_vlayer;

typedef struct eng_view {
    size_t n;
    eng_vlayer *layers;
    char *model_name; /* the architecture config's "name", or NULL */
} eng_view;

/* *out NEW (eng_view_free); borrows from a (NULL ok) and s. */
eng_code eng_view_build(const eng_arch *a, const eng_summary *s, eng_view **out, eng_error *err);
void eng_view_free(eng_view *v); /* NULL ok */

/* The selection of a derived download, as a mask over the view (chosen[i]).
 * layers / exclude: comma-separated view names or NULL; target (?for=) or
 * NULL: the layers with weights whose fit against target is ENG_FIT_MATCH.
 * Start set: target's matches if given, else every view layer that is in the
 * file; then ?layers= intersects, ?exclude= removes. ENG_ERR_INPUT for an
 * unknown name: err->details = {"unknown":[…],"valid":[…]}. */
eng_code eng_select(const eng_view *v, const eng_summary *s, const char *layers,
                    const char *exclude, const eng_arch *target, bool *chosen, eng_error *err);

/* GET …/compatibility: {"layers":[{"name","status":"match"|"shape_mismatch"|"missing",
 * +"weight","expected","found" for shape_mismatch}…],"unused":[…]}: one entry
 * per target layer WITH weights (weightless layers are not listed); unused =
 * view layers with weights that no target layer maps to. *out NEW. */
eng_code eng_compat_json(const eng_arch *target, const eng_summary *s, const eng_view *v,
                         json_t **out, eng_error *err);

/* Per-weight statistics over values converted to float (then double);
 * std is the population std. Non-finite values are counted, not summed. */
typedef struct eng_wstats {
    double min, max, mean, std;
    uint64_t count, nonfinite;
} eng_wstats;
/* Read a file layer once with pread: "sha256:<hex>" of its raw tensor bytes
 * into digest (empty when it has no tensors) and stats[ntensors]. */
eng_code eng_layer_scan(int fd, const eng_wlayer *wl, char digest[ENG_DIGEST_LEN],
                        eng_wstats *stats, eng_error *err);

typedef enum eng_diff_status {
    ENG_DIFF_IDENTICAL = 0,
    ENG_DIFF_CHANGED,
    ENG_DIFF_SHAPE
} eng_diff_status;
/* Compare two file layers value by value (as float32): SHAPE when the
 * tensor counts or shapes differ; IDENTICAL when every value is equal;
 * else CHANGED with l2 = ||b-a||, norm_a = ||a|| and max_abs = max|b-a|
 * over all tensors of the layer. */
eng_code eng_layer_diff(int fd_a, const eng_wlayer *a, int fd_b, const eng_wlayer *b,
                        eng_diff_status *status, double *l2, double *norm_a, double *max_abs,
                        eng_error *err);

/* ---- derived weight files (transfer.c builds the spec, write.c writes) -- */

/* What a derived weight file holds. The spec owns its strings. */
typedef struct eng_out_layer {
    char *name;            /* keras2: layer_names entry = its group; keras3: the vars
                          * group's path ("layers/conv2d/vars") */
    char *vars_name;       /* keras3: vars@name attribute, or NULL */
    const eng_wlayer *src; /* tensors to copy (borrowed), or NULL: no weights */
    char **dnames;         /* src->ntensors dataset names relative to the group:
                          * keras2 the weight_names entries, keras3 "0", "1", … */
} eng_out_layer;

typedef struct eng_out_spec {
    bool keras3; /* false: legacy save_weights layout; true: Keras 3 .weights.h5 */
    char *keras_version, *backend; /* keras2 root attributes, NULL = not written */
    char *model_name;              /* keras3 root vars@name, NULL = not written */
    size_t nlayers;
    eng_out_layer *layers;
} eng_out_spec;
void eng_out_spec_release(eng_out_spec *spec); /* NULL ok; frees what it owns */

/* Build the output spec for the chosen view layers in `keras3` or legacy
 * layout. Converting between layouts needs the architecture (k3name /
 * names); ENG_ERR_INPUT when it is missing or a layer cannot be converted. */
eng_code eng_derive_spec(const eng_view *v, const eng_summary *s, const bool *chosen, bool keras3,
                         eng_out_spec *spec, eng_error *err);

/* Writing happens in two phases so that only the first touches libhdf5
 * (callers serialise it: Debian's libhdf5 is not thread-safe):
 * eng_write_layout creates `path` with every group, attribute and dataset
 * (contiguous, allocated early, never filled; no timestamps; fixed-length
 * NULLPAD strings) and returns where each tensor's bytes go. Output is
 * deterministic for one eng_write_id(). Then either
 * - eng_write_data copies the tensor bytes from src_fd with pread/pwrite
 *   (no libhdf5) and hashes the finished file in one pass: etag =
 *   "sha256:<hex>" of the whole output (a standalone file); or
 * - eng_write_skeleton copies nothing: it compacts the layout file in place
 *   to its metadata bytes (every byte that is not tensor data, in order; the
 *   "skeleton") and lists the derived file as pieces, in file order: ranges
 *   of the skeleton and ranges of the source (the upload src_fd would have
 *   been read from). Concatenated, the pieces are exactly the bytes
 *   eng_write_data would have produced. *pieces is NEW (free()); *total is
 *   the derived file's size.
 * eng_write_layout's *out is NEW (eng_copy_plan_free). */
typedef struct eng_copy_plan eng_copy_plan;
eng_code eng_write_layout(const eng_out_spec *spec, const char *path, eng_copy_plan **out,
                          eng_error *err);
eng_code eng_write_data(int src_fd, int dst_fd, const eng_copy_plan *plan,
                        char etag[ENG_DIGEST_LEN], eng_error *err);
void eng_copy_plan_free(eng_copy_plan *p);            /* NULL ok */
uint64_t eng_copy_plan_bytes(const eng_copy_plan *p); /* tensor bytes to copy */

typedef enum eng_piece_source { ENG_PIECE_SKELETON = 0, ENG_PIECE_SOURCE = 1 } eng_piece_source;
typedef struct eng_piece {
    eng_piece_source source;
    uint64_t off, len; /* len > 0; off into the skeleton or the source */
} eng_piece;
eng_code eng_write_skeleton(int fd, const eng_copy_plan *plan, eng_piece **pieces, size_t *n,
                            uint64_t *total, eng_error *err);

/* What determines a derived file's bytes besides its spec: "strata-derived/N
 * hdf5-X.Y.Z" (the writer's output version and the libhdf5 that lays the
 * file out). Borrowed, constant for the process. A derived file's identity
 * (cache key, ETag) must include it. */
#define ENG_WRITE_VERSION "strata-derived/1" /* bump when write.c's output changes */
const char *eng_write_id(void);

#endif
