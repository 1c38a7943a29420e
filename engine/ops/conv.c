/* conv.c — Conv (ONNX): 2-D cross-correlation of x [N, C, H, W] with
 * weights [out_c, C / groups, kh, kw] and an optional bias [out_c]:
 *
 *   y[n, o, i, j] = b[o] + Σ_{c, p, q} W[o, c, p, q] ·
 *                   x[n, g(o)·C/groups + c, i·s_h − pad_t + p·d_h, j·s_w − pad_l + q·d_w]
 *
 * with zero padding; out_h = (H + pad_t + pad_b − d_h·(kh − 1) − 1) / s_h + 1,
 * likewise out_w (tp-backend.h).
 *
 * Attributes (TpConvAttrs): out_channels and kernel (required, ≥ 1), stride
 * (default 1), pads top/left/bottom/right (default 0), dilation (default 1),
 * groups (default 1; must divide C and out_channels), bias.
 * Parameters: 0 weight, 1 bias (with bias). MACs per sample:
 * out_c · out_h · out_w · (C / groups) · kh · kw.
 *
 * Dead taps are skipped: kernel rows (columns) that read only padding at
 * every output position, as all but the centre of a padded 3x3 kernel do on
 * a 1x1 map. Forward and backward run the same convolution with the live
 * rows and columns of the kernel and the padding trimmed to match, on a copy
 * of those weights kept in the node's state until the weights' version
 * (tp-tensor.h) changes. The result is the same sum without its zero terms;
 * MAC counts stay those of the full op.
 *
 * Outside training, a backend with a prepared form of the weights for the
 * geometry (tp-backend.h; the cpu backend's packed weights and Winograd
 * filters) gets it made once and kept with the node until the weights'
 * version changes; training frees it.
 *
 * In TP_MODE_INFER the model runs a Conv fused with the BatchNormalization
 * and Relu that follow it through tp_conv_forward_fused(): the normalization
 * folded into a copy of the weights and a bias (kept until a parameter of
 * either node changes), the Relu applied by the backend as it writes the
 * output (conv2d_forward_relu), one pass over the output instead of three.
 */
#include "config.h"

#include "tp-onnx.h"
#include "tp-op.h"

/* One output size, or -1 if the dilated kernel does not fit the padded input
 * (computed in 64 bits: every operand may come from a file). */
static int
out_size(int in, int pad_begin, int pad_end, int kernel, int stride, int dilation)
{
    gint64 span = (gint64)in + pad_begin + pad_end - (gint64)dilation * (kernel - 1) - 1;

    return span < 0 || span / stride + 1 > G_MAXINT ? -1 : (int)(span / stride + 1);
}

