/* gemm.c — Gemm (ONNX, transB = 1), a fully connected layer on x [N, in]:
 *
 *   y = x · Wᵀ + b          W [out, in], b [out]
 *
 * backward: dx = dy · W, dW = dyᵀ · x, db = Σ_rows dy.
 * The input must be 1-D per sample: put a Flatten before it.
 * Attributes (TpGemmAttrs): out_features (≥ 1), bias.
 * Parameters: 0 weight, 1 bias (with bias). MACs per sample: in · out.
 */
#include "config.h"

#include "tp-onnx.h"
#include "tp-op.h"

static gboolean
gemm_check(TpNode *node, const TpShape *const *inputs, TpOpSignature *sig, GError **error)
{
    TpGemmAttrs *a = &node->attrs.gemm;
    const TpShape *in = inputs[0];

    if (in->ndim != 1) {
        g_autofree char *str = tp_shape_to_string(in);

        tp_op_set_error(error, node,
                        "expects a 1-D input per sample, got %s: add a Flatten before it", str);
        return FALSE;
    }
    if (a->out_features < 1) {
        tp_op_set_error(error, node, "out_features %d: must be at least 1", a->out_features);
        return FALSE;
    }
    sig->output = (TpShape){1, {a->out_features}};
    sig->n_params = a->bias ? 2 : 1;
    sig->params[0] = (TpOpParamShape){2, {a->out_features, in->dim[0]}};
    sig->trainable[0] = TRUE;
    if (a->bias) {
        sig->params[1] = (TpOpParamShape){1, {a->out_features}};
        sig->trainable[1] = TRUE;
    }
    return TRUE;
}

static gboolean
gemm_forward(const TpNode *node, TpBackend *backend, TpTensor *const *inputs, TpTensor *output,
             TpMode mode, TpOpState *state, GError **error)
{
    int batch = inputs[0]->shape[0], in = inputs[0]->shape[1], out = output->shape[1];

    if (!backend->vt.gemm(backend->self, FALSE, TRUE, batch, out, in, 1.0f, inputs[0]->data,
                          node->params[0]->data, 0.0f, output->data, error))
        return FALSE;
    if (node->n_params > 1)
        return backend->vt.add_bias(backend->self, batch, out, node->params[1]->data, output->data,
                                    error);
    return TRUE;
}

static gboolean
gemm_backward(const TpNode *node, TpBackend *backend, TpTensor *const *inputs,
              const TpTensor *output, const TpTensor *doutput, TpTensor *const *dinputs,
              TpOpState *state, GError **error)
{
    int batch = inputs[0]->shape[0], in = inputs[0]->shape[1], out = output->shape[1];

    /* dx [batch, in] = dy [batch, out] · W [out, in] */
    if (dinputs[0] != NULL &&
        !backend->vt.gemm(backend->self, FALSE, FALSE, batch, in, out, 1.0f, doutput->data,
                          node->params[0]->data, 0.0f, dinputs[0]->data, error))
        return FALSE;
    /* dW [out, in] = dyᵀ · x, dy stored [batch, out] */
    if (!backend->vt.gemm(backend->self, TRUE, FALSE, out, in, batch, 1.0f, doutput->data,
                          inputs[0]->data, 0.0f, node->grads[0]->data, error))
        return FALSE;
    if (node->n_params > 1)
        return backend->vt.sum_rows(backend->self, batch, out, doutput->data, node->grads[1]->data,
                                    error);
    return TRUE;
}

static guint64
gemm_macs(const TpNode *node, const TpShape *input, const TpShape *output)
{
    return (guint64)input->dim[0] * (guint64)output->dim[0];
}

/* The weight is stored [out, in]. */
static void
gemm_export(const TpNode *node, TpOnnxNodeWriter *w)
{
    tp_onnx_writer_int(w, "transB", 1);
}

static void
gemm_channels(const TpNode *node, const TpShape *input, TpChannelRule *out_rule)
{
    out_rule->kind = TP_CHANNELS_NEW;
    out_rule->linear = TRUE;
    out_rule->layer = TRUE;
}

/* Weight rows and bias by the output's features, weight columns by the
 * input's. */
static void
gemm_cut(const TpNode *node, const TpShape *input, const GArray *in, const GArray *out,
         TpOpAttrs *attrs, const GArray **rows, const GArray **cols)
{
    if (out != NULL)
        attrs->gemm.out_features = (int)out->len;
    rows[0] = rows[1] = out;
    cols[0] = in;
}

