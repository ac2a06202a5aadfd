/* engine/layer_conv.c — convolution kinds: Conv2D (Keras 1 Convolution2D,
 * AtrousConvolution2D), DepthwiseConv2D, SeparableConv2D (Keras 1
 * SeparableConvolution2D), Conv2DTranspose.
 *
 * Owns their config parsing, shape/weight inference and NHWC forward:
 * Conv2D by im2col + a GEMM (none for 1x1 stride-1 kernels): engine/gemm.c's
 * small-N kernel on a kernel packed at load time (bias and ReLU fused), or
 * cblas_sgemm on CPUs without AVX-512,
 * depthwise by direct loops, separable = depthwise + pointwise sgemm,
 * transpose by sgemm + col2im scatter. 'same' padding is TF's:
 * pad_total = max((out-1)*s + (k-1)*d + 1 - in, 0), pad_before = pad_total/2.
 * Kernel layouts are Keras 2's: (kh, kw, in, out); depthwise (kh, kw, in, dm);
 * transpose (kh, kw, out, in). Keras 1 'th' kernels are converted by
 * forward.c at load time. Activations are applied by forward.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>

#include "layers.h"

static int conv_common(eng_layer *L, const json_t *cfg, const eng_parse_ctx *pc, char *why,
                       bool need_filters)
{
    eng_lparams *p = &L->p;
    int k[2];
    if (need_filters) {
        const json_t *f = json_object_get(cfg, "filters");
        if (!f) f = json_object_get(cfg, "nb_filter");
        if (!json_is_integer(f) || json_integer_value(f) < 1 || json_integer_value(f) > (1 << 24)) {
            snprintf(why, ENG_WHY, "filters missing or invalid");
            return -1;
        }
        p->filters = (int)json_integer_value(f);
    }
    if (json_object_get(cfg, "kernel_size")) {
        if (eng_json_ints(cfg, "kernel_size", k, 2, -1) < 0) goto bad_k;
    } else if (eng_json_ints(cfg, "nb_row", &k[0], 1, -1) < 0 ||
               eng_json_ints(cfg, "nb_col", &k[1], 1, -1) < 0) {
        goto bad_k;
    }
    if (k[0] < 1 || k[1] < 1 || k[0] > 4096 || k[1] > 4096) goto bad_k;
    p->kh = k[0];
    p->kw = k[1];
    int s[2] = {1, 1}, d[2] = {1, 1};
    const char *skey = json_object_get(cfg, "strides") ? "strides" : "subsample";
    if (eng_json_ints(cfg, skey, s, 2, 1) < 0 || s[0] < 1 || s[1] < 1) {
        snprintf(why, ENG_WHY, "invalid strides");
        return -1;
    }
    const char *dkey = json_object_get(cfg, "dilation_rate") ? "dilation_rate" : "atrous_rate";
    if (eng_json_ints(cfg, dkey, d, 2, 1) < 0 || d[0] < 1 || d[1] < 1) {
        snprintf(why, ENG_WHY, "invalid dilation_rate");
        return -1;
    }
    p->sh = s[0];
    p->sw = s[1];
    p->dh = d[0];
    p->dw = d[1];
    const char *pad = eng_json_str(cfg, "padding");
    if (!pad) pad = eng_json_str(cfg, "border_mode");
    if (!pad || !strcmp(pad, "valid")) p->same = false;
    else if (!strcmp(pad, "same")) p->same = true;
    else {
        snprintf(why, ENG_WHY, "padding '%.32s' not supported (valid or same)", pad);
        return -1;
    }
    p->use_bias = eng_json_bool(cfg, "use_bias", eng_json_bool(cfg, "bias", true));
    p->groups = 1;
    if (eng_json_ints(cfg, "groups", &p->groups, 1, 1) < 0 || p->groups != 1) {
        snprintf(why, ENG_WHY, "grouped convolution (groups != 1) not supported");
        return -1;
    }
    p->dm = 1;
    if (eng_json_ints(cfg, "depth_multiplier", &p->dm, 1, 1) < 0 || p->dm < 1 || p->dm > 4096) {
        snprintf(why, ENG_WHY, "invalid depth_multiplier");
        return -1;
    }
    return eng_parse_act(L, cfg, pc, why);
bad_k:
    snprintf(why, ENG_WHY, "kernel_size missing or invalid");
    return -1;
}

static int conv_parse(eng_layer *L, const json_t *cfg, const eng_parse_ctx *pc, char *why)
{
    return conv_common(L, cfg, pc, why, true);
}

static int dw_parse(eng_layer *L, const json_t *cfg, const eng_parse_ctx *pc, char *why)
{
    return conv_common(L, cfg, pc, why, false);
}

static int spatial_out(eng_layer *L, const eng_shape *in, char *why)
{
    const eng_lparams *p = &L->p;
    int64_t ho = eng_conv_out(in->d[0], p->kh, p->sh, p->dh, p->same);
    int64_t wo = eng_conv_out(in->d[1], p->kw, p->sw, p->dw, p->same);
    if (ho < 1 || wo < 1) {
        snprintf(why, ENG_WHY,
                 "inconsistent shapes: kernel %dx%d (dilation %dx%d) does not fit input %lldx%lld",
                 p->kh, p->kw, p->dh, p->dw, (long long)in->d[0], (long long)in->d[1]);
        return -1;
    }
    L->out.rank = 3;
    L->out.d[0] = ho;
    L->out.d[1] = wo;
    return 0;
}

static int conv_shape(eng_layer *L, const eng_shape *in, int nin, char *why)
{
    (void)nin;
    if (spatial_out(L, in, why) < 0) return -1;
    L->out.d[2] = L->p.filters;
    return 0;
}

static int conv_weights(eng_layer *L, const eng_shape *in, char *why)
{
    (void)why;
    eng_wspec_set(L, "kernel", true, 4, (int64_t)L->p.kh, (int64_t)L->p.kw, in->d[2],
                  (int64_t)L->p.filters);
    if (L->p.use_bias) eng_wspec_set(L, "bias", true, 1, (int64_t)L->p.filters);
    return 0;
}

static int dw_shape(eng_layer *L, const eng_shape *in, int nin, char *why)
{
    (void)nin;
    if (spatial_out(L, in, why) < 0) return -1;
    L->out.d[2] = in->d[2] * L->p.dm;
    return 0;
}

static int dw_weights(eng_layer *L, const eng_shape *in, char *why)
{
    (void)why;
    eng_wspec_set(L, "depthwise_kernel", true, 4, (int64_t)L->p.kh, (int64_t)L->p.kw, in->d[2],
                  (int64_t)L->p.dm);
    if (L->p.use_bias) eng_wspec_set(L, "bias", true, 1, in->d[2] * L->p.dm);
    return 0;
}

static int sep_weights(eng_layer *L, const eng_shape *in, char *why)
{
    (void)why;
    eng_wspec_set(L, "depthwise_kernel", true, 4, (int64_t)L->p.kh, (int64_t)L->p.kw, in->d[2],
                  (int64_t)L->p.dm);
    eng_wspec_set(L, "pointwise_kernel", true, 4, (int64_t)1, (int64_t)1, in->d[2] * L->p.dm,
                  (int64_t)L->p.filters);
    if (L->p.use_bias) eng_wspec_set(L, "bias", true, 1, (int64_t)L->p.filters);
    return 0;
}

/* ---- Conv2DTranspose ---- */

