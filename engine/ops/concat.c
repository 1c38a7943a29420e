/* concat.c — Concat (ONNX) of two values along a per-sample axis (0: the
 * channels, DenseNet's and GoogLeNet's join): every dimension but the axis
 * must agree. forward: each input is one strided copy into its part of the
 * output; backward: each input's gradient is its part of dy.
 * ONNX Concat of n > 2 inputs is read as a chain of n - 1 of these (a node
 * reads at most TP_NODE_MAX_INPUTS values, whose size the plugin ABI fixes;
 * the chain copies the leading inputs once per link, which DenseNet's short
 * blocks afford).
 * Channels: joined along the channels, the output's indexing is neither
 * input's; pruning a channel of either would shift the other's, so both
 * inputs' spaces are marked coupled (never cut) until pruning can carry an
 * offset through a join (docs/method.md §3). Along H or W, channels are kept.
 * No parameters.
 */
#include "config.h"

#include <string.h>

#include "tp-onnx.h"
#include "tp-op.h"

static gboolean
concat_check(TpNode *node, const TpShape *const *inputs, TpOpSignature *sig, GError **error)
{
    const TpShape *a = inputs[0], *b = inputs[1];
    int axis = node->attrs.concat.axis;

    if (axis < 0 || axis >= a->ndim) {
        tp_op_set_error(error, node, "axis %d is outside the %d per-sample dimensions", axis,
                        a->ndim);
        return FALSE;
    }
    gboolean fits = a->ndim == b->ndim;
    for (int d = 0; fits && d < a->ndim; d++)
        fits = d == axis || a->dim[d] == b->dim[d];
    if (!fits) {
        g_autofree char *sa = tp_shape_to_string(a);
        g_autofree char *sb = tp_shape_to_string(b);

        tp_op_set_error(error, node, "inputs %s (value %d) and %s (value %d) differ outside axis %d",
                        sa, node->inputs[0], sb, node->inputs[1], axis);
        return FALSE;
    }
    if ((gint64)a->dim[axis] + b->dim[axis] > G_MAXINT / 2) {
        tp_op_set_error(error, node, "the joined axis is too long");
        return FALSE;
    }
    sig->output = *a;
    sig->output.dim[axis] = a->dim[axis] + b->dim[axis];
    return TRUE;
}

/* The part of the output that input i fills, as a view of an output sample. */
static void
concat_part(const TpNode *node, const TpTensor *const *inputs, int i, TpView *v)
{
    int axis = node->attrs.concat.axis, ndim = inputs[0]->ndim - 1;
    TpShape out = {ndim, {0}};
    gssize strides[TP_SHAPE_MAX_DIMS];

    for (int d = 0; d < ndim; d++)
        out.dim[d] = inputs[0]->shape[1 + d];
    out.dim[axis] += inputs[1]->shape[1 + axis];
    tp_view_strides(&out, strides);
    memset(v, 0, sizeof *v);
    v->ndim = ndim;
    for (int d = 0; d < ndim; d++) {
        v->shape[d] = inputs[i]->shape[1 + d];
        v->stride[d] = strides[d];
    }
    v->offset = i == 0 ? 0 : (gsize)inputs[0]->shape[1 + axis] * (gsize)strides[axis];
}

static gboolean
concat_forward(const TpNode *node, TpBackend *backend, TpTensor *const *inputs, TpTensor *output,
               TpMode mode, TpOpState *state, GError **error)
{
    for (int i = 0; i < 2; i++) {
        TpView v;

        concat_part(node, (const TpTensor *const *)inputs, i, &v);
        if (!tp_view_scatter(node, backend, &v, inputs[i], output, error))
            return FALSE;
    }
    return TRUE;
}

static gboolean
concat_backward(const TpNode *node, TpBackend *backend, TpTensor *const *inputs,
                const TpTensor *output, const TpTensor *doutput, TpTensor *const *dinputs,
                TpOpState *state, GError **error)
{
    for (int i = 0; i < 2; i++) {
        TpView v;

        if (dinputs[i] == NULL)
            continue;
        concat_part(node, (const TpTensor *const *)inputs, i, &v);
        if (!tp_view_gather(node, backend, &v, doutput, dinputs[i], error))
            return FALSE;
    }
    return TRUE;
}

static void
concat_export(const TpNode *node, TpOnnxNodeWriter *w)
{
    tp_onnx_writer_int(w, "axis", 1 + node->attrs.concat.axis);
}

static void
concat_channels(const TpNode *node, const TpShape *input, TpChannelRule *out_rule)
{
    out_rule->kind = TP_CHANNELS_KEEP;
    out_rule->couples = node->attrs.concat.axis == 0;
}

/* ONNX: any number of activations along an axis other than the batch's. */
static gboolean
concat_import(TpOnnxReader *r, TpOpAttrs *attrs, int *inputs, const float **params,
              GError **error)
{
    static const char *const known[] = {"axis", NULL};
    int n = tp_onnx_reader_n_inputs(r);
    gint64 axis;

    if (!tp_onnx_reader_attrs(r, known, error) || !tp_onnx_reader_value(r, 0, &inputs[0], error))
        return FALSE;
    if (!tp_onnx_reader_has_attr(r, "axis"))
        return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_INVALID, "attribute 'axis' is missing");
    if (!tp_onnx_reader_int(r, "axis", 0, &axis, error))
        return FALSE;
    if (!tp_view_import_axis(r, axis, tp_onnx_reader_shape(r, inputs[0]), &attrs->concat.axis,
                             error))
        return FALSE;
    if (n == 1) {
        tp_onnx_reader_alias(r, inputs[0]);
        return TRUE;
    }
    for (int i = 1; i < n; i++) {
        int pair[2] = {inputs[0], 0};

        if (tp_onnx_reader_constant(r, i) != NULL)
            return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_UNSUPPORTED,
                                        "input '%s' is a constant; taskprune joins activations "
                                        "only",
                                        tp_onnx_reader_input_name(r, i));
        if (!tp_onnx_reader_value(r, i, &pair[1], error))
            return FALSE;
        if (i == n - 1) {
            inputs[1] = pair[1];
            break;
        }
        if (!tp_onnx_reader_add(r, TP_OP_CONCAT, pair, attrs, &inputs[0], error))
            return FALSE;
    }
    return TRUE;
}

const TpOpClass tp_op_concat = {
    /* .name = */ "Concat",
    /* .n_inputs = */ 2,
    /* .check = */ concat_check,
    /* .forward = */ concat_forward,
    /* .backward = */ concat_backward,
    /* .macs = */ NULL,
    /* .import = */ concat_import,
    /* .param_names = */ {NULL},
    /* .export = */ concat_export,
    /* .channels = */ concat_channels,
    /* .cut = */ NULL,
    /* .lrp_rule = */ TP_OP_LRP_NONE,
    /* .sign = */ TP_OP_SIGN_INPUTS,
    /* .n_values = */ NULL,
    /* .export_opset = */ 0,
};
