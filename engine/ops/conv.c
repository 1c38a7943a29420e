/* conv.c — Conv (ONNX): 2-D cross-correlation of x [N, C, H, W] with
 * weights [out_c, C / groups, kh, kw] and an optional bias [out_c]:
 *
 *   y[n, o, i, j] = b[o] + Σ_{c, p, q} W[o, c, p, q] ·
 *                   x[n, g(o)·C/groups + c, i·s_h − pad_t + p·d_h, j·s_w − pad_l + q·d_w]
 *
 * with zero padding; out_h = (H + pad_t + pad_b − d_h·(kh − 1) − 1) / s_h + 1,
 * likewise out_w (tp-backend.h).
 *
 * Attributes (TpConvAttrs): out_channels and kernel (required, ≥ 1), stride
 * (default 1), pads top/left/bottom/right (default 0), dilation (default 1),
 * groups (default 1; must divide C and out_channels), bias.
 * Parameters: 0 weight, 1 bias (with bias). MACs per sample:
 * out_c · out_h · out_w · (C / groups) · kh · kw.
 */
#include "config.h"

#include "tp-op.h"

/* One output size, or -1 if the dilated kernel does not fit the padded input. */
static int
out_size(int in, int pad_begin, int pad_end, int kernel, int stride, int dilation)
{
    int span = in + pad_begin + pad_end - dilation * (kernel - 1) - 1;

    return span < 0 ? -1 : span / stride + 1;
}

static gboolean
conv_check(TpNode *node, const TpShape *const *inputs, TpOpSignature *sig, GError **error)
{
    TpConvAttrs *a = &node->attrs.conv;
    const TpShape *in = inputs[0];
    int c, out_h, out_w;

    if (in->ndim != 3) {
        g_autofree char *str = tp_shape_to_string(in);

        tp_op_set_error(error, node, "expects a [C, H, W] input, got %s", str);
        return FALSE;
    }
    c = in->dim[0];
    if (a->out_channels < 1) {
        tp_op_set_error(error, node, "out_channels %d: must be at least 1", a->out_channels);
        return FALSE;
    }
    if (a->kernel[0] < 1 || a->kernel[1] < 1) {
        tp_op_set_error(error, node, "kernel %dx%d: both sizes must be at least 1", a->kernel[0],
                        a->kernel[1]);
        return FALSE;
    }
    for (int i = 0; i < 2; i++) {
        if (a->stride[i] == 0)
            a->stride[i] = 1;
        if (a->dilation[i] == 0)
            a->dilation[i] = 1;
    }
    if (a->stride[0] < 0 || a->stride[1] < 0) {
        tp_op_set_error(error, node, "stride %dx%d: must be positive", a->stride[0], a->stride[1]);
        return FALSE;
    }
    if (a->dilation[0] < 0 || a->dilation[1] < 0) {
        tp_op_set_error(error, node, "dilation %dx%d: must be positive", a->dilation[0],
                        a->dilation[1]);
        return FALSE;
    }
    for (int i = 0; i < 4; i++) {
        if (a->pads[i] < 0) {
            tp_op_set_error(error, node, "pads (%d, %d, %d, %d): must not be negative", a->pads[0],
                            a->pads[1], a->pads[2], a->pads[3]);
            return FALSE;
        }
    }
    if (a->groups == 0)
        a->groups = 1;
    if (a->groups < 0) {
        tp_op_set_error(error, node, "groups %d: must be positive", a->groups);
        return FALSE;
    }
    if (c % a->groups != 0) {
        tp_op_set_error(error, node, "groups %d does not divide %d input channels", a->groups, c);
        return FALSE;
    }
    if (a->out_channels % a->groups != 0) {
        tp_op_set_error(error, node, "groups %d does not divide %d output channels", a->groups,
                        a->out_channels);
        return FALSE;
    }
    out_h =
        out_size(in->dim[1], a->pads[0], a->pads[2], a->kernel[0], a->stride[0], a->dilation[0]);
    out_w =
        out_size(in->dim[2], a->pads[1], a->pads[3], a->kernel[1], a->stride[1], a->dilation[1]);
    if (out_h < 1 || out_w < 1) {
        tp_op_set_error(error, node,
                        "kernel %dx%d with dilation %dx%d does not fit the %dx%d input "
                        "padded by (%d, %d, %d, %d)",
                        a->kernel[0], a->kernel[1], a->dilation[0], a->dilation[1], in->dim[1],
                        in->dim[2], a->pads[0], a->pads[1], a->pads[2], a->pads[3]);
        return FALSE;
    }

    sig->output = (TpShape){3, {a->out_channels, out_h, out_w}};
    sig->n_params = a->bias ? 2 : 1;
    sig->params[0] =
        (TpOpParamShape){4, {a->out_channels, c / a->groups, a->kernel[0], a->kernel[1]}};
    sig->trainable[0] = TRUE;
    if (a->bias) {
        sig->params[1] = (TpOpParamShape){1, {a->out_channels}};
        sig->trainable[1] = TRUE;
    }
    return TRUE;
}

