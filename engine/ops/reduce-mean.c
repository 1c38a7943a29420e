/* reduce-mean.c — ReduceMean (ONNX) over per-sample axes:
 *
 *   y[i] = (1 / K) Σ_k x[i, k]   over the K elements of the reduced axes
 *
 * keepdims (ONNX's default) leaves each reduced axis as 1, without it the
 * axis goes (x.mean([2, 3]) of a [C, H, W] map is [C]); the result must be
 * 1-D or 3-D per sample. The batch axis is never reduced. backward: dx = dy
 * broadcast back over the reduced axes, divided by K. Attributes:
 * TpReduceAttrs; no parameters. On the backend's reduce family.
 *
 * Channels: the output keeps the input's, and a mean over the channel axis
 * couples them (a removed channel would change the mean). LRP: no rule.
 */
#include "config.h"

#include <string.h>

#include "tp-onnx.h"
#include "tp-op.h"

/* The output shape of a reduction of in (keepdims' layout when !squeeze). */
static TpShape
reduced_shape(const TpShape *in, const TpReduceAttrs *a, gboolean squeeze)
{
    TpShape out = {0, {0}};

    for (int d = 0; d < in->ndim; d++) {
        if (!(a->axes & (1u << d)))
            out.dim[out.ndim++] = in->dim[d];
        else if (!squeeze)
            out.dim[out.ndim++] = 1;
    }
    return out;
}

static gboolean
reduce_check(TpNode *node, const TpShape *const *inputs, TpOpSignature *sig, GError **error)
{
    const TpReduceAttrs *a = &node->attrs.reduce;
    const TpShape *in = inputs[0];

    if (a->axes == 0 || a->axes >= (1u << in->ndim)) {
        g_autofree char *s = tp_shape_to_string(in);

        tp_op_set_error(error, node, "axes 0x%x are not a set of the axes of its input %s", a->axes,
                        s);
        return FALSE;
    }
    sig->output = reduced_shape(in, a, a->squeeze);
    if (sig->output.ndim != 1 && sig->output.ndim != 3) {
        g_autofree char *s = tp_shape_to_string(in);

        tp_op_set_error(error, node,
                        "reducing %s without keepdims leaves %d axes per sample; only 1 or 3 "
                        "are supported",
                        s, sig->output.ndim);
        return FALSE;
    }
    return TRUE;
}

/* [batch, input axes] and the same with the reduced axes 1. */
static void
geometry(const TpNode *node, const TpTensor *x, TpReduceGeometry *g)
{
    memset(g, 0, sizeof *g);
    g->ndim = x->ndim;
    for (int d = 0; d < x->ndim; d++) {
        g->x[d] = x->shape[d];
        g->y[d] = d > 0 && (node->attrs.reduce.axes & (1u << (d - 1))) ? 1 : x->shape[d];
    }
}

static gboolean
reduce_forward(const TpNode *node, TpBackend *backend, TpTensor *const *inputs, TpTensor *output,
               TpMode mode, TpOpState *state, GError **error)
{
    TpReduceGeometry g;

    if (!tp_backend_has_family(backend, TP_KERNELS_REDUCE, error))
        return FALSE;
    geometry(node, inputs[0], &g);
    return backend->vt.reduce_forward(backend->self, TP_REDUCE_MEAN, &g, inputs[0]->data,
                                      output->data, error);
}

static gboolean
reduce_backward(const TpNode *node, TpBackend *backend, TpTensor *const *inputs,
                const TpTensor *output, const TpTensor *doutput, TpTensor *const *dinputs,
                TpOpState *state, GError **error)
{
    TpReduceGeometry g;

    if (dinputs[0] == NULL)
        return TRUE;
    geometry(node, inputs[0], &g);
    return backend->vt.reduce_backward(backend->self, TP_REDUCE_MEAN, &g, doutput->data,
                                       dinputs[0]->data, error);
}

/* The axes as ONNX numbers them (the batch is 0). */
static void
reduce_export(const TpNode *node, TpOnnxNodeWriter *w)
{
    int axes[TP_SHAPE_MAX_DIMS], n = 0;

    for (int d = 0; d < TP_SHAPE_MAX_DIMS; d++)
        if (node->attrs.reduce.axes & (1u << d))
            axes[n++] = d + 1;
    tp_onnx_writer_ints(w, "axes", axes, n);
    tp_onnx_writer_int(w, "keepdims", node->attrs.reduce.squeeze ? 0 : 1);
}

