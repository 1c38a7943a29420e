/* tp-model.h — a network as a graph of ops in topological order, run on one
 * backend: forward (inference or training), backward, the tape of activations
 * and gradients that criteria read, and softmax cross-entropy.
 *
 * Values. Every op reads one or two values and writes one new value; value 0
 * is the model input. A value's shape is per sample (batch excluded): 3-D
 * [C, H, W] for feature maps, 1-D [F] after Flatten and Gemm.
 *
 * Order of calls:
 *  1. tp_model_new(), then tp_model_add() once per op, in topological order;
 *     each op's parameters are created zeroed and set with tp_tensor_upload()
 *     on tp_model_get_param() (BatchNorm's scale and var start at 1).
 *  2. tp_model_forward() runs every op for a batch and keeps every value on the
 *     tape. Memory is planned per batch size and reused while the batch does
 *     not grow: no allocation per step once shapes are known.
 *  3. Training: tp_model_loss() (or a caller-set gradient of any value), then
 *     tp_model_backward(), which fills the gradient of every value up to the
 *     input and of every trainable parameter. Then tp_sgd_step().
 */
#ifndef TP_MODEL_H
#define TP_MODEL_H

#include <glib.h>

#include "tp-backend.h"
#include "tp-comm.h"
#include "tp-tensor.h"

G_BEGIN_DECLS

#define TP_MODEL_ERROR (tp_model_error_quark())
GQuark tp_model_error_quark(void);

typedef enum {
    TP_MODEL_ERROR_INVALID, /* a bad op, attribute, input or shape; the message names the op */
    TP_MODEL_ERROR_STATE,   /* a call out of order, e.g. backward before forward */
} TpModelError;

typedef enum {
    TP_OP_CONV,
    TP_OP_BATCH_NORM,
    TP_OP_RELU,
    TP_OP_MAX_POOL,
    TP_OP_AVERAGE_POOL,
    TP_OP_GLOBAL_AVERAGE_POOL,
    TP_OP_FLATTEN,
    TP_OP_GEMM,
    TP_OP_ADD,
    TP_OP_DROPOUT,
    TP_OP_SOFTMAX,
    TP_OP_CLIP,
    TP_OP_SIGMOID,
    TP_OP_HARD_SIGMOID,
    TP_OP_HARD_SWISH,
    TP_OP_LEAKY_RELU,
    TP_OP_TANH,
    TP_OP_ERF,
    TP_OP_SQRT,
    TP_OP_POW,
    TP_OP_MUL,
    TP_OP_SUB,
    TP_OP_DIV,
    TP_OP_REDUCE_MEAN,
    TP_N_OPS
} TpOpType;

typedef enum {
    TP_MODE_EVAL,  /* BatchNorm uses running statistics, Dropout is the identity */
    TP_MODE_TRAIN, /* BatchNorm uses batch statistics and updates running ones; Dropout drops */
    /* EVAL for a caller that reads only the output and the logits: a Conv
     * whose output only a BatchNormalization reads runs as one Conv with the
     * normalization folded into its weights and bias, and a Relu that alone
     * reads the result is applied as the Conv writes it. The values between
     * are then left unspecified, and no backward may follow. */
    TP_MODE_INFER,
} TpMode;

#define TP_SHAPE_MAX_DIMS 3

/* A per-sample shape: ndim 3 ([C, H, W]) or 1 ([F]). */
typedef struct {
    int ndim;
    int dim[TP_SHAPE_MAX_DIMS];
} TpShape;

/* Attributes, one struct per op kind that has any. Zero-initialized fields
 * take the defaults noted. */
typedef struct {
    int out_channels;
    int kernel[2];   /* kh, kw */
    int stride[2];   /* default 1 */
    int pads[4];     /* top, left, bottom, right; default 0 */
    int dilation[2]; /* default 1 */
    int groups;      /* default 1 */
    gboolean bias;
} TpConvAttrs;

typedef struct {
    int kernel[2];
    int stride[2]; /* default 1 */
    int pads[4];   /* top, left, bottom, right */
    gboolean ceil_mode;
    gboolean count_include_pad; /* AveragePool only */
} TpPoolAttrs;

typedef struct {
    float epsilon;  /* default 1e-5 */
    float momentum; /* ONNX convention, weight of the old running value; default 0.9 */
} TpBatchNormAttrs;

typedef struct {
    int out_features;
    gboolean bias;
} TpGemmAttrs;

typedef struct {
    float ratio; /* probability of dropping, in [0, 1) */
} TpDropoutAttrs;

