/* transpose.c — Transpose (ONNX) of the per-sample axes (the batch stays
 * first): output axis d is input axis perm[d]. forward: one strided copy;
 * backward: the inverse copy of dy.
 * Channels: kept when the channels stay first; otherwise the output's first
 * dimension is not the channels, and the input's space is marked coupled
 * (never cut). No parameters.
 */
#include "config.h"

#include <string.h>

#include "tp-onnx.h"
#include "tp-op.h"

static gboolean
transpose_check(TpNode *node, const TpShape *const *inputs, TpOpSignature *sig, GError **error)
{
    const int *perm = node->attrs.transpose.perm;
    const TpShape *in = inputs[0];
    gboolean seen[TP_SHAPE_MAX_DIMS] = {FALSE};

    sig->output = *in;
    for (int d = 0; d < in->ndim; d++) {
        if (perm[d] < 0 || perm[d] >= in->ndim || seen[perm[d]]) {
            g_autofree char *s = tp_shape_to_string(in);

            tp_op_set_error(error, node, "perm is not a permutation of the axes of %s", s);
            return FALSE;
        }
        seen[perm[d]] = TRUE;
        sig->output.dim[d] = in->dim[perm[d]];
    }
    for (int d = in->ndim; d < TP_SHAPE_MAX_DIMS; d++)
        if (perm[d] != 0) {
            tp_op_set_error(error, node, "perm has entries past the input's %d axes", in->ndim);
            return FALSE;
        }
    return TRUE;
}

/* The output as a view of an input sample. */
static void
transpose_view(const TpNode *node, const TpTensor *x, TpView *v)
{
    const int *perm = node->attrs.transpose.perm;
    TpShape in;
    gssize strides[TP_SHAPE_MAX_DIMS];

    tp_view_begin(x, &in, strides, v);
    for (int d = 0; d < in.ndim; d++) {
        v->shape[d] = in.dim[perm[d]];
        v->stride[d] = strides[perm[d]];
    }
}

static gboolean
transpose_forward(const TpNode *node, TpBackend *backend, TpTensor *const *inputs,
                  TpTensor *output, TpMode mode, TpOpState *state, GError **error)
{
    TpView v;

    transpose_view(node, inputs[0], &v);
    return tp_view_gather(node, backend, &v, inputs[0], output, error);
}

static gboolean
transpose_backward(const TpNode *node, TpBackend *backend, TpTensor *const *inputs,
                   const TpTensor *output, const TpTensor *doutput, TpTensor *const *dinputs,
                   TpOpState *state, GError **error)
{
    TpView v;

    if (dinputs[0] == NULL)
        return TRUE;
    transpose_view(node, inputs[0], &v);
    return tp_view_scatter(node, backend, &v, doutput, dinputs[0], error);
}

/* perm over [batch, the input's axes]: a permutation of k axes has k - 1
 * as its largest entry. */
static void
transpose_export(const TpNode *node, TpOnnxNodeWriter *w)
{
    const int *perm = node->attrs.transpose.perm;
    int onnx[1 + TP_SHAPE_MAX_DIMS] = {0};
    int n = 0;

    for (int d = 0; d < TP_SHAPE_MAX_DIMS; d++)
        n = MAX(n, perm[d] + 1);
    for (int d = 0; d < n; d++)
        onnx[1 + d] = 1 + perm[d];
    tp_onnx_writer_ints(w, "perm", onnx, 1 + n);
}

static void
transpose_channels(const TpNode *node, const TpShape *input, TpChannelRule *out_rule)
{
    out_rule->kind = TP_CHANNELS_KEEP;
    out_rule->couples = node->attrs.transpose.perm[0] != 0;
}

/* ONNX: perm keeping the batch first (absent: all axes reversed, the batch
 * included, which is refused). */
static gboolean
transpose_import(TpOnnxReader *r, TpOpAttrs *attrs, int *inputs, const float **params,
                 GError **error)
{
    static const char *const known[] = {"perm", NULL};
    const gint64 *perm;
    int n = 0;

    if (!tp_onnx_reader_attrs(r, known, error) || !tp_onnx_reader_value(r, 0, &inputs[0], error) ||
        !tp_onnx_reader_ints_list(r, "perm", &perm, &n, error))
        return FALSE;
    const TpShape *in = tp_onnx_reader_shape(r, inputs[0]);
    if (perm == NULL || n != 1 + in->ndim || perm[0] != 0)
        return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_UNSUPPORTED,
                                    "perm must keep the batch axis first, over the %d axes of "
                                    "the input",
                                    1 + in->ndim);
    gboolean identity = TRUE;
    for (int d = 0; d < in->ndim; d++) {
        if (perm[1 + d] < 1 || perm[1 + d] > in->ndim)
            return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_INVALID,
                                        "perm holds %" G_GINT64_FORMAT ", not an axis",
                                        perm[1 + d]);
        attrs->transpose.perm[d] = (int)perm[1 + d] - 1;
        identity = identity && attrs->transpose.perm[d] == d;
    }
    if (identity)
        tp_onnx_reader_alias(r, inputs[0]);
    return TRUE;
}

const TpOpClass tp_op_transpose = {
    /* .name = */ "Transpose",
    /* .n_inputs = */ 1,
    /* .check = */ transpose_check,
    /* .forward = */ transpose_forward,
    /* .backward = */ transpose_backward,
    /* .macs = */ NULL,
    /* .import = */ transpose_import,
    /* .param_names = */ {NULL},
    /* .export = */ transpose_export,
    /* .channels = */ transpose_channels,
    /* .cut = */ NULL,
    /* .lrp_rule = */ TP_OP_LRP_NONE,
    /* .sign = */ TP_OP_SIGN_INPUTS,
    /* .n_values = */ NULL,
    /* .export_opset = */ 0,
};
