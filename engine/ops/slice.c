/* slice.c — Slice (ONNX) of a value along its per-sample axes, with steps
 * (negative: reversed), and Split read as one Slice per output (PyTorch's
 * `chunk` exports either). forward: one strided copy of the view;
 * backward: dx = 0 outside the slice, dy inside.
 * Split: an engine node writes one value (tp-model.h); a Split of n parts
 * becomes n Slice nodes reading the same input, so each part is an ordinary
 * value that pruning, LRP and export see like any other, at the cost of
 * reading the input n times instead of once.
 * Channels: kept when the channel axis is whole; a part of the channels is
 * not indexed as the input, so the input's space is marked coupled (never
 * cut) then. No parameters.
 */
#include "config.h"

#include <string.h>

#include "tp-onnx.h"
#include "tp-op.h"

/* Entries of axis d the slice keeps, for an input axis of length dim. */
static int
slice_size(const TpSliceAttrs *a, int d, int dim)
{
    return a->size[d] == 0 ? dim : a->size[d];
}

static int
slice_step(const TpSliceAttrs *a, int d)
{
    return a->step[d] == 0 ? 1 : a->step[d];
}

static gboolean
slice_check(TpNode *node, const TpShape *const *inputs, TpOpSignature *sig, GError **error)
{
    const TpSliceAttrs *a = &node->attrs.slice;
    const TpShape *in = inputs[0];

    sig->output = *in;
    for (int d = 0; d < TP_SHAPE_MAX_DIMS; d++) {
        gint64 step = slice_step(a, d), last;

        if (a->size[d] == 0) {
            if (a->start[d] != 0 || a->step[d] != 0) {
                tp_op_set_error(error, node, "axis %d: a whole axis has start 0 and step 0", d);
                return FALSE;
            }
            continue;
        }
        last = a->start[d] + (gint64)(a->size[d] - 1) * step;
        if (d >= in->ndim || a->size[d] < 0 || a->start[d] < 0 || a->start[d] >= in->dim[d] ||
            last < 0 || last >= in->dim[d]) {
            g_autofree char *s = tp_shape_to_string(in);

            tp_op_set_error(error, node,
                            "axis %d: %d entries from %d in steps of %" G_GINT64_FORMAT
                            " leave the input %s",
                            d, a->size[d], a->start[d], step, s);
            return FALSE;
        }
        sig->output.dim[d] = a->size[d];
    }
    return TRUE;
}

/* The slice as a view of an input sample. */
static void
slice_view(const TpNode *node, const TpTensor *x, TpView *v)
{
    const TpSliceAttrs *a = &node->attrs.slice;
    TpShape in;
    gssize strides[TP_SHAPE_MAX_DIMS];

    tp_view_begin(x, &in, strides, v);
    for (int d = 0; d < in.ndim; d++) {
        v->shape[d] = slice_size(a, d, in.dim[d]);
        v->stride[d] = strides[d] * slice_step(a, d);
        v->offset += (gsize)a->start[d] * (gsize)strides[d];
    }
}

static gboolean
slice_forward(const TpNode *node, TpBackend *backend, TpTensor *const *inputs, TpTensor *output,
              TpMode mode, TpOpState *state, GError **error)
{
    TpView v;

    slice_view(node, inputs[0], &v);
    return tp_view_gather(node, backend, &v, inputs[0], output, error);
}

static gboolean
slice_backward(const TpNode *node, TpBackend *backend, TpTensor *const *inputs,
               const TpTensor *output, const TpTensor *doutput, TpTensor *const *dinputs,
               TpOpState *state, GError **error)
{
    TpView v;

    if (dinputs[0] == NULL)
        return TRUE;
    slice_view(node, inputs[0], &v);
    return tp_view_gather_backward(node, backend, &v, doutput, dinputs[0], error);
}

/* Opset 13: starts, ends, axes and steps as int64 inputs, sliced axes only. */
static void
slice_export(const TpNode *node, TpOnnxNodeWriter *w)
{
    const TpSliceAttrs *a = &node->attrs.slice;
    gint64 starts[TP_SHAPE_MAX_DIMS], ends[TP_SHAPE_MAX_DIMS], axes[TP_SHAPE_MAX_DIMS],
        steps[TP_SHAPE_MAX_DIMS];
    int n = 0;

    for (int d = 0; d < TP_SHAPE_MAX_DIMS; d++) {
        if (a->size[d] == 0)
            continue;
        starts[n] = a->start[d];
        steps[n] = slice_step(a, d);
        ends[n] = a->start[d] + (gint64)a->size[d] * steps[n];
        if (ends[n] < 0) /* past entry 0 going down: ONNX clamps this to -1 */
            ends[n] = G_MININT64;
        axes[n] = 1 + d;
        n++;
    }
    tp_onnx_writer_ints_input(w, "starts", starts, n);
    tp_onnx_writer_ints_input(w, "ends", ends, n);
    tp_onnx_writer_ints_input(w, "axes", axes, n);
    tp_onnx_writer_ints_input(w, "steps", steps, n);
}

