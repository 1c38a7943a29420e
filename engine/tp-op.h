/* tp-op.h — INTERNAL (not installed): the op-class interface. One TpOpClass
 * per op kind, one file per class under engine/ops/, uniform verbs (check,
 * forward, backward, macs) in the manner of GEGL operations and darknet
 * layers. tp-model.c owns the graph, the tape and memory planning; a class
 * only knows how to run its own op on tensors it is handed, through the
 * backend's kernels (it never touches backend memory itself).
 *
 * Order of calls, per node:
 *  1. check() once, from tp_model_add(): validates and completes the
 *     attributes, and declares the output shape and the parameters.
 *  2. forward() once per tp_model_forward(), with tensors already shaped
 *     [batch, per-sample shape] by the model.
 *  3. backward() at most once per forward, from tp_model_backward(), after
 *     the node's output gradient is complete.
 * Symbols here are G_GNUC_INTERNAL: they never leave libtaskprune.
 */
#ifndef TP_OP_H
#define TP_OP_H

#include <glib.h>

#include "tp-backend.h"
#include "tp-model.h"
#include "tp-tensor.h"

G_BEGIN_DECLS

/* The shape of one parameter tensor (up to 4-D, e.g. a conv weight). */
typedef struct {
    int ndim;
    int dim[TP_TENSOR_MAX_DIMS];
} TpOpParamShape;

/* What check() declares for a node: its output and its parameters, in the
 * order of tp-model.h (TpNode). */
typedef struct {
    TpShape output;
    int n_params;
    TpOpParamShape params[TP_NODE_MAX_PARAMS];
    float init[TP_NODE_MAX_PARAMS];         /* value each parameter starts at (0 or 1) */
    gboolean trainable[TP_NODE_MAX_PARAMS]; /* FALSE: updated by forward, not by SGD */
} TpOpSignature;

#define TP_OP_MAX_BUFFERS 7

/* Runtime state of one node, kept by the model beside the node and handed to
 * forward() and backward(). Freed with the model. */
typedef struct {
    TpMode mode;  /* mode of the last forward (set by the model before forward) */
    guint64 seed; /* Dropout: mask seed of this forward (set by the model before
                   * a training forward; derived from the model seed, the
                   * model's training-forward counter and the node index) */
    TpComm *sync_comm; /* BatchNorm: the ranks whose batch statistics this forward
                        * combines (tp_model_set_sync_comm(); NULL: its own) */
    /* Per-node tensors an op allocates on first use and reuses; their sizes
     * must not depend on the batch (BatchNorm: saved mean and inverse
     * standard deviation, constants for eval-mode backward). */
    TpTensor *buffers[TP_OP_MAX_BUFFERS];
    /* The weights (a parameter, or a buffer made from one) an op's buffers
     * were derived from, and their version (tp-tensor.h) then, so it can keep
     * them until the weights change; NULL: none. */
    const TpTensor *derived_from;
    guint64 derived_version;
    /* Likewise for a second derived buffer (Conv: the backend's prepared
     * weights, kept apart from its live taps). */
    const TpTensor *prepared_from;
    guint64 prepared_version;
    /* Conv in TP_MODE_INFER: the sum of the versions of its parameters and
     * of the folded BatchNormalization's when its folded weights were made
     * (versions only grow, so any change raises the sum); 0: none. */
    guint64 folded_version;
} TpOpState;

/* How an op's output channels relate to its inputs' (tp-units.c builds the
 * channel spaces pruning cuts from these). */
typedef enum {
    TP_CHANNELS_KEEP = 1, /* the output is indexed as input 0's channels */
    TP_CHANNELS_JOIN,     /* the output and every input share one indexing (Add) */
    TP_CHANNELS_NEW,      /* a fresh indexing: the op produces each output channel from
                           * all of its input's channels (Conv, Gemm) */
} TpChannelKind;

