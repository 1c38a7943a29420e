/* tp-lrp.c — layer-wise relevance propagation (contract: tp-lrp.h; formulas:
 * docs/method.md §2, lrp; Montavon et al. 2019, Yeom et al. 2021).
 *
 * Canonization. tp_lrp_new() builds a copy of the model on the same backend
 * in which every BatchNormalization that alone reads a Conv's output is
 * folded into that Conv (σ = sqrt(var + eps)):
 *     W'[f] = W[f] · γ_f / σ_f,      b'_f = (b_f − μ_f) · γ_f / σ_f + β_f
 * Any other BatchNormalization is an error naming it. A Conv with dead kernel
 * taps (engine/ops/conv.c) is copied with them cut off, kernel and padding,
 * which changes no output. value_map sends every
 * value of the original model to the copy's; a folded BN's output goes to
 * its Conv's output. The weight splits W⁺ = max(W, 0) and W⁻ = min(W, 0)
 * are made on the host, once, and uploaded.
 *
 * A run is an eval-mode forward of the copy (its tape keeps every op's input
 * and output), then one walk over the copy's nodes in reverse from the
 * producer of the logits. Relevance starts at the logits (1, or the logit,
 * at the label; 0 elsewhere); each node on the path hands its output's
 * relevance R to its inputs with its rule; a value read by several nodes
 * receives the sum (the first contribution is written in place, later ones
 * in a scratch tensor and added). With f the layer's linear map (conv or
 * gemm, no bias) and fᵀ its transpose (conv backward-data, gemm), a ⊙ b the
 * elementwise product and s = R / stab(z) (stab(z) = z + ε·sign(z),
 * TP_STABILIZER_ZERO at 0):
 *   ε          z = the layer's output (bias included);  R_in = a ⊙ fᵀ(s, W)
 *   αβ         Σ⁺ = f(a⁺, W⁺) + f(a⁻, W⁻),  Σ⁻ = f(a⁺, W⁻) + f(a⁻, W⁺) (no bias)
 *              R_in = α (a⁺ ⊙ fᵀ(s⁺, W⁺) + a⁻ ⊙ fᵀ(s⁺, W⁻))
 *                   − β (a⁺ ⊙ fᵀ(s⁻, W⁻) + a⁻ ⊙ fᵀ(s⁻, W⁺))
 *              α1β0 is z⁺ (the composite rule of inner Convs and rule set
 *              ZPLUS); α2β1 is rule set ALPHA2BETA1
 *   z^B        Z = f(x, W) − f(L, W⁺) − f(H, W⁻);  R_in = x ⊙ fᵀ(S, W)
 *              − L ⊙ fᵀ(S, W⁺) − H ⊙ fᵀ(S, W⁻), L and H the per-channel
 *              images of pixel values 0 and 1 after the model's
 *              normalization (0 and 1 without one)
 *   pools      MaxPool: max-pool backward of R; AveragePool and
 *              GlobalAveragePool: R_in = a ⊙ poolᵀ(R / stab(pool(a)))
 *   Add        R_in_k = a_k ⊙ R / stab(a_0 + a_1)
 *   Relu, Dropout, Flatten   R_in = R
 * Where an input is known to be non-negative (a Relu output, or pooling,
 * Flatten, Dropout or Add of such values) a⁻ = 0 and its terms are skipped.
 * All per-batch work runs through backend kernels; the relevance tensors and
 * scratch are planned for the largest batch seen and reshaped for smaller
 * ones. Errors are in TP_MODEL_ERROR (TP_MODEL_ERROR_INVALID, naming the node).
 */
#include "config.h"

#include <math.h>
#include <string.h>

#include "tp-lrp.h"
#include "tp-op.h"

/* The rule of one node of the canonized model: its op class's (tp-op.h:
 * TpOpLrpRule), with a Conv's or Gemm's resolved by the rule set. */
typedef enum {
    RULE_NONE,        /* not on the path to the logits */
    RULE_PASS,        /* Relu, Dropout, Flatten */
    RULE_MAX_POOL,    /* winner takes all */
    RULE_AVERAGE,     /* AveragePool, GlobalAveragePool: ε-proportional */
    RULE_ADD,         /* ε-proportional */
    RULE_EPSILON,     /* Conv, Gemm */
    RULE_ALPHA1BETA0, /* Conv, Gemm: z⁺ */
    RULE_ALPHA2BETA1, /* Conv, Gemm */
    RULE_ZB,          /* a Conv reading the model input */
} Rule;

/* What the walk does at one node of the canonized model. */
typedef struct {
    Rule rule;
    TpTensor *w_pos, *w_neg; /* owned: W⁺ and W⁻ (αβ and z^B rules) */
    TpTensor *zb_offset;     /* owned, z^B: f(L, W⁺) + f(H, W⁻) for capacity samples */
} Step;

enum { N_IN_TMP = 3, N_OUT_TMP = 3 };

struct _TpLrp {
    TpModel *canon; /* owned: the canonized copy */
    TpBackend *backend;
    TpLrpConfig config;
    guint n_orig_values;
    int *value_map;    /* original value -> canonized value */
    guint n_values;    /* of the canonized model */
    gboolean *needed;  /* per canonized value: on the path to the logits */
    gboolean *nonneg;  /* per canonized value: never negative */
    gboolean *written; /* per canonized value: has relevance in this run */
    Step *steps;       /* per canonized node */
    int logits, classes;
    float *bound_lo, *bound_hi; /* z^B: per input channel */
    gsize max_in, max_out;      /* per sample: largest input / output of a node on the path */

    /* The plan: for capacity samples, reshaped to batch. */
    int capacity, batch;
    TpTensor **relevance; /* per canonized value that is needed; owned */
    TpTensor *in_tmp[N_IN_TMP];
    TpTensor *out_tmp[N_OUT_TMP];
    TpTensor *sum_tmp;         /* a second contribution to a value read twice */
    TpTensor *lo_img, *hi_img; /* z^B: L and H for capacity samples */
    float *host_start;         /* capacity * classes */
    gboolean valid;            /* the last run succeeded */
};