static void
slice_channels(const TpNode *node, const TpShape *input, TpChannelRule *out_rule)
{
    out_rule->kind = TP_CHANNELS_KEEP;
    out_rule->couples = node->attrs.slice.size[0] != 0;
}

/* Sets axis `axis` (ONNX's, batch 0) of a to ONNX's start:end:step over an
 * input of per-sample shape in, clamped as ONNX clamps. */
static gboolean
slice_axis(TpOnnxReader *r, const TpShape *in, gint64 axis, gint64 start, gint64 end, gint64 step,
           TpSliceAttrs *a, GError **error)
{
    int d;
    gint64 dim, size;

    if (axis < 0)
        axis += 1 + in->ndim;
    if (axis < 0 || axis > in->ndim)
        return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_INVALID,
                                    "axis %" G_GINT64_FORMAT " is outside the input's %d", axis,
                                    1 + in->ndim);
    if (step == 0)
        return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_INVALID, "a step is 0");
    if (axis == 0) {
        if (start == 0 && step == 1 && end >= G_MAXINT)
            return TRUE; /* the whole batch */
        return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_UNSUPPORTED,
                                    "slicing the batch axis is not supported");
    }
    d = (int)axis - 1;
    dim = in->dim[d];
    if (a->size[d] != 0)
        return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_INVALID,
                                    "axis %" G_GINT64_FORMAT " is listed twice", axis);
    if (start < 0)
        start += dim;
    if (end < 0)
        end += dim;
    if (step > 0) {
        start = CLAMP(start, 0, dim);
        end = CLAMP(end, 0, dim);
        size = end > start ? (end - start + step - 1) / step : 0;
    } else {
        start = CLAMP(start, 0, dim - 1);
        end = CLAMP(end, -1, dim - 1);
        size = start > end ? (start - end - step - 1) / -step : 0;
    }
    if (size == 0)
        return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_UNSUPPORTED,
                                    "the slice of axis %" G_GINT64_FORMAT " is empty", axis);
    if (size == dim && step == 1)
        return TRUE; /* whole */
    a->start[d] = (int)start;
    a->step[d] = (int)CLAMP(step, -dim, dim);
    a->size[d] = (int)size;
    return TRUE;
}

/* An int64 vector input i of n values (NULL values when absent). */
static gboolean
slice_ints(TpOnnxReader *r, int i, const char *what, gsize *n, const gint64 **values,
           GError **error)
{
    const TpOnnxConst *c = tp_onnx_reader_constant(r, i);

    *values = NULL;
    if (!tp_onnx_reader_has_input(r, i))
        return TRUE;
    if (c == NULL || c->i64 == NULL || c->ndim != 1 || (*n != 0 && c->numel != *n))
        return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_UNSUPPORTED,
                                    "%s must be a constant int64 vector%s", what,
                                    *n != 0 ? " as long as starts" : "");
    *n = c->numel;
    *values = c->i64;
    return TRUE;
}

/* ONNX: starts, ends and optional axes and steps, as constant int64 inputs
 * (opset 10 on) or attributes (before). */
