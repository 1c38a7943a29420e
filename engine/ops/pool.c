/* pool.c — the three pooling ops, sharing the backend's pool2d kernels:
 *
 *   MaxPool:           y[n, c, i, j] = max of x over the window at (i·s_h − pad_t, j·s_w − pad_l)
 *   AveragePool:       y = sum of x over the window / divisor, where the divisor
 *                      is kh·kw with count_include_pad, else the number of window
 *                      cells inside the unpadded input
 *   GlobalAveragePool: y[n, c, 0, 0] = mean of x[n, c, :, :] (no attributes)
 *
 * Attributes (TpPoolAttrs, MaxPool and AveragePool): kernel (required, ≥ 1),
 * stride (default 1), pads top/left/bottom/right (default 0, each smaller than
 * the kernel along its axis, so every window sees the input), ceil_mode,
 * count_include_pad (AveragePool only).
 *
 * Output size per axis, as ONNX: floor mode (in + pad_b + pad_e − k) / s + 1;
 * ceil mode ⌈(in + pad_b + pad_e − k) / s⌉ + 1, minus one if the last window
 * would start at or after in + pad_b (in the end padding), so the last window
 * always starts inside the input or the beginning padding.
 * No MACs are counted for pooling.
 */
#include "config.h"

#include <string.h>

#include "tp-onnx.h"
#include "tp-op.h"

/* The output size along one axis (see the top of the file); -1 if the kernel
 * is larger than the padded input or the size does not fit an int (computed
 * in 64 bits: every operand may come from a file). */
static int
pool_out_size(int in, int pad_begin, int pad_end, int kernel, int stride, gboolean ceil_mode)
{
    gint64 span = (gint64)in + pad_begin + pad_end - kernel;
    gint64 out;

    if (span < 0)
        return -1;
    out = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
    if (ceil_mode && (out - 1) * stride >= (gint64)in + pad_begin)
        out--;
    return out > G_MAXINT ? -1 : (int)out;
}

static gboolean
require_image(TpNode *node, const TpShape *in, GError **error)
{
    g_autofree char *str = NULL;

    if (in->ndim == 3)
        return TRUE;
    str = tp_shape_to_string(in);
    tp_op_set_error(error, node, "expects a [C, H, W] input, got %s", str);
    return FALSE;
}

/* MaxPool and AveragePool. */
static gboolean
window_pool_check(TpNode *node, const TpShape *const *inputs, TpOpSignature *sig, GError **error)
{
    TpPoolAttrs *a = &node->attrs.pool;
    const TpShape *in = inputs[0];
    int out_h, out_w;

    if (!require_image(node, in, error))
        return FALSE;
    if (a->kernel[0] < 1 || a->kernel[1] < 1) {
        tp_op_set_error(error, node, "kernel %dx%d: both sizes must be at least 1", a->kernel[0],
                        a->kernel[1]);
        return FALSE;
    }
    for (int i = 0; i < 2; i++) {
        if (a->stride[i] == 0)
            a->stride[i] = 1;
    }
    if (a->stride[0] < 0 || a->stride[1] < 0) {
        tp_op_set_error(error, node, "stride %dx%d: must be positive", a->stride[0], a->stride[1]);
        return FALSE;
    }
    for (int i = 0; i < 4; i++) {
        int k = a->kernel[i % 2];

        if (a->pads[i] < 0 || a->pads[i] >= k) {
            tp_op_set_error(error, node,
                            "pads (%d, %d, %d, %d): each must be in [0, kernel size) for "
                            "kernel %dx%d",
                            a->pads[0], a->pads[1], a->pads[2], a->pads[3], a->kernel[0],
                            a->kernel[1]);
            return FALSE;
        }
    }
    if (node->op == TP_OP_MAX_POOL && a->count_include_pad) {
        tp_op_set_error(error, node, "count_include_pad applies to AveragePool only");
        return FALSE;
    }
    out_h =
        pool_out_size(in->dim[1], a->pads[0], a->pads[2], a->kernel[0], a->stride[0], a->ceil_mode);
    out_w =
        pool_out_size(in->dim[2], a->pads[1], a->pads[3], a->kernel[1], a->stride[1], a->ceil_mode);
    if (out_h < 1 || out_w < 1) {
        tp_op_set_error(error, node,
                        "kernel %dx%d is larger than the %dx%d input padded by (%d, %d, %d, %d)",
                        a->kernel[0], a->kernel[1], in->dim[1], in->dim[2], a->pads[0], a->pads[1],
                        a->pads[2], a->pads[3]);
        return FALSE;
    }
    sig->output = (TpShape){3, {in->dim[0], out_h, out_w}};
    return TRUE;
}

