/* binary.c — the elementwise binary ops of ONNX, Sub, Mul and Div (and the
 * shared part of Add, add.c), with NumPy (ONNX multidirectional)
 * broadcasting:
 *
 *   y = a op b,   a: value 0;  b: value 1, or the constant parameter 0
 *
 * on the backend's binary family. Two values must have per-sample shapes of
 * one rank whose axes are equal or 1 (an SE gate: [C, H, W] × [C, 1, 1]); a
 * constant (layer scale, input normalization, GELU's and a decomposed
 * LayerNormalization's scalars) is stored as a parameter of the value's rank
 * (TpBinaryAttrs), which training leaves fixed. backward: the family's, with
 * the gradient summed over the axes an operand was broadcast along.
 *
 * Channels: two values share one indexing (JOIN; a broadcast operand with
 * one channel makes the space's counts differ, which keeps it unprunable);
 * with a constant the output keeps the value's (KEEP), and pruning cuts the
 * constant's channel axis with it. LRP: no rule for Sub, Mul (a gate) and
 * Div — an error naming the node on the path to the logits.
 */
#include "config.h"

#include <string.h>

#include "tp-onnx.h"
#include "tp-op.h"

/* The per-sample shape of operand b: value 1's, or the constant's. */
static const TpShape *
operand_b(const TpNode *node, const TpShape *const *inputs)
{
    return node->attrs.binary.constant ? &node->attrs.binary.const_shape : inputs[1];
}

/* Validates the operands' shapes and declares the broadcast output and, with
 * a constant operand, its parameter. */
gboolean
tp_binary_check(TpNode *node, const TpShape *const *inputs, TpOpSignature *sig, GError **error)
{
    const TpShape *a = inputs[0], *b = operand_b(node, inputs);
    TpBinaryAttrs *attrs = &node->attrs.binary;

    gboolean ok = a->ndim == b->ndim;

    if (!attrs->constant)
        memset(&attrs->const_shape, 0, sizeof attrs->const_shape);
    sig->output = *a;
    for (int d = 0; ok && d < a->ndim; d++) {
        ok = b->dim[d] >= 1 && (a->dim[d] == b->dim[d] || a->dim[d] == 1 || b->dim[d] == 1);
        sig->output.dim[d] = MAX(a->dim[d], b->dim[d]);
    }
    if (!ok) {
        g_autofree char *sa = tp_shape_to_string(a);
        g_autofree char *sb = tp_shape_to_string(b);

        tp_op_set_error(error, node,
                        "operands of per-sample shapes %s and %s%s do not broadcast (the same "
                        "number of axes, each equal or 1)",
                        sa, sb, attrs->constant ? " (the constant)" : "");
        return FALSE;
    }
    if (attrs->constant) {
        sig->n_params = 1;
        sig->params[0].ndim = b->ndim;
        memcpy(sig->params[0].dim, b->dim, sizeof b->dim[0] * (gsize)b->ndim);
    }
    return TRUE;
}

/* The broadcast geometry of a batch: axis 0 the batch (a constant's is 1),
 * then the per-sample axes. */
static void
geometry(const TpNode *node, TpTensor *const *inputs, const TpTensor *output,
         TpBroadcastGeometry *g)
{
    const TpTensor *b = node->attrs.binary.constant ? NULL : inputs[1];

    memset(g, 0, sizeof *g);
    g->ndim = output->ndim;
    for (int d = 0; d < output->ndim; d++) {
        g->y[d] = output->shape[d];
        g->a[d] = inputs[0]->shape[d];
        g->b[d] = b != NULL ? b->shape[d] : d == 0 ? 1 : node->attrs.binary.const_shape.dim[d - 1];
    }
}

gboolean
tp_binary_forward(const TpNode *node, TpBinaryOp op, TpBackend *backend, TpTensor *const *inputs,
                  TpTensor *output, GError **error)
{
    const float *b = node->attrs.binary.constant ? node->params[0]->data : inputs[1]->data;
    TpBroadcastGeometry g;

    if (!tp_backend_has_family(backend, TP_KERNELS_BINARY, error))
        return FALSE;
    geometry(node, inputs, output, &g);
    return backend->vt.binary_forward(backend->self, op, &g, inputs[0]->data, b, output->data,
                                      error);
}