/* Over the channels, the output reads them all. */
static void
reduce_channels(const TpNode *node, const TpShape *input, TpChannelRule *out_rule)
{
    out_rule->kind = TP_CHANNELS_KEEP;
    out_rule->couples = (node->attrs.reduce.axes & 1u) != 0;
}

/* ONNX: axes an attribute (to opset 17) or a constant int64 input (18),
 * negative ones counted from the end; keepdims. */
static gboolean
reduce_import(TpOnnxReader *r, TpOpAttrs *attrs, int *inputs, const float **params, GError **error)
{
    static const char *const known[] = {"axes", "keepdims", NULL};
    g_autofree int *axes = NULL;
    const TpOnnxConst *c = NULL;
    gint64 keepdims;
    int n = 0, rank;

    if (!tp_onnx_reader_attrs(r, known, error) || !tp_onnx_reader_value(r, 0, &inputs[0], error) ||
        !tp_onnx_reader_int(r, "keepdims", 1, &keepdims, error))
        return FALSE;
    rank = tp_onnx_reader_rank(r, inputs[0]);
    if (tp_onnx_reader_has_input(r, 1)) {
        c = tp_onnx_reader_constant(r, 1);
        if (c == NULL || c->i64 == NULL || c->numel > (gsize)rank)
            return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_UNSUPPORTED,
                                        "the axes '%s' must be a constant int64 tensor",
                                        tp_onnx_reader_input_name(r, 1));
        n = (int)c->numel;
        axes = g_new0(int, MAX(n, 1));
        for (int i = 0; i < n; i++)
            axes[i] = c->i64[i] < -rank || c->i64[i] >= rank ? rank : (int)c->i64[i];
    } else if (tp_onnx_reader_has_attr(r, "axes")) {
        n = tp_onnx_reader_n_ints(r, "axes");
        if (n < 1 || n > rank)
            return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_UNSUPPORTED,
                                        "attribute 'axes' must hold 1 to %d ints", rank);
        axes = g_new0(int, n);
        if (!tp_onnx_reader_ints(r, "axes", n, -rank, axes, error))
            return FALSE;
    }
    if (n == 0 || n > rank)
        return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_UNSUPPORTED,
                                    "only a mean over listed per-sample axes is supported "
                                    "(axes missing, or more than the input's %d)",
                                    rank);
    for (int i = 0; i < n; i++) {
        int axis = axes[i] < 0 ? axes[i] + rank : axes[i];

        if (axis <= 0 || axis >= rank)
            return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_UNSUPPORTED,
                                        "axis %d is the batch or not an axis of its rank-%d "
                                        "input",
                                        axes[i], rank);
        attrs->reduce.axes |= 1u << (axis - 1);
    }
    attrs->reduce.squeeze = keepdims == 0;
    if (attrs->reduce.squeeze) {
        int left = rank - 1;

        for (int d = 0; d < rank - 1; d++)
            left -= (attrs->reduce.axes >> d) & 1u;
        if (rank - 1 != tp_onnx_reader_shape(r, inputs[0])->ndim)
            return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_UNSUPPORTED,
                                        "a mean without keepdims of a rank-%d value is not "
                                        "supported",
                                        rank);
        if (left != 1 && left != 3)
            return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_UNSUPPORTED,
                                        "without keepdims the mean leaves %d axes per sample; "
                                        "only 1 or 3 are supported",
                                        left);
    }
    return TRUE;
}

const TpOpClass tp_op_reduce_mean = {
    /* .name = */ "ReduceMean",
    /* .n_inputs = */ 1,
    /* .check = */ reduce_check,
    /* .forward = */ reduce_forward,
    /* .backward = */ reduce_backward,
    /* .macs = */ NULL,
    /* .import = */ reduce_import,
    /* .param_names = */ {NULL},
    /* .export = */ reduce_export,
    /* .channels = */ reduce_channels,
    /* .cut = */ NULL,
    /* .lrp_rule = */ TP_OP_LRP_NONE,
    /* .sign = */ TP_OP_SIGN_INPUTS,
    /* .n_values = */ NULL,
    /* .export_opset = */ 0,
};