static gboolean
global_pool_check(TpNode *node, const TpShape *const *inputs, TpOpSignature *sig, GError **error)
{
    if (!require_image(node, inputs[0], error))
        return FALSE;
    memset(&node->attrs, 0, sizeof node->attrs);
    sig->output = (TpShape){3, {inputs[0]->dim[0], 1, 1}};
    return TRUE;
}

void
tp_pool_geometry(const TpNode *node, int batch, const TpShape *in, const TpShape *out,
                 TpPoolGeometry *g)
{
    const TpPoolAttrs *a = &node->attrs.pool;

    *g = (TpPoolGeometry){
        .mode = node->op == TP_OP_MAX_POOL ? TP_POOL_MAX : TP_POOL_AVERAGE,
        .n = batch,
        .c = in->dim[0],
        .h = in->dim[1],
        .w = in->dim[2],
        .out_h = out->dim[1],
        .out_w = out->dim[2],
        .stride_h = 1,
        .stride_w = 1,
    };
    if (node->op == TP_OP_GLOBAL_AVERAGE_POOL) {
        g->kh = g->h;
        g->kw = g->w;
        return;
    }
    g->kh = a->kernel[0];
    g->kw = a->kernel[1];
    g->stride_h = a->stride[0];
    g->stride_w = a->stride[1];
    g->pad_t = a->pads[0];
    g->pad_l = a->pads[1];
    g->pad_b = a->pads[2];
    g->pad_r = a->pads[3];
    g->count_include_pad = a->count_include_pad;
}

/* The kernel geometry for input x [n, c, h, w] and output y. */
static void
pool_geometry(const TpNode *node, const TpTensor *x, const TpTensor *y, TpPoolGeometry *g)
{
    TpShape in = {3, {x->shape[1], x->shape[2], x->shape[3]}};
    TpShape out = {3, {y->shape[1], y->shape[2], y->shape[3]}};

    tp_pool_geometry(node, x->shape[0], &in, &out, g);
}

static gboolean
pool_forward(const TpNode *node, TpBackend *backend, TpTensor *const *inputs, TpTensor *output,
             TpMode mode, TpOpState *state, GError **error)
{
    TpPoolGeometry g;

    pool_geometry(node, inputs[0], output, &g);
    return backend->vt.pool2d_forward(backend->self, &g, inputs[0]->data, output->data, error);
}

static gboolean
pool_backward(const TpNode *node, TpBackend *backend, TpTensor *const *inputs,
              const TpTensor *output, const TpTensor *doutput, TpTensor *const *dinputs,
              TpOpState *state, GError **error)
{
    TpPoolGeometry g;

    if (dinputs[0] == NULL)
        return TRUE;
    pool_geometry(node, inputs[0], output, &g);
    return backend->vt.pool2d_backward(backend->self, &g, inputs[0]->data, output->data,
                                       doutput->data, dinputs[0]->data, error);
}

static void
window_pool_export(const TpNode *node, TpOnnxNodeWriter *w)
{
    const TpPoolAttrs *pool = &node->attrs.pool;

    tp_onnx_writer_ints(w, "kernel_shape", pool->kernel, 2);
    tp_onnx_writer_ints(w, "strides", pool->stride, 2);
    tp_onnx_writer_ints(w, "pads", pool->pads, 4);
    tp_onnx_writer_int(w, "ceil_mode", pool->ceil_mode);
    if (node->op == TP_OP_AVERAGE_POOL)
        tp_onnx_writer_int(w, "count_include_pad", pool->count_include_pad);
}

/* ONNX: 2-D windows, no dilation; a zero Pad before an AveragePool is folded
 * into its padding (its zeros then count in the average). */