/* The pointwise ops (Clip, Sigmoid, HardSigmoid, HardSwish, LeakyRelu,
 * Tanh, Erf, Sqrt, Pow). Taken as given, with no zero defaults (the ONNX
 * import fills ONNX's). */
typedef struct {
    float alpha; /* LeakyRelu's slope, HardSigmoid's alpha, Pow's exponent */
    float beta;  /* HardSigmoid's beta */
    float lo, hi; /* Clip's bounds, lo <= hi; either may be infinite */
} TpUnaryAttrs;

/* The elementwise binary ops (Add, Sub, Mul, Div), NumPy-broadcast. With
 * `constant` the op reads one value and its second operand is parameter 0,
 * a constant of per-sample shape const_shape (as many axes as the value,
 * each 1 or the value's); otherwise it reads two values. */
typedef struct {
    gboolean constant;
    TpShape const_shape;
} TpBinaryAttrs;

/* ReduceMean over the per-sample axes in `axes` (bit d: axis d of the
 * per-sample shape; the batch axis is never reduced). keepdims (ONNX's
 * default) leaves each reduced axis as 1; `squeeze` removes it. */
typedef struct {
    guint axes;
    gboolean squeeze;
} TpReduceAttrs;

typedef union {
    TpConvAttrs conv;
    TpPoolAttrs pool;
    TpBatchNormAttrs batch_norm;
    TpGemmAttrs gemm;
    TpDropoutAttrs dropout;
    TpUnaryAttrs unary;
    TpBinaryAttrs binary;
    TpReduceAttrs reduce;
} TpOpAttrs;

#define TP_NODE_MAX_INPUTS 2
#define TP_NODE_MAX_PARAMS 4

/* One op of the graph. Read-only outside the engine.
 * Parameters, by op:
 *   Conv:      0 weight [out_c, in_c / groups, kh, kw], 1 bias [out_c] (if bias)
 *   BatchNorm: 0 scale [C], 1 bias [C], 2 running mean [C], 3 running var [C]
 *   Gemm:      0 weight [out, in] (y = x Wᵀ + b), 1 bias [out] (if bias)
 * Trainable: all but BatchNorm's running statistics. grads[i] has the shape
 * of params[i], exists once a backward pass has run, and is NULL for the
 * running statistics. */
typedef struct {
    TpOpType op;
    char *name;
    int n_inputs;
    int inputs[TP_NODE_MAX_INPUTS]; /* value ids */
    int output;                     /* value id */
    int n_params;
    TpTensor *params[TP_NODE_MAX_PARAMS];
    TpTensor *grads[TP_NODE_MAX_PARAMS];
    /* Last, so that a new op's attributes, which may grow the union, move
     * no member before it (docs/plugin-abi.md). */
    TpOpAttrs attrs;
} TpNode;

typedef struct _TpModel TpModel;

/* The op's ONNX name ("Conv", "BatchNormalization", ...). */
const char *tp_op_type_to_string(TpOpType op);

/* A model whose input (value 0) has per-sample shape [channels, height, width]. */
TpModel *tp_model_new(TpBackend *backend, int channels, int height, int width);
void tp_model_free(TpModel *model);

/* Appends an op reading values inputs[0..] (one, or two for Add) and returns
 * the id of the value it writes, or -1 with error naming the op if the
 * inputs, attributes or shapes do not fit. attrs may be NULL for ops without
 * attributes. name may be NULL ("<op>_<index>" is used). */
int tp_model_add(TpModel *model, TpOpType op, const char *name, const int *inputs,
                 const TpOpAttrs *attrs, GError **error);

TpBackend *tp_model_get_backend(const TpModel *model);
guint tp_model_get_n_nodes(const TpModel *model);
const TpNode *tp_model_get_node(const TpModel *model, guint index);
guint tp_model_get_n_values(const TpModel *model);
const TpShape *tp_model_get_shape(const TpModel *model, int value);
/* The last op's output. */
int tp_model_get_output(const TpModel *model);

/* Parameter i of node `index` (borrowed), or NULL if it has none. */
TpTensor *tp_model_get_param(TpModel *model, guint index, int i);
/* Its gradient from the last backward pass (borrowed), or NULL. */
TpTensor *tp_model_get_param_grad(TpModel *model, guint index, int i);
gboolean tp_model_param_is_trainable(const TpModel *model, guint index, int i);

/* Seeds the dropout masks; training forwards draw a new mask each call. */
void tp_model_set_seed(TpModel *model, guint64 seed);

/* The communicator whose ranks' batch statistics BatchNormalization combines
 * in training forwards (synchronized batch norm, docs/scaling.md); NULL, the
 * default: each process normalizes with its own. comm is borrowed. Every
 * rank must then run the same training forwards and backwards. */
