/* gather.c — Gather (ONNX) of entries of one per-sample axis at constant
 * indices: output entry a * count[1] + b is input entry
 * base + a * stride[0] + b * stride[1]. That form holds one index, a range,
 * a strided range and a channel shuffle's permutation (ShuffleNet's
 * Reshape -> Transpose -> Reshape, which engine/ops/reshape.c reads as a
 * Gather of the channels), each one strided copy; other index lists are
 * refused at import. Indices are distinct, so backward is the inverse copy
 * into a zeroed dx.
 * Channels: kept when another axis is gathered; gathering channels
 * reorders or drops them, so the input's space is marked coupled (never
 * cut). No parameters.
 */
#include "config.h"

#include <string.h>

#include "tp-onnx.h"
#include "tp-op.h"

static int
gather_count(const TpGatherAttrs *a, int i)
{
    return a->count[i] == 0 ? 1 : a->count[i];
}

static gboolean
gather_check(TpNode *node, const TpShape *const *inputs, TpOpSignature *sig, GError **error)
{
    const TpGatherAttrs *a = &node->attrs.gather;
    const TpShape *in = inputs[0];
    int n0 = gather_count(a, 0), n1 = gather_count(a, 1);

    if (a->axis < 0 || a->axis >= in->ndim || n0 < 1 || n1 < 1 ||
        (gint64)n0 * n1 > in->dim[a->axis]) {
        g_autofree char *s = tp_shape_to_string(in);

        tp_op_set_error(error, node, "%d x %d indices along axis %d do not fit the input %s", n0,
                        n1, a->axis, s);
        return FALSE;
    }
    /* every index inside the axis, none twice */
    int dim = in->dim[a->axis];
    g_autofree gboolean *seen = g_new0(gboolean, dim);
    for (int i = 0; i < n0; i++)
        for (int j = 0; j < n1; j++) {
            gint64 k = a->base + (gint64)i * a->stride[0] + (gint64)j * a->stride[1];

            if (k < 0 || k >= dim || seen[k]) {
                tp_op_set_error(error, node,
                                "index %" G_GINT64_FORMAT " (entry %d) is %s axis %d of %d",
                                k, i * n1 + j, k < 0 || k >= dim ? "outside" : "repeated in",
                                a->axis, dim);
                return FALSE;
            }
            seen[k] = TRUE;
        }
    sig->output = *in;
    sig->output.dim[a->axis] = n0 * n1;
    return TRUE;
}

/* The output as a view of an input sample: the gathered axis as two. */
static void
gather_view(const TpNode *node, const TpTensor *x, TpView *v)
{
    const TpGatherAttrs *a = &node->attrs.gather;
    TpShape in;
    gssize strides[TP_SHAPE_MAX_DIMS];
    int k = 0;

    tp_view_begin(x, &in, strides, v);
    for (int d = 0; d < in.ndim; d++) {
        if (d != a->axis) {
            v->shape[k] = in.dim[d];
            v->stride[k++] = strides[d];
            continue;
        }
        v->shape[k] = gather_count(a, 0);
        v->stride[k++] = strides[d] * a->stride[0];
        v->shape[k] = gather_count(a, 1);
        v->stride[k++] = strides[d] * a->stride[1];
        v->offset = (gsize)a->base * (gsize)strides[d];
    }
    v->ndim = k;
}

static gboolean
gather_forward(const TpNode *node, TpBackend *backend, TpTensor *const *inputs, TpTensor *output,
               TpMode mode, TpOpState *state, GError **error)
{
    TpView v;

    gather_view(node, inputs[0], &v);
    return tp_view_gather(node, backend, &v, inputs[0], output, error);
}

static gboolean
gather_backward(const TpNode *node, TpBackend *backend, TpTensor *const *inputs,
                const TpTensor *output, const TpTensor *doutput, TpTensor *const *dinputs,
                TpOpState *state, GError **error)
{
    TpView v;

    if (dinputs[0] == NULL)
        return TRUE;
    gather_view(node, inputs[0], &v);
    return tp_view_gather_backward(node, backend, &v, doutput, dinputs[0], error);
}