typedef struct {
    TpChannelKind kind;
    /* KEEP and JOIN: the output's first-dimension entries per channel are its
     * input's times block (Flatten of [C, H, W]: H·W); 0 or 1: the same. */
    int block;
    /* NEW: channels mix only within groups, so cutting one would unbalance
     * the groups (a grouped, not depthwise, Conv). */
    gboolean grouped;
    /* NEW: a fully connected producer (Gemm), pruned only with prune_linear
     * and never mixed with convolutions in one space. */
    gboolean linear;
    /* The op reads all its inputs' channels jointly (Softmax), or moves
     * them in a way the kinds above cannot state (Concat's offsets, a
     * shuffle's permutation): a removed one would change the others, so no
     * input's space is ever cut. */
    gboolean couples;
    /* A layer whose outputs criteria score (Conv, depthwise too, and Gemm):
     * tp_units_get_unit_value() and tp_units_get_batch_norm() follow it. */
    gboolean layer;
} TpChannelRule;

/* The relevance rule of an op (tp-lrp.c has the formulas). */
typedef enum {
    TP_OP_LRP_NONE,    /* no rule: an error on the path to the logits */
    TP_OP_LRP_PASS,    /* R_in = R (Relu, Dropout, Flatten) */
    TP_OP_LRP_WINNER,  /* winner takes all: max-pool backward of R */
    TP_OP_LRP_AVERAGE, /* ε-proportional through an average pooling */
    TP_OP_LRP_SUM,     /* ε-proportional over the summed inputs (Add) */
    TP_OP_LRP_CONV,    /* a convolution, by the rule set (composite: z^B at the
                        * model input, z⁺ elsewhere) */
    TP_OP_LRP_DENSE,   /* fully connected, by the rule set (composite: ε) */
} TpOpLrpRule;

/* The sign of an op's output, as far as LRP can use it. */
typedef enum {
    TP_OP_SIGN_ANY,    /* may be negative */
    TP_OP_SIGN_NONNEG, /* never negative (Relu) */
    TP_OP_SIGN_INPUTS, /* never negative when no input is (pooling, Add, ...) */
} TpOpSign;

/* The ONNX node an op's import() reads (tp-onnx.c), and what it may ask of
 * it. Every failure sets error in TP_ONNX_ERROR naming the op and node. */
typedef struct _TpOnnxReader TpOnnxReader;

/* A constant input (an initializer or a Constant node's value), on the host:
 * float32 (f) or int64 (i64) data. Borrowed from the reader. */
typedef struct {
    int ndim;
    gint64 dims[8];
    gsize numel;
    float *f;    /* float32 data, or NULL */
    gint64 *i64; /* int64 data, or NULL */
} TpOnnxConst;

/* Refuses every attribute not in the NULL-terminated list known, and any
 * output but the first. Call it first. */
G_GNUC_INTERNAL gboolean tp_onnx_reader_attrs(TpOnnxReader *r, const char *const *known,
                                              GError **error);
/* The same for an op that writes several outputs, each named: their count
 * into *out_n. */
G_GNUC_INTERNAL gboolean tp_onnx_reader_attrs_outputs(TpOnnxReader *r, const char *const *known,
                                                      int *out_n, GError **error);
/* How many inputs the node lists (absent optional ones included). */
G_GNUC_INTERNAL int tp_onnx_reader_n_inputs(TpOnnxReader *r);
/* Adds a node of op (no parameters) reading inputs, before the node's own,
 * named "<node>/<k>"; its value into *out_value. For an ONNX node read as
 * several engine nodes (a Concat of n inputs, the parts of a Split). */
G_GNUC_INTERNAL gboolean tp_onnx_reader_add(TpOnnxReader *r, TpOpType op, const int *inputs,
                                            const TpOpAttrs *attrs, int *out_value,
                                            GError **error);
/* Makes the node's output i the value v (outputs past the first). */
G_GNUC_INTERNAL void tp_onnx_reader_bind(TpOnnxReader *r, int i, int v);
/* Adds the node as op instead of the class's own (a pattern that is one op
 * of another kind, or none: a Reshape that flattens is a Flatten). */
G_GNUC_INTERNAL void tp_onnx_reader_set_op(TpOnnxReader *r, TpOpType op);
/* A reader of the one node that reads the output of r's node (or of the
 * node r absorbed last) as its input 0, when it has type op_type; NULL
 * otherwise (other readers, a graph output). Freed with r. */