/* Calls kernel `member` of backend b; `error` must be in scope. */
#define KERNEL(b, member, ...) ((b)->vt.member((b)->self, __VA_ARGS__, error))

#define NODE_FMT "%s '%s'"
#define NODE_ARGS(node) tp_op_type_to_string((node)->op), (node)->name

/* ---------------------------------------------------------------- canonization */

static void conv_geometry(const TpModel *m, const TpNode *node, int batch, TpConvGeometry *g);

/* The kernel taps a canonized Conv keeps of the original's: all, or the live
 * ones when the original has dead taps (tp_conv_trim_dead_taps), so that
 * every pass over the copy skips the zero terms as the model's own do. */
typedef struct {
    int kh, kw;             /* the original kernel */
    int ki0, ki1, kj0, kj1; /* the kept taps */
} Taps;

/* The taps kept of Conv node `node` of model; with dead taps, cuts them from
 * *attrs (kernel and padding). */
static Taps
keep_taps(const TpModel *model, const TpNode *node, TpOpAttrs *attrs)
{
    TpConvGeometry g;
    const int kh = node->attrs.conv.kernel[0], kw = node->attrs.conv.kernel[1];
    Taps t = {.kh = kh, .kw = kw, .ki1 = kh, .kj1 = kw};

    conv_geometry(model, node, 1, &g);
    if (tp_conv_trim_dead_taps(&g, &t.ki0, &t.ki1, &t.kj0, &t.kj1)) {
        attrs->conv.kernel[0] = g.kh;
        attrs->conv.kernel[1] = g.kw;
        attrs->conv.pads[0] = g.pad_t;
        attrs->conv.pads[1] = g.pad_l;
        attrs->conv.pads[2] = g.pad_b;
        attrs->conv.pads[3] = g.pad_r;
    }
    return t;
}

/* Uploads the kept taps of host weights [rows, kh, kw] to tensor dst. */
static gboolean
upload_taps(TpTensor *dst, const float *w, const Taps *t, GError **error)
{
    const int kh = t->ki1 - t->ki0, kw = t->kj1 - t->kj0;
    const gsize rows = dst->numel / (gsize)(kh * kw);
    g_autofree float *kept = NULL;

    if (kh == t->kh && kw == t->kw)
        return tp_tensor_upload(dst, w, error);
    kept = g_new(float, dst->numel);
    for (gsize r = 0; r < rows; r++)
        for (int i = 0; i < kh; i++)
            for (int j = 0; j < kw; j++)
                kept[(r * kh + i) * kw + j] = w[(r * t->kh + t->ki0 + i) * t->kw + t->kj0 + j];
    return tp_tensor_upload(dst, kept, error);
}

/* The node that writes value v > 0 (tp-model.c: node v - 1). */
static const TpNode *
producer_of(const TpModel *model, int v)
{
    return v > 0 ? tp_model_get_node(model, (guint)v - 1) : NULL;
}

/* Copies parameter p of node i of src to node j of dst (same shape, or a
 * Conv's weights cut to taps when taps is not NULL). */
static gboolean
copy_param(TpModel *src, guint i, TpModel *dst, guint j, int p, const Taps *taps, GError **error)
{
    g_autofree float *host = tp_tensor_dup_host(tp_model_get_param(src, i, p), error);
    TpTensor *to = tp_model_get_param(dst, j, p);

    if (host == NULL)
        return FALSE;
    return taps != NULL ? upload_taps(to, host, taps, error) : tp_tensor_upload(to, host, error);
}

/* Writes the conv node `ci` of src with the BatchNormalization `bi` folded in
 * as node j of dst (which has a bias and keeps `taps` of the kernel). */
static gboolean
fold_batch_norm(TpModel *src, guint ci, guint bi, TpModel *dst, guint j, const Taps *taps,
                GError **error)
{
    const TpNode *conv = tp_model_get_node(src, ci);
    const TpNode *bn = tp_model_get_node(src, bi);
    TpTensor *weight = tp_model_get_param(src, ci, 0);
    const int out_c = weight->shape[0];
    const gsize per_filter = weight->numel / (gsize)out_c;
    g_autofree float *w = tp_tensor_dup_host(weight, error);
    g_autofree float *b = NULL;
    g_autofree float *gamma = NULL;
    g_autofree float *beta = NULL;
    g_autofree float *mean = NULL;
    g_autofree float *var = NULL;
    g_autofree float *bias = g_new0(float, out_c);

    if (w == NULL ||
        (conv->n_params > 1 &&
         (b = tp_tensor_dup_host(tp_model_get_param(src, ci, 1), error)) == NULL) ||
        (gamma = tp_tensor_dup_host(tp_model_get_param(src, bi, 0), error)) == NULL ||
        (beta = tp_tensor_dup_host(tp_model_get_param(src, bi, 1), error)) == NULL ||
        (mean = tp_tensor_dup_host(tp_model_get_param(src, bi, 2), error)) == NULL ||
        (var = tp_tensor_dup_host(tp_model_get_param(src, bi, 3), error)) == NULL)
        return FALSE;
    for (int f = 0; f < out_c; f++) {
        const double k = gamma[f] / sqrt((double)var[f] + (double)bn->attrs.batch_norm.epsilon);

        for (gsize i = 0; i < per_filter; i++)
            w[(gsize)f * per_filter + i] = (float)(w[(gsize)f * per_filter + i] * k);
        bias[f] = (float)(((b != NULL ? (double)b[f] : 0.0) - mean[f]) * k + beta[f]);
    }
    return upload_taps(tp_model_get_param(dst, j, 0), w, taps, error) &&
           tp_tensor_upload(tp_model_get_param(dst, j, 1), bias, error);
}

/* The canonized copy of model (see the top of the file); value_map gets
 * tp_model_get_n_values(model) entries. */