static gboolean
conv_check(TpNode *node, const TpShape *const *inputs, TpOpSignature *sig, GError **error)
{
    TpConvAttrs *a = &node->attrs.conv;
    const TpShape *in = inputs[0];
    int c, out_h, out_w;

    if (in->ndim != 3) {
        g_autofree char *str = tp_shape_to_string(in);

        tp_op_set_error(error, node, "expects a [C, H, W] input, got %s", str);
        return FALSE;
    }
    c = in->dim[0];
    if (a->out_channels < 1) {
        tp_op_set_error(error, node, "out_channels %d: must be at least 1", a->out_channels);
        return FALSE;
    }
    if (a->kernel[0] < 1 || a->kernel[1] < 1) {
        tp_op_set_error(error, node, "kernel %dx%d: both sizes must be at least 1", a->kernel[0],
                        a->kernel[1]);
        return FALSE;
    }
    for (int i = 0; i < 2; i++) {
        if (a->stride[i] == 0)
            a->stride[i] = 1;
        if (a->dilation[i] == 0)
            a->dilation[i] = 1;
    }
    if (a->stride[0] < 0 || a->stride[1] < 0) {
        tp_op_set_error(error, node, "stride %dx%d: must be positive", a->stride[0], a->stride[1]);
        return FALSE;
    }
    if (a->dilation[0] < 0 || a->dilation[1] < 0) {
        tp_op_set_error(error, node, "dilation %dx%d: must be positive", a->dilation[0],
                        a->dilation[1]);
        return FALSE;
    }
    for (int i = 0; i < 4; i++) {
        if (a->pads[i] < 0) {
            tp_op_set_error(error, node, "pads (%d, %d, %d, %d): must not be negative", a->pads[0],
                            a->pads[1], a->pads[2], a->pads[3]);
            return FALSE;
        }
    }
    if (a->groups == 0)
        a->groups = 1;
    if (a->groups < 0) {
        tp_op_set_error(error, node, "groups %d: must be positive", a->groups);
        return FALSE;
    }
    if (c % a->groups != 0) {
        tp_op_set_error(error, node, "groups %d does not divide %d input channels", a->groups, c);
        return FALSE;
    }
    if (a->out_channels % a->groups != 0) {
        tp_op_set_error(error, node, "groups %d does not divide %d output channels", a->groups,
                        a->out_channels);
        return FALSE;
    }
    out_h =
        out_size(in->dim[1], a->pads[0], a->pads[2], a->kernel[0], a->stride[0], a->dilation[0]);
    out_w =
        out_size(in->dim[2], a->pads[1], a->pads[3], a->kernel[1], a->stride[1], a->dilation[1]);
    if (out_h < 1 || out_w < 1) {
        tp_op_set_error(error, node,
                        "kernel %dx%d with dilation %dx%d does not fit the %dx%d input "
                        "padded by (%d, %d, %d, %d)",
                        a->kernel[0], a->kernel[1], a->dilation[0], a->dilation[1], in->dim[1],
                        in->dim[2], a->pads[0], a->pads[1], a->pads[2], a->pads[3]);
        return FALSE;
    }

    sig->output = (TpShape){3, {a->out_channels, out_h, out_w}};
    sig->n_params = a->bias ? 2 : 1;
    sig->params[0] =
        (TpOpParamShape){4, {a->out_channels, c / a->groups, a->kernel[0], a->kernel[1]}};
    sig->trainable[0] = TRUE;
    if (a->bias) {
        sig->params[1] = (TpOpParamShape){1, {a->out_channels}};
        sig->trainable[1] = TRUE;
    }
    return TRUE;
}

void
tp_conv_geometry(const TpNode *node, int batch, const TpShape *in, const TpShape *out,
                 TpConvGeometry *g)
{
    const TpConvAttrs *a = &node->attrs.conv;

    *g = (TpConvGeometry){
        .n = batch,
        .c = in->dim[0],
        .h = in->dim[1],
        .w = in->dim[2],
        .out_c = out->dim[0],
        .out_h = out->dim[1],
        .out_w = out->dim[2],
        .kh = a->kernel[0],
        .kw = a->kernel[1],
        .stride_h = a->stride[0],
        .stride_w = a->stride[1],
        .pad_t = a->pads[0],
        .pad_l = a->pads[1],
        .pad_b = a->pads[2],
        .pad_r = a->pads[3],
        .dil_h = a->dilation[0],
        .dil_w = a->dilation[1],
        .groups = a->groups,
    };
}

/* The kernel geometry for input x [n, c, h, w] and output y. */
static void
conv_geometry(const TpNode *node, const TpTensor *x, const TpTensor *y, TpConvGeometry *g)
{
    TpShape in = {3, {x->shape[1], x->shape[2], x->shape[3]}};
    TpShape out = {3, {y->shape[1], y->shape[2], y->shape[3]}};

    tp_conv_geometry(node, x->shape[0], &in, &out, g);
}

/* The kernel taps [*lo, *hi) along one axis that read the input (not only
 * padding) at some output position: tap k reads o·stride − pad + k·dilation. */
static void
live_taps(int in, int out, int kernel, int stride, int pad, int dilation, int *lo, int *hi)
{
    *lo = 0;
    while (*lo < kernel && (out - 1) * stride - pad + *lo * dilation < 0)
        (*lo)++;
    *hi = kernel;
    while (*hi > *lo && -pad + (*hi - 1) * dilation >= in)
        (*hi)--;
}