G_GNUC_INTERNAL TpOnnxReader *tp_onnx_reader_next(TpOnnxReader *r, const char *op_type);
/* Makes next's node part of r's: it is not imported on its own, and its
 * output is the op's. */
G_GNUC_INTERNAL void tp_onnx_reader_absorb(TpOnnxReader *r, TpOnnxReader *next);
G_GNUC_INTERNAL gboolean tp_onnx_reader_has_attr(TpOnnxReader *r, const char *name);
/* An int or float attribute, or fallback when absent. */
G_GNUC_INTERNAL gboolean tp_onnx_reader_int(TpOnnxReader *r, const char *name, gint64 fallback,
                                            gint64 *out, GError **error);
G_GNUC_INTERNAL gboolean tp_onnx_reader_float(TpOnnxReader *r, const char *name, float fallback,
                                              float *out, GError **error);
/* An ints attribute of exactly count values, each in [min, G_MAXINT / 2],
 * into out; out untouched when absent. */
G_GNUC_INTERNAL gboolean tp_onnx_reader_ints(TpOnnxReader *r, const char *name, int count,
                                             int min, int *out, GError **error);
/* The number of values of an ints attribute; -1 when absent or not ints. */
G_GNUC_INTERNAL int tp_onnx_reader_n_ints(TpOnnxReader *r, const char *name);
/* An ints attribute of any length up to 64 (of *n values when *n is not 0)
 * into *out (borrowed; NULL when absent) and its length into *n. */
G_GNUC_INTERNAL gboolean tp_onnx_reader_ints_list(TpOnnxReader *r, const char *name,
                                                  const gint64 **out, int *n, GError **error);
/* Applies the auto_pad attribute (NOTSET, VALID, SAME_UPPER, SAME_LOWER) of
 * a 2-D window over input in to pads (top, left, bottom, right). */
G_GNUC_INTERNAL gboolean tp_onnx_reader_auto_pad(TpOnnxReader *r, const TpShape *in,
                                                 const int *kernel, const int *stride,
                                                 const int *dilation, int *pads, GError **error);
/* The zero padding (top, left, bottom, right) of a Pad before input 0 that
 * the importer left for this node to absorb, or NULL. */
G_GNUC_INTERNAL const int *tp_onnx_reader_folded_pads(TpOnnxReader *r);
/* The default opset of the model. */
G_GNUC_INTERNAL gint64 tp_onnx_reader_opset(TpOnnxReader *r);

/* The engine value behind input i, which must be an activation. */
G_GNUC_INTERNAL gboolean tp_onnx_reader_value(TpOnnxReader *r, int i, int *out, GError **error);
/* The ONNX rank of engine value v, batch included: 1 + its per-sample axes,
 * but 3 for a 3-D value of a model whose graph input has rank 3 ([N, C, L]
 * is held as [C, L, 1]). */
G_GNUC_INTERNAL int tp_onnx_reader_rank(TpOnnxReader *r, int v);
/* The per-sample shape of engine value v. */
G_GNUC_INTERNAL const TpShape *tp_onnx_reader_shape(TpOnnxReader *r, int v);
/* Float32 constant input i, which must be an initializer or a Constant;
 * *out NULL without error when optional and absent. */
G_GNUC_INTERNAL gboolean tp_onnx_reader_param(TpOnnxReader *r, int i, gboolean optional,
                                              const TpOnnxConst **out, GError **error);
/* Input i when it is present and a constant of any type, else NULL. */
G_GNUC_INTERNAL const TpOnnxConst *tp_onnx_reader_constant(TpOnnxReader *r, int i);
/* TRUE when input i is named (present); its name, or NULL. */
G_GNUC_INTERNAL gboolean tp_onnx_reader_has_input(TpOnnxReader *r, int i);
G_GNUC_INTERNAL const char *tp_onnx_reader_input_name(TpOnnxReader *r, int i);
/* Checks that constant c, named what in messages, has exactly dims. */
G_GNUC_INTERNAL gboolean tp_onnx_reader_check_dims(TpOnnxReader *r, const char *what,
                                                   const TpOnnxConst *c, int ndim,
                                                   const gint64 *dims, GError **error);