/* The gradients of the values (a constant operand gets none). */
gboolean
tp_binary_backward(const TpNode *node, TpBinaryOp op, TpBackend *backend, TpTensor *const *inputs,
                   const TpTensor *doutput, TpTensor *const *dinputs, GError **error)
{
    gboolean constant = node->attrs.binary.constant;
    const float *b = constant ? node->params[0]->data : inputs[1]->data;
    float *db = !constant && dinputs[1] != NULL ? dinputs[1]->data : NULL;
    float *da = dinputs[0] != NULL ? dinputs[0]->data : NULL;
    TpBroadcastGeometry g;

    if (da == NULL && db == NULL)
        return TRUE;
    geometry(node, inputs, doutput, &g);
    return backend->vt.binary_backward(backend->self, op, &g, inputs[0]->data, b, doutput->data, da,
                                       db, error);
}

int
tp_binary_n_values(const TpOpAttrs *attrs)
{
    return attrs->binary.constant ? 1 : 2;
}

/* Two values: one indexing; a constant: the value's. */
void
tp_binary_channels(const TpNode *node, const TpShape *input, TpChannelRule *out_rule)
{
    out_rule->kind = node->attrs.binary.constant ? TP_CHANNELS_KEEP : TP_CHANNELS_JOIN;
}

/* A constant with a channel axis (its first, not broadcast) loses the cut
 * output channels. */
void
tp_binary_cut(const TpNode *node, const TpShape *input, const GArray *in, const GArray *out,
              TpOpAttrs *attrs, const GArray **rows, const GArray **cols)
{
    if (!node->attrs.binary.constant || node->attrs.binary.const_shape.dim[0] == 1 || out == NULL)
        return;
    rows[0] = out;
    attrs->binary.const_shape.dim[0] = (int)out->len;
}

/* ONNX: two values, or a value and a float32 constant of at most the
 * value's rank (with the batch: its leading axis 1). A constant first
 * operand is swapped behind the value when the op commutes. */
gboolean
tp_binary_import(TpOnnxReader *r, gboolean commutes, TpOpAttrs *attrs, int *inputs,
                 const float **params, GError **error)
{
    static const char *const known[] = {NULL};
    const TpOnnxConst *c0, *c1, *c;
    const TpShape *s;
    int value = 0, rank, lead;
    TpShape aligned;

    if (!tp_onnx_reader_attrs(r, known, error))
        return FALSE;
    c0 = tp_onnx_reader_constant(r, 0);
    c1 = tp_onnx_reader_constant(r, 1);
    if (c0 != NULL && c1 != NULL)
        return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_UNSUPPORTED,
                                    "both operands are constants of a type it cannot fold");
    if (c0 == NULL && c1 == NULL) {
        const TpShape *sa, *sb;

        if (!tp_onnx_reader_value(r, 0, &inputs[0], error) ||
            !tp_onnx_reader_value(r, 1, &inputs[1], error))
            return FALSE;
        sa = tp_onnx_reader_shape(r, inputs[0]);
        sb = tp_onnx_reader_shape(r, inputs[1]);
        if (tp_onnx_reader_rank(r, inputs[0]) != tp_onnx_reader_rank(r, inputs[1])) {
            g_autofree char *a = tp_shape_to_string(sa);
            g_autofree char *b = tp_shape_to_string(sb);

            return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_UNSUPPORTED,
                                        "operands '%s' %s and '%s' %s (per sample) differ in "
                                        "rank, which would broadcast the batch axis",
                                        tp_onnx_reader_input_name(r, 0), a,
                                        tp_onnx_reader_input_name(r, 1), b);
        }
        return TRUE;
    }
    if (c0 != NULL && !commutes)
        return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_UNSUPPORTED,
                                    "the first operand '%s' is a constant: only a constant "
                                    "second operand is supported",
                                    tp_onnx_reader_input_name(r, 0));
    value = c0 != NULL ? 1 : 0;
    c = c0 != NULL ? c0 : c1;
    if (!tp_onnx_reader_value(r, value, &inputs[0], error))
        return FALSE;
    s = tp_onnx_reader_shape(r, inputs[0]);
    rank = tp_onnx_reader_rank(r, inputs[0]);
    if (c->f == NULL || c->numel == 0 || c->ndim > rank || (c->ndim == rank && c->dims[0] != 1)) {
        g_autofree char *dims = tp_onnx_dims_to_string(c->ndim, c->dims);

        return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_UNSUPPORTED,
                                    "the constant '%s' %s must be float32 and broadcast over the "
                                    "batch (at most %d axes, the first 1 when %d)",
                                    tp_onnx_reader_input_name(r, 1 - value), dims, rank, rank);
    }
    /* Align on the trailing ONNX axes, as ONNX does: leading 1s, and the
     * trailing 1s of a value held with more axes than its rank. */
    aligned.ndim = s->ndim;
    lead = rank - 1 - (c->ndim == rank ? c->ndim - 1 : c->ndim);
    for (int d = 0; d < s->ndim; d++) {
        int k = d - lead + (c->ndim == rank ? 1 : 0);
        gint64 dim = d < lead || d >= rank - 1 ? 1 : c->dims[k];

        if (dim > G_MAXINT / 2 || (dim != s->dim[d] && dim != 1 && s->dim[d] != 1)) {
            g_autofree char *dims = tp_onnx_dims_to_string(c->ndim, c->dims);
            g_autofree char *shape = tp_shape_to_string(s);

            return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_UNSUPPORTED,
                                        "the constant '%s' %s does not broadcast with its "
                                        "operand's per-sample shape %s",
                                        tp_onnx_reader_input_name(r, 1 - value), dims, shape);
        }
        aligned.dim[d] = (int)dim;
    }
    attrs->binary.constant = TRUE;
    attrs->binary.const_shape = aligned;
    params[0] = c->f;
    return TRUE;
}

