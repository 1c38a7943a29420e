/* tp-model.c — the graph (nodes in topological order, one new value per
 * node), the tape of values and gradients with its memory plan, forward,
 * backward, and softmax cross-entropy. The ops themselves live in
 * engine/ops/, one TpOpClass per file (tp-op.h).
 *
 * Memory plan. Value tensors are allocated for `capacity_batch` samples and
 * reshaped (never reallocated) for any smaller batch; a larger batch frees the
 * value, gradient and scratch tensors and plans them again. Gradient tensors
 * are allocated on the first backward that needs them, parameter gradients on
 * the first backward. A value read by several ops receives the sum of their
 * gradients: the first contribution is written in place, later ones go to a
 * scratch tensor (one per input slot, sized for the largest value read more
 * than once) and are added. Once shapes are known, steps allocate nothing on
 * the backend.
 *
 * Fusion. A TP_MODE_INFER forward runs a Conv, the BatchNormalization
 * that alone reads it and the Relu that alone reads that as one Conv
 * (engine/ops/conv.c), skipping the nodes it fused; backward then refuses,
 * as the values between are stale.
 */
#include "config.h"

#include <string.h>

#include "tp-model.h"
#include "tp-op.h"

/* A node and what the model keeps beside it. `node` comes first so that a
 * TpNode pointer handed out is the entry itself. */
typedef struct {
    TpNode node;
    const TpOpClass *klass;
    gboolean trainable[TP_NODE_MAX_PARAMS];
    TpOpState state;
} TpNodeEntry;

struct _TpModel {
    TpBackend *backend;    /* borrowed; outlives the model */
    GPtrArray *nodes;      /* TpNodeEntry, owned, in topological order */
    GArray *shapes;        /* TpShape per value (per sample) */
    GArray *n_reads;       /* int per value: how many node inputs read it */
    GPtrArray *values;     /* TpTensor per value, NULL until planned; owned */
    GPtrArray *grads;      /* TpTensor per value, NULL until needed; owned */
    GArray *grad_valid;    /* gboolean per value: seeded, or filled by the last backward */
    GArray *needed;        /* gboolean per value: backward's work list */
    gsize max_multi_numel; /* largest per-sample numel of a value read more than once */
    TpTensor *scratch[TP_NODE_MAX_INPUTS];
    int capacity_batch;       /* batch the value tensors are allocated for; 0: none yet */
    int batch;                /* batch of the last forward; 0: no valid forward */
    TpMode mode;              /* mode of the last forward */
    guint64 seed;             /* dropout seed (tp_model_set_seed) */
    guint64 n_train_forwards; /* training forwards since the seed was set */
    TpComm *sync_comm;        /* tp_model_set_sync_comm(), or NULL */
    GStrv class_names;        /* output class names, or NULL */
    int *class_indices;       /* outputs' classes in the original model, or NULL */
    int n_class_indices;
    float *mean, *std;        /* input normalization per channel, or NULL */
    double *profile[2];       /* borrowed per-node ms (forward, backward), or NULL */
    GPtrArray *spare_grads;   /* owned batch-sized tensors free for any value's gradient */
    TpBackwardHook backward_hook; /* tp_model_set_backward_hook(), or NULL */
    gpointer backward_hook_data;
};

static const TpOpClass *const op_classes[TP_N_OPS] = {
    [TP_OP_CONV] = &tp_op_conv,
    [TP_OP_BATCH_NORM] = &tp_op_batch_norm,
    [TP_OP_RELU] = &tp_op_relu,
    [TP_OP_MAX_POOL] = &tp_op_max_pool,
    [TP_OP_AVERAGE_POOL] = &tp_op_average_pool,
    [TP_OP_GLOBAL_AVERAGE_POOL] = &tp_op_global_average_pool,
    [TP_OP_FLATTEN] = &tp_op_flatten,
    [TP_OP_GEMM] = &tp_op_gemm,
    [TP_OP_ADD] = &tp_op_add,
    [TP_OP_DROPOUT] = &tp_op_dropout,
    [TP_OP_SOFTMAX] = &tp_op_softmax,
    [TP_OP_CLIP] = &tp_op_clip,
    [TP_OP_SIGMOID] = &tp_op_sigmoid,
    [TP_OP_HARD_SIGMOID] = &tp_op_hard_sigmoid,
    [TP_OP_HARD_SWISH] = &tp_op_hard_swish,
    [TP_OP_LEAKY_RELU] = &tp_op_leaky_relu,
    [TP_OP_TANH] = &tp_op_tanh,
    [TP_OP_ERF] = &tp_op_erf,
    [TP_OP_SQRT] = &tp_op_sqrt,
    [TP_OP_POW] = &tp_op_pow,
    [TP_OP_MUL] = &tp_op_mul,
    [TP_OP_SUB] = &tp_op_sub,
    [TP_OP_DIV] = &tp_op_div,
    [TP_OP_REDUCE_MEAN] = &tp_op_reduce_mean,
    [TP_OP_CONCAT] = &tp_op_concat,
    [TP_OP_SLICE] = &tp_op_slice,
    [TP_OP_TRANSPOSE] = &tp_op_transpose,
    [TP_OP_GATHER] = &tp_op_gather,
    [TP_OP_RESHAPE] = &tp_op_reshape,
};