/* A host array of n floats that lives until the node is added (for
 * parameters the op computes from constants). */
G_GNUC_INTERNAL float *tp_onnx_reader_alloc(TpOnnxReader *r, gsize n);
/* Makes the node's output the existing value v: no op is added (a Flatten of
 * an already flat value). */
G_GNUC_INTERNAL void tp_onnx_reader_alias(TpOnnxReader *r, int v);
/* Sets error: "<OpType> node '<name>': <message>"; returns FALSE. */
G_GNUC_INTERNAL gboolean tp_onnx_reader_error(TpOnnxReader *r, GError **error, int code,
                                              const char *format, ...) G_GNUC_PRINTF(4, 5);
/* "[1, 2, 3]" for messages (owned by the caller). */
G_GNUC_INTERNAL char *tp_onnx_dims_to_string(int ndim, const gint64 *dims);

/* The ONNX node an op's export() completes (tp-onnx-export.c): attributes
 * and constant inputs appended after the node's values and parameters. */
typedef struct _TpOnnxNodeWriter TpOnnxNodeWriter;

G_GNUC_INTERNAL void tp_onnx_writer_int(TpOnnxNodeWriter *w, const char *name, gint64 value);
G_GNUC_INTERNAL void tp_onnx_writer_ints(TpOnnxNodeWriter *w, const char *name, const int *values,
                                         int count);
G_GNUC_INTERNAL void tp_onnx_writer_float(TpOnnxNodeWriter *w, const char *name, float value);
/* Appends an int64 vector initializer "<node>.<suffix>" of count values as
 * the next input. */
G_GNUC_INTERNAL void tp_onnx_writer_ints_input(TpOnnxNodeWriter *w, const char *suffix,
                                               const gint64 *values, int count);
/* Appends a float32 scalar initializer "<node>.<suffix>" as the next input. */
G_GNUC_INTERNAL void tp_onnx_writer_scalar_input(TpOnnxNodeWriter *w, const char *suffix,
                                                 float value);