static int tr_parse(eng_layer *L, const json_t *cfg, const eng_parse_ctx *pc, char *why)
{
    if (conv_common(L, cfg, pc, why, true) < 0) return -1;
    const json_t *op = json_object_get(cfg, "output_padding");
    if (op && !json_is_null(op)) {
        if (eng_json_ints(cfg, "output_padding", L->p.out_pad, 2, -1) < 0) {
            snprintf(why, ENG_WHY, "invalid output_padding");
            return -1;
        }
        L->p.has_out_pad = true;
    }
    return 0;
}

static int64_t deconv_len(int64_t in, int k, int s, int d, bool same, bool has_op, int op)
{
    int64_t keff = (int64_t)(k - 1) * d + 1;
    if (!has_op) {
        if (same) return in * s;
        return in * s + (keff - s > 0 ? keff - s : 0);
    }
    int64_t pad = same ? keff / 2 : 0;
    return (in - 1) * s + keff - 2 * pad + op;
}

static int tr_shape(eng_layer *L, const eng_shape *in, int nin, char *why)
{
    (void)nin;
    const eng_lparams *p = &L->p;
    L->out.rank = 3;
    L->out.d[0] = deconv_len(in->d[0], p->kh, p->sh, p->dh, p->same, p->has_out_pad, p->out_pad[0]);
    L->out.d[1] = deconv_len(in->d[1], p->kw, p->sw, p->dw, p->same, p->has_out_pad, p->out_pad[1]);
    L->out.d[2] = p->filters;
    if (L->out.d[0] < 1 || L->out.d[1] < 1) {
        snprintf(why, ENG_WHY, "inconsistent shapes: output size not positive");
        return -1;
    }
    return 0;
}

