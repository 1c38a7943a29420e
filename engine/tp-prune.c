/* tp-prune.c — surgery (docs/method.md §3): a new, physically smaller model with
 * the units a mask drops removed, and, with head surgery, the output cut to
 * the target classes.
 *
 * Every value of the model carries the channels of one space (tp-units.c).
 * The surgery gives each space its kept channel list — the mask's TRUE
 * units for a prunable space, the class list (in its order) for the head's
 * space, all channels otherwise — and rebuilds the graph node by node,
 * slicing each parameter by the kept channels of the values it touches, as
 * its op class's cut() says (tp-op.h):
 *
 *   Conv       weight rows by its output's channels, input slices W[:, c]
 *              by its input's (a depthwise Conv: rows only, groups = kept);
 *              bias by its output's
 *   Gemm       weight rows and bias by its output's features, columns by its
 *              input's: after Flatten of [C, H, W] the H·W columns
 *              c·H·W … (c+1)·H·W − 1 of each kept channel c (NCHW order)
 *   BatchNorm  scale, bias, running mean and variance by its input's
 *
 * Pools, Relu, Dropout, Flatten, Add and Softmax only change shape, which
 * tp_model_add() recomputes. Because a removed channel is removed from every
 * consumer of its space, the result computes exactly what the original
 * computes with those channels' consumer slices set to zero.
 */
#include "config.h"

#include <string.h>

#include "tp-prune.h"
#include "tp-units-private.h"

/* Kept indices along a first dimension; NULL stands for "all". */
typedef GArray Index; /* of int */

/* The kept entries of value v's first dimension: each kept channel of its
 * space expanded to its block of entries. NULL when all are kept. */
static Index *
value_index(const TpUnits *units, Index *const *root_kept, int v)
{
    const Index *kept = root_kept[units->root[v]];
    int block = units->block[v];
    Index *index;

    if (kept == NULL)
        return NULL;
    index = g_array_sized_new(FALSE, FALSE, sizeof(int), kept->len * (guint)block);
    for (guint k = 0; k < kept->len; k++) {
        int c = g_array_index(kept, int, k);

        for (int e = 0; e < block; e++) {
            int entry = c * block + e;

            g_array_append_val(index, entry);
        }
    }
    return index;
}