/* The kernel geometry for input x [n, c, h, w] and output y. */
static void
conv_geometry(const TpNode *node, const TpTensor *x, const TpTensor *y, TpConvGeometry *g)
{
    const TpConvAttrs *a = &node->attrs.conv;

    *g = (TpConvGeometry){
        .n = x->shape[0],
        .c = x->shape[1],
        .h = x->shape[2],
        .w = x->shape[3],
        .out_c = y->shape[1],
        .out_h = y->shape[2],
        .out_w = y->shape[3],
        .kh = a->kernel[0],
        .kw = a->kernel[1],
        .stride_h = a->stride[0],
        .stride_w = a->stride[1],
        .pad_t = a->pads[0],
        .pad_l = a->pads[1],
        .pad_b = a->pads[2],
        .pad_r = a->pads[3],
        .dil_h = a->dilation[0],
        .dil_w = a->dilation[1],
        .groups = a->groups,
    };
}

static gboolean
conv_forward(const TpNode *node, TpBackend *backend, TpTensor *const *inputs, TpTensor *output,
             TpMode mode, TpOpState *state, GError **error)
{
    TpConvGeometry g;

    conv_geometry(node, inputs[0], output, &g);
    return backend->vt.conv2d_forward(backend->self, &g, inputs[0]->data, node->params[0]->data,
                                      node->n_params > 1 ? node->params[1]->data : NULL,
                                      output->data, error);
}

static gboolean
conv_backward(const TpNode *node, TpBackend *backend, TpTensor *const *inputs,
              const TpTensor *output, const TpTensor *doutput, TpTensor *const *dinputs,
              TpOpState *state, GError **error)
{
    TpConvGeometry g;

    conv_geometry(node, inputs[0], output, &g);
    if (dinputs[0] != NULL &&
        !backend->vt.conv2d_backward_data(backend->self, &g, doutput->data, node->params[0]->data,
                                          dinputs[0]->data, error))
        return FALSE;
    return backend->vt.conv2d_backward_filter(
        backend->self, &g, inputs[0]->data, doutput->data, node->grads[0]->data,
        node->n_params > 1 ? node->grads[1]->data : NULL, error);
}

static guint64
conv_macs(const TpNode *node, const TpShape *input, const TpShape *output)
{
    const TpConvAttrs *a = &node->attrs.conv;

    return (guint64)output->dim[0] * (guint64)output->dim[1] * (guint64)output->dim[2] *
           (guint64)(input->dim[0] / a->groups) * (guint64)a->kernel[0] * (guint64)a->kernel[1];
}

const TpOpClass tp_op_conv = {
    /* .name = */ "Conv",
    /* .n_inputs = */ 1,
    /* .check = */ conv_check,
    /* .forward = */ conv_forward,
    /* .backward = */ conv_backward,
    /* .macs = */ conv_macs,
};