static TpModel *
canonize(TpModel *model, int *value_map, GError **error)
{
    const guint n_nodes = tp_model_get_n_nodes(model);
    const guint n_values = tp_model_get_n_values(model);
    const TpShape *input = tp_model_get_shape(model, 0);
    g_autofree int *readers = g_new0(int, n_values); /* how many node inputs read a value */
    g_autofree int *reader = g_new0(int, n_values);  /* the last node that reads it */
    g_autoptr(TpModel) canon = NULL;
    const float *mean, *std;

    for (guint i = 0; i < n_nodes; i++) {
        const TpNode *node = tp_model_get_node(model, i);

        for (int k = 0; k < node->n_inputs; k++) {
            readers[node->inputs[k]]++;
            reader[node->inputs[k]] = (int)i;
        }
    }

    canon = tp_model_new(tp_model_get_backend(model), input->dim[0], input->dim[1], input->dim[2]);
    value_map[0] = 0;
    for (guint i = 0; i < n_nodes; i++) {
        const TpNode *node = tp_model_get_node(model, i);
        const TpNode *folded = NULL;
        int inputs[TP_NODE_MAX_INPUTS] = {0, 0};
        TpOpAttrs attrs = node->attrs;
        guint j = tp_model_get_n_nodes(canon);
        Taps taps;
        int out;

        if (node->op == TP_OP_BATCH_NORM) {
            const TpNode *producer = producer_of(model, node->inputs[0]);

            if (producer == NULL || producer->op != TP_OP_CONV || readers[node->inputs[0]] != 1) {
                g_autofree char *source =
                    producer == NULL
                        ? g_strdup("is the model input")
                        : g_strdup_printf(producer->op != TP_OP_CONV
                                              ? "comes from " NODE_FMT ", not from a Conv"
                                              : "comes from " NODE_FMT ", whose output other "
                                                "ops read too",
                                          NODE_ARGS(producer));

                g_set_error(error, TP_MODEL_ERROR, TP_MODEL_ERROR_INVALID,
                            "LRP: " NODE_FMT ": canonization folds a BatchNormalization only "
                            "into the Conv whose output it alone reads; its input %s",
                            NODE_ARGS(node), source);
                return NULL;
            }
            /* folded into its conv when that was copied */
            value_map[node->output] = value_map[node->inputs[0]];
            continue;
        }
        if (node->op == TP_OP_CONV && readers[node->output] == 1) {
            const TpNode *next = tp_model_get_node(model, (guint)reader[node->output]);

            if (next->op == TP_OP_BATCH_NORM)
                folded = next;
        }

        for (int k = 0; k < node->n_inputs; k++)
            inputs[k] = value_map[node->inputs[k]];
        if (folded != NULL)
            attrs.conv.bias = TRUE;
        if (node->op == TP_OP_CONV)
            taps = keep_taps(model, node, &attrs);
        out = tp_model_add(canon, node->op, node->name, inputs, &attrs, error);
        if (out < 0) {
            g_prefix_error(error, "LRP: canonization: ");
            return NULL;
        }
        value_map[node->output] = out;
        if (folded != NULL) {
            if (!fold_batch_norm(model, i, (guint)folded->output - 1, canon, j, &taps, error)) {
                g_prefix_error(error, "LRP: folding " NODE_FMT " into " NODE_FMT ": ",
                               NODE_ARGS(folded), NODE_ARGS(node));
                return NULL;
            }
            continue;
        }
        for (int p = 0; p < node->n_params; p++) {
            if (!copy_param(model, i, canon, j, p,
                            node->op == TP_OP_CONV && p == 0 ? &taps : NULL, error)) {
                g_prefix_error(error, "LRP: copying " NODE_FMT ": ", NODE_ARGS(node));
                return NULL;
            }
        }
    }
    if (tp_model_get_normalization(model, &mean, &std))
        tp_model_set_normalization(canon, mean, std);
    tp_model_set_class_names(canon, tp_model_get_class_names(model));
    return g_steal_pointer(&canon);
}

/* ---------------------------------------------------------------- geometry */

static void
conv_geometry(const TpModel *m, const TpNode *node, int batch, TpConvGeometry *g)
{
    tp_conv_geometry(node, batch, tp_model_get_shape(m, node->inputs[0]),
                     tp_model_get_shape(m, node->output), g);
}

static void
pool_geometry(const TpModel *m, const TpNode *node, int batch, TpPoolGeometry *g)
{
    tp_pool_geometry(node, batch, tp_model_get_shape(m, node->inputs[0]),
                     tp_model_get_shape(m, node->output), g);
}

/* The bias-free linear map of a Conv or Gemm node for `batch` samples. */
typedef struct {
    TpBackend *backend;
    gboolean conv;
    TpConvGeometry g;   /* conv */
    int batch, in, out; /* gemm: features */
} Linear;

static void
linear_init(Linear *lin, TpBackend *backend, const TpModel *m, const TpNode *node, int batch)
{
    memset(lin, 0, sizeof *lin);
    lin->backend = backend;
    lin->conv = tp_op_class_get(node->op)->lrp_rule == TP_OP_LRP_CONV;
    lin->batch = batch;
    if (lin->conv)
        conv_geometry(m, node, batch, &lin->g);
    lin->in = (int)tp_shape_numel(tp_model_get_shape(m, node->inputs[0]));
    lin->out = (int)tp_shape_numel(tp_model_get_shape(m, node->output));
}

/* y = f(x, w), no bias. */
static gboolean
linear_forward(const Linear *lin, const float *x, const float *w, float *y, GError **error)
{
    if (lin->conv)
        return KERNEL(lin->backend, conv2d_forward, &lin->g, x, w, NULL, y);
    return KERNEL(lin->backend, gemm, FALSE, TRUE, lin->batch, lin->out, lin->in, 1.0f, x, w, 0.0f,
                  y);
}

/* dx = fᵀ(s, w): the input-sized image of an output-sized s. */
static gboolean
linear_transpose(const Linear *lin, const float *s, const float *w, float *dx, GError **error)
{
    if (lin->conv)
        return KERNEL(lin->backend, conv2d_backward_data, &lin->g, s, w, dx);
    return KERNEL(lin->backend, gemm, FALSE, FALSE, lin->batch, lin->in, lin->out, 1.0f, s, w, 0.0f,
                  dx);
}

