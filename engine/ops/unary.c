/* unary.c — the pointwise activations and functions of ONNX that differ only
 * in their function: Clip, Sigmoid, HardSigmoid, HardSwish, LeakyRelu, Tanh,
 * Erf, Sqrt and Pow (a constant exponent), each y = f(x) elementwise on any
 * shape, run on the backend's unary family (TpUnaryFunction in
 * tp-backend.h has the formulas and the derivatives at kinks).
 *
 * backward: dx = f'(x) · dy, read from y or from x as the family says.
 * Attributes: TpUnaryAttrs (Clip's bounds, LeakyRelu's slope, HardSigmoid's
 * alpha and beta, Pow's exponent); no parameters. The channels are the
 * input's (KEEP), and LRP passes relevance through unchanged, as through a
 * Relu: every one of them maps each element to itself. Relu keeps its own
 * class (relu.c): it runs on required kernels every backend has.
 */
#include "config.h"

#include <math.h>
#include <string.h>

#include "tp-onnx.h"
#include "tp-op.h"

/* The function of node's op, with its parameters. */
static TpUnaryOp
unary_op(const TpNode *node)
{
    const TpUnaryAttrs *a = &node->attrs.unary;
    TpUnaryOp op = {0, a->alpha, a->beta, a->lo, a->hi};

    switch (node->op) {
    case TP_OP_CLIP:
        op.function = TP_UNARY_CLIP;
        break;
    case TP_OP_SIGMOID:
        op.function = TP_UNARY_SIGMOID;
        break;
    case TP_OP_HARD_SIGMOID:
        op.function = TP_UNARY_HARD_SIGMOID;
        break;
    case TP_OP_HARD_SWISH:
        op.function = TP_UNARY_HARD_SWISH;
        break;
    case TP_OP_LEAKY_RELU:
        op.function = TP_UNARY_LEAKY_RELU;
        break;
    case TP_OP_TANH:
        op.function = TP_UNARY_TANH;
        break;
    case TP_OP_ERF:
        op.function = TP_UNARY_ERF;
        break;
    case TP_OP_SQRT:
        op.function = TP_UNARY_SQRT;
        break;
    case TP_OP_POW:
        op.function = TP_UNARY_POW;
        break;
    default:
        g_return_val_if_reached(op);
    }
    return op;
}

static gboolean
unary_check(TpNode *node, const TpShape *const *inputs, TpOpSignature *sig, GError **error)
{
    const TpUnaryAttrs *a = &node->attrs.unary;

    if (node->op == TP_OP_CLIP && !(a->lo <= a->hi)) {
        tp_op_set_error(error, node, "min %g is not at most max %g", a->lo, a->hi);
        return FALSE;
    }
    sig->output = *inputs[0];
    return TRUE;
}

static gboolean
unary_forward(const TpNode *node, TpBackend *backend, TpTensor *const *inputs, TpTensor *output,
              TpMode mode, TpOpState *state, GError **error)
{
    TpUnaryOp op = unary_op(node);

    return tp_backend_has_family(backend, TP_KERNELS_UNARY, error) &&
           backend->vt.unary_forward(backend->self, &op, output->numel, inputs[0]->data,
                                     output->data, error);
}

static gboolean
unary_backward(const TpNode *node, TpBackend *backend, TpTensor *const *inputs,
               const TpTensor *output, const TpTensor *doutput, TpTensor *const *dinputs,
               TpOpState *state, GError **error)
{
    TpUnaryOp op = unary_op(node);

    if (dinputs[0] == NULL)
        return TRUE;
    return backend->vt.unary_backward(backend->self, &op, output->numel, inputs[0]->data,
                                      output->data, doutput->data, dinputs[0]->data, error);
}

/* ---------------------------------------------------------------- ONNX */

/* One input, no attributes. */
static gboolean
plain_import(TpOnnxReader *r, TpOpAttrs *attrs, int *inputs, const float **params, GError **error)
{
    static const char *const known[] = {NULL};

    return tp_onnx_reader_attrs(r, known, error) && tp_onnx_reader_value(r, 0, &inputs[0], error);
}

/* A float scalar constant input i (a bound, an exponent) into *out, left
 * untouched when the input is absent. */
static gboolean
scalar_input(TpOnnxReader *r, int i, const char *what, float *out, GError **error)
{
    const TpOnnxConst *c;

    if (!tp_onnx_reader_has_input(r, i))
        return TRUE;
    c = tp_onnx_reader_constant(r, i);
    if (c == NULL || c->f == NULL || c->numel != 1)
        return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_UNSUPPORTED,
                                    "%s '%s' must be a float32 constant of one element", what,
                                    tp_onnx_reader_input_name(r, i));
    *out = c->f[0];
    return TRUE;
}

/* Clip: the bounds are inputs 1 and 2 from opset 11, attributes before. */
static gboolean
clip_import(TpOnnxReader *r, TpOpAttrs *attrs, int *inputs, const float **params, GError **error)
{
    static const char *const known[] = {"min", "max", NULL};
    TpUnaryAttrs *a = &attrs->unary;

    if (!tp_onnx_reader_attrs(r, known, error) || !tp_onnx_reader_value(r, 0, &inputs[0], error))
        return FALSE;
    if (tp_onnx_reader_opset(r) < 11)
        return tp_onnx_reader_float(r, "min", -INFINITY, &a->lo, error) &&
               tp_onnx_reader_float(r, "max", INFINITY, &a->hi, error);
    a->lo = -INFINITY;
    a->hi = INFINITY;
    return scalar_input(r, 1, "min", &a->lo, error) && scalar_input(r, 2, "max", &a->hi, error);
}