typedef struct {
    /* The ONNX op type ("Conv", "BatchNormalization", ...). */
    const char *name;

    /* How many values the op reads (1, or 2 for Add); the most, when
     * n_values says fewer for some nodes. */
    int n_inputs;

    /* Validates node->attrs against the input shapes (per sample), fills
     * defaulted attributes in place (stride 0 -> 1, ...), and writes the
     * output shape and parameter shapes to *out_sig (which arrives zeroed:
     * parameters start at 0 and are not trainable unless set). On failure
     * sets error in TP_MODEL_ERROR_INVALID with a message naming the op and
     * node (tp_op_set_error()). */
    gboolean (*check)(TpNode *node, const TpShape *const *inputs, TpOpSignature *out_sig,
                      GError **error);

    /* Computes output from inputs (tensors [batch, ...], shaped by the model)
     * in mode, reading node->params and updating state (and, for BatchNorm in
     * training, the running statistics). An error set here gets the op and
     * node prefixed by the model. */
    gboolean (*forward)(const TpNode *node, TpBackend *backend, TpTensor *const *inputs,
                        TpTensor *output, TpMode mode, TpOpState *state, GError **error);

    /* Given the inputs and output of the last forward (in state->mode) and the
     * gradient doutput, overwrites dinputs[i] with the gradient of input i and
     * every trainable node->grads[p] with its parameter gradient. dinputs[i] is
     * NULL when that gradient is not wanted (BatchNorm always needs one). */
    gboolean (*backward)(const TpNode *node, TpBackend *backend, TpTensor *const *inputs,
                         const TpTensor *output, const TpTensor *doutput, TpTensor *const *dinputs,
                         TpOpState *state, GError **error);

    /* Multiply-accumulates per sample (docs/method.md §3), from the per-sample
     * input and output shapes; NULL for ops that count none. */
    guint64 (*macs)(const TpNode *node, const TpShape *input, const TpShape *output);

    /* ONNX import of a node of this op type: reads it through r and writes
     * the attributes to *attrs (arriving zeroed), the engine values it reads
     * to inputs[] and the host data of its parameters to params[] (NULL:
     * the parameter keeps its initial value); or calls tp_onnx_reader_alias().
     * NULL: the op is not read from ONNX under its own name. */
    gboolean (*import)(TpOnnxReader *r, TpOpAttrs *attrs, int *inputs, const float **params,
                       GError **error);

    /* The ONNX names of the parameters, in order (initializers are exported
     * as "<node>.<name>"); NULL past n_params. */
    const char *param_names[TP_NODE_MAX_PARAMS];

    /* Writes the node's ONNX attributes (and constant inputs) to w; NULL
     * for ops that have none. */
    void (*export)(const TpNode *node, TpOnnxNodeWriter *w);

    /* The channel rule of node, whose input 0 has per-sample shape input:
     * writes *out_rule (arriving zeroed). */
    void (*channels)(const TpNode *node, const TpShape *input, TpChannelRule *out_rule);

    /* Pruning: the node cut to the kept entries `in` of its input 0's first
     * dimension and `out` of its output's (GArrays of int; NULL: all kept).
     * Writes the smaller node's attributes to *attrs (node's on entry) and,
     * per parameter p, the kept rows (first dimension) to rows[p] and
     * columns (second dimension) to cols[p] (NULL on entry: all). NULL for
     * ops with neither parameters nor channel counts in their attributes. */
    void (*cut)(const TpNode *node, const TpShape *input, const GArray *in, const GArray *out,
                TpOpAttrs *attrs, const GArray **rows, const GArray **cols);

    /* Its relevance rule, and the sign of its output. */
    TpOpLrpRule lrp_rule;
    TpOpSign sign;

    /* (optional) How many values (1 .. n_inputs) a node with attributes
     * attrs reads: a binary op with a constant operand reads one. NULL:
     * always n_inputs. */
    int (*n_values)(const TpOpAttrs *attrs);

    /* The opset its exported node needs when newer than the exporter's 13
     * (HardSwish: 14); 0: 13 will do. */
    int export_opset;
} TpOpClass;

/* The classes, one per file under engine/ops/. */
G_GNUC_INTERNAL extern const TpOpClass tp_op_conv;
G_GNUC_INTERNAL extern const TpOpClass tp_op_batch_norm;
G_GNUC_INTERNAL extern const TpOpClass tp_op_relu;
G_GNUC_INTERNAL extern const TpOpClass tp_op_max_pool;
G_GNUC_INTERNAL extern const TpOpClass tp_op_average_pool;
G_GNUC_INTERNAL extern const TpOpClass tp_op_global_average_pool;
G_GNUC_INTERNAL extern const TpOpClass tp_op_flatten;
G_GNUC_INTERNAL extern const TpOpClass tp_op_gemm;
G_GNUC_INTERNAL extern const TpOpClass tp_op_add;
G_GNUC_INTERNAL extern const TpOpClass tp_op_dropout;
G_GNUC_INTERNAL extern const TpOpClass tp_op_softmax;
G_GNUC_INTERNAL extern const TpOpClass tp_op_clip;
G_GNUC_INTERNAL extern const TpOpClass tp_op_sigmoid;
G_GNUC_INTERNAL extern const TpOpClass tp_op_hard_sigmoid;
G_GNUC_INTERNAL extern const TpOpClass tp_op_hard_swish;
G_GNUC_INTERNAL extern const TpOpClass tp_op_leaky_relu;
G_GNUC_INTERNAL extern const TpOpClass tp_op_tanh;
G_GNUC_INTERNAL extern const TpOpClass tp_op_erf;
G_GNUC_INTERNAL extern const TpOpClass tp_op_sqrt;
G_GNUC_INTERNAL extern const TpOpClass tp_op_pow;
G_GNUC_INTERNAL extern const TpOpClass tp_op_mul;
G_GNUC_INTERNAL extern const TpOpClass tp_op_sub;
G_GNUC_INTERNAL extern const TpOpClass tp_op_div;
G_GNUC_INTERNAL extern const TpOpClass tp_op_reduce_mean;
G_GNUC_INTERNAL extern const TpOpClass tp_op_concat;
G_GNUC_INTERNAL extern const TpOpClass tp_op_slice;
G_GNUC_INTERNAL extern const TpOpClass tp_op_transpose;
G_GNUC_INTERNAL extern const TpOpClass tp_op_gather;
G_GNUC_INTERNAL extern const TpOpClass tp_op_reshape;

