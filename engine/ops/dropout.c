/* dropout.c — Dropout (ONNX), inverted:
 *
 *   training:   y[i] = keep(i) ? x[i] / (1 − ratio) : 0
 *   evaluation: y = x
 *
 * keep(i) is tp_dropout_keep(seed, i, ratio) (tp-backend.h); the seed of each
 * training forward is set by the model in state->seed from the model seed, the
 * count of training forwards since tp_model_set_seed() and the node index, so
 * a reseeded model redraws the same masks. backward regenerates the mask of
 * the last forward from that seed: dx[i] = keep(i) ? dy[i] / (1 − ratio) : 0
 * (dx = dy after an evaluation forward).
 * Attributes (TpDropoutAttrs): ratio in [0, 1) (0: keep everything).
 * No parameters.
 */
#include "config.h"

#include "tp-onnx.h"
#include "tp-op.h"

static gboolean
dropout_check(TpNode *node, const TpShape *const *inputs, TpOpSignature *sig, GError **error)
{
    float ratio = node->attrs.dropout.ratio;

    if (!(ratio >= 0.0f && ratio < 1.0f)) {
        tp_op_set_error(error, node, "ratio %g: must be in [0, 1)", ratio);
        return FALSE;
    }
    sig->output = *inputs[0];
    return TRUE;
}

static gboolean
dropout_forward(const TpNode *node, TpBackend *backend, TpTensor *const *inputs, TpTensor *output,
                TpMode mode, TpOpState *state, GError **error)
{
    if (mode != TP_MODE_TRAIN)
        return backend->vt.copy(backend->self, output->data, inputs[0]->data, output->numel, error);
    return backend->vt.dropout_forward(backend->self, output->numel, node->attrs.dropout.ratio,
                                       state->seed, inputs[0]->data, output->data, error);
}

static gboolean
dropout_backward(const TpNode *node, TpBackend *backend, TpTensor *const *inputs,
                 const TpTensor *output, const TpTensor *doutput, TpTensor *const *dinputs,
                 TpOpState *state, GError **error)
{
    if (dinputs[0] == NULL)
        return TRUE;
    if (state->mode != TP_MODE_TRAIN)
        return backend->vt.copy(backend->self, dinputs[0]->data, doutput->data, doutput->numel,
                                error);
    return backend->vt.dropout_backward(backend->self, doutput->numel, node->attrs.dropout.ratio,
                                        state->seed, doutput->data, dinputs[0]->data, error);
}

/* The ratio is an input since opset 12. */
static void
dropout_export(const TpNode *node, TpOnnxNodeWriter *w)
{
    tp_onnx_writer_scalar_input(w, "ratio", node->attrs.dropout.ratio);
}

/* ONNX: the ratio as an attribute (opset < 12) or a constant input, and
 * training_mode, if given, a constant false. */
static gboolean
dropout_import(TpOnnxReader *r, TpOpAttrs *attrs, int *inputs, const float **params,
               GError **error)
{
    static const char *const known[] = {"ratio", "seed", "is_test", NULL};

    if (!tp_onnx_reader_attrs(r, known, error) || !tp_onnx_reader_value(r, 0, &inputs[0], error) ||
        !tp_onnx_reader_float(r, "ratio", 0.5f, &attrs->dropout.ratio, error))
        return FALSE;
    if (tp_onnx_reader_has_input(r, 1)) {
        const TpOnnxConst *ratio = tp_onnx_reader_constant(r, 1);
        if (ratio == NULL || ratio->f == NULL || ratio->numel != 1)
            return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_UNSUPPORTED,
                                        "the ratio must be a constant float scalar");
        attrs->dropout.ratio = ratio->f[0];
    }
    if (tp_onnx_reader_has_input(r, 2)) {
        const TpOnnxConst *mode = tp_onnx_reader_constant(r, 2);
        if (mode == NULL || mode->numel != 1 || (mode->f ? mode->f[0] != 0 : mode->i64[0] != 0))
            return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_UNSUPPORTED,
                                        "training_mode must be a constant false");
    }
    return TRUE;
}

const TpOpClass tp_op_dropout = {
    /* .name = */ "Dropout",
    /* .n_inputs = */ 1,
    /* .check = */ dropout_check,
    /* .forward = */ dropout_forward,
    /* .backward = */ dropout_backward,
    /* .macs = */ NULL,
    /* .import = */ dropout_import,
    /* .param_names = */ {NULL},
    /* .export = */ dropout_export,
    /* .channels = */ tp_op_channels_keep,
    /* .cut = */ NULL,
    /* .lrp_rule = */ TP_OP_LRP_PASS,
    /* .sign = */ TP_OP_SIGN_INPUTS,
    /* .n_values = */ NULL,
    /* .export_opset = */ 0,
};