gboolean
tp_conv_trim_dead_taps(TpConvGeometry *g, int *ki0, int *ki1, int *kj0, int *kj1)
{
    live_taps(g->h, g->out_h, g->kh, g->stride_h, g->pad_t, g->dil_h, ki0, ki1);
    live_taps(g->w, g->out_w, g->kw, g->stride_w, g->pad_l, g->dil_w, kj0, kj1);
    if ((*ki0 == 0 && *ki1 == g->kh && *kj0 == 0 && *kj1 == g->kw) || *ki0 == *ki1 ||
        *kj0 == *kj1)
        return FALSE;
    TpConvGeometry t = *g;
    t.kh = *ki1 - *ki0;
    t.kw = *kj1 - *kj0;
    t.pad_t = g->pad_t - *ki0 * g->dil_h;
    t.pad_b = g->pad_b - (g->kh - *ki1) * g->dil_h;
    t.pad_l = g->pad_l - *kj0 * g->dil_w;
    t.pad_r = g->pad_r - (g->kw - *kj1) * g->dil_w;
    if (t.pad_t < 0 || t.pad_b < 0 || t.pad_l < 0 || t.pad_r < 0)
        return FALSE;
    *g = t;
    return TRUE;
}

/* The node's state buffers. */
enum {
    LIVE_WEIGHTS,   /* [out_c * cg, live taps]: the live taps of the weights */
    SELECTION,      /* [live taps, kh * kw]: row l has a 1 at live tap l's full index */
    LIVE_GRADS,     /* [out_c * cg, live taps]: their gradient (training) */
    PREPARED,       /* the backend's prepared weights (eval) */
    FOLDED_WEIGHTS, /* [out_c * cg * kh * kw]: the weights with a BatchNormalization folded in */
    FOLDED_BIAS,    /* [out_c]: their bias */
    ZEROS,          /* [out_c]: 0, for folding */
};

/* The selection matrix of the taps [ki0, ki1) x [kj0, kj1) of a kh x kw kernel
 * in the node's state: weights · S^T keeps the live taps of each filter, and
 * (live taps) · S puts them back in place, with zeros for the dead ones. */
static TpTensor *
tap_selection(TpBackend *backend, int kh, int kw, int ki0, int ki1, int kj0, int kj1,
              TpOpState *state, GError **error)
{
    int live = (ki1 - ki0) * (kj1 - kj0);
    g_autofree float *s = g_new0(float, (gsize)live * kh * kw);
    TpTensor *t = tp_op_state_buffer(state, backend, SELECTION, (gsize)live * kh * kw, error);

    if (t == NULL)
        return NULL;
    for (int i = ki0, l = 0; i < ki1; i++)
        for (int j = kj0; j < kj1; j++, l++)
            s[(gsize)l * kh * kw + i * kw + j] = 1.0f;
    return tp_tensor_upload(t, s, error) ? t : NULL;
}

/* The live taps of the weights w [out_c, cg, kh, kw] (full: the untrimmed
 * geometry) as [out_c, cg, ki1 − ki0, kj1 − kj0] in the node's state, made
 * again (on the backend, by one GEMM with the selection matrix) only when
 * the weights have changed since. */
static TpTensor *
live_weights(TpBackend *backend, const TpTensor *w, const TpConvGeometry *full, int ki0, int ki1,
             int kj0, int kj1, TpOpState *state, GError **error)
{
    int rows = full->out_c * (full->c / full->groups), taps = full->kh * full->kw;
    int live = (ki1 - ki0) * (kj1 - kj0);
    TpTensor *kept = state->derived_from == w && state->derived_version == w->version
                         ? state->buffers[LIVE_WEIGHTS]
                         : NULL;
    TpTensor *select;

    if (kept != NULL)
        return kept;
    if (!(select = tap_selection(backend, full->kh, full->kw, ki0, ki1, kj0, kj1, state, error)) ||
        !(kept = tp_op_state_buffer(state, backend, LIVE_WEIGHTS, (gsize)rows * live, error)) ||
        !backend->vt.gemm(backend->self, FALSE, TRUE, rows, live, taps, 1.0f, w->data,
                          select->data, 0.0f, kept->data, error))
        return NULL;
    state->derived_from = w;
    state->derived_version = w->version;
    return kept;
}

