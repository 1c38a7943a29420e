/* add.c — Add (ONNX, no broadcasting): y = a + b for two values of identical
 * shape (a residual connection). backward: da = dy, db = dy.
 * No attributes, no parameters.
 */
#include "config.h"

#include <string.h>

#include "tp-onnx.h"
#include "tp-op.h"

static gboolean
add_check(TpNode *node, const TpShape *const *inputs, TpOpSignature *sig, GError **error)
{
    const TpShape *a = inputs[0], *b = inputs[1];

    memset(&node->attrs, 0, sizeof node->attrs);
    if (a->ndim != b->ndim || memcmp(a->dim, b->dim, sizeof a->dim[0] * (gsize)a->ndim) != 0) {
        g_autofree char *sa = tp_shape_to_string(a);
        g_autofree char *sb = tp_shape_to_string(b);

        tp_op_set_error(error, node,
                        "inputs have different shapes, %s (value %d) and %s (value %d); Add "
                        "does not broadcast",
                        sa, node->inputs[0], sb, node->inputs[1]);
        return FALSE;
    }
    sig->output = *a;
    return TRUE;
}

static gboolean
add_forward(const TpNode *node, TpBackend *backend, TpTensor *const *inputs, TpTensor *output,
            TpMode mode, TpOpState *state, GError **error)
{
    return backend->vt.add(backend->self, output->numel, inputs[0]->data, inputs[1]->data,
                           output->data, error);
}

static gboolean
add_backward(const TpNode *node, TpBackend *backend, TpTensor *const *inputs,
             const TpTensor *output, const TpTensor *doutput, TpTensor *const *dinputs,
             TpOpState *state, GError **error)
{
    for (int i = 0; i < 2; i++) {
        if (dinputs[i] != NULL && !backend->vt.copy(backend->self, dinputs[i]->data, doutput->data,
                                                    doutput->numel, error))
            return FALSE;
    }
    return TRUE;
}

/* Channel c of both inputs is channel c of the sum. */
static void
add_channels(const TpNode *node, const TpShape *input, TpChannelRule *out_rule)
{
    out_rule->kind = TP_CHANNELS_JOIN;
}

/* ONNX: two activations (a constant operand is only a MatMul's bias, which
 * the MatMul import takes). */
static gboolean
add_import(TpOnnxReader *r, TpOpAttrs *attrs, int *inputs, const float **params, GError **error)
{
    static const char *const known[] = {NULL};

    if (!tp_onnx_reader_attrs(r, known, error))
        return FALSE;
    for (int i = 0; i < 2; i++) {
        if (tp_onnx_reader_constant(r, i) != NULL)
            return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_UNSUPPORTED,
                                        "adding the constant '%s' is only supported as the bias "
                                        "of a MatMul",
                                        tp_onnx_reader_input_name(r, i));
        if (!tp_onnx_reader_value(r, i, &inputs[i], error))
            return FALSE;
    }
    return TRUE;
}

const TpOpClass tp_op_add = {
    /* .name = */ "Add",
    /* .n_inputs = */ 2,
    /* .check = */ add_check,
    /* .forward = */ add_forward,
    /* .backward = */ add_backward,
    /* .macs = */ NULL,
    /* .import = */ add_import,
    /* .param_names = */ {NULL},
    /* .export = */ NULL,
    /* .channels = */ add_channels,
    /* .cut = */ NULL,
    /* .lrp_rule = */ TP_OP_LRP_SUM,
    /* .sign = */ TP_OP_SIGN_INPUTS,
};
