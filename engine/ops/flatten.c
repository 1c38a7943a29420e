/* flatten.c — Flatten (ONNX, axis 1): [N, C, H, W] -> [N, C·H·W] in NCHW
 * order (a 1-D input passes unchanged). The values are copied, so every value
 * on the tape has its own memory. backward: dx = dy, reshaped.
 * No attributes, no parameters.
 */
#include "config.h"

#include <string.h>

#include "tp-onnx.h"
#include "tp-op.h"

static gboolean
flatten_check(TpNode *node, const TpShape *const *inputs, TpOpSignature *sig, GError **error)
{
    gsize numel = tp_shape_numel(inputs[0]);

    memset(&node->attrs, 0, sizeof node->attrs);
    if (numel > G_MAXINT) {
        g_autofree char *str = tp_shape_to_string(inputs[0]);

        tp_op_set_error(error, node, "input %s has too many elements to flatten", str);
        return FALSE;
    }
    sig->output = (TpShape){1, {(int)numel}};
    return TRUE;
}

static void
flatten_export(const TpNode *node, TpOnnxNodeWriter *w)
{
    tp_onnx_writer_int(w, "axis", 1);
}

/* Channel c of [C, H, W] becomes the H·W features c·H·W … (c+1)·H·W − 1. */
static void
flatten_channels(const TpNode *node, const TpShape *input, TpChannelRule *out_rule)
{
    out_rule->kind = TP_CHANNELS_KEEP;
    out_rule->block = input->ndim == 3 ? input->dim[1] * input->dim[2] : 1;
}

/* ONNX: axis 1 only; a value that is flat already passes through. */
static gboolean
flatten_import(TpOnnxReader *r, TpOpAttrs *attrs, int *inputs, const float **params,
               GError **error)
{
    static const char *const known[] = {"axis", NULL};
    gint64 axis;

    if (!tp_onnx_reader_attrs(r, known, error) || !tp_onnx_reader_value(r, 0, &inputs[0], error) ||
        !tp_onnx_reader_int(r, "axis", 1, &axis, error))
        return FALSE;
    const TpShape *in = tp_onnx_reader_shape(r, inputs[0]);
    if (axis < 0) /* counted from the end of [N, per-sample dims] */
        axis += 1 + in->ndim;
    if (axis != 1)
        return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_UNSUPPORTED,
                                    "axis %" G_GINT64_FORMAT " is not supported (only 1)", axis);
    if (in->ndim == 1)
        tp_onnx_reader_alias(r, inputs[0]);
    return TRUE;
}

const TpOpClass tp_op_flatten = {
    /* .name = */ "Flatten",
    /* .n_inputs = */ 1,
    /* .check = */ flatten_check,
    /* .forward = */ tp_op_copy_forward,
    /* .backward = */ tp_op_copy_backward,
    /* .macs = */ NULL,
    /* .import = */ flatten_import,
    /* .param_names = */ {NULL},
    /* .export = */ flatten_export,
    /* .channels = */ flatten_channels,
    /* .cut = */ NULL,
    /* .lrp_rule = */ TP_OP_LRP_PASS,
    /* .sign = */ TP_OP_SIGN_INPUTS,
    /* .n_values = */ NULL,
    /* .export_opset = */ 0,
};