/* ONNX: Y = alpha · A · op(B) + beta · C with B constant, A [batch,
 * features] not transposed, and C (optional) the same for every sample. */
static gboolean
gemm_import(TpOnnxReader *r, TpOpAttrs *attrs, int *inputs, const float **params, GError **error)
{
    static const char *const known[] = {"alpha", "beta", "transA", "transB", "broadcast", NULL};
    const TpOnnxConst *b, *c;
    float alpha, beta, *w, *bias = NULL;
    gint64 trans_a, trans_b;

    if (!tp_onnx_reader_attrs(r, known, error) || !tp_onnx_reader_value(r, 0, &inputs[0], error) ||
        !tp_onnx_reader_param(r, 1, FALSE, &b, error) ||
        !tp_onnx_reader_param(r, 2, TRUE, &c, error) ||
        !tp_onnx_reader_float(r, "alpha", 1.0f, &alpha, error) ||
        !tp_onnx_reader_float(r, "beta", 1.0f, &beta, error) ||
        !tp_onnx_reader_int(r, "transA", 0, &trans_a, error) ||
        !tp_onnx_reader_int(r, "transB", 0, &trans_b, error))
        return FALSE;
    if (trans_a != 0)
        return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_UNSUPPORTED,
                                    "transA = 1 is not supported");
    const TpShape *in = tp_onnx_reader_shape(r, inputs[0]);
    if (b->ndim != 2)
        return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_INVALID, "B must be 2-D");
    gint64 n = trans_b ? b->dims[0] : b->dims[1];
    gint64 k = trans_b ? b->dims[1] : b->dims[0];
    if (in->ndim == 1 && k != in->dim[0]) {
        g_autofree char *have = tp_onnx_dims_to_string(b->ndim, b->dims);
        return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_INVALID,
                                    "B has shape %s but the input has %d features", have,
                                    in->dim[0]);
    }
    w = tp_onnx_reader_alloc(r, (gsize)(n * k));
    for (gint64 o = 0; o < n; o++)
        for (gint64 i = 0; i < k; i++)
            w[o * k + i] = alpha * (trans_b ? b->f[o * k + i] : b->f[i * n + o]);
    if (c != NULL && beta != 0.0f) {
        /* C broadcasts to [M, N]: [], [1], [N], [1, 1], [1, N] are a bias;
         * [M, 1] and [M, N] vary per sample. */
        gint64 cols = c->ndim >= 1 ? c->dims[c->ndim - 1] : 1;
        gint64 rows = c->ndim == 2 ? c->dims[0] : 1;
        if (c->ndim > 2 || (cols != 1 && cols != n)) {
            g_autofree char *have = tp_onnx_dims_to_string(c->ndim, c->dims);
            return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_INVALID,
                                        "C has shape %s, which does not broadcast to [M, "
                                        "%" G_GINT64_FORMAT "]",
                                        have, n);
        }
        if (rows != 1) {
            g_autofree char *have = tp_onnx_dims_to_string(c->ndim, c->dims);
            return tp_onnx_reader_error(
                r, error, TP_ONNX_ERROR_UNSUPPORTED,
                "C has shape %s: only a bias the same for every sample is supported", have);
        }
        bias = tp_onnx_reader_alloc(r, (gsize)n);
        for (gint64 o = 0; o < n; o++)
            bias[o] = beta * c->f[cols == 1 ? 0 : o];
    }
    if (in->ndim != 1)
        return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_UNSUPPORTED,
                                    "its input must be [batch, features]; flatten it first");
    attrs->gemm.out_features = (int)n;
    attrs->gemm.bias = bias != NULL;
    params[0] = w;
    params[1] = bias;
    return TRUE;
}

const TpOpClass tp_op_gemm = {
    /* .name = */ "Gemm",
    /* .n_inputs = */ 1,
    /* .check = */ gemm_check,
    /* .forward = */ gemm_forward,
    /* .backward = */ gemm_backward,
    /* .macs = */ gemm_macs,
    /* .import = */ gemm_import,
    /* .param_names = */ {"weight", "bias"},
    /* .export = */ gemm_export,
    /* .channels = */ gemm_channels,
    /* .cut = */ gemm_cut,
    /* .lrp_rule = */ TP_OP_LRP_DENSE,
    /* .sign = */ TP_OP_SIGN_ANY,
    /* .n_values = */ NULL,
    /* .export_opset = */ 0,
};