static gboolean
window_pool_import(TpOnnxReader *r, gboolean average, TpOpAttrs *attrs, int *inputs,
                   GError **error)
{
    static const char *const known[] = {"kernel_shape", "strides",           "pads",
                                        "ceil_mode",    "dilations",         "storage_order",
                                        "auto_pad",     "count_include_pad", NULL};
    TpPoolAttrs *pool = &attrs->pool;
    int dilation[2] = {1, 1};
    gint64 ceil_mode, storage_order, include_pad;
    const int *folded;

    if (!tp_onnx_reader_attrs(r, known, error) || !tp_onnx_reader_value(r, 0, &inputs[0], error))
        return FALSE;
    if (!tp_onnx_reader_has_attr(r, "kernel_shape"))
        return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_INVALID, "kernel_shape is missing");
    pool->stride[0] = pool->stride[1] = 1;
    if (!tp_onnx_reader_ints(r, "kernel_shape", 2, 1, pool->kernel, error) ||
        !tp_onnx_reader_ints(r, "strides", 2, 1, pool->stride, error) ||
        !tp_onnx_reader_ints(r, "pads", 4, 0, pool->pads, error) ||
        !tp_onnx_reader_ints(r, "dilations", 2, 1, dilation, error) ||
        !tp_onnx_reader_int(r, "ceil_mode", 0, &ceil_mode, error) ||
        !tp_onnx_reader_int(r, "storage_order", 0, &storage_order, error) ||
        !tp_onnx_reader_int(r, "count_include_pad", 0, &include_pad, error))
        return FALSE;
    if (dilation[0] != 1 || dilation[1] != 1 || storage_order != 0)
        return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_UNSUPPORTED,
                                    "dilated pooling and column-major storage are not supported");
    const TpShape *in = tp_onnx_reader_shape(r, inputs[0]);
    if (in->ndim != 3)
        return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_UNSUPPORTED,
                                    "only 2-D pooling of [N, C, H, W] inputs is supported");
    if (!tp_onnx_reader_auto_pad(r, in, pool->kernel, pool->stride, dilation, pool->pads, error))
        return FALSE;
    folded = tp_onnx_reader_folded_pads(r);
    if (folded != NULL) {
        gboolean own = pool->pads[0] || pool->pads[1] || pool->pads[2] || pool->pads[3];
        if (!average || (own && !include_pad))
            return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_UNSUPPORTED,
                                        "a Pad before it cannot be folded into its own padding");
        for (int i = 0; i < 4; i++)
            pool->pads[i] += folded[i];
        include_pad = 1; /* the Pad's zeros count in the average */
    }
    pool->ceil_mode = ceil_mode != 0;
    pool->count_include_pad = include_pad != 0;
    return TRUE;
}

static gboolean
max_pool_import(TpOnnxReader *r, TpOpAttrs *attrs, int *inputs, const float **params,
                GError **error)
{
    return window_pool_import(r, FALSE, attrs, inputs, error);
}

static gboolean
average_pool_import(TpOnnxReader *r, TpOpAttrs *attrs, int *inputs, const float **params,
                    GError **error)
{
    return window_pool_import(r, TRUE, attrs, inputs, error);
}

/* ONNX: one input, no attributes. */
static gboolean
global_pool_import(TpOnnxReader *r, TpOpAttrs *attrs, int *inputs, const float **params,
                   GError **error)
{
    static const char *const known[] = {NULL};

    return tp_onnx_reader_attrs(r, known, error) && tp_onnx_reader_value(r, 0, &inputs[0], error);
}

const TpOpClass tp_op_max_pool = {
    /* .name = */ "MaxPool",
    /* .n_inputs = */ 1,
    /* .check = */ window_pool_check,
    /* .forward = */ pool_forward,
    /* .backward = */ pool_backward,
    /* .macs = */ NULL,
    /* .import = */ max_pool_import,
    /* .param_names = */ {NULL},
    /* .export = */ window_pool_export,
    /* .channels = */ tp_op_channels_keep,
    /* .cut = */ NULL,
    /* .lrp_rule = */ TP_OP_LRP_WINNER,
    /* .sign = */ TP_OP_SIGN_INPUTS,
    /* .n_values = */ NULL,
    /* .export_opset = */ 0,
};

const TpOpClass tp_op_average_pool = {
    /* .name = */ "AveragePool",
    /* .n_inputs = */ 1,
    /* .check = */ window_pool_check,
    /* .forward = */ pool_forward,
    /* .backward = */ pool_backward,
    /* .macs = */ NULL,
    /* .import = */ average_pool_import,
    /* .param_names = */ {NULL},
    /* .export = */ window_pool_export,
    /* .channels = */ tp_op_channels_keep,
    /* .cut = */ NULL,
    /* .lrp_rule = */ TP_OP_LRP_AVERAGE,
    /* .sign = */ TP_OP_SIGN_INPUTS,
    /* .n_values = */ NULL,
    /* .export_opset = */ 0,
};

const TpOpClass tp_op_global_average_pool = {
    /* .name = */ "GlobalAveragePool",
    /* .n_inputs = */ 1,
    /* .check = */ global_pool_check,
    /* .forward = */ pool_forward,
    /* .backward = */ pool_backward,
    /* .macs = */ NULL,
    /* .import = */ global_pool_import,
    /* .param_names = */ {NULL},
    /* .export = */ NULL,
    /* .channels = */ tp_op_channels_keep,
    /* .cut = */ NULL,
    /* .lrp_rule = */ TP_OP_LRP_AVERAGE,
    /* .sign = */ TP_OP_SIGN_INPUTS,
    /* .n_values = */ NULL,
    /* .export_opset = */ 0,
};
