/* tp-units.c — the pruning analysis (tp-prune.h): which channels of a model
 * can be removed, and which must go together.
 *
 * Channel spaces are built with union-find over the model's values, by each
 * op's channel rule (its class's, tp-op.h). Every value starts as its own
 * set; an op that keeps its input's channel indexing (TP_CHANNELS_KEEP:
 * BatchNormalization, Relu, MaxPool, AveragePool, GlobalAveragePool,
 * Dropout, Flatten, Softmax, a depthwise Conv) joins its output to its input,
 * and one that joins them (Add) its output to every input. An op making new
 * channels (TP_CHANNELS_NEW: a Conv, not depthwise, or a Gemm) writes a fresh
 * set: it is a *producer* of its output's space. Every value
 * also records its *block*, the entries of its first dimension per channel:
 * 1 for a [C, H, W] value and a Gemm's output, H·W after Flatten of
 * [C, H, W] (a Flatten of a 1-D value keeps the block).
 *
 * A space is prunable when all of these hold (tp-prune.h states the rule):
 *  - it has producers, all Convs or all Gemms (a mix is refused), Gemms only
 *    with prune_linear;
 *  - it is neither the model input's space nor the output's (the head);
 *  - no grouped Conv (1 < groups, not depthwise) reads or writes it: cutting
 *    one channel would unbalance the groups;
 *  - no op that couples its channels reads it: a Softmax couples every feature, so a removed one
 *    would still change the others (the final Softmax reads the head's space,
 *    which is never prunable anyway);
 *  - every value in it has the same channel count (an Add of two Flattens
 *    with different H·W blocks would join incompatible indexings).
 * Head surgery (tp-prune.c) cuts the output's space; it needs that space to
 * be written by producers, apart from the input, free of grouped Convs and
 * channel-count mismatches, and read by no Conv or Gemm (a consumer would
 * lose inputs, and the kept outputs would change).
 */
#include "config.h"

#include <string.h>

#include "tp-op.h"
#include "tp-prune.h"
#include "tp-units-private.h"

G_DEFINE_QUARK(tp_prune_error, tp_prune_error)

/* ------------------------------------------------------------ union-find */

static int
uf_find(int *parent, int v)
{
    while (parent[v] != v) {
        parent[v] = parent[parent[v]];
        v = parent[v];
    }
    return v;
}

/* Joins the sets of a and b; the smaller id becomes the root, so the input
 * (value 0) always roots its own set. */
static void
uf_union(int *parent, int a, int b)
{
    int ra = uf_find(parent, a), rb = uf_find(parent, b);

    if (ra < rb)
        parent[rb] = ra;
    else if (rb < ra)
        parent[ra] = rb;
}

/* ------------------------------------------------------------ analysis */

/* The channel rule of node (its op class's, tp-op.h). */
void
tp_units_rule(const TpModel *model, const TpNode *node, TpChannelRule *out_rule)
{
    memset(out_rule, 0, sizeof *out_rule);
    tp_op_class_get(node->op)->channels(node, tp_model_get_shape(model, node->inputs[0]),
                                        out_rule);
}

/* Entries of value v's first dimension. */
static int
first_dim(const TpModel *model, int v)
{
    return tp_model_get_shape(model, v)->dim[0];
}

/* Per root, what the analysis gathers before deciding. */
typedef struct {
    GArray *producers; /* guint node indices, graph order */
    int n_conv, n_gemm;
    int channels;      /* channel count of the first value seen, -1 if none yet */
    gboolean mismatch; /* values with different channel counts */
    gboolean grouped;  /* a grouped (not depthwise) Conv reads or writes it */
    gboolean couples;  /* an op that couples its channels (Softmax) reads it */
    gboolean consumed; /* a Conv (not depthwise) or Gemm reads it */
} RootInfo;

static void
root_info_clear(RootInfo *info)
{
    if (info->producers != NULL)
        g_array_unref(info->producers);
}

/* Joins the channel indexing of every value (see the top of the file);
 * fills units->root and units->block. Fails for an op without a rule. */
static gboolean
build_spaces(TpUnits *units, GError **error)
{
    const TpModel *model = units->model;
    guint n_nodes = tp_model_get_n_nodes(model);
    int *parent = units->root;

    for (guint v = 0; v < units->n_values; v++) {
        parent[v] = (int)v;
        units->block[v] = 1;
    }
    for (guint i = 0; i < n_nodes; i++) {
        const TpNode *node = tp_model_get_node(model, i);
        int in = node->inputs[0], out = node->output;
        TpChannelRule rule;

        if (tp_op_class_get(node->op)->channels == NULL) {
            g_set_error(error, TP_PRUNE_ERROR, TP_PRUNE_ERROR_INVALID,
                        "node %u '%s': no channel rule for op %s", i, node->name,
                        tp_op_type_to_string(node->op));
            return FALSE;
        }
        tp_units_rule(model, node, &rule);
        switch (rule.kind) {
        case TP_CHANNELS_KEEP:
            units->block[out] = units->block[in] * MAX(rule.block, 1);
            uf_union(parent, out, in);
            break;
        case TP_CHANNELS_JOIN:
            units->block[out] = units->block[in];
            for (int k = 0; k < node->n_inputs; k++)
                uf_union(parent, out, node->inputs[k]);
            break;
        case TP_CHANNELS_NEW:
            break;
        }
    }
    for (guint v = 0; v < units->n_values; v++)
        parent[v] = uf_find(parent, (int)v);
    return TRUE;
}