/* ---------------------------------------------------------------- analysis */

/* Marks the values on the path to the logits, and which are never negative. */
static void
analyze(TpLrp *lrp)
{
    TpModel *m = lrp->canon;
    const guint n_nodes = tp_model_get_n_nodes(m);

    lrp->needed[lrp->logits] = TRUE;
    for (int i = lrp->logits - 1; i >= 0; i--) {
        const TpNode *node = tp_model_get_node(m, (guint)i);

        if (!lrp->needed[node->output])
            continue;
        for (int k = 0; k < node->n_inputs; k++)
            lrp->needed[node->inputs[k]] = TRUE;
    }
    for (guint i = 0; i < n_nodes; i++) {
        const TpNode *node = tp_model_get_node(m, i);
        gboolean nonneg = FALSE;

        switch (tp_op_class_get(node->op)->sign) {
        case TP_OP_SIGN_NONNEG:
            nonneg = TRUE;
            break;
        case TP_OP_SIGN_INPUTS:
            nonneg = TRUE;
            for (int k = 0; k < node->n_inputs; k++)
                nonneg = nonneg && lrp->nonneg[node->inputs[k]];
            break;
        case TP_OP_SIGN_ANY:
            break;
        }
        lrp->nonneg[node->output] = nonneg;
    }
}

/* The rule of a Conv or Gemm node under the configured rule set. */
static Rule
linear_rule(const TpLrp *lrp, const TpNode *node)
{
    switch (lrp->config.rules) {
    case TP_LRP_RULES_ZPLUS:
        return RULE_ALPHA1BETA0;
    case TP_LRP_RULES_EPSILON:
        return RULE_EPSILON;
    case TP_LRP_RULES_ALPHA2BETA1:
        return RULE_ALPHA2BETA1;
    case TP_LRP_RULES_COMPOSITE:
    default:
        if (tp_op_class_get(node->op)->lrp_rule == TP_OP_LRP_DENSE)
            return RULE_EPSILON;
        return node->inputs[0] == 0 ? RULE_ZB : RULE_ALPHA1BETA0;
    }
}

/* Chooses every node's rule and makes the weight splits it needs. */
static gboolean
prepare_steps(TpLrp *lrp, GError **error)
{
    TpModel *m = lrp->canon;
    const guint n_nodes = tp_model_get_n_nodes(m);

    for (guint i = 0; i < n_nodes; i++) {
        const TpNode *node = tp_model_get_node(m, i);
        Step *step = &lrp->steps[i];
        TpTensor *weight;
        g_autofree float *pos = NULL;
        g_autofree float *neg = NULL;

        if (!lrp->needed[node->output])
            continue;
        lrp->max_out = MAX(lrp->max_out, tp_shape_numel(tp_model_get_shape(m, node->output)));
        for (int k = 0; k < node->n_inputs; k++)
            lrp->max_in = MAX(lrp->max_in, tp_shape_numel(tp_model_get_shape(m, node->inputs[k])));
        switch (tp_op_class_get(node->op)->lrp_rule) {
        case TP_OP_LRP_PASS:
            step->rule = RULE_PASS;
            continue;
        case TP_OP_LRP_WINNER:
            step->rule = RULE_MAX_POOL;
            continue;
        case TP_OP_LRP_AVERAGE:
            step->rule = RULE_AVERAGE;
            continue;
        case TP_OP_LRP_SUM:
            if (node->n_inputs != 2 ||
                tp_shape_numel(tp_model_get_shape(m, node->inputs[0])) !=
                    tp_shape_numel(tp_model_get_shape(m, node->inputs[1]))) {
                g_set_error(error, TP_MODEL_ERROR, TP_MODEL_ERROR_INVALID,
                            "LRP: " NODE_FMT ": no relevance rule for a sum that broadcasts or "
                            "adds a constant, on the path to the logits",
                            NODE_ARGS(node));
                return FALSE;
            }
            step->rule = RULE_ADD;
            continue;
        case TP_OP_LRP_CONV:
        case TP_OP_LRP_DENSE:
            step->rule = linear_rule(lrp, node);
            break;
        case TP_OP_LRP_NONE:
            g_set_error(error, TP_MODEL_ERROR, TP_MODEL_ERROR_INVALID,
                        "LRP: " NODE_FMT ": no relevance rule for this op on the path to the "
                        "logits; of the ops without one, only a final Softmax is allowed",
                        NODE_ARGS(node));
            return FALSE;
        }
        if (step->rule == RULE_EPSILON)
            continue;

        /* W⁺ and W⁻, once, on the host */
        weight = tp_model_get_param(m, i, 0);
        pos = tp_tensor_dup_host(weight, error);
        if (pos == NULL)
            return FALSE;
        neg = g_memdup2(pos, weight->numel * sizeof(float));
        for (gsize k = 0; k < weight->numel; k++) {
            pos[k] = pos[k] > 0.0f ? pos[k] : 0.0f;
            neg[k] = neg[k] < 0.0f ? neg[k] : 0.0f;
        }
        step->w_pos = tp_tensor_new(lrp->backend, weight->ndim, weight->shape, error);
        if (step->w_pos == NULL || !tp_tensor_upload(step->w_pos, pos, error))
            return FALSE;
        step->w_neg = tp_tensor_new(lrp->backend, weight->ndim, weight->shape, error);
        if (step->w_neg == NULL || !tp_tensor_upload(step->w_neg, neg, error))
            return FALSE;
    }
    return TRUE;
}

/* z^B bounds per input channel: the normalized images of 0 and 1. */
static void
prepare_bounds(TpLrp *lrp, const TpModel *model)
{
    const int channels = tp_model_get_shape(model, 0)->dim[0];
    const float *mean, *std;
    gboolean normalized = tp_model_get_normalization(model, &mean, &std);

    lrp->bound_lo = g_new(float, channels);
    lrp->bound_hi = g_new(float, channels);
    for (int c = 0; c < channels; c++) {
        lrp->bound_lo[c] = normalized ? (0.0f - mean[c]) / std[c] : 0.0f;
        lrp->bound_hi[c] = normalized ? (1.0f - mean[c]) / std[c] : 1.0f;
    }
}