/* The backend's prepared form of the weights w for g (tp-backend.h) in
 * *out_prepared, made again only when the weights have changed since; NULL
 * when the backend has none for g. FALSE only when making it failed. */
static gboolean
prepared_weights(TpBackend *backend, const TpTensor *w, const TpConvGeometry *g, TpOpState *state,
                 TpTensor **out_prepared, GError **error)
{
    gsize n = backend->vt.conv2d_prepared_size(backend->self, g);
    TpTensor *prepared = state->buffers[PREPARED];

    *out_prepared = NULL;
    if (n == 0)
        return TRUE;
    if (prepared == NULL || prepared->numel != n || state->prepared_from != w ||
        state->prepared_version != w->version) {
        if (!(prepared = tp_op_state_buffer(state, backend, PREPARED, n, error)) ||
            !backend->vt.conv2d_prepare(backend->self, g, w->data, prepared->data, error))
            return FALSE;
        state->prepared_from = w;
        state->prepared_version = w->version;
    }
    *out_prepared = prepared;
    return TRUE;
}

/* y from x with weights w (the node's, or folded ones) and bias (or NULL),
 * then max(y, 0) when relu, skipping dead taps, from the prepared weights
 * outside training. */
static gboolean
forward_with(const TpNode *node, TpBackend *backend, const TpTensor *w, const float *bias,
             gboolean relu, const TpTensor *x, TpTensor *y, TpMode mode, TpOpState *state,
             GError **error)
{
    const TpBackendVTable *vt = &backend->vt;
    const float *weights = w->data, *prepared_data;
    TpConvGeometry g, full;
    TpTensor *prepared = NULL;
    int ki0, ki1, kj0, kj1;
    gboolean ok;

    conv_geometry(node, x, y, &g);
    full = g;
    if (tp_conv_trim_dead_taps(&g, &ki0, &ki1, &kj0, &kj1)) {
        TpTensor *live = live_weights(backend, w, &full, ki0, ki1, kj0, kj1, state, error);
        if (live == NULL)
            return FALSE;
        weights = live->data;
    } else if (mode != TP_MODE_TRAIN) {
        if (!prepared_weights(backend, w, &g, state, &prepared, error))
            return FALSE;
    }
    prepared_data = prepared != NULL ? prepared->data : NULL;
    if (relu && vt->conv2d_forward_relu != NULL)
        return vt->conv2d_forward_relu(backend->self, &g, x->data,
                                       prepared != NULL ? NULL : weights, prepared_data, bias,
                                       y->data, error);
    if (prepared != NULL)
        ok = vt->conv2d_forward_prepared(backend->self, &g, x->data, prepared_data, bias, y->data,
                                         error);
    else
        ok = vt->conv2d_forward(backend->self, &g, x->data, weights, bias, y->data, error);
    return ok && (!relu || vt->relu_forward(backend->self, y->numel, y->data, y->data, error));
}

static gboolean
conv_forward(const TpNode *node, TpBackend *backend, TpTensor *const *inputs, TpTensor *output,
             TpMode mode, TpOpState *state, GError **error)
{
    if (mode == TP_MODE_TRAIN) {
        /* training changes the weights every step: nothing derived for
         * inference is worth keeping */
        if (state->derived_from == state->buffers[FOLDED_WEIGHTS])
            state->derived_from = NULL; /* live taps of folded weights */
        g_clear_pointer(&state->buffers[PREPARED], tp_tensor_free);
        g_clear_pointer(&state->buffers[FOLDED_WEIGHTS], tp_tensor_free);
        g_clear_pointer(&state->buffers[FOLDED_BIAS], tp_tensor_free);
        g_clear_pointer(&state->buffers[ZEROS], tp_tensor_free);
        state->folded_version = 0;
    }
    return forward_with(node, backend, node->params[0],
                        node->n_params > 1 ? node->params[1]->data : NULL, FALSE, inputs[0], output,
                        mode, state, error);
}