/* Gathers per root the producers and the reasons a space cannot be cut. */
static void
gather(TpUnits *units, RootInfo *info)
{
    const TpModel *model = units->model;

    for (guint v = 0; v < units->n_values; v++)
        info[v].channels = -1;
    for (guint v = 0; v < units->n_values; v++) {
        RootInfo *r = &info[units->root[v]];
        int channels = first_dim(model, (int)v) / units->block[v];

        if (r->channels < 0)
            r->channels = channels;
        else if (r->channels != channels)
            r->mismatch = TRUE;
    }
    for (guint i = 0; i < tp_model_get_n_nodes(model); i++) {
        const TpNode *node = tp_model_get_node(model, i);
        RootInfo *out = &info[units->root[node->output]];
        RootInfo *in = &info[units->root[node->inputs[0]]];
        TpChannelRule rule;

        tp_units_rule(model, node, &rule);
        for (int k = 0; rule.couples && k < node->n_inputs; k++)
            info[units->root[node->inputs[k]]].couples = TRUE;
        if (rule.kind != TP_CHANNELS_NEW)
            continue;
        if (rule.grouped)
            in->grouped = out->grouped = TRUE;
        in->consumed = TRUE;
        if (out->producers == NULL)
            out->producers = g_array_new(FALSE, FALSE, sizeof(guint));
        g_array_append_val(out->producers, i);
        if (rule.linear)
            out->n_gemm++;
        else
            out->n_conv++;
    }
}

/* Follows value v through the op that alone reads it when that op is of
 * type op; returns the op's output, or v. *out_node gets the op, or -1.
 * (BatchNormalization and Relu: what a criterion's unit value passes.) */
static int
follow_sole(const TpUnits *units, int v, TpOpType op, int *out_node)
{
    int reader = units->n_readers[v] == 1 ? units->reader[v] : -1;

    *out_node = -1;
    if (reader < 0 || tp_model_get_node(units->model, (guint)reader)->op != op)
        return v;
    *out_node = reader;
    return tp_model_get_node(units->model, (guint)reader)->output;
}

/* Unit values and BatchNorm mapping of every Conv and Gemm. */
static void
map_producers(TpUnits *units)
{
    const TpModel *model = units->model;
    guint n_nodes = tp_model_get_n_nodes(model);

    for (guint v = 0; v < units->n_values; v++)
        units->reader[v] = -1;
    for (guint i = 0; i < n_nodes; i++) {
        const TpNode *node = tp_model_get_node(model, i);

        for (int k = 0; k < node->n_inputs; k++) {
            units->n_readers[node->inputs[k]]++;
            units->reader[node->inputs[k]] = (int)i;
        }
    }
    for (guint i = 0; i < n_nodes; i++) {
        const TpNode *node = tp_model_get_node(model, i);
        TpChannelRule rule;
        int v, bn, relu;

        units->unit_value[i] = units->batch_norm[i] = -1;
        tp_units_rule(model, node, &rule);
        if (!rule.layer)
            continue;
        v = follow_sole(units, node->output, TP_OP_BATCH_NORM, &bn);
        v = follow_sole(units, v, TP_OP_RELU, &relu);
        units->unit_value[i] = v;
        units->batch_norm[i] = bn;
    }
}

/* Decides, per root, whether it is a prunable space, and fills the space
 * table in the order of first producers. */