G_DEFINE_QUARK(tp_model_error, tp_model_error)

/* ---------------------------------------------------------------- internal helpers (tp-op.h) */

const TpOpClass *
tp_op_class_get(TpOpType op)
{
    if ((int)op < 0 || op >= TP_N_OPS)
        return NULL;
    return op_classes[op];
}

gboolean
tp_op_copy_forward(const TpNode *node, TpBackend *backend, TpTensor *const *inputs,
                   TpTensor *output, TpMode mode, TpOpState *state, GError **error)
{
    return backend->vt.copy(backend->self, output->data, inputs[0]->data, output->numel, error);
}

gboolean
tp_op_copy_backward(const TpNode *node, TpBackend *backend, TpTensor *const *inputs,
                    const TpTensor *output, const TpTensor *doutput, TpTensor *const *dinputs,
                    TpOpState *state, GError **error)
{
    if (dinputs[0] == NULL)
        return TRUE;
    return backend->vt.copy(backend->self, dinputs[0]->data, doutput->data, doutput->numel, error);
}

void
tp_op_channels_keep(const TpNode *node, const TpShape *input, TpChannelRule *out_rule)
{
    out_rule->kind = TP_CHANNELS_KEEP;
}

void
tp_op_set_error(GError **error, const TpNode *node, const char *format, ...)
{
    g_autofree char *message = NULL;
    va_list args;

    va_start(args, format);
    message = g_strdup_vprintf(format, args);
    va_end(args);
    g_set_error(error, TP_MODEL_ERROR, TP_MODEL_ERROR_INVALID, "%s '%s': %s",
                tp_op_type_to_string(node->op), node->name, message);
}

gsize
tp_shape_numel(const TpShape *shape)
{
    gsize numel = 1;

    for (int i = 0; i < shape->ndim; i++)
        numel *= (gsize)shape->dim[i];
    return numel;
}

char *
tp_shape_to_string(const TpShape *shape)
{
    GString *s = g_string_new("[");

    for (int i = 0; i < shape->ndim; i++)
        g_string_append_printf(s, i == 0 ? "%d" : ", %d", shape->dim[i]);
    g_string_append_c(s, ']');
    return g_string_free(s, FALSE);
}

TpTensor *
tp_op_state_buffer(TpOpState *state, TpBackend *backend, int i, gsize n, GError **error)
{
    int shape[1];

    g_return_val_if_fail(i >= 0 && i < TP_OP_MAX_BUFFERS, NULL);
    g_return_val_if_fail(n > 0 && n <= G_MAXINT, NULL);

    shape[0] = (int)n;
    if (state->buffers[i] != NULL && tp_tensor_reshape(state->buffers[i], 1, shape))
        return state->buffers[i];
    g_clear_pointer(&state->buffers[i], tp_tensor_free);
    state->buffers[i] = tp_tensor_new(backend, 1, shape, error);
    return state->buffers[i];
}

/* ---------------------------------------------------------------- small helpers */