static int tr_weights(eng_layer *L, const eng_shape *in, char *why)
{
    (void)why;
    eng_wspec_set(L, "kernel", true, 4, (int64_t)L->p.kh, (int64_t)L->p.kw, (int64_t)L->p.filters,
                  in->d[2]);
    if (L->p.use_bias) eng_wspec_set(L, "bias", true, 1, (int64_t)L->p.filters);
    return 0;
}

/* ---- forward ---- */

static size_t conv_scratch(const eng_layer *L, const eng_shape *in, size_t batch)
{
    (void)batch;
    const eng_lparams *p = &L->p;
    size_t ho = (size_t)eng_conv_out(in->d[0], p->kh, p->sh, p->dh, p->same);
    size_t wo = (size_t)eng_conv_out(in->d[1], p->kw, p->sw, p->dw, p->same);
    return ho * wo * (size_t)p->kh * (size_t)p->kw * (size_t)in->d[2];
}

static void add_bias(float *y, size_t rows, size_t n, const float *bias)
{
    if (!bias) return;
    for (size_t r = 0; r < rows; r++, y += n)
        for (size_t j = 0; j < n; j++) y[j] += bias[j];
}

/* Pack the (kh*kw*C) x F kernel for eng_gemm into aux[0] (owned by the model). */
static int conv_load(eng_mlayer *ml, char *why)
{
    const eng_layer *L = ml->L;
    if (!eng_gemm_available() || !ml->w[0]) return 0;
    int K = (int)(L->w[0].shape[0] * L->w[0].shape[1] * L->w[0].shape[2]),
        N = (int)L->w[0].shape[3];
    ml->aux[0] = malloc(eng_gemm_packed_size(K, N) * sizeof(float));
    if (!ml->aux[0]) {
        snprintf(why, ENG_WHY, "out of memory");
        return -1;
    }
    eng_gemm_pack(ml->aux[0], ml->w[0], K, N);
    /* the packed copy replaces the kernel: a model holds its weights once */
    free(ml->w[0]);
    ml->w[0] = NULL;
    /* 'valid' convolutions read their windows in place (eng_gemm_conv): the
     * offset of window element (ky, kx, c) from the window's first pixel,
     * for the input width the architecture fixes. aux[1] holds ints. */
    if (!L->p.same) {
        const int C = (int)L->w[0].shape[2];
        const int64_t W = L->cf ? L->ish.d[2] : L->ish.d[1];
        if ((int64_t)L->p.kh * L->p.dh * W * C >= (1LL << 30)) return 0;
        int *koff = malloc((size_t)K * sizeof *koff);
        if (!koff) {
            snprintf(why, ENG_WHY, "out of memory");
            return -1;
        }
        for (int ky = 0, k = 0; ky < L->p.kh; ky++)
            for (int kx = 0; kx < L->p.kw; kx++)
                for (int c = 0; c < C; c++)
                    koff[k++] = (int)(((int64_t)ky * L->p.dh * W + kx * L->p.dw) * C + c);
        ml->aux[1] = (float *)(void *)koff;
    }
    return 0;
}

/* y (M x F) = a (M x K) . kernel + bias, ReLU fused when packed. */
static void conv_gemm(const eng_fwd *f, int M, int F, int K, const float *a, float *y)
{
    const eng_lparams *p = &f->L->p;
    const float *bias = p->use_bias ? f->ml->w[1] : NULL;
    if (f->ml->aux[0]) {
        eng_gemm(M, F, K, a, K, f->ml->aux[0], bias, p->act == ENG_ACT_RELU, y, F);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, F, K, 1.0f, a, K, f->ml->w[0], F,
                0.0f, y, F);
    add_bias(y, (size_t)M, (size_t)F, bias);
}

