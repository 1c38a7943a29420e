/* reshape.c — Reshape (ONNX) of a value to another per-sample shape of as
 * many floats, [C, H, W] or [F] (the two tp-model.h has): the values are
 * copied in row-major order. backward: dx = dy, reshaped.
 * Import reads every ONNX Reshape:
 *  - to [batch, F]: a Flatten (or nothing, for a value flat already);
 *  - to [batch, C, H, W]: this op;
 *  - ShuffleNet's channel shuffle, Reshape to [batch, g, C/g, H, W], then
 *    Transpose (0, 2, 1, 3, 4), then a Reshape: the first two are one
 *    Gather of the channels (engine/ops/gather.c), since the 4-D values
 *    between have no per-sample shape here;
 *  - any other target is refused, naming it.
 * Channels: kept when the first dimension stays (its entries then stay in
 * their channel); shape.dim[0] is 0 then, so a pruned model reshapes its
 * own channel count. Otherwise the input's space is marked coupled (never
 * cut). LRP: the values keep their order, so relevance passes unchanged.
 * No parameters.
 */
#include "config.h"

#include <string.h>

#include "tp-onnx-fold.h"
#include "tp-onnx.h"
#include "tp-op.h"

static gboolean
reshape_check(TpNode *node, const TpShape *const *inputs, TpOpSignature *sig, GError **error)
{
    TpShape out = node->attrs.reshape.shape;
    gsize numel = tp_shape_numel(inputs[0]);

    if (out.ndim != 1 && out.ndim != 3) {
        tp_op_set_error(error, node, "the shape has %d dimensions (1 or 3)", out.ndim);
        return FALSE;
    }
    if (out.dim[0] == 0)
        out.dim[0] = inputs[0]->dim[0];
    for (int d = 0; d < out.ndim; d++)
        if (out.dim[d] < 1)
            numel = 0;
    if (tp_shape_numel(&out) != numel) {
        g_autofree char *a = tp_shape_to_string(inputs[0]);
        g_autofree char *b = tp_shape_to_string(&out);

        tp_op_set_error(error, node, "the input %s cannot be reshaped to %s", a, b);
        return FALSE;
    }
    sig->output = out;
    return TRUE;
}

/* The shape as an int64 input: 0 (copy) for the batch and a kept first
 * dimension. */
static void
reshape_export(const TpNode *node, TpOnnxNodeWriter *w)
{
    const TpShape *s = &node->attrs.reshape.shape;
    gint64 shape[1 + TP_SHAPE_MAX_DIMS] = {0};

    for (int d = 0; d < s->ndim; d++)
        shape[1 + d] = s->dim[d];
    tp_onnx_writer_ints_input(w, "shape", shape, 1 + s->ndim);
}

static void
reshape_channels(const TpNode *node, const TpShape *input, TpChannelRule *out_rule)
{
    out_rule->kind = TP_CHANNELS_KEEP;
    out_rule->couples = node->attrs.reshape.shape.dim[0] != 0;
}

/* The per-sample dimensions (up to 4) that ONNX shape t gives a value of
 * [batch, in]: 0 copies the input's entry (without allowzero), one -1 takes
 * what is left, and the first entry is the batch (TP_ONNX_BATCH folded from
 * a Shape, 0, -1 or a number). FALSE with error naming t otherwise. */
static gboolean
reshape_resolve(TpOnnxReader *r, const int *in, int in_ndim, const TpOnnxConst *t,
                gboolean allowzero, int *out, int *out_ndim, GError **error)
{
    g_autofree char *s = tp_onnx_dims_to_string(t->ndim == 1 ? (int)t->numel : 0, t->i64);
    gint64 numel = 1, known = 1;
    int infer = -1, k;

    for (int d = 0; d < in_ndim; d++)
        numel *= in[d];
    if (t->ndim != 1 || t->numel < 2 || t->numel > 5 ||
        (t->i64[0] < -1 && t->i64[0] != TP_ONNX_BATCH))
        return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_UNSUPPORTED,
                                    "reshape to %s is not supported: the batch must stay first, "
                                    "with 1, 3 or a channel shuffle's 4 dimensions after it",
                                    s);
    k = (int)t->numel - 1;
    for (int d = 0; d < k; d++) {
        gint64 v = t->i64[1 + d];

        if (v == 0 && !allowzero && d < in_ndim)
            v = in[d];
        if (v == -1 && infer < 0 && t->i64[0] != -1) {
            infer = d;
            continue;
        }
        if (v < 1 || v > G_MAXINT / 2)
            return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_UNSUPPORTED,
                                        "reshape to %s is not supported: entry %d is not a "
                                        "size taskprune can resolve",
                                        s, 1 + d);
        out[d] = (int)v;
        known *= v;
    }
    if (infer >= 0 && numel % known == 0) {
        out[infer] = (int)(numel / known);
        known = numel;
    }
    if (known != numel) /* the first entry was not the batch */
        return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_UNSUPPORTED,
                                    "reshape to %s is not supported: it does not keep the %" G_GINT64_FORMAT
                                    " floats of each sample together (the batch must stay first)",
                                    s, numel);
    *out_ndim = k;
    return TRUE;
}

