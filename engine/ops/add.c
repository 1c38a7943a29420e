/* add.c — Add (ONNX): y = a + b, a residual connection of two values of one
 * shape on the backend's add, or with NumPy broadcasting and a constant
 * operand on the binary family as the other elementwise ops (binary.c has
 * the shapes, the constant and the channels). backward: da = dy, db = dy,
 * summed over broadcast axes. No attributes; parameter 0: the constant.
 *
 * LRP: ε-proportional over the two summed values (tp-lrp.c); an Add that
 * broadcasts or adds a constant has no rule there.
 */
#include "config.h"

#include <string.h>

#include "tp-onnx.h"
#include "tp-op.h"

/* Two values of one shape: the plain residual Add. */
static gboolean
is_plain(const TpNode *node, TpTensor *const *inputs)
{
    return !node->attrs.binary.constant && inputs[0]->numel == inputs[1]->numel;
}

static gboolean
add_forward(const TpNode *node, TpBackend *backend, TpTensor *const *inputs, TpTensor *output,
            TpMode mode, TpOpState *state, GError **error)
{
    if (!is_plain(node, inputs))
        return tp_binary_forward(node, TP_BINARY_ADD, backend, inputs, output, error);
    return backend->vt.add(backend->self, output->numel, inputs[0]->data, inputs[1]->data,
                           output->data, error);
}

static gboolean
add_backward(const TpNode *node, TpBackend *backend, TpTensor *const *inputs,
             const TpTensor *output, const TpTensor *doutput, TpTensor *const *dinputs,
             TpOpState *state, GError **error)
{
    if (!is_plain(node, inputs))
        return tp_binary_backward(node, TP_BINARY_ADD, backend, inputs, doutput, dinputs, error);
    for (int i = 0; i < 2; i++) {
        if (dinputs[i] != NULL && !backend->vt.copy(backend->self, dinputs[i]->data, doutput->data,
                                                    doutput->numel, error))
            return FALSE;
    }
    return TRUE;
}

/* ONNX: as the other binary ops (a MatMul's bias Add is taken by the MatMul
 * import before). */
static gboolean
add_import(TpOnnxReader *r, TpOpAttrs *attrs, int *inputs, const float **params, GError **error)
{
    return tp_binary_import(r, TRUE, attrs, inputs, params, error);
}

const TpOpClass tp_op_add = {
    /* .name = */ "Add",
    /* .n_inputs = */ 2,
    /* .check = */ tp_binary_check,
    /* .forward = */ add_forward,
    /* .backward = */ add_backward,
    /* .macs = */ NULL,
    /* .import = */ add_import,
    /* .param_names = */ {"constant"},
    /* .export = */ NULL,
    /* .channels = */ tp_binary_channels,
    /* .cut = */ tp_binary_cut,
    /* .lrp_rule = */ TP_OP_LRP_SUM,
    /* .sign = */ TP_OP_SIGN_INPUTS,
    /* .n_values = */ tp_binary_n_values,
    /* .export_opset = */ 0,
};