/* ---------------------------------------------------------------- the plan */

static void
step_clear(Step *step)
{
    g_clear_pointer(&step->w_pos, tp_tensor_free);
    g_clear_pointer(&step->w_neg, tp_tensor_free);
    g_clear_pointer(&step->zb_offset, tp_tensor_free);
}

/* Frees everything sized by the batch. */
static void
drop_plan(TpLrp *lrp)
{
    if (lrp->relevance != NULL)
        for (guint v = 0; v < lrp->n_values; v++)
            g_clear_pointer(&lrp->relevance[v], tp_tensor_free);
    for (int i = 0; i < N_IN_TMP; i++)
        g_clear_pointer(&lrp->in_tmp[i], tp_tensor_free);
    for (int i = 0; i < N_OUT_TMP; i++)
        g_clear_pointer(&lrp->out_tmp[i], tp_tensor_free);
    g_clear_pointer(&lrp->sum_tmp, tp_tensor_free);
    g_clear_pointer(&lrp->lo_img, tp_tensor_free);
    g_clear_pointer(&lrp->hi_img, tp_tensor_free);
    g_clear_pointer(&lrp->host_start, g_free);
    if (lrp->steps != NULL)
        for (guint i = 0; i < lrp->n_values - 1; i++)
            g_clear_pointer(&lrp->steps[i].zb_offset, tp_tensor_free);
    lrp->capacity = 0;
    lrp->batch = 0;
}

/* A new flat tensor of n floats. */
static TpTensor *
flat_new(TpBackend *backend, gsize n, GError **error)
{
    int shape[1];

    if (n > G_MAXINT) {
        g_set_error(error, TP_MODEL_ERROR, TP_MODEL_ERROR_INVALID,
                    "LRP: a scratch tensor of %" G_GSIZE_FORMAT " floats is too large", n);
        return NULL;
    }
    shape[0] = (int)MAX(n, 1);
    return tp_tensor_new(backend, 1, shape, error);
}

/* The tensor shape of canonized value v for `batch` samples. */
static int
batch_shape(const TpLrp *lrp, int v, int batch, int *out_shape)
{
    const TpShape *shape = tp_model_get_shape(lrp->canon, v);

    out_shape[0] = batch;
    for (int i = 0; i < shape->ndim; i++)
        out_shape[i + 1] = shape->dim[i];
    return shape->ndim + 1;
}

/* z^B: L and H images and each z^B node's f(L, W⁺) + f(H, W⁻), for
 * capacity samples (all alike, so any leading part serves a smaller batch). */
static gboolean
plan_bounds(TpLrp *lrp, int capacity, GError **error)
{
    TpModel *m = lrp->canon;
    const TpShape *in = tp_model_get_shape(m, 0);
    const gsize plane = (gsize)in->dim[1] * in->dim[2], per_sample = tp_shape_numel(in);
    const gsize n = per_sample * (gsize)capacity;
    g_autofree float *lo = NULL;
    g_autofree float *hi = NULL;
    int shape[TP_TENSOR_MAX_DIMS];
    int ndim = batch_shape(lrp, 0, capacity, shape);

    lrp->lo_img = tp_tensor_new(lrp->backend, ndim, shape, error);
    lrp->hi_img = lrp->lo_img != NULL ? tp_tensor_new(lrp->backend, ndim, shape, error) : NULL;
    if (lrp->hi_img == NULL)
        return FALSE;
    lo = g_new(float, n);
    hi = g_new(float, n);
    for (gsize k = 0; k < n; k++) {
        int c = (int)(k % per_sample / plane);

        lo[k] = lrp->bound_lo[c];
        hi[k] = lrp->bound_hi[c];
    }
    if (!tp_tensor_upload(lrp->lo_img, lo, error) || !tp_tensor_upload(lrp->hi_img, hi, error))
        return FALSE;

    for (guint i = 0; i < lrp->n_values - 1; i++) {
        const TpNode *node = tp_model_get_node(m, i);
        Step *step = &lrp->steps[i];
        float *tmp = lrp->out_tmp[0]->data;
        Linear lin;

        if (step->rule != RULE_ZB)
            continue;
        linear_init(&lin, lrp->backend, m, node, capacity);
        ndim = batch_shape(lrp, node->output, capacity, shape);
        step->zb_offset = tp_tensor_new(lrp->backend, ndim, shape, error);
        if (step->zb_offset == NULL ||
            !linear_forward(&lin, lrp->lo_img->data, step->w_pos->data, step->zb_offset->data,
                            error) ||
            !linear_forward(&lin, lrp->hi_img->data, step->w_neg->data, tmp, error) ||
            !KERNEL(lrp->backend, add, step->zb_offset->numel, step->zb_offset->data, tmp,
                    step->zb_offset->data)) {
            g_prefix_error(error, NODE_FMT ": z^B bounds: ", NODE_ARGS(node));
            return FALSE;
        }
    }
    return TRUE;
}

/* Makes every batch-sized tensor fit `batch` samples: allocated for the
 * largest batch seen, reshaped for smaller ones. */