/* ---------------------------------------------------------------- the classes */

#define BINARY_OP(name, op_)                                                                       \
    static gboolean name##_forward(const TpNode *node, TpBackend *backend,                         \
                                   TpTensor *const *inputs, TpTensor *output, TpMode mode,         \
                                   TpOpState *state, GError **error)                               \
    {                                                                                              \
        return tp_binary_forward(node, op_, backend, inputs, output, error);                       \
    }                                                                                              \
    static gboolean name##_backward(                                                               \
        const TpNode *node, TpBackend *backend, TpTensor *const *inputs, const TpTensor *output,   \
        const TpTensor *doutput, TpTensor *const *dinputs, TpOpState *state, GError **error)       \
    {                                                                                              \
        return tp_binary_backward(node, op_, backend, inputs, doutput, dinputs, error);            \
    }                                                                                              \
    static gboolean name##_import(TpOnnxReader *r, TpOpAttrs *attrs, int *inputs,                  \
                                  const float **params, GError **error)                            \
    {                                                                                              \
        return tp_binary_import(r, op_ == TP_BINARY_MUL, attrs, inputs, params, error);            \
    }

BINARY_OP(mul, TP_BINARY_MUL)
BINARY_OP(sub, TP_BINARY_SUB)
BINARY_OP(div, TP_BINARY_DIV)

#define BINARY_CLASS(name, onnx)                                                                   \
    const TpOpClass tp_op_##name = {                                                               \
        /* .name = */ onnx,                                                                        \
        /* .n_inputs = */ 2,                                                                       \
        /* .check = */ tp_binary_check,                                                            \
        /* .forward = */ name##_forward,                                                           \
        /* .backward = */ name##_backward,                                                         \
        /* .macs = */ NULL,                                                                        \
        /* .import = */ name##_import,                                                             \
        /* .param_names = */ {"constant"},                                                         \
        /* .export = */ NULL,                                                                      \
        /* .channels = */ tp_binary_channels,                                                      \
        /* .cut = */ tp_binary_cut,                                                                \
        /* .lrp_rule = */ TP_OP_LRP_NONE,                                                          \
        /* .sign = */ TP_OP_SIGN_ANY,                                                              \
        /* .n_values = */ tp_binary_n_values,                                                      \
        /* .export_opset = */ 0,                                                                   \
    }

BINARY_CLASS(mul, "Mul");
BINARY_CLASS(sub, "Sub");
BINARY_CLASS(div, "Div");