static void conv_forward(const eng_fwd *f)
{
    const eng_lparams *p = &f->L->p;
    const int H = (int)f->in0.d[0], W = (int)f->in0.d[1], C = (int)f->in0.d[2];
    const int Ho = (int)f->outs.d[0], Wo = (int)f->outs.d[1], F = (int)f->outs.d[2];
    const int pt = p->same ? eng_pad_before(H, Ho, p->kh, p->sh, p->dh) : 0;
    const int pl = p->same ? eng_pad_before(W, Wo, p->kw, p->sw, p->dw) : 0;
    const int K = p->kh * p->kw * C;
    bool direct = p->kh == 1 && p->kw == 1 && p->sh == 1 && p->sw == 1 && Ho == H && Wo == W;
    if (direct) {
        conv_gemm(f, (int)f->batch * H * W, F, C, f->in[0], f->out);
        return;
    }
    if (f->ml->aux[1] && !p->same && W == (int)(f->L->cf ? f->L->ish.d[2] : f->L->ish.d[1])) {
        const int *koff = (const int *)(const void *)f->ml->aux[1];
        const float *bias = p->use_bias ? f->ml->w[1] : NULL;
        for (size_t b = 0; b < f->batch; b++)
            eng_gemm_conv(Ho, Wo, F, K, f->in[0] + b * (size_t)H * W * C, (size_t)p->sh * W * C,
                          p->sw * C, koff, f->ml->aux[0], bias, p->act == ENG_ACT_RELU,
                          f->out + b * (size_t)Ho * Wo * F);
        return;
    }
    for (size_t b = 0; b < f->batch; b++) {
        const float *x = f->in[0] + b * (size_t)H * W * C;
        float *y = f->out + b * (size_t)Ho * Wo * F;
        float *col = f->scratch;
        for (int oy = 0; oy < Ho; oy++)
            for (int ox = 0; ox < Wo; ox++) {
                float *cp = col + ((size_t)oy * Wo + ox) * K;
                const int ix0 = ox * p->sw - pl;
                /* one row of the window is kw*C contiguous floats when it lies inside */
                const bool row_inside = p->dw == 1 && ix0 >= 0 && ix0 + p->kw <= W;
                for (int ky = 0; ky < p->kh; ky++) {
                    int iy = oy * p->sh - pt + ky * p->dh;
                    if (row_inside && iy >= 0 && iy < H) {
                        const float *src = x + ((size_t)iy * W + ix0) * C;
                        for (int i = 0; i < p->kw * C; i++) cp[i] = src[i];
                        cp += p->kw * C;
                        continue;
                    }
                    for (int kx = 0; kx < p->kw; kx++, cp += C) {
                        int ix = ox * p->sw - pl + kx * p->dw;
                        if (iy < 0 || iy >= H || ix < 0 || ix >= W)
                            memset(cp, 0, (size_t)C * sizeof *cp);
                        else memcpy(cp, x + ((size_t)iy * W + ix) * C, (size_t)C * sizeof *cp);
                    }
                }
            }
        conv_gemm(f, Ho * Wo, F, K, col, y);
    }
}

/* Depthwise into y (Ho*Wo*C*dm per sample). */
static void depthwise(const eng_fwd *f, const float *kern, const float *bias, float *y, size_t b)
{
    const eng_lparams *p = &f->L->p;
    const int H = (int)f->in0.d[0], W = (int)f->in0.d[1], C = (int)f->in0.d[2];
    const int Ho = (int)f->outs.d[0], Wo = (int)f->outs.d[1], M = p->dm, CM = C * M;
    const int pt = p->same ? eng_pad_before(H, Ho, p->kh, p->sh, p->dh) : 0;
    const int pl = p->same ? eng_pad_before(W, Wo, p->kw, p->sw, p->dw) : 0;
    const float *x = f->in[0] + b * (size_t)H * W * C;
    for (int oy = 0; oy < Ho; oy++)
        for (int ox = 0; ox < Wo; ox++) {
            float *o = y + ((size_t)oy * Wo + ox) * CM;
            if (bias) memcpy(o, bias, (size_t)CM * sizeof *o);
            else memset(o, 0, (size_t)CM * sizeof *o);
            for (int ky = 0; ky < p->kh; ky++) {
                int iy = oy * p->sh - pt + ky * p->dh;
                if (iy < 0 || iy >= H) continue;
                for (int kx = 0; kx < p->kw; kx++) {
                    int ix = ox * p->sw - pl + kx * p->dw;
                    if (ix < 0 || ix >= W) continue;
                    const float *xp = x + ((size_t)iy * W + ix) * C;
                    const float *kp = kern + ((size_t)ky * p->kw + kx) * CM;
                    if (M == 1)
                        for (int c = 0; c < C; c++) o[c] += xp[c] * kp[c];
                    else
                        for (int c = 0; c < C; c++)
                            for (int m = 0; m < M; m++) o[c * M + m] += xp[c] * kp[c * M + m];
                }
            }
        }
}

static void dw_forward(const eng_fwd *f)
{
    const size_t per = (size_t)f->outs.d[0] * f->outs.d[1] * f->outs.d[2];
    const float *bias = f->L->p.use_bias ? f->ml->w[1] : NULL;
    for (size_t b = 0; b < f->batch; b++) depthwise(f, f->ml->w[0], bias, f->out + b * per, b);
}