static void
clip_export(const TpNode *node, TpOnnxNodeWriter *w)
{
    tp_onnx_writer_scalar_input(w, "min", node->attrs.unary.lo);
    tp_onnx_writer_scalar_input(w, "max", node->attrs.unary.hi);
}

static gboolean
hard_sigmoid_import(TpOnnxReader *r, TpOpAttrs *attrs, int *inputs, const float **params,
                    GError **error)
{
    static const char *const known[] = {"alpha", "beta", NULL};

    return tp_onnx_reader_attrs(r, known, error) && tp_onnx_reader_value(r, 0, &inputs[0], error) &&
           tp_onnx_reader_float(r, "alpha", 0.2f, &attrs->unary.alpha, error) &&
           tp_onnx_reader_float(r, "beta", 0.5f, &attrs->unary.beta, error);
}

static void
hard_sigmoid_export(const TpNode *node, TpOnnxNodeWriter *w)
{
    tp_onnx_writer_float(w, "alpha", node->attrs.unary.alpha);
    tp_onnx_writer_float(w, "beta", node->attrs.unary.beta);
}

static gboolean
leaky_relu_import(TpOnnxReader *r, TpOpAttrs *attrs, int *inputs, const float **params,
                  GError **error)
{
    static const char *const known[] = {"alpha", NULL};

    return tp_onnx_reader_attrs(r, known, error) && tp_onnx_reader_value(r, 0, &inputs[0], error) &&
           tp_onnx_reader_float(r, "alpha", 0.01f, &attrs->unary.alpha, error);
}

static void
leaky_relu_export(const TpNode *node, TpOnnxNodeWriter *w)
{
    tp_onnx_writer_float(w, "alpha", node->attrs.unary.alpha);
}

/* Pow: the exponent must be a constant scalar (x², the variance of a
 * decomposed LayerNormalization). */
static gboolean
pow_import(TpOnnxReader *r, TpOpAttrs *attrs, int *inputs, const float **params, GError **error)
{
    static const char *const known[] = {NULL};

    if (!tp_onnx_reader_attrs(r, known, error) || !tp_onnx_reader_value(r, 0, &inputs[0], error))
        return FALSE;
    if (!tp_onnx_reader_has_input(r, 1))
        return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_INVALID, "it has no exponent");
    return scalar_input(r, 1, "the exponent", &attrs->unary.alpha, error);
}

static void
pow_export(const TpNode *node, TpOnnxNodeWriter *w)
{
    tp_onnx_writer_scalar_input(w, "exponent", node->attrs.unary.alpha);
}

/* The classes: they differ in name, import, export, LRP rule and the sign
 * of y. The activations pass relevance on; Erf, Sqrt and Pow, which are
 * parts of a GELU or a decomposed normalization, have no sound rule alone. */
#define UNARY_CLASS(var, onnx, import_fn, export_fn, lrp, sign_, opset)                            \
    const TpOpClass var = {                                                                        \
        /* .name = */ onnx,                                                                        \
        /* .n_inputs = */ 1,                                                                       \
        /* .check = */ unary_check,                                                                \
        /* .forward = */ unary_forward,                                                            \
        /* .backward = */ unary_backward,                                                          \
        /* .macs = */ NULL,                                                                        \
        /* .import = */ import_fn,                                                                 \
        /* .param_names = */ {NULL},                                                               \
        /* .export = */ export_fn,                                                                 \
        /* .channels = */ tp_op_channels_keep,                                                     \
        /* .cut = */ NULL,                                                                         \
        /* .lrp_rule = */ lrp,                                                                     \
        /* .sign = */ sign_,                                                                       \
        /* .n_values = */ NULL,                                                                    \
        /* .export_opset = */ opset,                                                               \
    }

/* Clip's sign depends on its bounds: ANY is the safe statement. */
#define PASS TP_OP_LRP_PASS
#define NONE TP_OP_LRP_NONE
UNARY_CLASS(tp_op_clip, "Clip", clip_import, clip_export, PASS, TP_OP_SIGN_ANY, 0);
UNARY_CLASS(tp_op_sigmoid, "Sigmoid", plain_import, NULL, PASS, TP_OP_SIGN_NONNEG, 0);
UNARY_CLASS(tp_op_hard_sigmoid, "HardSigmoid", hard_sigmoid_import, hard_sigmoid_export, PASS,
            TP_OP_SIGN_NONNEG, 0);
UNARY_CLASS(tp_op_hard_swish, "HardSwish", plain_import, NULL, PASS, TP_OP_SIGN_ANY, 14);
UNARY_CLASS(tp_op_leaky_relu, "LeakyRelu", leaky_relu_import, leaky_relu_export, PASS,
            TP_OP_SIGN_ANY, 0);
UNARY_CLASS(tp_op_tanh, "Tanh", plain_import, NULL, PASS, TP_OP_SIGN_ANY, 0);
UNARY_CLASS(tp_op_erf, "Erf", plain_import, NULL, NONE, TP_OP_SIGN_ANY, 0);
UNARY_CLASS(tp_op_sqrt, "Sqrt", plain_import, NULL, NONE, TP_OP_SIGN_NONNEG, 0);
UNARY_CLASS(tp_op_pow, "Pow", pow_import, pow_export, NONE, TP_OP_SIGN_ANY, 0);