/* axis over [batch, ...] and the indices listed as an int64 input. */
static void
gather_export(const TpNode *node, TpOnnxNodeWriter *w)
{
    const TpGatherAttrs *a = &node->attrs.gather;
    int n0 = gather_count(a, 0), n1 = gather_count(a, 1);
    g_autofree gint64 *indices = g_new(gint64, (gsize)n0 * (gsize)n1);

    for (int i = 0; i < n0; i++)
        for (int j = 0; j < n1; j++)
            indices[i * n1 + j] = a->base + (gint64)i * a->stride[0] + (gint64)j * a->stride[1];
    tp_onnx_writer_ints_input(w, "indices", indices, n0 * n1);
    tp_onnx_writer_int(w, "axis", 1 + a->axis);
}

static void
gather_channels(const TpNode *node, const TpShape *input, TpChannelRule *out_rule)
{
    out_rule->kind = TP_CHANNELS_KEEP;
    out_rule->couples = node->attrs.gather.axis == 0;
}

/* Fits n distinct indices (each in [0, dim)) to the two-level form: the
 * longest run of one step from the first, repeated at a second step. */
static gboolean
gather_fit(const gint64 *idx, gsize n, TpGatherAttrs *a)
{
    gsize run = 1;
    gint64 inner = n > 1 ? idx[1] - idx[0] : 0, outer;

    while (run < n && idx[run] == idx[0] + (gint64)run * inner)
        run++;
    if (n % run != 0 || n > G_MAXINT)
        return FALSE;
    outer = run < n ? idx[run] - idx[0] : 0;
    for (gsize i = 0; i < n; i++)
        if (idx[i] != idx[0] + (gint64)(i / run) * outer + (gint64)(i % run) * inner)
            return FALSE;
    a->base = (int)idx[0];
    a->count[0] = (int)(n / run);
    a->count[1] = (int)run;
    a->stride[0] = (int)outer;
    a->stride[1] = (int)inner;
    return TRUE;
}

/* ONNX: data an activation, indices a constant int64 vector (a scalar
 * index would drop the axis, which per-sample shapes cannot express). */
static gboolean
gather_import(TpOnnxReader *r, TpOpAttrs *attrs, int *inputs, const float **params,
              GError **error)
{
    static const char *const known[] = {"axis", NULL};
    const TpOnnxConst *c = tp_onnx_reader_constant(r, 1);
    g_autofree gint64 *idx = NULL;
    gint64 axis;

    if (!tp_onnx_reader_attrs(r, known, error) || !tp_onnx_reader_value(r, 0, &inputs[0], error) ||
        !tp_onnx_reader_int(r, "axis", 0, &axis, error))
        return FALSE;
    const TpShape *in = tp_onnx_reader_shape(r, inputs[0]);
    if (!tp_view_import_axis(r, axis, in, &attrs->gather.axis, error))
        return FALSE;
    if (c == NULL || c->i64 == NULL || c->ndim != 1 || c->numel < 1)
        return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_UNSUPPORTED,
                                    "the indices must be a constant int64 vector (a scalar "
                                    "index, which drops the axis, is not supported)");
    gint64 dim = in->dim[attrs->gather.axis];
    idx = g_new(gint64, c->numel);
    for (gsize i = 0; i < c->numel; i++) {
        idx[i] = c->i64[i] < 0 ? c->i64[i] + dim : c->i64[i];
        if (idx[i] < 0 || idx[i] >= dim)
            return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_INVALID,
                                        "index %" G_GINT64_FORMAT " is outside axis %" G_GINT64_FORMAT
                                        " of %" G_GINT64_FORMAT " entries",
                                        c->i64[i], axis, dim);
    }
    if (!gather_fit(idx, c->numel, &attrs->gather))
        return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_UNSUPPORTED,
                                    "the indices are not a range, a strided range or a "
                                    "repeated one (a channel shuffle), the lists taskprune "
                                    "gathers");
    return TRUE;
}

const TpOpClass tp_op_gather = {
    /* .name = */ "Gather",
    /* .n_inputs = */ 1,
    /* .check = */ gather_check,
    /* .forward = */ gather_forward,
    /* .backward = */ gather_backward,
    /* .macs = */ NULL,
    /* .import = */ gather_import,
    /* .param_names = */ {NULL},
    /* .export = */ gather_export,
    /* .channels = */ gather_channels,
    /* .cut = */ NULL,
    /* .lrp_rule = */ TP_OP_LRP_NONE,
    /* .sign = */ TP_OP_SIGN_INPUTS,
    /* .n_values = */ NULL,
    /* .export_opset = */ 0,
};