static gboolean
plan(TpLrp *lrp, int batch, GError **error)
{
    int shape[TP_TENSOR_MAX_DIMS];
    int ndim;

    if (batch > lrp->capacity) {
        gboolean zb = FALSE;

        drop_plan(lrp);
        for (guint v = 0; v < lrp->n_values; v++) {
            if (!lrp->needed[v])
                continue;
            ndim = batch_shape(lrp, (int)v, batch, shape);
            lrp->relevance[v] = tp_tensor_new(lrp->backend, ndim, shape, error);
            if (lrp->relevance[v] == NULL)
                return FALSE;
        }
        for (int i = 0; i < N_IN_TMP; i++)
            if ((lrp->in_tmp[i] = flat_new(lrp->backend, lrp->max_in * (gsize)batch, error)) ==
                NULL)
                return FALSE;
        for (int i = 0; i < N_OUT_TMP; i++)
            if ((lrp->out_tmp[i] = flat_new(lrp->backend, lrp->max_out * (gsize)batch, error)) ==
                NULL)
                return FALSE;
        lrp->sum_tmp = flat_new(lrp->backend, lrp->max_in * (gsize)batch, error);
        if (lrp->sum_tmp == NULL)
            return FALSE;
        lrp->host_start = g_new(float, (gsize)batch *(gsize)lrp->classes);
        for (guint i = 0; i < lrp->n_values - 1; i++)
            zb = zb || lrp->steps[i].rule == RULE_ZB;
        if (zb && !plan_bounds(lrp, batch, error))
            return FALSE;
        lrp->capacity = batch;
    }
    for (guint v = 0; v < lrp->n_values; v++) {
        gboolean fits;

        if (!lrp->needed[v])
            continue;
        ndim = batch_shape(lrp, (int)v, batch, shape);
        fits = tp_tensor_reshape(lrp->relevance[v], ndim, shape);
        g_return_val_if_fail(fits, FALSE); /* capacity >= batch by construction */
    }
    lrp->batch = batch;
    return TRUE;
}

/* ---------------------------------------------------------------- the rules */

/* Where the next contribution to value v goes: its relevance tensor if it
 * has none yet, else the scratch that finish() adds in. */
static float *
contribution_for(TpLrp *lrp, int v)
{
    return lrp->written[v] ? lrp->sum_tmp->data : lrp->relevance[v]->data;
}

static gboolean
finish(TpLrp *lrp, int v, float *dest, GError **error)
{
    TpTensor *r = lrp->relevance[v];

    if (lrp->written[v] && !KERNEL(lrp->backend, add, r->numel, r->data, dest, r->data))
        return FALSE;
    lrp->written[v] = TRUE;
    return TRUE;
}

/* αβ (α1β0 = z⁺): dest = α·pos − β·neg (see the top of the file); biases
 * are ignored. a⁻ terms are skipped when the input is never negative. */
static gboolean
rule_alpha_beta(TpLrp *lrp, const Linear *lin, const TpNode *node, const Step *step, float alpha,
                float beta, const float *r, float *dest, GError **error)
{
    TpBackend *b = lrp->backend;
    const TpTensor *a = tp_model_get_value(lrp->canon, node->inputs[0]);
    const gboolean signed_in = !lrp->nonneg[node->inputs[0]];
    const float eps = (float)lrp->config.epsilon;
    const gsize n_in = a->numel;
    const gsize n_out = (gsize)lin->batch * (gsize)lin->out;
    const float *wp = step->w_pos->data, *wn = step->w_neg->data;
    const float *ap = a->data;
    float *an = lrp->in_tmp[1]->data, *c = lrp->in_tmp[2]->data;
    float *s_pos = lrp->out_tmp[0]->data, *s_neg = lrp->out_tmp[1]->data;
    float *tmp = lrp->out_tmp[2]->data;

    if (signed_in) {
        if (!KERNEL(b, clamp, n_in, a->data, 0.0f, INFINITY, lrp->in_tmp[0]->data) ||
            !KERNEL(b, clamp, n_in, a->data, -INFINITY, 0.0f, an))
            return FALSE;
        ap = lrp->in_tmp[0]->data;
    }
    /* Σ⁺ = f(a⁺, W⁺) + f(a⁻, W⁻); s⁺ = R / stab(Σ⁺) */
    if (!linear_forward(lin, ap, wp, s_pos, error) ||
        (signed_in &&
         (!linear_forward(lin, an, wn, tmp, error) || !KERNEL(b, add, n_out, s_pos, tmp, s_pos))) ||
        !KERNEL(b, stabilized_divide, n_out, r, s_pos, eps, s_pos))
        return FALSE;
    /* Σ⁻ = f(a⁺, W⁻) + f(a⁻, W⁺); s⁻ = R / stab(Σ⁻) */
    if (beta != 0.0f && (!linear_forward(lin, ap, wn, s_neg, error) ||
                         (signed_in && (!linear_forward(lin, an, wp, tmp, error) ||
                                        !KERNEL(b, add, n_out, s_neg, tmp, s_neg))) ||
                         !KERNEL(b, stabilized_divide, n_out, r, s_neg, eps, s_neg)))
        return FALSE;

    /* pos = a⁺ ⊙ fᵀ(s⁺, W⁺) + a⁻ ⊙ fᵀ(s⁺, W⁻), scaled by α */
    if (!linear_transpose(lin, s_pos, wp, dest, error) || !KERNEL(b, mul, n_in, ap, dest, dest))
        return FALSE;
    if (signed_in && (!linear_transpose(lin, s_pos, wn, c, error) ||
                      !KERNEL(b, mul, n_in, an, c, c) || !KERNEL(b, add, n_in, dest, c, dest)))
        return FALSE;
    if (alpha != 1.0f && !KERNEL(b, axpby, n_in, alpha, dest, 0.0f, dest))
        return FALSE;
    if (beta == 0.0f)
        return TRUE;

    /* − β (a⁺ ⊙ fᵀ(s⁻, W⁻) + a⁻ ⊙ fᵀ(s⁻, W⁺)) */
    if (!linear_transpose(lin, s_neg, wn, c, error) || !KERNEL(b, mul, n_in, ap, c, c) ||
        !KERNEL(b, axpby, n_in, -beta, c, 1.0f, dest))
        return FALSE;
    if (signed_in &&
        (!linear_transpose(lin, s_neg, wp, c, error) || !KERNEL(b, mul, n_in, an, c, c) ||
         !KERNEL(b, axpby, n_in, -beta, c, 1.0f, dest)))
        return FALSE;
    return TRUE;
}