static size_t sep_scratch(const eng_layer *L, const eng_shape *in, size_t batch)
{
    (void)batch;
    const eng_lparams *p = &L->p;
    size_t ho = (size_t)eng_conv_out(in->d[0], p->kh, p->sh, p->dh, p->same);
    size_t wo = (size_t)eng_conv_out(in->d[1], p->kw, p->sw, p->dw, p->same);
    return ho * wo * (size_t)in->d[2] * (size_t)p->dm;
}

static void sep_forward(const eng_fwd *f)
{
    const size_t HWo = (size_t)f->outs.d[0] * f->outs.d[1];
    const int F = (int)f->outs.d[2], CM = (int)f->in0.d[2] * f->L->p.dm;
    const float *bias = f->L->p.use_bias ? f->ml->w[2] : NULL;
    for (size_t b = 0; b < f->batch; b++) {
        float *y = f->out + b * HWo * F;
        depthwise(f, f->ml->w[0], NULL, f->scratch, b);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)HWo, F, CM, 1.0f, f->scratch,
                    CM, f->ml->w[1], F, 0.0f, y, F);
        add_bias(y, HWo, (size_t)F, bias);
    }
}

static size_t tr_scratch(const eng_layer *L, const eng_shape *in, size_t batch)
{
    (void)batch;
    return (size_t)in->d[0] * in->d[1] * L->p.kh * L->p.kw * L->p.filters;
}

static void tr_forward(const eng_fwd *f)
{
    const eng_lparams *p = &f->L->p;
    const int H = (int)f->in0.d[0], W = (int)f->in0.d[1], C = (int)f->in0.d[2];
    const int Ho = (int)f->outs.d[0], Wo = (int)f->outs.d[1], F = (int)f->outs.d[2];
    const int KF = p->kh * p->kw * F;
    /* conv_transpose is the gradient of a conv from (Ho,Wo) to (H,W): same pads */
    const int pt = p->same || p->has_out_pad ? eng_pad_before(Ho, H, p->kh, p->sh, p->dh) : 0;
    const int pl = p->same || p->has_out_pad ? eng_pad_before(Wo, W, p->kw, p->sw, p->dw) : 0;
    const float *bias = p->use_bias ? f->ml->w[1] : NULL;
    for (size_t b = 0; b < f->batch; b++) {
        const float *x = f->in[0] + b * (size_t)H * W * C;
        float *y = f->out + b * (size_t)Ho * Wo * F;
        /* cols(H*W, kh*kw*F) = x(H*W, C) . kernel(kh*kw*F, C)^T */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, H * W, KF, C, 1.0f, x, C, f->ml->w[0],
                    C, 0.0f, f->scratch, KF);
        memset(y, 0, (size_t)Ho * Wo * F * sizeof *y);
        for (int iy = 0; iy < H; iy++)
            for (int ix = 0; ix < W; ix++) {
                const float *cp = f->scratch + ((size_t)iy * W + ix) * KF;
                for (int ky = 0; ky < p->kh; ky++) {
                    int oy = iy * p->sh + ky * p->dh - pt;
                    for (int kx = 0; kx < p->kw; kx++) {
                        int ox = ix * p->sw + kx * p->dw - pl;
                        const float *kp = cp + ((size_t)ky * p->kw + kx) * F;
                        if (oy < 0 || oy >= Ho || ox < 0 || ox >= Wo) continue;
                        float *o = y + ((size_t)oy * Wo + ox) * F;
                        for (int j = 0; j < F; j++) o[j] += kp[j];
                    }
                }
            }
        add_bias(y, (size_t)Ho * Wo, (size_t)F, bias);
    }
}

const struct eng_layer_kind eng_kinds_conv[] = {
    {"Conv2D", ENG_K_SPATIAL, conv_parse, conv_shape, conv_weights, conv_load, conv_scratch,
     conv_forward},
    {"Convolution2D", ENG_K_SPATIAL, conv_parse, conv_shape, conv_weights, conv_load, conv_scratch,
     conv_forward},
    {"AtrousConvolution2D", ENG_K_SPATIAL, conv_parse, conv_shape, conv_weights, conv_load,
     conv_scratch, conv_forward},
    {"DepthwiseConv2D", ENG_K_SPATIAL, dw_parse, dw_shape, dw_weights, NULL, NULL, dw_forward},
    {"SeparableConv2D", ENG_K_SPATIAL, conv_parse, conv_shape, sep_weights, NULL, sep_scratch,
     sep_forward},
    {"SeparableConvolution2D", ENG_K_SPATIAL, conv_parse, conv_shape, sep_weights, NULL,
     sep_scratch, sep_forward},
    {"Conv2DTranspose", ENG_K_SPATIAL, tr_parse, tr_shape, tr_weights, NULL, tr_scratch,
     tr_forward},
    {NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL},
};