static void
decide(TpUnits *units, RootInfo *info, gboolean prune_linear)
{
    const TpModel *model = units->model;
    int input_root = units->root[0];
    int output_root = units->root[tp_model_get_output(model)];
    guint n_nodes = tp_model_get_n_nodes(model);

    for (guint v = 0; v < units->n_values; v++)
        units->root_space[v] = -1;
    units->head_root = output_root;
    units->head_sliceable = output_root != input_root && info[output_root].producers != NULL &&
                            !info[output_root].mismatch && !info[output_root].grouped &&
                            !info[output_root].consumed;

    /* Walking nodes in order visits spaces in the order of first producers. */
    for (guint i = 0; i < n_nodes; i++) {
        const TpNode *node = tp_model_get_node(model, i);
        int r = units->root[node->output];
        RootInfo *ri = &info[r];
        TpUnitSpace space;
        gsize bytes;

        if (ri->producers == NULL || g_array_index(ri->producers, guint, 0) != i)
            continue;
        if (r == input_root || r == output_root || ri->mismatch || ri->grouped || ri->couples)
            continue;
        if (ri->n_conv > 0 && ri->n_gemm > 0)
            continue;
        if (ri->n_gemm > 0 && !prune_linear)
            continue;

        units->root_space[r] = (int)units->spaces->len;
        bytes = sizeof(guint) * ri->producers->len;
        space.name = node->name;
        space.n_units = ri->channels;
        space.n_producers = ri->producers->len;
        space.producers = g_memdup2(ri->producers->data, bytes);
        space.linear = ri->n_gemm > 0;
        g_array_append_val(units->spaces, space);
        units->total += (gsize)space.n_units;
    }
    for (guint i = 0; i < n_nodes; i++) {
        const TpNode *node = tp_model_get_node(model, i);
        TpChannelRule rule;

        tp_units_rule(model, node, &rule);
        units->space_of_node[i] =
            rule.kind == TP_CHANNELS_NEW ? units->root_space[units->root[node->output]] : -1;
    }
}

static void
space_clear(gpointer data)
{
    TpUnitSpace *space = data;

    g_free((gpointer)space->producers);
}

/* Analyzes model (see tp-prune.h). Fails only for an op without a channel
 * rule, naming the node. */
TpUnits *
tp_units_new(const TpModel *model, gboolean prune_linear, GError **error)
{
    g_autoptr(TpUnits) units = NULL;
    RootInfo *info;
    guint n_nodes;

    g_return_val_if_fail(model != NULL, NULL);
    g_return_val_if_fail(error == NULL || *error == NULL, NULL);

    n_nodes = tp_model_get_n_nodes(model);
    units = g_new0(TpUnits, 1);
    units->model = model;
    units->n_values = tp_model_get_n_values(model);
    units->spaces = g_array_new(FALSE, FALSE, sizeof(TpUnitSpace));
    g_array_set_clear_func(units->spaces, space_clear);
    units->root = g_new(int, units->n_values);
    units->block = g_new(int, units->n_values);
    units->root_space = g_new(int, units->n_values);
    units->n_readers = g_new0(int, units->n_values);
    units->reader = g_new(int, units->n_values);
    units->space_of_node = g_new(int, MAX(n_nodes, 1));
    units->unit_value = g_new(int, MAX(n_nodes, 1));
    units->batch_norm = g_new(int, MAX(n_nodes, 1));

    if (!build_spaces(units, error))
        return NULL;
    info = g_new0(RootInfo, units->n_values);
    gather(units, info);
    decide(units, info, prune_linear);
    map_producers(units);
    for (guint v = 0; v < units->n_values; v++)
        root_info_clear(&info[v]);
    g_free(info);
    return g_steal_pointer(&units);
}

/* Frees the analysis; NULL is allowed. */
void
tp_units_free(TpUnits *units)
{
    if (units == NULL)
        return;
    g_array_unref(units->spaces);
    g_free(units->root);
    g_free(units->block);
    g_free(units->root_space);
    g_free(units->n_readers);
    g_free(units->reader);
    g_free(units->space_of_node);
    g_free(units->unit_value);
    g_free(units->batch_norm);
    g_free(units);
}

/* ------------------------------------------------------------ queries */

guint
tp_units_get_n_spaces(const TpUnits *units)
{
    g_return_val_if_fail(units != NULL, 0);
    return units->spaces->len;
}

const TpUnitSpace *
tp_units_get_space(const TpUnits *units, guint space)
{
    g_return_val_if_fail(units != NULL, NULL);
    g_return_val_if_fail(space < units->spaces->len, NULL);
    return &g_array_index(units->spaces, TpUnitSpace, space);
}

gsize
tp_units_get_total(const TpUnits *units)
{
    g_return_val_if_fail(units != NULL, 0);
    return units->total;
}

int
tp_units_get_space_of(const TpUnits *units, guint node)
{
    g_return_val_if_fail(units != NULL, -1);
    g_return_val_if_fail(node < tp_model_get_n_nodes(units->model), -1);
    return units->space_of_node[node];
}

int
tp_units_get_unit_value(const TpUnits *units, guint node)
{
    g_return_val_if_fail(units != NULL, -1);
    g_return_val_if_fail(node < tp_model_get_n_nodes(units->model), -1);
    return units->unit_value[node];
}

int
tp_units_get_batch_norm(const TpUnits *units, guint node)
{
    g_return_val_if_fail(units != NULL, -1);
    g_return_val_if_fail(node < tp_model_get_n_nodes(units->model), -1);
    return units->batch_norm[node];
}