/* z^B: dest = x ⊙ fᵀ(S, W) − L ⊙ fᵀ(S, W⁺) − H ⊙ fᵀ(S, W⁻), S = R / stab(Z). */
static gboolean
rule_zb(TpLrp *lrp, const Linear *lin, const TpNode *node, const Step *step, const float *w,
        const float *r, float *dest, GError **error)
{
    TpBackend *b = lrp->backend;
    const TpTensor *x = tp_model_get_value(lrp->canon, node->inputs[0]);
    const float eps = (float)lrp->config.epsilon;
    const gsize n_in = x->numel;
    const gsize n_out = (gsize)lin->batch * (gsize)lin->out;
    float *s = lrp->out_tmp[0]->data, *c = lrp->in_tmp[0]->data;

    if (!linear_forward(lin, x->data, w, s, error) ||
        !KERNEL(b, axpby, n_out, -1.0f, step->zb_offset->data, 1.0f, s) ||
        !KERNEL(b, stabilized_divide, n_out, r, s, eps, s) ||
        !linear_transpose(lin, s, w, dest, error) || !KERNEL(b, mul, n_in, x->data, dest, dest) ||
        !linear_transpose(lin, s, step->w_pos->data, c, error) ||
        !KERNEL(b, mul, n_in, lrp->lo_img->data, c, c) ||
        !KERNEL(b, axpby, n_in, -1.0f, c, 1.0f, dest) ||
        !linear_transpose(lin, s, step->w_neg->data, c, error) ||
        !KERNEL(b, mul, n_in, lrp->hi_img->data, c, c) ||
        !KERNEL(b, axpby, n_in, -1.0f, c, 1.0f, dest))
        return FALSE;
    return TRUE;
}

/* Hands the relevance of node i's output to its inputs with the node's rule. */
static gboolean
node_backward(TpLrp *lrp, guint i, GError **error)
{
    TpModel *m = lrp->canon;
    TpBackend *b = lrp->backend;
    const TpNode *node = tp_model_get_node(m, i);
    const Step *step = &lrp->steps[i];
    const float eps = (float)lrp->config.epsilon;
    const TpTensor *z = tp_model_get_value(m, node->output);
    const TpTensor *a = tp_model_get_value(m, node->inputs[0]);
    const float *r = lrp->relevance[node->output]->data;
    float *s = lrp->out_tmp[0]->data;
    float *dest;
    TpPoolGeometry pg;
    Linear lin;

    if (step->rule == RULE_ADD) {
        if (!KERNEL(b, stabilized_divide, z->numel, r, z->data, eps, s))
            return FALSE;
        for (int k = 0; k < 2; k++) {
            const TpTensor *ak = tp_model_get_value(m, node->inputs[k]);

            dest = contribution_for(lrp, node->inputs[k]);
            if (!KERNEL(b, mul, ak->numel, ak->data, s, dest) ||
                !finish(lrp, node->inputs[k], dest, error))
                return FALSE;
        }
        return TRUE;
    }

    dest = contribution_for(lrp, node->inputs[0]);
    switch (step->rule) {
    case RULE_PASS:
        if (!KERNEL(b, copy, dest, r, z->numel))
            return FALSE;
        break;
    case RULE_MAX_POOL:
        pool_geometry(m, node, lrp->batch, &pg);
        if (!KERNEL(b, pool2d_backward, &pg, a->data, z->data, r, dest))
            return FALSE;
        break;
    case RULE_AVERAGE:
        pool_geometry(m, node, lrp->batch, &pg);
        if (!KERNEL(b, stabilized_divide, z->numel, r, z->data, eps, s) ||
            !KERNEL(b, pool2d_backward, &pg, a->data, z->data, s, dest) ||
            !KERNEL(b, mul, a->numel, a->data, dest, dest))
            return FALSE;
        break;
    case RULE_EPSILON:
        linear_init(&lin, b, m, node, lrp->batch);
        if (!KERNEL(b, stabilized_divide, z->numel, r, z->data, eps, s) ||
            !linear_transpose(&lin, s, node->params[0]->data, dest, error) ||
            !KERNEL(b, mul, a->numel, a->data, dest, dest))
            return FALSE;
        break;
    case RULE_ALPHA1BETA0:
        linear_init(&lin, b, m, node, lrp->batch);
        if (!rule_alpha_beta(lrp, &lin, node, step, 1.0f, 0.0f, r, dest, error))
            return FALSE;
        break;
    case RULE_ALPHA2BETA1:
        linear_init(&lin, b, m, node, lrp->batch);
        if (!rule_alpha_beta(lrp, &lin, node, step, 2.0f, 1.0f, r, dest, error))
            return FALSE;
        break;
    case RULE_ZB:
        linear_init(&lin, b, m, node, lrp->batch);
        if (!rule_zb(lrp, &lin, node, step, node->params[0]->data, r, dest, error))
            return FALSE;
        break;
    case RULE_ADD:
    case RULE_NONE:
    default:
        g_return_val_if_reached(FALSE);
    }
    return finish(lrp, node->inputs[0], dest, error);
}

/* The start: 1 (or the logit) at each sample's label, 0 elsewhere. */
static gboolean
seed_logits(TpLrp *lrp, const gint32 *labels, GError **error)
{
    TpTensor *r = lrp->relevance[lrp->logits];
    const gsize n = (gsize)lrp->batch * (gsize)lrp->classes;

    memset(lrp->host_start, 0, n * sizeof(float));
    for (int i = 0; i < lrp->batch; i++)
        lrp->host_start[(gsize)i * lrp->classes + labels[i]] = 1.0f;
    if (!tp_tensor_upload(r, lrp->host_start, error))
        return FALSE;
    if (lrp->config.start == TP_LRP_START_LOGIT &&
        !KERNEL(lrp->backend, mul, n, r->data, tp_model_get_value(lrp->canon, lrp->logits)->data,
                r->data))
        return FALSE;
    lrp->written[lrp->logits] = TRUE;
    return TRUE;
}

/* Checks the labels, runs the canonized model in eval mode, plans, seeds the
 * logits and walks the nodes in reverse. On failure no relevance is valid
 * until the next successful run. */