static void
index_free(Index *index)
{
    if (index != NULL)
        g_array_unref(index);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(Index, index_free)

/* The length of a first dimension of n entries after keeping index. */
static int
index_len(const Index *index, int n)
{
    return index != NULL ? (int)index->len : n;
}

/* A host copy of tensor t viewed as [d0, d1, inner] (d1 = shape[1] for 2-D
 * and wider tensors, else 1) with the rows of rows and the columns of cols
 * (NULL: all). Sets *out_numel; NULL with error if the download fails. */
static float *
slice_param(const TpTensor *t, const Index *rows, const Index *cols, gsize *out_numel,
            GError **error)
{
    g_autofree float *src = tp_tensor_dup_host(t, error);
    int d0 = t->shape[0], d1 = t->ndim >= 2 ? t->shape[1] : 1;
    int n_rows = index_len(rows, d0), n_cols = index_len(cols, d1);
    gsize inner = t->numel / ((gsize)d0 * (gsize)d1);
    float *dst;

    if (src == NULL)
        return NULL;
    dst = g_new(float, (gsize)n_rows *(gsize)n_cols *inner);
    for (int r = 0; r < n_rows; r++) {
        int sr = rows != NULL ? g_array_index(rows, int, r) : r;

        for (int c = 0; c < n_cols; c++) {
            int sc = cols != NULL ? g_array_index(cols, int, c) : c;

            memcpy(dst + ((gsize)r * (gsize)n_cols + (gsize)c) * inner,
                   src + ((gsize)sr * (gsize)d1 + (gsize)sc) * inner, inner * sizeof(float));
        }
    }
    *out_numel = (gsize)n_rows * (gsize)n_cols * inner;
    return dst;
}

/* Checks every mask keeps a unit of its space and builds the kept channel
 * list of each prunable space's root into root_kept. */
static gboolean
kept_from_masks(const TpUnits *units, const gboolean *const *keep, Index **root_kept,
                GError **error)
{
    for (guint s = 0; keep != NULL && s < units->spaces->len; s++) {
        const TpUnitSpace *space = &g_array_index(units->spaces, TpUnitSpace, s);
        int root = units->root[tp_model_get_node(units->model, space->producers[0])->output];
        Index *kept;

        if (keep[s] == NULL)
            continue;
        kept = g_array_new(FALSE, FALSE, sizeof(int));
        for (int u = 0; u < space->n_units; u++)
            if (keep[s][u])
                g_array_append_val(kept, u);
        root_kept[root] = kept;
        if (kept->len == 0) {
            g_set_error(error, TP_PRUNE_ERROR, TP_PRUNE_ERROR_INVALID,
                        "space '%s' (%d units): the mask removes every unit; at least one "
                        "must stay",
                        space->name, space->n_units);
            return FALSE;
        }
    }
    return TRUE;
}

/* Checks the class list against the head and makes it the kept list of
 * the head's space. */
static gboolean
kept_from_classes(const TpUnits *units, const int *classes, int n_classes, Index **root_kept,
                  GError **error)
{
    int output = tp_model_get_output(units->model);
    const TpShape *shape = tp_model_get_shape(units->model, output);
    g_autofree gboolean *seen = NULL;
    Index *kept;
    int n_out;

    if (!units->head_sliceable || shape->ndim != 1 || units->block[output] != 1) {
        g_set_error(error, TP_PRUNE_ERROR, TP_PRUNE_ERROR_INVALID,
                    "head surgery needs a model whose output is written by Gemms or Convs, "
                    "one feature per channel, without grouped convolutions");
        return FALSE;
    }
    n_out = shape->dim[0];
    if (n_classes < 1) {
        g_set_error(error, TP_PRUNE_ERROR, TP_PRUNE_ERROR_INVALID,
                    "head surgery: %d classes given: at least one must stay", n_classes);
        return FALSE;
    }
    seen = g_new0(gboolean, n_out);
    kept = g_array_sized_new(FALSE, FALSE, sizeof(int), (guint)n_classes);
    root_kept[units->head_root] = kept;
    for (int i = 0; i < n_classes; i++) {
        if (classes[i] < 0 || classes[i] >= n_out) {
            g_set_error(error, TP_PRUNE_ERROR, TP_PRUNE_ERROR_INVALID,
                        "head surgery: class %d (entry %d of the list) is out of range: the "
                        "model has %d outputs, 0 to %d",
                        classes[i], i, n_out, n_out - 1);
            return FALSE;
        }
        if (seen[classes[i]]) {
            g_set_error(error, TP_PRUNE_ERROR, TP_PRUNE_ERROR_INVALID,
                        "head surgery: class %d is listed twice", classes[i]);
            return FALSE;
        }
        seen[classes[i]] = TRUE;
        g_array_append_val(kept, classes[i]);
    }
    return TRUE;
}

/* Appends node i of the original to pruned with its attributes and
 * parameters cut to the kept channels of its input and output. */
static gboolean
add_node(const TpUnits *units, Index *const *root_kept, guint i, TpModel *pruned, GError **error)
{
    const TpNode *node = tp_model_get_node(units->model, i);
    g_autoptr(Index) in = value_index(units, root_kept, node->inputs[0]);
    g_autoptr(Index) out = value_index(units, root_kept, node->output);
    const Index *rows[TP_NODE_MAX_PARAMS] = {NULL}, *cols[TP_NODE_MAX_PARAMS] = {NULL};
    const TpOpClass *klass = tp_op_class_get(node->op);
    TpOpAttrs attrs = node->attrs;
    int v;

    if (klass->cut != NULL)
        klass->cut(node, tp_model_get_shape(units->model, node->inputs[0]), in, out, &attrs, rows,
                   cols);

    v = tp_model_add(pruned, node->op, node->name, node->inputs, &attrs, error);
    if (v < 0)
        return FALSE;
    if (v != node->output) {
        g_set_error(error, TP_PRUNE_ERROR, TP_PRUNE_ERROR_INVALID,
                    "node %u '%s': internal error: value %d became %d", i, node->name, node->output,
                    v);
        return FALSE;
    }
    for (int p = 0; p < node->n_params; p++) {
        TpTensor *target = tp_model_get_param(pruned, i, p);
        g_autofree float *host = NULL;
        gsize numel = 0;

        host = slice_param(node->params[p], rows[p], cols[p], &numel, error);
        if (host == NULL)
            return FALSE;
        if (target == NULL || target->numel != numel) {
            g_set_error(error, TP_PRUNE_ERROR, TP_PRUNE_ERROR_INVALID,
                        "node %u '%s': internal error: parameter %d sliced to %" G_GSIZE_FORMAT
                        " values, the new node holds %" G_GSIZE_FORMAT,
                        i, node->name, p, numel, target != NULL ? target->numel : 0);
            return FALSE;
        }
        if (!tp_tensor_upload(target, host, error))
            return FALSE;
    }
    return TRUE;
}

/* Carries the class names and the original class indices (the kept
 * classes' with head surgery: composed with the model's own indices when it
 * was specialized before) and the input normalization over to pruned. */
static void
copy_metadata(const TpModel *model, const int *classes, int n_classes, TpModel *pruned)
{
    const char *const *names = tp_model_get_class_names(model);
    int n_out = tp_model_get_shape(model, tp_model_get_output(model))->dim[0];
    int n_indices = 0;
    const int *indices = tp_model_get_class_indices(model, &n_indices);
    const float *mean, *std;

    if (classes == NULL) {
        if (names != NULL)
            tp_model_set_class_names(pruned, names);
        if (indices != NULL)
            tp_model_set_class_indices(pruned, indices, n_indices);
    } else {
        g_autofree const char **subset = g_new0(const char *, n_classes + 1);
        g_autofree int *origin = g_new(int, n_classes);

        if (names != NULL && g_strv_length((char **)names) != (guint)n_out) {
            g_debug("surgery: %u class names for %d outputs: names dropped",
                    g_strv_length((char **)names), n_out);
            names = NULL;
        }
        if (indices != NULL && n_indices != n_out) {
            g_debug("surgery: %d class indices for %d outputs: indices dropped", n_indices, n_out);
            indices = NULL;
        }
        for (int i = 0; i < n_classes; i++) {
            subset[i] = names != NULL ? names[classes[i]] : NULL;
            origin[i] = indices != NULL ? indices[classes[i]] : classes[i];
        }
        if (names != NULL)
            tp_model_set_class_names(pruned, subset);
        tp_model_set_class_indices(pruned, origin, n_classes);
    }
    if (tp_model_get_normalization(model, &mean, &std))
        tp_model_set_normalization(pruned, mean, std);
}

/* The pruned model (see tp-prune.h). keep may be NULL (no unit removed),
 * and so may keep[s] (no unit of space s removed). */
TpModel *
tp_prune_apply(const TpModel *model, const TpUnits *units, const gboolean *const *keep,
               const int *classes, int n_classes, GError **error)
{
    g_autoptr(TpModel) pruned = NULL;
    const TpShape *input;
    Index **root_kept;
    gboolean ok;

    g_return_val_if_fail(model != NULL, NULL);
    g_return_val_if_fail(units != NULL && units->model == model, NULL);
    g_return_val_if_fail(units->n_values == tp_model_get_n_values(model), NULL);
    g_return_val_if_fail(error == NULL || *error == NULL, NULL);

    root_kept = g_new0(Index *, units->n_values);
    ok = kept_from_masks(units, keep, root_kept, error) &&
         (classes == NULL || kept_from_classes(units, classes, n_classes, root_kept, error));
    if (ok) {
        input = tp_model_get_shape(model, 0);
        pruned =
            tp_model_new(tp_model_get_backend(model), input->dim[0], input->dim[1], input->dim[2]);
        for (guint i = 0; ok && i < tp_model_get_n_nodes(model); i++)
            ok = add_node(units, root_kept, i, pruned, error);
    }
    for (guint v = 0; v < units->n_values; v++)
        index_free(root_kept[v]);
    g_free(root_kept);
    if (!ok) {
        g_prefix_error(error, "surgery: ");
        return NULL;
    }
    copy_metadata(model, classes, n_classes, pruned);
    return g_steal_pointer(&pruned);
}
