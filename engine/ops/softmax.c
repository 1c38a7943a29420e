/* softmax.c — Softmax (ONNX, axis −1) over the features of x [N, F]:
 *
 *   y[n, j] = exp(x[n, j]) / Σ_k exp(x[n, k])
 *
 * backward: dx = y ⊙ (dy − Σ_j y_j dy_j), row by row. The input must be 1-D
 * per sample. A final Softmax is skipped by tp_model_loss(), which reads its
 * input as the logits. No attributes, no parameters.
 */
#include "config.h"

#include <string.h>

#include "tp-onnx.h"
#include "tp-op.h"

static gboolean
softmax_check(TpNode *node, const TpShape *const *inputs, TpOpSignature *sig, GError **error)
{
    memset(&node->attrs, 0, sizeof node->attrs);
    if (inputs[0]->ndim != 1) {
        g_autofree char *str = tp_shape_to_string(inputs[0]);

        tp_op_set_error(error, node,
                        "expects a 1-D input per sample, got %s: add a Flatten before it", str);
        return FALSE;
    }
    sig->output = *inputs[0];
    return TRUE;
}

static gboolean
softmax_forward(const TpNode *node, TpBackend *backend, TpTensor *const *inputs, TpTensor *output,
                TpMode mode, TpOpState *state, GError **error)
{
    return backend->vt.softmax_forward(backend->self, output->shape[0], output->shape[1],
                                       inputs[0]->data, output->data, error);
}

static gboolean
softmax_backward(const TpNode *node, TpBackend *backend, TpTensor *const *inputs,
                 const TpTensor *output, const TpTensor *doutput, TpTensor *const *dinputs,
                 TpOpState *state, GError **error)
{
    if (dinputs[0] == NULL)
        return TRUE;
    return backend->vt.softmax_backward(backend->self, output->shape[0], output->shape[1],
                                        output->data, doutput->data, dinputs[0]->data, error);
}

static void
softmax_export(const TpNode *node, TpOnnxNodeWriter *w)
{
    tp_onnx_writer_int(w, "axis", -1);
}

/* Every output depends on every input feature. */
static void
softmax_channels(const TpNode *node, const TpShape *input, TpChannelRule *out_rule)
{
    out_rule->kind = TP_CHANNELS_KEEP;
    out_rule->couples = TRUE;
}

/* ONNX: over the classes of [batch, classes] only. */
static gboolean
softmax_import(TpOnnxReader *r, TpOpAttrs *attrs, int *inputs, const float **params,
               GError **error)
{
    static const char *const known[] = {"axis", NULL};
    gint64 axis;

    if (!tp_onnx_reader_attrs(r, known, error) || !tp_onnx_reader_value(r, 0, &inputs[0], error) ||
        !tp_onnx_reader_int(r, "axis", tp_onnx_reader_opset(r) >= 13 ? -1 : 1, &axis, error))
        return FALSE;
    if (tp_onnx_reader_shape(r, inputs[0])->ndim != 1 || (axis != 1 && axis != -1))
        return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_UNSUPPORTED,
                                    "only softmax over the classes of [batch, classes] is "
                                    "supported");
    return TRUE;
}

const TpOpClass tp_op_softmax = {
    /* .name = */ "Softmax",
    /* .n_inputs = */ 1,
    /* .check = */ softmax_check,
    /* .forward = */ softmax_forward,
    /* .backward = */ softmax_backward,
    /* .macs = */ NULL,
    /* .import = */ softmax_import,
    /* .param_names = */ {NULL},
    /* .export = */ softmax_export,
    /* .channels = */ softmax_channels,
    /* .cut = */ NULL,
    /* .lrp_rule = */ TP_OP_LRP_NONE, /* only a final Softmax, which LRP skips */
    /* .sign = */ TP_OP_SIGN_NONNEG,
    /* .n_values = */ NULL,
    /* .export_opset = */ 0,
};