gboolean
tp_lrp_run(TpLrp *lrp, const float *input, int batch, const gint32 *labels, GError **error)
{
    g_return_val_if_fail(lrp != NULL, FALSE);
    g_return_val_if_fail(input != NULL && labels != NULL, FALSE);
    g_return_val_if_fail(batch > 0, FALSE);
    g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

    lrp->valid = FALSE;
    for (int i = 0; i < batch; i++) {
        if (labels[i] < 0 || labels[i] >= lrp->classes) {
            g_set_error(error, TP_MODEL_ERROR, TP_MODEL_ERROR_INVALID,
                        "LRP: label %d of sample %d is outside [0, %d)", (int)labels[i], i,
                        lrp->classes);
            return FALSE;
        }
    }
    if (!tp_model_forward(lrp->canon, input, batch, TP_MODE_EVAL, error)) {
        g_prefix_error(error, "LRP: ");
        return FALSE;
    }
    if (!plan(lrp, batch, error)) {
        g_prefix_error(error, "LRP: batch of %d: ", batch);
        return FALSE;
    }
    memset(lrp->written, 0, lrp->n_values * sizeof(gboolean));
    if (!seed_logits(lrp, labels, error)) {
        g_prefix_error(error, "LRP: start at the logits: ");
        return FALSE;
    }
    for (int i = lrp->logits - 1; i >= 0; i--) {
        const TpNode *node = tp_model_get_node(lrp->canon, (guint)i);

        if (lrp->steps[i].rule == RULE_NONE)
            continue;
        if (!node_backward(lrp, (guint)i, error)) {
            g_prefix_error(error, "LRP: " NODE_FMT ": ", NODE_ARGS(node));
            return FALSE;
        }
    }
    lrp->valid = TRUE;
    return TRUE;
}

/* ---------------------------------------------------------------- public API */

void
tp_lrp_free(TpLrp *lrp)
{
    if (lrp == NULL)
        return;
    drop_plan(lrp);
    if (lrp->steps != NULL)
        for (guint i = 0; i < lrp->n_values - 1; i++)
            step_clear(&lrp->steps[i]);
    g_free(lrp->steps);
    g_free(lrp->relevance);
    g_free(lrp->value_map);
    g_free(lrp->needed);
    g_free(lrp->nonneg);
    g_free(lrp->written);
    g_free(lrp->bound_lo);
    g_free(lrp->bound_hi);
    tp_model_free(lrp->canon);
    g_free(lrp);
}

/* Canonizes model, finds the path to its logits and each node's rule, and
 * uploads the weight splits. Nothing sized by the batch is made yet. */
TpLrp *
tp_lrp_new(TpModel *model, const TpLrpConfig *config, GError **error)
{
    g_autoptr(TpLrp) lrp = NULL;
    const TpShape *logits_shape;

    g_return_val_if_fail(model != NULL, NULL);
    g_return_val_if_fail(config != NULL, NULL);
    g_return_val_if_fail(error == NULL || *error == NULL, NULL);

    if ((int)config->rules < TP_LRP_RULES_COMPOSITE ||
        (int)config->rules > TP_LRP_RULES_ALPHA2BETA1 || (int)config->start < TP_LRP_START_UNIT ||
        (int)config->start > TP_LRP_START_LOGIT) {
        g_set_error(error, TP_MODEL_ERROR, TP_MODEL_ERROR_INVALID,
                    "LRP: unknown rule set %d or start %d", (int)config->rules, (int)config->start);
        return NULL;
    }
    if (!(config->epsilon >= 0.0) || !isfinite(config->epsilon)) {
        g_set_error(error, TP_MODEL_ERROR, TP_MODEL_ERROR_INVALID,
                    "LRP: epsilon %g: must be finite and not negative", config->epsilon);
        return NULL;
    }
    if (tp_model_get_n_nodes(model) == 0) {
        g_set_error(error, TP_MODEL_ERROR, TP_MODEL_ERROR_INVALID, "LRP: the model has no ops");
        return NULL;
    }

    lrp = g_new0(TpLrp, 1);
    lrp->backend = tp_model_get_backend(model);
    lrp->config = *config;
    lrp->n_orig_values = tp_model_get_n_values(model);
    lrp->value_map = g_new(int, lrp->n_orig_values);
    lrp->canon = canonize(model, lrp->value_map, error);
    if (lrp->canon == NULL)
        return NULL;
    lrp->n_values = tp_model_get_n_values(lrp->canon);
    lrp->needed = g_new0(gboolean, lrp->n_values);
    lrp->nonneg = g_new0(gboolean, lrp->n_values);
    lrp->written = g_new0(gboolean, lrp->n_values);
    lrp->relevance = g_new0(TpTensor *, lrp->n_values);
    lrp->steps = g_new0(Step, lrp->n_values - 1);

    lrp->logits = tp_model_get_logits(lrp->canon);
    logits_shape = tp_model_get_shape(lrp->canon, lrp->logits);
    if (logits_shape->ndim != 1 || lrp->logits == 0) {
        g_autofree char *str = tp_shape_to_string(logits_shape);

        const TpNode *last = producer_of(lrp->canon, lrp->logits);
        g_autofree char *source = last ? g_strdup_printf("the output of " NODE_FMT, NODE_ARGS(last))
                                       : g_strdup("the model input");

        g_set_error(error, TP_MODEL_ERROR, TP_MODEL_ERROR_INVALID,
                    "LRP: the logits (%s) have per-sample shape %s, not [classes]: end the "
                    "model with Flatten and Gemm",
                    source, str);
        return NULL;
    }
    lrp->classes = logits_shape->dim[0];

    analyze(lrp);
    if (!prepare_steps(lrp, error))
        return NULL;
    prepare_bounds(lrp, model);
    return g_steal_pointer(&lrp);
}

TpModel *
tp_lrp_get_canonized(TpLrp *lrp)
{
    g_return_val_if_fail(lrp != NULL, NULL);
    return lrp->canon;
}

TpTensor *
tp_lrp_get_relevance(TpLrp *lrp, int value)
{
    int v;

    g_return_val_if_fail(lrp != NULL, NULL);
    g_return_val_if_fail(value >= 0 && (guint)value < lrp->n_orig_values, NULL);

    if (!lrp->valid)
        return NULL;
    v = lrp->value_map[value];
    return lrp->needed[v] ? lrp->relevance[v] : NULL;
}