/* The constant shape of a Reshape reader, and its allowzero. */
static gboolean
reshape_target(TpOnnxReader *r, const TpOnnxConst **out, gboolean *allowzero, GError **error)
{
    static const char *const known[] = {"allowzero", NULL};
    gint64 zero = 0;

    if (!tp_onnx_reader_attrs(r, known, error) ||
        !tp_onnx_reader_int(r, "allowzero", 0, &zero, error))
        return FALSE;
    *out = tp_onnx_reader_constant(r, 1);
    *allowzero = zero != 0;
    if (*out == NULL || (*out)->i64 == NULL)
        return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_UNSUPPORTED,
                                    "the shape must be a constant int64 tensor (a shape computed "
                                    "at run time cannot be resolved; export with torch.flatten)");
    return TRUE;
}

/* Reshape [C, H, W] to shuffle[4] = [g, C/g, H, W] is a channel shuffle when
 * a Transpose (0, 2, 1, 3, 4) alone reads it and a Reshape alone reads that:
 * absorbs the Transpose and sets attrs to the Gather of the shuffled
 * channels, [C, H, W] whose floats are the transposed [C/g, g, H, W]'s in
 * the same order; the Reshape that follows is imported on its own, from
 * [C, H, W] (its shape has no 0 entries: PyTorch writes every size, and a
 * shape folded from the transposed value would make the Shape node a second
 * reader, refused here). */
static gboolean
reshape_shuffle(TpOnnxReader *r, const TpShape *in, const int *shuffle, TpOpAttrs *attrs,
                GError **error)
{
    static const gint64 swap[] = {0, 2, 1, 3, 4};
    TpOnnxReader *transpose = tp_onnx_reader_next(r, "Transpose");
    const gint64 *perm;
    int n = 0;

    if (in->ndim != 3 || shuffle[2] != in->dim[1] || shuffle[3] != in->dim[2] ||
        transpose == NULL || !tp_onnx_reader_ints_list(transpose, "perm", &perm, &n, error) ||
        n != 5 || memcmp(perm, swap, sizeof swap) != 0 ||
        tp_onnx_reader_next(transpose, "Reshape") == NULL)
        return FALSE;
    tp_onnx_reader_absorb(r, transpose);
    tp_onnx_reader_set_op(r, TP_OP_GATHER);
    attrs->gather = (TpGatherAttrs){0, 0, {shuffle[1], shuffle[0]}, {1, shuffle[1]}};
    return TRUE;
}

static gboolean
reshape_import(TpOnnxReader *r, TpOpAttrs *attrs, int *inputs, const float **params,
               GError **error)
{
    const TpOnnxConst *target;
    gboolean allowzero;
    int out[4], k = 0;

    if (!tp_onnx_reader_value(r, 0, &inputs[0], error) ||
        !reshape_target(r, &target, &allowzero, error))
        return FALSE;
    const TpShape *in = tp_onnx_reader_shape(r, inputs[0]);
    if (!reshape_resolve(r, in->dim, in->ndim, target, allowzero, out, &k, error))
        return FALSE;
    if (k == 1) {
        if (in->ndim == 1)
            tp_onnx_reader_alias(r, inputs[0]);
        else
            tp_onnx_reader_set_op(r, TP_OP_FLATTEN);
        return TRUE;
    }
    if (k == 3 && in->ndim == 3 && memcmp(out, in->dim, sizeof(int) * 3) == 0) {
        tp_onnx_reader_alias(r, inputs[0]); /* the shape it has */
        return TRUE;
    }
    if (k == 3) {
        attrs->reshape.shape = (TpShape){3, {out[0] == in->dim[0] ? 0 : out[0], out[1], out[2]}};
        return TRUE;
    }
    if (k == 4 && reshape_shuffle(r, in, out, attrs, error))
        return TRUE;
    if (error != NULL && *error != NULL)
        return FALSE;
    g_autofree char *s = tp_onnx_dims_to_string((int)target->numel, target->i64);
    return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_UNSUPPORTED,
                                "reshape to %s is not supported: the batch must stay first, with "
                                "1, 3 or a channel shuffle's 4 dimensions after it (a Transpose "
                                "(0, 2, 1, 3, 4) and a Reshape must follow)",
                                s);
}

const TpOpClass tp_op_reshape = {
    /* .name = */ "Reshape",
    /* .n_inputs = */ 1,
    /* .check = */ reshape_check,
    /* .forward = */ tp_op_copy_forward,
    /* .backward = */ tp_op_copy_backward,
    /* .macs = */ NULL,
    /* .import = */ reshape_import,
    /* .param_names = */ {NULL},
    /* .export = */ reshape_export,
    /* .channels = */ reshape_channels,
    /* .cut = */ NULL,
    /* .lrp_rule = */ TP_OP_LRP_PASS,
    /* .sign = */ TP_OP_SIGN_INPUTS,
    /* .n_values = */ NULL,
    /* .export_opset = */ 0,
};