void tp_model_set_sync_comm(TpModel *model, TpComm *comm);

/* Runs all ops on a batch of `batch` samples, input in host memory
 * ([batch, C, H, W] floats). Every value stays on the tape, except those
 * inside the ops fused in TP_MODE_INFER. */
gboolean tp_model_forward(TpModel *model, const float *input, int batch, TpMode mode,
                          GError **error);

/* The tape: value `value` from the last forward ([batch, per-sample shape]),
 * and its gradient from the last backward (NULL before one). Borrowed. */
TpTensor *tp_model_get_value(TpModel *model, int value);
TpTensor *tp_model_get_grad(TpModel *model, int value);

/* Allocates (if needed) and returns the gradient tensor of `value` for the
 * current batch, for a caller that seeds backward itself. */
TpTensor *tp_model_ensure_grad(TpModel *model, int value, GError **error);

/* The value the loss reads: the output, or the input of a final Softmax. */
int tp_model_get_logits(const TpModel *model);

/* Mean softmax cross-entropy of the logits against labels (host, one per
 * sample of the last forward, each in [0, classes)), with label smoothing.
 * Writes the loss and seeds the logits' gradient for tp_model_backward(). */
gboolean tp_model_loss(TpModel *model, const gint32 *labels, float smoothing, double *out_loss,
                       GError **error);

/* Back-propagates from value `from` (whose gradient must have been seeded, by
 * tp_model_loss() or through tp_model_ensure_grad()) to the input: fills the
 * gradient of every value `from` depends on and of every trainable parameter
 * of the ops on that path. The last forward must have been in the mode the
 * gradients are wanted for (BatchNorm backward uses batch statistics, so
 * train mode for BatchNorm models). */
gboolean tp_model_backward(TpModel *model, int from, GError **error);

/* The same, for training: fills the gradient of every trainable parameter,
 * computes none of the input (unless a BatchNormalization reads it), and
 * keeps no value's gradient (tp_model_get_grad() returns NULL for each
 * afterwards). Each value's gradient shares memory with others while the
 * pass needs it, so a training step holds far fewer activation-sized
 * buffers than tp_model_backward() (which criteria need). */
gboolean tp_model_backward_params(TpModel *model, int from, GError **error);

/* Class names of the outputs, in output order: a NULL-terminated array, or
 * NULL to forget them. Copied. Models from ONNX carry them in metadata. */
void tp_model_set_class_names(TpModel *model, const char *const *names);
/* The names (borrowed), or NULL when the model has none. */
const char *const *tp_model_get_class_names(const TpModel *model);

/* For a specialized model: each output's class index in the model it was
 * specialized from (n = the number of outputs; copied), or NULL to forget. */
void tp_model_set_class_indices(TpModel *model, const int *indices, int n);
/* The indices (borrowed) and their count in *out_n, or NULL when unset. */
const int *tp_model_get_class_indices(const TpModel *model, int *out_n);

/* The per-channel normalization the input expects, x' = (x - mean) / std,
 * one value per input channel each (copied); NULL for both forgets it. */
void tp_model_set_normalization(TpModel *model, const float *mean, const float *std);
/* Points *out_mean and *out_std at the model's arrays (borrowed) and returns
 * TRUE, or returns FALSE when the model has none. */
gboolean tp_model_get_normalization(const TpModel *model, const float **out_mean,
                                    const float **out_std);

/* Parameter and MAC counts (definitions in docs/method.md §3). */
typedef struct {
    guint64 params;        /* weights, biases, BatchNorm scale and bias */
    guint64 running_stats; /* BatchNorm running mean and variance */
    guint64 macs;          /* per sample */
} TpCount;

/* Per-node timing, for finding the slow layers: while forward_ms (and
 * backward_ms) are set, tp_model_forward() (tp_model_backward()) waits for
 * each node's kernels and adds the node's wall time in milliseconds to
 * forward_ms[index] (backward_ms[index]). Each array has one entry per node,
 * stays the caller's, and must outlive its use; NULL turns that pass's timing
 * off. Adds a backend synchronization per node, so it slows asynchronous
 * backends down. */
void tp_model_set_profile(TpModel *model, double *forward_ms, double *backward_ms);

/* Counts of one node, and of the whole model. */
void tp_model_count_node(const TpModel *model, guint index, TpCount *out_count);
void tp_model_count(const TpModel *model, TpCount *out_count);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(TpModel, tp_model_free)

G_END_DECLS

#endif /* TP_MODEL_H */
