/* relu.c — Relu (ONNX): y = max(x, 0) elementwise, any shape.
 * backward: dx = dy where y > 0, else 0. No attributes, no parameters.
 */
#include "config.h"

#include <string.h>

#include "tp-op.h"

static gboolean
relu_check(TpNode *node, const TpShape *const *inputs, TpOpSignature *sig, GError **error)
{
    memset(&node->attrs, 0, sizeof node->attrs);
    sig->output = *inputs[0];
    return TRUE;
}

static gboolean
relu_forward(const TpNode *node, TpBackend *backend, TpTensor *const *inputs, TpTensor *output,
             TpMode mode, TpOpState *state, GError **error)
{
    return backend->vt.relu_forward(backend->self, output->numel, inputs[0]->data, output->data,
                                    error);
}

static gboolean
relu_backward(const TpNode *node, TpBackend *backend, TpTensor *const *inputs,
              const TpTensor *output, const TpTensor *doutput, TpTensor *const *dinputs,
              TpOpState *state, GError **error)
{
    if (dinputs[0] == NULL)
        return TRUE;
    return backend->vt.relu_backward(backend->self, output->numel, output->data, doutput->data,
                                     dinputs[0]->data, error);
}

/* ONNX: one input, no attributes. */
static gboolean
relu_import(TpOnnxReader *r, TpOpAttrs *attrs, int *inputs, const float **params, GError **error)
{
    static const char *const known[] = {NULL};

    return tp_onnx_reader_attrs(r, known, error) && tp_onnx_reader_value(r, 0, &inputs[0], error);
}

const TpOpClass tp_op_relu = {
    /* .name = */ "Relu",
    /* .n_inputs = */ 1,
    /* .check = */ relu_check,
    /* .forward = */ relu_forward,
    /* .backward = */ relu_backward,
    /* .macs = */ NULL,
    /* .import = */ relu_import,
    /* .param_names = */ {NULL},
    /* .export = */ NULL,
    /* .channels = */ tp_op_channels_keep,
    /* .cut = */ NULL,
    /* .lrp_rule = */ TP_OP_LRP_PASS,
    /* .sign = */ TP_OP_SIGN_NONNEG,
    /* .n_values = */ NULL,
    /* .export_opset = */ 0,
};