/* Folding the normalization's per-channel affine map, y = a · x + c with
 * a = scale / sqrt(var + eps) and c = bias − a · mean, into the Conv:
 * W'[o] = a[o] · W[o] and b'[o] = a[o] · (b[o] − mean[o]) + bias[o], both
 * computed by the backend's eval-mode normalization (on W as [1, out_c, K]
 * with a zero mean and bias, and on b). Made again when any parameter of
 * either node has changed. */
static gboolean
fold(const TpNode *conv, const TpNode *norm, TpBackend *backend, TpOpState *state, GError **error)
{
    const TpTensor *w = conv->params[0];
    const float *scale = norm->params[0]->data, *shift = norm->params[1]->data;
    const float *mean = norm->params[2]->data, *var = norm->params[3]->data;
    int out_c = w->shape[0];
    guint64 version = 0;
    TpTensor *folded, *bias, *zeros;

    for (int i = 0; i < conv->n_params; i++)
        version += conv->params[i]->version;
    for (int i = 0; i < norm->n_params; i++)
        version += norm->params[i]->version;
    if (state->folded_version == version)
        return TRUE;

    TpBatchNormGeometry rows = {.n = 1,
                                .c = out_c,
                                .hw = (int)(w->numel / (gsize)out_c),
                                .epsilon = norm->attrs.batch_norm.epsilon};
    TpBatchNormGeometry channels = {
        .n = 1, .c = out_c, .hw = 1, .epsilon = norm->attrs.batch_norm.epsilon};

    if (!(folded = tp_op_state_buffer(state, backend, FOLDED_WEIGHTS, w->numel, error)) ||
        !(bias = tp_op_state_buffer(state, backend, FOLDED_BIAS, (gsize)out_c, error)) ||
        !(zeros = tp_op_state_buffer(state, backend, ZEROS, (gsize)out_c, error)) ||
        !tp_tensor_fill(zeros, 0.0f, error) ||
        !backend->vt.batch_norm_forward_eval(backend->self, &rows, w->data, scale, zeros->data,
                                             zeros->data, var, folded->data, error) ||
        !backend->vt.batch_norm_forward_eval(
            backend->self, &channels, conv->n_params > 1 ? conv->params[1]->data : zeros->data,
            scale, shift, mean, var, bias->data, error))
        return FALSE;
    tp_tensor_touch(folded);
    tp_tensor_touch(bias);
    state->folded_version = version;
    return TRUE;
}

gboolean
tp_conv_forward_fused(const TpNode *conv, const TpNode *norm, gboolean relu, TpBackend *backend,
                      const TpTensor *x, TpTensor *y, TpOpState *state, GError **error)
{
    if (norm == NULL)
        return forward_with(conv, backend, conv->params[0],
                            conv->n_params > 1 ? conv->params[1]->data : NULL, relu, x, y,
                            TP_MODE_INFER, state, error);
    return fold(conv, norm, backend, state, error) &&
           forward_with(conv, backend, state->buffers[FOLDED_WEIGHTS],
                        state->buffers[FOLDED_BIAS]->data, relu, x, y, TP_MODE_INFER, state, error);
}

/* With dead taps, both gradients come from the trimmed convolution: dead
 * taps read only padding, so they add nothing to dx and their weight
 * gradient is 0, which the selection matrix writes. */