/* The class of an op type (the table lives in tp-model.c); NULL if out of range. */
G_GNUC_INTERNAL const TpOpClass *tp_op_class_get(TpOpType op);

/* Sets error (TP_MODEL_ERROR_INVALID) to "<Op> '<name>': <message>". */
G_GNUC_INTERNAL void tp_op_set_error(GError **error, const TpNode *node, const char *format, ...)
    G_GNUC_PRINTF(3, 4);

/* Number of floats of a per-sample shape. */
G_GNUC_INTERNAL gsize tp_shape_numel(const TpShape *shape);

/* "[3, 32, 32]" for messages (owned by the caller). */
G_GNUC_INTERNAL char *tp_shape_to_string(const TpShape *shape);

/* Trims the convolution g to its live kernel taps when some are dead (read
 * only padding at every output position) and the trimmed padding stays >= 0:
 * the same convolution without its zero terms. Writes the kept taps,
 * [*ki0, *ki1) x [*kj0, *kj1) of the full kernel; FALSE (g untouched) when
 * every tap is live or none can be trimmed. (engine/ops/conv.c) */
G_GNUC_INTERNAL gboolean tp_conv_trim_dead_taps(TpConvGeometry *g, int *ki0, int *ki1, int *kj0,
                                                int *kj1);

/* Runs Conv node `conv` in TP_MODE_INFER fused with the ops that follow it
 * and alone read its result: the BatchNormalization node `norm` (or NULL)
 * folded into its weights and bias, then a Relu when `relu`. Writes the
 * last fused op's output y from x. (engine/ops/conv.c) */
G_GNUC_INTERNAL gboolean tp_conv_forward_fused(const TpNode *conv, const TpNode *norm,
                                               gboolean relu, TpBackend *backend, const TpTensor *x,
                                               TpTensor *y, TpOpState *state, GError **error);

/* The convolution geometry of Conv node for `batch` samples of per-sample
 * input in and output out. (engine/ops/conv.c) */
G_GNUC_INTERNAL void tp_conv_geometry(const TpNode *node, int batch, const TpShape *in,
                                      const TpShape *out, TpConvGeometry *g);

/* The pooling geometry of a MaxPool, AveragePool or GlobalAveragePool node
 * for `batch` samples of per-sample input in and output out.
 * (engine/ops/pool.c) */
G_GNUC_INTERNAL void tp_pool_geometry(const TpNode *node, int batch, const TpShape *in,
                                      const TpShape *out, TpPoolGeometry *g);

/* ONNX Split read as one Slice node per part (engine/ops/slice.c): a
 * TpOpClass import() for TP_OP_SLICE. */
G_GNUC_INTERNAL gboolean tp_slice_import_split(TpOnnxReader *r, TpOpAttrs *attrs, int *inputs,
                                               const float **params, GError **error);

/* forward() and backward() of ops that only reshape their input (Flatten,
 * Reshape): the floats are copied as they are, both ways. */
G_GNUC_INTERNAL gboolean tp_op_copy_forward(const TpNode *node, TpBackend *backend,
                                            TpTensor *const *inputs, TpTensor *output,
                                            TpMode mode, TpOpState *state, GError **error);
G_GNUC_INTERNAL gboolean tp_op_copy_backward(const TpNode *node, TpBackend *backend,
                                             TpTensor *const *inputs, const TpTensor *output,
                                             const TpTensor *doutput, TpTensor *const *dinputs,
                                             TpOpState *state, GError **error);

/* The channel rule of ops whose output keeps input 0's channels. */
G_GNUC_INTERNAL void tp_op_channels_keep(const TpNode *node, const TpShape *input,
                                         TpChannelRule *out_rule);