/* SplitMix64's finalizer: a bijective 64-bit mix. */
static guint64
mix64(guint64 z)
{
    z = (z ^ (z >> 30)) * G_GUINT64_CONSTANT(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * G_GUINT64_CONSTANT(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* The dropout seed of node `index` in training forward number `draw`. */
static guint64
dropout_seed(guint64 seed, guint64 draw, guint index)
{
    return mix64(seed ^ mix64(draw * G_GUINT64_CONSTANT(0x9E3779B97F4A7C15) + index + 1));
}

static TpNodeEntry *
entry_at(const TpModel *model, guint index)
{
    return g_ptr_array_index(model->nodes, index);
}

static void
entry_free(gpointer data)
{
    TpNodeEntry *entry = data;

    for (int i = 0; i < TP_NODE_MAX_PARAMS; i++) {
        tp_tensor_free(entry->node.params[i]);
        tp_tensor_free(entry->node.grads[i]);
    }
    for (int i = 0; i < TP_OP_MAX_BUFFERS; i++)
        tp_tensor_free(entry->state.buffers[i]);
    g_free(entry->node.name);
    g_free(entry);
}

static void
tensor_free0(gpointer tensor)
{
    tp_tensor_free(tensor);
}

#define VALUE_SHAPE(model, v) (&g_array_index((model)->shapes, TpShape, (v)))
#define GRAD_VALID(model, v) (g_array_index((model)->grad_valid, gboolean, (v)))

/* The tensor shape of value v for `batch` samples: [batch, per-sample dims]. */
static int
batch_shape(const TpModel *model, int v, int batch, int *out_shape)
{
    const TpShape *shape = VALUE_SHAPE(model, v);

    out_shape[0] = batch;
    for (int i = 0; i < shape->ndim; i++)
        out_shape[i + 1] = shape->dim[i];
    return shape->ndim + 1;
}

/* Makes *slot a tensor of value v's shape for model->batch samples, allocated
 * for capacity_batch samples if it is not there yet. */
static gboolean
plan_tensor(TpModel *model, int v, TpTensor **slot, GError **error)
{
    int shape[TP_TENSOR_MAX_DIMS];
    int ndim;
    gboolean fits;

    if (*slot == NULL) {
        ndim = batch_shape(model, v, model->capacity_batch, shape);
        *slot = tp_tensor_new(model->backend, ndim, shape, error);
        if (*slot == NULL)
            return FALSE;
    }
    ndim = batch_shape(model, v, model->batch, shape);
    fits = tp_tensor_reshape(*slot, ndim, shape);
    g_return_val_if_fail(fits, FALSE); /* capacity_batch >= batch by construction */
    return TRUE;
}

/* Frees every batch-sized tensor: values, gradients, scratch. */
static void
drop_plan(TpModel *model)
{
    for (guint v = 0; v < model->values->len; v++) {
        g_clear_pointer(&g_ptr_array_index(model->values, v), tp_tensor_free);
        g_clear_pointer(&g_ptr_array_index(model->grads, v), tp_tensor_free);
    }
    for (int i = 0; i < TP_NODE_MAX_INPUTS; i++)
        g_clear_pointer(&model->scratch[i], tp_tensor_free);
    g_ptr_array_set_size(model->spare_grads, 0);
    model->capacity_batch = 0;
}

/* The gradient tensor of value v for the current batch: its own, else the
 * first spare one large enough, else a new one. */
static TpTensor *
grad_tensor(TpModel *model, int v, GError **error)
{
    TpTensor **slot = (TpTensor **)&g_ptr_array_index(model->grads, v);
    int shape[TP_TENSOR_MAX_DIMS];
    int ndim = batch_shape(model, v, model->capacity_batch, shape);
    gsize numel = 1;

    for (int i = 0; i < ndim; i++)
        numel *= (gsize)shape[i];
    for (guint i = 0; *slot == NULL && i < model->spare_grads->len; i++) {
        TpTensor *spare = g_ptr_array_index(model->spare_grads, i);
        if (spare->capacity >= numel)
            *slot = g_ptr_array_steal_index(model->spare_grads, i);
    }
    if (!plan_tensor(model, v, slot, error))
        return NULL;
    return *slot;
}

/* Hands value v's gradient tensor (if any) to the spares; it is no longer valid. */
static void
release_grad(TpModel *model, int v)
{
    TpTensor **slot = (TpTensor **)&g_ptr_array_index(model->grads, v);

    if (*slot != NULL)
        g_ptr_array_add(model->spare_grads, g_steal_pointer(slot));
    GRAD_VALID(model, v) = FALSE;
}

/* Scratch tensor for input slot `slot`, shaped like `like`. Allocated once for
 * the largest value read more than once. */
static TpTensor *
scratch_tensor(TpModel *model, int slot, const TpTensor *like, GError **error)
{
    TpTensor **s = &model->scratch[slot];
    int size[1];
    gboolean fits;

    if (*s != NULL && tp_tensor_reshape(*s, like->ndim, like->shape))
        return *s;
    g_clear_pointer(s, tp_tensor_free);
    size[0] = (int)MAX(model->max_multi_numel * (gsize)model->capacity_batch, like->numel);
    *s = tp_tensor_new(model->backend, 1, size, error);
    if (*s == NULL)
        return NULL;
    fits = tp_tensor_reshape(*s, like->ndim, like->shape);
    g_return_val_if_fail(fits, NULL); /* allocated for it just above */
    return *s;
}

/* "Conv 'conv1'" for error prefixes. */
#define NODE_FMT "%s '%s'"
#define NODE_ARGS(node) tp_op_type_to_string((node)->op), (node)->name

/* ---------------------------------------------------------------- public API */

const char *
tp_op_type_to_string(TpOpType op)
{
    const TpOpClass *klass = tp_op_class_get(op);

    return klass != NULL ? klass->name : "unknown-op";
}

/* An empty model on backend (borrowed: it must outlive the model) whose input
 * value 0 has per-sample shape [channels, height, width]. */
TpModel *
tp_model_new(TpBackend *backend, int channels, int height, int width)
{
    TpModel *model;
    TpShape input = {3, {channels, height, width}};
    int zero = 0;
    gboolean no = FALSE;

    g_return_val_if_fail(backend != NULL, NULL);
    g_return_val_if_fail(channels > 0 && height > 0 && width > 0, NULL);

    model = g_new0(TpModel, 1);
    model->backend = backend;
    model->nodes = g_ptr_array_new_with_free_func(entry_free);
    model->shapes = g_array_new(FALSE, TRUE, sizeof(TpShape));
    model->n_reads = g_array_new(FALSE, TRUE, sizeof(int));
    model->values = g_ptr_array_new_with_free_func(tensor_free0);
    model->grads = g_ptr_array_new_with_free_func(tensor_free0);
    model->grad_valid = g_array_new(FALSE, TRUE, sizeof(gboolean));
    model->needed = g_array_new(FALSE, TRUE, sizeof(gboolean));
    model->spare_grads = g_ptr_array_new_with_free_func(tensor_free0);

    g_array_append_val(model->shapes, input);
    g_array_append_val(model->n_reads, zero);
    g_ptr_array_add(model->values, NULL);
    g_ptr_array_add(model->grads, NULL);
    g_array_append_val(model->grad_valid, no);
    g_array_append_val(model->needed, no);
    return model;
}

/* Frees the model, its parameters and its tape; NULL is allowed. */
void
tp_model_free(TpModel *model)
{
    if (model == NULL)
        return;
    for (int i = 0; i < TP_NODE_MAX_INPUTS; i++)
        tp_tensor_free(model->scratch[i]);
    g_ptr_array_unref(model->nodes);
    g_array_unref(model->shapes);
    g_array_unref(model->n_reads);
    g_ptr_array_unref(model->values);
    g_ptr_array_unref(model->grads);
    g_ptr_array_unref(model->spare_grads);
    g_array_unref(model->grad_valid);
    g_array_unref(model->needed);
    g_strfreev(model->class_names);
    g_free(model->class_indices);
    g_free(model->mean);
    g_free(model->std);
    g_free(model);
}

/* Validates the op against its inputs (its class's check()), creates its
 * parameters (zeroed, or 1 where the class says so) and its output value.
 * Invalidates the tape of the last forward. */
int
tp_model_add(TpModel *model, TpOpType op, const char *name, const int *inputs,
             const TpOpAttrs *attrs, GError **error)
{
    g_autoptr(GPtrArray) params = g_ptr_array_new_with_free_func(tensor_free0);
    const TpShape *in_shapes[TP_NODE_MAX_INPUTS] = {NULL, NULL};
    const TpOpClass *klass;
    TpNodeEntry *entry;
    TpNode *node;
    TpOpSignature sig;
    guint n_values;
    gsize numel;
    int output, zero = 0;
    gboolean no = FALSE;

    g_return_val_if_fail(model != NULL, -1);
    g_return_val_if_fail(error == NULL || *error == NULL, -1);

    klass = tp_op_class_get(op);
    if (klass == NULL) {
        g_set_error(error, TP_MODEL_ERROR, TP_MODEL_ERROR_INVALID, "node %u: unknown op type %d",
                    model->nodes->len, (int)op);
        return -1;
    }

    entry = g_new0(TpNodeEntry, 1);
    node = &entry->node;
    node->op = op;
    node->name =
        name != NULL ? g_strdup(name) : g_strdup_printf("%s_%u", klass->name, model->nodes->len);
    if (attrs != NULL)
        node->attrs = *attrs;
    node->n_inputs = klass->n_values != NULL ? klass->n_values(&node->attrs) : klass->n_inputs;
    entry->klass = klass;

    n_values = model->shapes->len;
    if (inputs == NULL || node->n_inputs < 1 || node->n_inputs > klass->n_inputs) {
        tp_op_set_error(error, node, "no inputs given (it reads %d value%s)", node->n_inputs,
                        node->n_inputs == 1 ? "" : "s");
        goto fail;
    }
    for (int i = 0; i < node->n_inputs; i++) {
        if (inputs[i] < 0 || (guint)inputs[i] >= n_values) {
            tp_op_set_error(error, node, "input %d is value %d, but values 0 to %u exist", i,
                            inputs[i], n_values - 1);
            goto fail;
        }
        node->inputs[i] = inputs[i];
        in_shapes[i] = VALUE_SHAPE(model, inputs[i]);
    }

    memset(&sig, 0, sizeof sig);
    if (!klass->check(node, in_shapes, &sig, error))
        goto fail;
    if ((sig.output.ndim != 1 && sig.output.ndim != 3) || sig.n_params < 0 ||
        sig.n_params > TP_NODE_MAX_PARAMS) {
        g_critical("%s: check() declared a malformed signature", klass->name);
        tp_op_set_error(error, node, "internal error: malformed op signature");
        goto fail;
    }
    /* Activations are allocated at the first forward, for a whole batch:
     * one sample's must fit already. */
    if (!tp_backend_check_shape(model->backend, sig.output.ndim, sig.output.dim,
                                "its output for one sample", &numel, error)) {
        g_prefix_error(error, NODE_FMT ": ", NODE_ARGS(node));
        goto fail;
    }

    for (int i = 0; i < sig.n_params; i++) {
        TpTensor *param =
            tp_tensor_new(model->backend, sig.params[i].ndim, sig.params[i].dim, error);

        if (param == NULL || !tp_tensor_fill(param, sig.init[i], error)) {
            tp_tensor_free(param);
            g_prefix_error(error, NODE_FMT ": parameter %d: ", NODE_ARGS(node), i);
            goto fail;
        }
        g_ptr_array_add(params, param);
        entry->trainable[i] = sig.trainable[i];
    }
    for (int i = 0; i < sig.n_params; i++)
        node->params[i] = g_steal_pointer(&g_ptr_array_index(params, i));
    node->n_params = sig.n_params;

    output = (int)n_values;
    node->output = output;
    g_ptr_array_add(model->nodes, entry);
    g_array_append_val(model->shapes, sig.output);
    g_array_append_val(model->n_reads, zero);
    g_ptr_array_add(model->values, NULL);
    g_ptr_array_add(model->grads, NULL);
    g_array_append_val(model->grad_valid, no);
    g_array_append_val(model->needed, no);

    for (int i = 0; i < node->n_inputs; i++) {
        int *reads = &g_array_index(model->n_reads, int, node->inputs[i]);

        if (++*reads >= 2)
            model->max_multi_numel =
                MAX(model->max_multi_numel, tp_shape_numel(VALUE_SHAPE(model, node->inputs[i])));
    }

    model->batch = 0; /* the tape no longer covers every value */
    return output;

fail:
    entry_free(entry);
    return -1;
}

TpBackend *
tp_model_get_backend(const TpModel *model)
{
    g_return_val_if_fail(model != NULL, NULL);
    return model->backend;
}

guint
tp_model_get_n_nodes(const TpModel *model)
{
    g_return_val_if_fail(model != NULL, 0);
    return model->nodes->len;
}

const TpNode *
tp_model_get_node(const TpModel *model, guint index)
{
    g_return_val_if_fail(model != NULL, NULL);
    g_return_val_if_fail(index < model->nodes->len, NULL);
    return &entry_at(model, index)->node;
}

guint
tp_model_get_n_values(const TpModel *model)
{
    g_return_val_if_fail(model != NULL, 0);
    return model->shapes->len;
}

const TpShape *
tp_model_get_shape(const TpModel *model, int value)
{
    g_return_val_if_fail(model != NULL, NULL);
    g_return_val_if_fail(value >= 0 && (guint)value < model->shapes->len, NULL);
    return VALUE_SHAPE(model, value);
}

/* The last node's output; 0 (the input) for a model without nodes. */
int
tp_model_get_output(const TpModel *model)
{
    g_return_val_if_fail(model != NULL, -1);
    if (model->nodes->len == 0)
        return 0;
    return entry_at(model, model->nodes->len - 1)->node.output;
}

TpTensor *
tp_model_get_param(TpModel *model, guint index, int i)
{
    const TpNode *node;

    g_return_val_if_fail(model != NULL, NULL);
    g_return_val_if_fail(index < model->nodes->len, NULL);

    node = &entry_at(model, index)->node;
    if (i < 0 || i >= node->n_params)
        return NULL;
    return node->params[i];
}

TpTensor *
tp_model_get_param_grad(TpModel *model, guint index, int i)
{
    const TpNode *node;

    g_return_val_if_fail(model != NULL, NULL);
    g_return_val_if_fail(index < model->nodes->len, NULL);

    node = &entry_at(model, index)->node;
    if (i < 0 || i >= node->n_params)
        return NULL;
    return node->grads[i];
}

gboolean
tp_model_param_is_trainable(const TpModel *model, guint index, int i)
{
    const TpNodeEntry *entry;

    g_return_val_if_fail(model != NULL, FALSE);
    g_return_val_if_fail(index < model->nodes->len, FALSE);

    entry = entry_at(model, index);
    return i >= 0 && i < entry->node.n_params && entry->trainable[i];
}

/* Sets the dropout seed and restarts the count of training forwards, so the
 * k-th training forward after two equal set_seed() calls draws equal masks. */
void
tp_model_set_seed(TpModel *model, guint64 seed)
{
    g_return_if_fail(model != NULL);
    model->seed = seed;
    model->n_train_forwards = 0;
}

void
tp_model_set_sync_comm(TpModel *model, TpComm *comm)
{
    g_return_if_fail(model != NULL);
    model->sync_comm = comm;
}

/* With profiling on, waits for node `index`'s kernels and adds the time since
 * `start` to its entry of profile[pass]. */
static gboolean
profile_node(TpModel *model, int pass, guint index, gint64 start, GError **error)
{
    if (model->profile[pass] == NULL)
        return TRUE;
    if (!model->backend->vt.synchronize(model->backend->self, error))
        return FALSE;
    model->profile[pass][index] += (g_get_monotonic_time() - start) / 1000.0;
    return TRUE;
}

void
tp_model_set_profile(TpModel *model, double *forward_ms, double *backward_ms)
{
    g_return_if_fail(model != NULL);
    model->profile[0] = forward_ms;
    model->profile[1] = backward_ms;
}

/* The node after node i when it is the only reader of node i's output and
 * has op type `op`; else NULL. */
static const TpNode *
sole_reader(const TpModel *model, guint i, TpOpType op)
{
    const TpNode *node = &entry_at(model, i)->node, *next;

    if (i + 1 >= model->nodes->len)
        return NULL;
    next = &entry_at(model, i + 1)->node;
    if (next->op != op || next->inputs[0] != node->output ||
        g_array_index(model->n_reads, int, node->output) != 1)
        return NULL;
    return next;
}

/* In TP_MODE_INFER, what Conv node i runs fused with (see TP_MODE_INFER):
 * *out_norm, the BatchNormalization after it (or NULL), and *out_relu, the
 * Relu after that (or NULL). The number of nodes fused into node i. */
static guint
fusion(const TpModel *model, guint i, const TpNode **out_norm, const TpNode **out_relu)
{
    guint last = i;

    *out_norm = *out_relu = NULL;
    if (entry_at(model, i)->node.op != TP_OP_CONV)
        return 0;
    if ((*out_norm = sole_reader(model, last, TP_OP_BATCH_NORM)) != NULL)
        last++;
    if ((*out_relu = sole_reader(model, last, TP_OP_RELU)) != NULL)
        last++;
    return last - i;
}

/* Plans the tape for `batch` samples (see the top of the file), uploads the
 * input and runs every node. On failure the tape is invalid (backward and
 * loss refuse it) until the next successful forward. */
gboolean
tp_model_forward(TpModel *model, const float *input, int batch, TpMode mode, GError **error)
{
    guint64 draw = 0;

    g_return_val_if_fail(model != NULL, FALSE);
    g_return_val_if_fail(input != NULL, FALSE);
    g_return_val_if_fail(batch > 0, FALSE);
    g_return_val_if_fail(mode == TP_MODE_EVAL || mode == TP_MODE_TRAIN || mode == TP_MODE_INFER,
                         FALSE);
    g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

    model->batch = 0;
    for (guint v = 0; v < model->grad_valid->len; v++)
        GRAD_VALID(model, v) = FALSE;

    if (batch > model->capacity_batch) {
        drop_plan(model);
        model->capacity_batch = batch;
    }
    model->batch = batch;
    for (guint v = 0; v < model->values->len; v++) {
        if (!plan_tensor(model, (int)v, (TpTensor **)&g_ptr_array_index(model->values, v), error)) {
            g_prefix_error(error, "forward: batch of %d: ", batch);
            goto fail;
        }
    }
    if (!tp_tensor_upload(g_ptr_array_index(model->values, 0), input, error)) {
        g_prefix_error(error, "forward: input: ");
        goto fail;
    }

    if (mode == TP_MODE_TRAIN)
        draw = model->n_train_forwards++;

    for (guint i = 0; i < model->nodes->len; i++) {
        TpNodeEntry *entry = entry_at(model, i);
        TpNode *node = &entry->node;
        TpTensor *in[TP_NODE_MAX_INPUTS] = {NULL, NULL};
        gint64 start = g_get_monotonic_time();
        const TpNode *norm, *relu;
        guint fused = mode == TP_MODE_INFER ? fusion(model, i, &norm, &relu) : 0;
        gboolean ok;

        for (int k = 0; k < node->n_inputs; k++)
            in[k] = g_ptr_array_index(model->values, node->inputs[k]);
        entry->state.mode = mode;
        entry->state.sync_comm = mode == TP_MODE_TRAIN ? model->sync_comm : NULL;
        if (mode == TP_MODE_TRAIN)
            entry->state.seed = dropout_seed(model->seed, draw, i);
        if (fused > 0)
            ok = tp_conv_forward_fused(node, norm, relu != NULL, model->backend, in[0],
                                       g_ptr_array_index(model->values, node->output + (int)fused),
                                       &entry->state, error);
        else
            ok = entry->klass->forward(node, model->backend, in,
                                       g_ptr_array_index(model->values, node->output), mode,
                                       &entry->state, error);
        if (!ok || !profile_node(model, 0, i, start, error)) {
            g_prefix_error(error, NODE_FMT ": forward: ", NODE_ARGS(node));
            goto fail;
        }
        i += fused; /* the ops that ran fused into the Conv */
    }
    model->mode = mode;
    return TRUE;

fail:
    model->batch = 0;
    return FALSE;
}

TpTensor *
tp_model_get_value(TpModel *model, int value)
{
    g_return_val_if_fail(model != NULL, NULL);
    g_return_val_if_fail(value >= 0 && (guint)value < model->values->len, NULL);

    if (model->batch == 0)
        return NULL;
    return g_ptr_array_index(model->values, value);
}

/* The gradient of value if it was seeded or filled since the last forward. */
TpTensor *
tp_model_get_grad(TpModel *model, int value)
{
    g_return_val_if_fail(model != NULL, NULL);
    g_return_val_if_fail(value >= 0 && (guint)value < model->grads->len, NULL);

    if (model->batch == 0 || !GRAD_VALID(model, value))
        return NULL;
    return g_ptr_array_index(model->grads, value);
}

/* Marks value's gradient as seeded: the caller writes it before backward. */
TpTensor *
tp_model_ensure_grad(TpModel *model, int value, GError **error)
{
    TpTensor *grad;

    g_return_val_if_fail(model != NULL, NULL);
    g_return_val_if_fail(value >= 0 && (guint)value < model->grads->len, NULL);
    g_return_val_if_fail(error == NULL || *error == NULL, NULL);

    if (model->batch == 0) {
        g_set_error(error, TP_MODEL_ERROR, TP_MODEL_ERROR_STATE,
                    "gradient of value %d: no forward pass yet: call tp_model_forward() first",
                    value);
        return NULL;
    }
    grad = grad_tensor(model, value, error);
    if (grad == NULL)
        return NULL;
    GRAD_VALID(model, value) = TRUE;
    return grad;
}

/* The output, or the input of a final Softmax (what a loss should read). */
int
tp_model_get_logits(const TpModel *model)
{
    const TpNode *last;

    g_return_val_if_fail(model != NULL, -1);
    if (model->nodes->len == 0)
        return 0;
    last = &entry_at(model, model->nodes->len - 1)->node;
    return last->op == TP_OP_SOFTMAX ? last->inputs[0] : last->output;
}

/* Checks the logits shape, smoothing and every label on the host, then runs
 * the backend's softmax cross-entropy, writing the logits' gradient. */
gboolean
tp_model_loss(TpModel *model, const gint32 *labels, float smoothing, double *out_loss,
              GError **error)
{
    const TpShape *shape;
    TpTensor *dlogits;
    double loss = 0.0;
    int logits, classes;

    g_return_val_if_fail(model != NULL, FALSE);
    g_return_val_if_fail(labels != NULL, FALSE);
    g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

    if (model->batch == 0) {
        g_set_error(error, TP_MODEL_ERROR, TP_MODEL_ERROR_STATE,
                    "loss: no forward pass yet: call tp_model_forward() first");
        return FALSE;
    }
    logits = tp_model_get_logits(model);
    shape = VALUE_SHAPE(model, logits);
    if (shape->ndim != 1) {
        g_autofree char *str = tp_shape_to_string(shape);

        g_set_error(error, TP_MODEL_ERROR, TP_MODEL_ERROR_INVALID,
                    "loss: the logits (value %d) have per-sample shape %s, not [classes]: "
                    "end the model with Flatten and Gemm",
                    logits, str);
        return FALSE;
    }
    if (!(smoothing >= 0.0f && smoothing <= 1.0f)) {
        g_set_error(error, TP_MODEL_ERROR, TP_MODEL_ERROR_INVALID,
                    "loss: label smoothing %g is outside [0, 1]", smoothing);
        return FALSE;
    }
    classes = shape->dim[0];
    for (int i = 0; i < model->batch; i++) {
        if (labels[i] < 0 || labels[i] >= classes) {
            g_set_error(error, TP_MODEL_ERROR, TP_MODEL_ERROR_INVALID,
                        "loss: label %d of sample %d is outside [0, %d)", (int)labels[i], i,
                        classes);
            return FALSE;
        }
    }

    dlogits = tp_model_ensure_grad(model, logits, error);
    if (dlogits == NULL)
        return FALSE;
    if (!model->backend->vt.softmax_cross_entropy(
            model->backend->self, model->batch, classes,
            ((TpTensor *)g_ptr_array_index(model->values, logits))->data, labels, smoothing,
            dlogits->data, &loss, error)) {
        GRAD_VALID(model, logits) = FALSE;
        g_prefix_error(error, "loss: ");
        return FALSE;
    }
    if (out_loss != NULL)
        *out_loss = loss;
    return TRUE;
}

/* Allocates (zeroed) the gradient of every trainable parameter that has none. */
static gboolean
ensure_param_grads(TpModel *model, GError **error)
{
    for (guint i = 0; i < model->nodes->len; i++) {
        TpNodeEntry *entry = entry_at(model, i);
        TpNode *node = &entry->node;

        for (int p = 0; p < node->n_params; p++) {
            if (!entry->trainable[p] || node->grads[p] != NULL)
                continue;
            node->grads[p] = tp_tensor_new_zeros(model->backend, node->params[p]->ndim,
                                                 node->params[p]->shape, error);
            if (node->grads[p] == NULL) {
                g_prefix_error(error, NODE_FMT ": gradient of parameter %d: ", NODE_ARGS(node), p);
                return FALSE;
            }
        }
    }
    return TRUE;
}

void
tp_model_set_backward_hook(TpModel *model, TpBackwardHook hook, gpointer user_data)
{
    g_return_if_fail(model != NULL);
    model->backward_hook = hook;
    model->backward_hook_data = user_data;
}

/* Tells the backward hook that node `index`'s parameter gradients are final. */
static gboolean
node_final(TpModel *model, guint index, GError **error)
{
    return model->backward_hook == NULL ||
           model->backward_hook(model, index, model->backward_hook_data, error);
}

/* Walks the nodes in reverse from the producer of `from`, visiting only nodes
 * whose output `from` depends on; sums the contributions of several readers.
 * Without keep_values, a value's gradient goes back to the spares as soon as
 * its producer has used it, so a few tensors serve the whole pass. */
static gboolean
backward(TpModel *model, int from, gboolean keep_values, GError **error)
{
    g_return_val_if_fail(model != NULL, FALSE);
    g_return_val_if_fail(from >= 0 && (guint)from < model->values->len, FALSE);
    g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

    if (model->batch == 0) {
        g_set_error(error, TP_MODEL_ERROR, TP_MODEL_ERROR_STATE,
                    "backward: no forward pass since the model was built or changed: call "
                    "tp_model_forward() first");
        return FALSE;
    }
    if (model->mode == TP_MODE_INFER) {
        g_set_error(error, TP_MODEL_ERROR, TP_MODEL_ERROR_STATE,
                    "backward: the last forward was in TP_MODE_INFER, which keeps no tape: "
                    "run it in TP_MODE_EVAL or TP_MODE_TRAIN");
        return FALSE;
    }
    if (!GRAD_VALID(model, from)) {
        g_set_error(error, TP_MODEL_ERROR, TP_MODEL_ERROR_STATE,
                    "backward from value %d: its gradient was not seeded since the last "
                    "forward: call tp_model_loss() or tp_model_ensure_grad() first",
                    from);
        return FALSE;
    }
    if (!ensure_param_grads(model, error))
        return FALSE;

    for (guint v = 0; v < model->values->len; v++) {
        if ((int)v != from && !keep_values)
            release_grad(model, (int)v);
        GRAD_VALID(model, v) = (int)v == from;
        g_array_index(model->needed, gboolean, v) = (int)v == from;
    }

    /* The producer of value v > 0 is node v - 1. */
    for (int i = from - 1; i >= 0; i--) {
        TpNodeEntry *entry = entry_at(model, (guint)i);
        TpNode *node = &entry->node;
        TpTensor *in[TP_NODE_MAX_INPUTS] = {NULL, NULL};
        TpTensor *din[TP_NODE_MAX_INPUTS] = {NULL, NULL};
        TpTensor *sum_into[TP_NODE_MAX_INPUTS] = {NULL, NULL};
        gint64 start = g_get_monotonic_time();

        if (!g_array_index(model->needed, gboolean, node->output)) {
            if (!node_final(model, (guint)i, error))
                goto fail_hook;
            continue;
        }

        for (int k = 0; k < node->n_inputs; k++) {
            int v = node->inputs[k];
            TpTensor *grad;

            in[k] = g_ptr_array_index(model->values, v);
            /* Training wants no gradient of the input (value 0); only
             * BatchNorm must compute one (tp-op.h). */
            if (v == 0 && !keep_values && node->op != TP_OP_BATCH_NORM)
                continue;
            if ((grad = grad_tensor(model, v, error)) == NULL)
                goto fail_node;
            g_array_index(model->needed, gboolean, v) = TRUE;
            if (!GRAD_VALID(model, v)) {
                din[k] = grad; /* first contribution: written in place */
                GRAD_VALID(model, v) = TRUE;
            } else {
                din[k] = scratch_tensor(model, k, grad, error);
                if (din[k] == NULL)
                    goto fail_node;
                sum_into[k] = grad;
            }
        }

        if (!entry->klass->backward(
                node, model->backend, in, g_ptr_array_index(model->values, node->output),
                g_ptr_array_index(model->grads, node->output), din, &entry->state, error))
            goto fail_node;

        for (int k = 0; k < node->n_inputs; k++) {
            if (sum_into[k] != NULL &&
                !model->backend->vt.add(model->backend->self, sum_into[k]->numel, sum_into[k]->data,
                                        din[k]->data, sum_into[k]->data, error))
                goto fail_node;
        }
        if (!keep_values)
            release_grad(model, node->output);
        if (!profile_node(model, 1, (guint)i, start, error))
            goto fail_node;
        if (!node_final(model, (guint)i, error))
            goto fail_hook;
        continue;

    fail_node:
        g_prefix_error(error, NODE_FMT ": backward: ", NODE_ARGS(node));
    fail_hook:
        for (guint v = 0; v < model->values->len; v++)
            GRAD_VALID(model, v) = FALSE;
        return FALSE;
    }
    for (guint v = 0; !keep_values && v < model->values->len; v++)
        release_grad(model, (int)v);
    return TRUE;
}

gboolean
tp_model_backward(TpModel *model, int from, GError **error)
{
    return backward(model, from, TRUE, error);
}

gboolean
tp_model_backward_params(TpModel *model, int from, GError **error)
{
    return backward(model, from, FALSE, error);
}

void
tp_model_set_class_names(TpModel *model, const char *const *names)
{
    g_return_if_fail(model != NULL);
    g_strfreev(model->class_names);
    model->class_names = g_strdupv((char **)names);
}

const char *const *
tp_model_get_class_names(const TpModel *model)
{
    g_return_val_if_fail(model != NULL, NULL);
    return (const char *const *)model->class_names;
}

void
tp_model_set_normalization(TpModel *model, const float *mean, const float *std)
{
    gsize bytes;

    g_return_if_fail(model != NULL);
    g_return_if_fail((mean == NULL) == (std == NULL));

    bytes = sizeof(float) * (gsize)VALUE_SHAPE(model, 0)->dim[0];
    g_clear_pointer(&model->mean, g_free);
    g_clear_pointer(&model->std, g_free);
    if (mean != NULL) {
        model->mean = g_memdup2(mean, bytes);
        model->std = g_memdup2(std, bytes);
    }
}

gboolean
tp_model_get_normalization(const TpModel *model, const float **out_mean, const float **out_std)
{
    g_return_val_if_fail(model != NULL, FALSE);
    if (model->mean == NULL)
        return FALSE;
    *out_mean = model->mean;
    *out_std = model->std;
    return TRUE;
}

void
tp_model_set_class_indices(TpModel *model, const int *indices, int n)
{
    g_return_if_fail(model != NULL && n >= 0);
    g_clear_pointer(&model->class_indices, g_free);
    model->n_class_indices = indices != NULL ? n : 0;
    if (indices != NULL)
        model->class_indices = g_memdup2(indices, sizeof(int) * (gsize)n);
}

const int *
tp_model_get_class_indices(const TpModel *model, int *out_n)
{
    g_return_val_if_fail(model != NULL, NULL);
    *out_n = model->n_class_indices;
    return model->class_indices;
}