static gboolean
conv_backward(const TpNode *node, TpBackend *backend, TpTensor *const *inputs,
              const TpTensor *output, const TpTensor *doutput, TpTensor *const *dinputs,
              TpOpState *state, GError **error)
{
    const float *weights = node->params[0]->data;
    float *dweights = node->grads[0]->data;
    float *dbias = node->n_params > 1 ? node->grads[1]->data : NULL;
    TpConvGeometry g, full;
    int ki0, ki1, kj0, kj1, rows = 0, live = 0;
    TpTensor *live_grads = NULL;

    conv_geometry(node, inputs[0], output, &g);
    full = g;
    if (tp_conv_trim_dead_taps(&g, &ki0, &ki1, &kj0, &kj1)) {
        TpTensor *kept =
            live_weights(backend, node->params[0], &full, ki0, ki1, kj0, kj1, state, error);
        rows = node->params[0]->shape[0] * node->params[0]->shape[1];
        live = (ki1 - ki0) * (kj1 - kj0);
        if (kept == NULL || !(live_grads = tp_op_state_buffer(state, backend, LIVE_GRADS,
                                                              (gsize)rows * live, error)))
            return FALSE;
        weights = kept->data;
        dweights = live_grads->data;
    }
    if (dinputs[0] != NULL &&
        !backend->vt.conv2d_backward_data(backend->self, &g, doutput->data, weights,
                                          dinputs[0]->data, error))
        return FALSE;
    if (!backend->vt.conv2d_backward_filter(backend->self, &g, inputs[0]->data, doutput->data,
                                            dweights, dbias, error))
        return FALSE;
    return live_grads == NULL ||
           backend->vt.gemm(backend->self, FALSE, FALSE, rows, full.kh * full.kw, live, 1.0f,
                            live_grads->data, state->buffers[SELECTION]->data, 0.0f,
                            node->grads[0]->data, error);
}

static guint64
conv_macs(const TpNode *node, const TpShape *input, const TpShape *output)
{
    const TpConvAttrs *a = &node->attrs.conv;

    return (guint64)output->dim[0] * (guint64)output->dim[1] * (guint64)output->dim[2] *
           (guint64)(input->dim[0] / a->groups) * (guint64)a->kernel[0] * (guint64)a->kernel[1];
}

static void
conv_export(const TpNode *node, TpOnnxNodeWriter *w)
{
    const TpConvAttrs *a = &node->attrs.conv;

    tp_onnx_writer_ints(w, "kernel_shape", a->kernel, 2);
    tp_onnx_writer_ints(w, "strides", a->stride, 2);
    tp_onnx_writer_ints(w, "pads", a->pads, 4);
    tp_onnx_writer_ints(w, "dilations", a->dilation, 2);
    tp_onnx_writer_int(w, "group", a->groups);
}

/* Depthwise: groups > 1, every group one input and one output channel. */
static gboolean
is_depthwise(const TpNode *node, const TpShape *input)
{
    const TpConvAttrs *a = &node->attrs.conv;

    return a->groups > 1 && a->groups == input->dim[0] && a->out_channels == input->dim[0];
}

/* A depthwise Conv keeps its input's channels; any other makes new ones. */
static void
conv_channels(const TpNode *node, const TpShape *input, TpChannelRule *out_rule)
{
    out_rule->layer = TRUE;
    if (is_depthwise(node, input)) {
        out_rule->kind = TP_CHANNELS_KEEP;
        return;
    }
    out_rule->kind = TP_CHANNELS_NEW;
    out_rule->grouped = node->attrs.conv.groups > 1;
}

/* Weight rows and bias by the output's channels, input slices W[:, c] by the
 * input's (a depthwise Conv: rows only, one group per kept channel). A
 * grouped Conv's spaces are never cut, so groups = 1 otherwise. */
static void
conv_cut(const TpNode *node, const TpShape *input, const GArray *in, const GArray *out,
         TpOpAttrs *attrs, const GArray **rows, const GArray **cols)
{
    if (out != NULL)
        attrs->conv.out_channels = (int)out->len;
    if (is_depthwise(node, input))
        attrs->conv.groups = attrs->conv.out_channels;
    else
        cols[0] = in;
    rows[0] = rows[1] = out;
}