/* The elementwise binary ops (engine/ops/binary.c), shared with Add, which
 * runs its plain case (two values of one shape) on the backend's add. */
G_GNUC_INTERNAL gboolean tp_binary_check(TpNode *node, const TpShape *const *inputs,
                                         TpOpSignature *out_sig, GError **error);
G_GNUC_INTERNAL gboolean tp_binary_forward(const TpNode *node, TpBinaryOp op,
                                           TpBackend *backend, TpTensor *const *inputs,
                                           TpTensor *output, GError **error);
G_GNUC_INTERNAL gboolean tp_binary_backward(const TpNode *node, TpBinaryOp op,
                                            TpBackend *backend, TpTensor *const *inputs,
                                            const TpTensor *doutput, TpTensor *const *dinputs,
                                            GError **error);
G_GNUC_INTERNAL gboolean tp_binary_import(TpOnnxReader *r, gboolean commutes, TpOpAttrs *attrs,
                                          int *inputs, const float **params, GError **error);
G_GNUC_INTERNAL void tp_binary_channels(const TpNode *node, const TpShape *input,
                                        TpChannelRule *out_rule);
G_GNUC_INTERNAL void tp_binary_cut(const TpNode *node, const TpShape *input, const GArray *in,
                                   const GArray *out, TpOpAttrs *attrs, const GArray **rows,
                                   const GArray **cols);
G_GNUC_INTERNAL int tp_binary_n_values(const TpOpAttrs *attrs);
/* A strided view of one sample of a value (engine/ops/view.c): element
 * (i_0, ..., i_{ndim-1}) of the view is the sample's float
 * offset + sum i_d * stride[d]. Data-movement ops are one or two copies
 * between a view and a dense tensor of the view's shape. */
typedef struct {
    int ndim; /* 1 .. TP_KERNEL_MAX_DIMS - 1 */
    int shape[TP_KERNEL_MAX_DIMS - 1];
    gssize stride[TP_KERNEL_MAX_DIMS - 1];
    gsize offset;
} TpView;

/* Row-major strides (in floats) of per-sample shape, into out_strides. */
G_GNUC_INTERNAL void tp_view_strides(const TpShape *shape, gssize *out_strides);
/* The per-sample shape of tensor x ([batch, ...]) into *out_shape, its
 * row-major strides into out_strides, and v cleared to that many axes: where
 * an op's view starts. */
G_GNUC_INTERNAL void tp_view_begin(const TpTensor *x, TpShape *out_shape, gssize *out_strides,
                                   TpView *v);
/* ONNX axis `axis` (over [batch, in], negative from the end) as a per-sample
 * axis into *out_axis; the batch axis or one outside is refused naming
 * the node. */
G_GNUC_INTERNAL gboolean tp_view_import_axis(TpOnnxReader *r, gint64 axis, const TpShape *in,
                                             int *out_axis, GError **error);
/* y (dense, [batch, view shape] in any per-sample shape of as many floats)
 * = view v of each sample of x. */
G_GNUC_INTERNAL gboolean tp_view_gather(const TpNode *node, TpBackend *backend, const TpView *v,
                                        const TpTensor *x, TpTensor *y, GError **error);
/* View v of each sample of y = x (dense); y's other floats are untouched. */
G_GNUC_INTERNAL gboolean tp_view_scatter(const TpNode *node, TpBackend *backend, const TpView *v,
                                         const TpTensor *x, TpTensor *y, GError **error);
/* The backward of tp_view_gather(): dx = 0, then view v of dx = dy (v reads
 * each element at most once). */
G_GNUC_INTERNAL gboolean tp_view_gather_backward(const TpNode *node, TpBackend *backend,
                                                 const TpView *v, const TpTensor *dy,
                                                 TpTensor *dx, GError **error);

/* state->buffers[i], allocated with n floats on first use (and reallocated if
 * n changed, which only a change of the graph causes). Borrowed. */
G_GNUC_INTERNAL TpTensor *tp_op_state_buffer(TpOpState *state, TpBackend *backend, int i, gsize n,
                                             GError **error);

G_END_DECLS

#endif /* TP_OP_H */
