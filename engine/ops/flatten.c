/* flatten.c — Flatten (ONNX, axis 1): [N, C, H, W] -> [N, C·H·W] in NCHW
 * order (a 1-D input passes unchanged). The values are copied, so every value
 * on the tape has its own memory. backward: dx = dy, reshaped.
 * No attributes, no parameters.
 */
#include "config.h"

#include <string.h>

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

static gboolean
flatten_forward(const TpNode *node, TpBackend *backend, TpTensor *const *inputs, TpTensor *output,
                TpMode mode, TpOpState *state, GError **error)
{
    return backend->vt.copy(backend->self, output->data, inputs[0]->data, output->numel, error);
}

static gboolean
flatten_backward(const TpNode *node, TpBackend *backend, TpTensor *const *inputs,
                 const TpTensor *output, const TpTensor *doutput, TpTensor *const *dinputs,
                 TpOpState *state, GError **error)
{
    if (dinputs[0] == NULL)
        return TRUE;
    return backend->vt.copy(backend->self, dinputs[0]->data, doutput->data, doutput->numel, error);
}

const TpOpClass tp_op_flatten = {
    /* .name = */ "Flatten",
    /* .n_inputs = */ 1,
    /* .check = */ flatten_check,
    /* .forward = */ flatten_forward,
    /* .backward = */ flatten_backward,
    /* .macs = */ NULL,
};