/* ONNX: X, W [out_c, in_c / group, kh, kw] and an optional B; a zero Pad
 * before it is folded into its padding. */
static gboolean
conv_import(TpOnnxReader *r, TpOpAttrs *attrs, int *inputs, const float **params, GError **error)
{
    static const char *const known[] = {"kernel_shape", "strides",  "pads", "dilations",
                                        "group",        "auto_pad", NULL};
    TpConvAttrs *conv = &attrs->conv;
    const TpOnnxConst *w, *b;
    const int *folded;
    gint64 group;

    if (!tp_onnx_reader_attrs(r, known, error) || !tp_onnx_reader_value(r, 0, &inputs[0], error) ||
        !tp_onnx_reader_param(r, 1, FALSE, &w, error) ||
        !tp_onnx_reader_param(r, 2, TRUE, &b, error) ||
        !tp_onnx_reader_int(r, "group", 1, &group, error))
        return FALSE;
    const TpShape *in = tp_onnx_reader_shape(r, inputs[0]);
    if (w->ndim != 4 || in->ndim != 3)
        return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_UNSUPPORTED,
                                    "only 2-D convolutions of [N, C, H, W] inputs are supported");
    if (group < 1 || group > in->dim[0])
        return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_INVALID,
                                    "group %" G_GINT64_FORMAT " is invalid for %d input channels",
                                    group, in->dim[0]);
    gint64 want[4] = {w->dims[0], in->dim[0] / group, w->dims[2], w->dims[3]};
    if (!tp_onnx_reader_check_dims(r, "weight", w, 4, want, error))
        return FALSE;
    conv->out_channels = (int)w->dims[0];
    conv->kernel[0] = (int)w->dims[2];
    conv->kernel[1] = (int)w->dims[3];
    conv->stride[0] = conv->stride[1] = 1;
    conv->dilation[0] = conv->dilation[1] = 1;
    conv->groups = (int)group;
    int kernel[2] = {conv->kernel[0], conv->kernel[1]};
    if (!tp_onnx_reader_ints(r, "kernel_shape", 2, 1, kernel, error) ||
        !tp_onnx_reader_ints(r, "strides", 2, 1, conv->stride, error) ||
        !tp_onnx_reader_ints(r, "pads", 4, 0, conv->pads, error) ||
        !tp_onnx_reader_ints(r, "dilations", 2, 1, conv->dilation, error) ||
        !tp_onnx_reader_auto_pad(r, in, conv->kernel, conv->stride, conv->dilation, conv->pads,
                                 error))
        return FALSE;
    folded = tp_onnx_reader_folded_pads(r);
    for (int i = 0; folded != NULL && i < 4; i++)
        conv->pads[i] += folded[i];
    if (kernel[0] != conv->kernel[0] || kernel[1] != conv->kernel[1])
        return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_INVALID,
                                    "kernel_shape [%d, %d] disagrees with the weight's [%d, %d]",
                                    kernel[0], kernel[1], conv->kernel[0], conv->kernel[1]);
    if (b != NULL && !tp_onnx_reader_check_dims(r, "bias", b, 1, w->dims, error))
        return FALSE;
    conv->bias = b != NULL;
    params[0] = w->f;
    params[1] = b != NULL ? b->f : NULL;
    return TRUE;
}

const TpOpClass tp_op_conv = {
    /* .name = */ "Conv",
    /* .n_inputs = */ 1,
    /* .check = */ conv_check,
    /* .forward = */ conv_forward,
    /* .backward = */ conv_backward,
    /* .macs = */ conv_macs,
    /* .import = */ conv_import,
    /* .param_names = */ {"weight", "bias"},
    /* .export = */ conv_export,
    /* .channels = */ conv_channels,
    /* .cut = */ conv_cut,
    /* .lrp_rule = */ TP_OP_LRP_CONV,
    /* .sign = */ TP_OP_SIGN_ANY,
    /* .n_values = */ NULL,
    /* .export_opset = */ 0,
};