static gboolean
slice_import(TpOnnxReader *r, TpOpAttrs *attrs, int *inputs, const float **params,
             GError **error)
{
    static const char *const known[] = {"starts", "ends", "axes", NULL};
    const gint64 *starts, *ends, *axes, *steps = NULL;
    g_autofree gint64 *owned = NULL;
    gsize n = 0;

    if (!tp_onnx_reader_attrs(r, known, error) || !tp_onnx_reader_value(r, 0, &inputs[0], error))
        return FALSE;
    const TpShape *in = tp_onnx_reader_shape(r, inputs[0]);
    if (tp_onnx_reader_opset(r) >= 10) {
        if (!tp_onnx_reader_has_input(r, 1) || !tp_onnx_reader_has_input(r, 2))
            return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_INVALID,
                                        "inputs starts and ends are required");
        if (!slice_ints(r, 1, "starts", &n, &starts, error) ||
            !slice_ints(r, 2, "ends", &n, &ends, error) ||
            !slice_ints(r, 3, "axes", &n, &axes, error) ||
            !slice_ints(r, 4, "steps", &n, &steps, error))
            return FALSE;
    } else {
        int m = 0;
        if (!tp_onnx_reader_ints_list(r, "starts", &starts, &m, error) ||
            !tp_onnx_reader_ints_list(r, "ends", &ends, &m, error) ||
            !tp_onnx_reader_ints_list(r, "axes", &axes, &m, error))
            return FALSE;
        if (starts == NULL || ends == NULL)
            return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_INVALID,
                                        "attributes starts and ends are required");
        n = (gsize)m;
    }
    for (gsize k = 0; k < n; k++)
        if (!slice_axis(r, in, axes != NULL ? axes[k] : (gint64)k, starts[k], ends[k],
                        steps != NULL ? steps[k] : 1, &attrs->slice, error))
            return FALSE;
    for (int d = 0; d < TP_SHAPE_MAX_DIMS; d++)
        if (attrs->slice.size[d] != 0)
            return TRUE;
    tp_onnx_reader_alias(r, inputs[0]); /* slices nothing */
    return TRUE;
}

gboolean
tp_slice_import_split(TpOnnxReader *r, TpOpAttrs *attrs, int *inputs, const float **params,
                      GError **error)
{
    static const char *const known[] = {"axis", "split", NULL};
    const gint64 *split = NULL;
    gint64 axis, offset = 0;
    gsize n = 0;
    int n_out, m = 0;

    if (!tp_onnx_reader_attrs_outputs(r, known, &n_out, error) ||
        !tp_onnx_reader_value(r, 0, &inputs[0], error) ||
        !tp_onnx_reader_int(r, "axis", 0, &axis, error))
        return FALSE;
    const TpShape *in = tp_onnx_reader_shape(r, inputs[0]);
    if (tp_onnx_reader_opset(r) >= 13) {
        if (!slice_ints(r, 1, "split", &n, &split, error))
            return FALSE;
    } else {
        if (!tp_onnx_reader_ints_list(r, "split", &split, &m, error))
            return FALSE;
        n = (gsize)m;
    }
    int d;
    if (!tp_view_import_axis(r, axis, in, &d, error))
        return FALSE;
    axis = 1 + d;
    gint64 dim = in->dim[d];
    if (split == NULL && dim % n_out != 0)
        return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_INVALID,
                                    "%" G_GINT64_FORMAT " entries do not split into %d equal parts",
                                    dim, n_out);
    if (split != NULL && n != (gsize)n_out)
        return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_INVALID,
                                    "split lists %" G_GSIZE_FORMAT " parts for %d outputs", n,
                                    n_out);
    for (int i = 0; i < n_out; i++) {
        gint64 size = split != NULL ? split[i] : dim / n_out;
        TpOpAttrs part = {0};
        int v;

        if (size < 1 || offset + size > dim)
            return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_INVALID,
                                        "the parts do not split the %" G_GINT64_FORMAT
                                        " entries of axis %" G_GINT64_FORMAT,
                                        dim, axis);
        if (!slice_axis(r, in, axis, offset, offset + size, 1, &part.slice, error))
            return FALSE;
        offset += size;
        if (i == 0) {
            *attrs = part;
            continue;
        }
        if (!tp_onnx_reader_add(r, TP_OP_SLICE, inputs, &part, &v, error))
            return FALSE;
        tp_onnx_reader_bind(r, i, v);
    }
    if (offset != dim)
        return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_INVALID,
                                    "the parts cover %" G_GINT64_FORMAT " of the %" G_GINT64_FORMAT
                                    " entries of axis %" G_GINT64_FORMAT,
                                    offset, dim, axis);
    return TRUE;
}

const TpOpClass tp_op_slice = {
    /* .name = */ "Slice",
    /* .n_inputs = */ 1,
    /* .check = */ slice_check,
    /* .forward = */ slice_forward,
    /* .backward = */ slice_backward,
    /* .macs = */ NULL,
    /* .import = */ slice_import,
    /* .param_names = */ {NULL},
    /* .export = */ slice_export,
    /* .channels = */ slice_channels,
    /* .cut = */ NULL,
    /* .lrp_rule = */ TP_OP_LRP_NONE,
    /* .sign = */ TP_OP_SIGN_INPUTS,
    /* .n_values = */ NULL,
    /* .export_opset = */ 0,
};
