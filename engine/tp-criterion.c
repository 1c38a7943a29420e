/* tp-criterion.c — opening a criterion plugin and the context it scores in
 * (the contract is in tp-criterion.h).
 *
 * A scoring round: tp_criterion_score() makes a context holding one zeroed
 * double array per producer of every prunable space, starts the loader's
 * epoch 0 (for a criterion that reads data), calls the plugin's score() and
 * then checks that every score is finite and >= 0. Inside score() the
 * plugin pulls batches with tp_criterion_context_next(), which runs only
 * what the plugin declared: an eval-mode forward, then (NEEDS_GRADIENT) the
 * mean cross-entropy of the batch labels and its backward pass, then
 * (NEEDS_RELEVANCE) an LRP pass on the same batch through a TpLrp made on
 * first use. A plugin without lrp_config() gets docs/method.md's LRP defaults.
 */
#include "config.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "tp-comm.h"
#include "tp-criterion.h"
#include "tp-registry.h"

G_DEFINE_QUARK(tp_criterion_error, tp_criterion_error)

/* Every member up to and including score() must be in the plugin's table. */
#define REQUIRED_END (offsetof(TpCriterionVTable, score) + sizeof(gpointer))

/* The LRP settings of a plugin without lrp_config(): docs/method.md's defaults. */
static const TpLrpConfig default_lrp_config = {
    /* .rules =   */ TP_LRP_RULES_COMPOSITE,
    /* .start =   */ TP_LRP_START_UNIT,
    /* .epsilon = */ 1e-6,
};

struct _TpCriterionContext {
    TpCriterion *criterion; /* borrowed */
    TpModel *model;         /* borrowed */
    const TpUnits *units;   /* borrowed */
    TpLoader *loader;       /* borrowed; may be NULL for a weights-only criterion */
    guint64 seed;
    TpCriterionNeeds needs; /* with DATA set when GRADIENT or RELEVANCE is */
    guint n_nodes;
    double **scores; /* per node: n_units doubles, or NULL for a non-producer */
    int batch;       /* samples of the last batch; 0 before the first */
    GArray *labels;  /* gint32: host copy of the last batch's labels */
    TpLrp *lrp;      /* made by the first batch that needs relevance */
    gsize samples;   /* seen by this process */
};

/* ---------------------------------------------------------------- the plugin */

static void
copy_vtable(const TpPluginInfo *info, TpCriterionVTable *out)
{
    memset(out, 0, sizeof(*out));
    memcpy(out, info->vtable, MIN(info->vtable_size, sizeof(*out)));
}

/* Checks a criterion descriptor's vtable before any plugin code runs: the
 * table covers every ABI-1 member and all but the optional lrp_config and
 * aggregate are set. The error names the first missing member. */
gboolean
tp_criterion_vtable_check(const TpPluginInfo *info, GError **error)
{
    TpCriterionVTable vt;
    const char *missing = NULL;

    if (info->vtable == NULL || info->vtable_size < REQUIRED_END) {
        g_set_error(error, TP_PLUGIN_ERROR, TP_PLUGIN_ERROR_ABI,
                    "criterion '%s' has a vtable of %zu bytes, ABI %d needs at least %zu: "
                    "rebuild it against the installed tp-criterion.h",
                    info->name, (size_t)(info->vtable ? info->vtable_size : 0), TP_PLUGIN_ABI_MAJOR,
                    (size_t)REQUIRED_END);
        return FALSE;
    }
    copy_vtable(info, &vt);
    if (vt.open == NULL)
        missing = "open";
    else if (vt.close == NULL)
        missing = "close";
    else if (vt.needs == NULL)
        missing = "needs";
    else if (vt.normalization == NULL)
        missing = "normalization";
    else if (vt.score == NULL)
        missing = "score";
    if (missing != NULL) {
        g_set_error(error, TP_PLUGIN_ERROR, TP_PLUGIN_ERROR_INVALID,
                    "criterion '%s' lacks the required member %s (only lrp_config and aggregate may be NULL)",
                    info->name, missing);
        return FALSE;
    }
    return TRUE;
}

/* Opens the criterion plugin `info` with params (NULL: the defaults of its
 * table). Errors are TP_CRITERION_ERROR naming the plugin. */
TpCriterion *
tp_criterion_new(const TpPluginInfo *info, const TpParams *params, GError **error)
{
    g_autoptr(TpParams) defaults = NULL;
    g_autoptr(GError) local = NULL;
    TpCriterion *criterion;

    g_return_val_if_fail(info != NULL && info->kind == TP_PLUGIN_KIND_CRITERION, NULL);

    if (params == NULL)
        params = defaults = tp_params_new(info->params);
    criterion = g_new0(TpCriterion, 1);
    criterion->info = info;
    copy_vtable(info, &criterion->vt);
    criterion->self = criterion->vt.open(params, &local);
    if (criterion->self == NULL) {
        g_set_error(error, TP_CRITERION_ERROR, TP_CRITERION_ERROR_FAILED, "criterion '%s': %s",
                    info->name, local ? local->message : "open() failed without a reason");
        g_free(criterion);
        return NULL;
    }
    return criterion;
}

void
tp_criterion_free(TpCriterion *criterion)
{
    if (criterion == NULL)
        return;
    criterion->vt.close(criterion->self);
    g_free(criterion);
}

/* ---------------------------------------------------------------- the context */

/* The needs the plugin declares, with DATA added where a pass implies it. */
static TpCriterionNeeds
criterion_needs(TpCriterion *criterion)
{
    TpCriterionNeeds needs = criterion->vt.needs(criterion->self);

    if (needs & (TP_CRITERION_NEEDS_GRADIENT | TP_CRITERION_NEEDS_RELEVANCE))
        needs |= TP_CRITERION_NEEDS_DATA;
    return needs;
}

static TpCriterionContext *
context_new(TpCriterion *criterion, TpModel *model, const TpUnits *units, TpLoader *loader,
            guint64 seed)
{
    TpCriterionContext *context = g_new0(TpCriterionContext, 1);

    context->criterion = criterion;
    context->model = model;
    context->units = units;
    context->loader = loader;
    context->seed = seed;
    context->needs = criterion_needs(criterion);
    context->n_nodes = tp_model_get_n_nodes(model);
    context->scores = g_new0(double *, context->n_nodes);
    context->labels = g_array_new(FALSE, FALSE, sizeof(gint32));
    for (guint s = 0; s < tp_units_get_n_spaces(units); s++) {
        const TpUnitSpace *space = tp_units_get_space(units, s);

        for (guint p = 0; p < space->n_producers; p++) {
            guint node = space->producers[p];

            g_free(context->scores[node]);
            context->scores[node] = g_new0(double, MAX(space->n_units, 1));
        }
    }
    return context;
}

void
tp_criterion_context_free(TpCriterionContext *context)
{
    if (context == NULL)
        return;
    for (guint i = 0; i < context->n_nodes; i++)
        g_free(context->scores[i]);
    g_free(context->scores);
    g_array_unref(context->labels);
    g_clear_pointer(&context->lrp, tp_lrp_free);
    g_free(context);
}

/* Fails naming the first score that is not finite or is negative. */
static gboolean
check_scores(TpCriterionContext *context, GError **error)
{
    for (guint s = 0; s < tp_units_get_n_spaces(context->units); s++) {
        const TpUnitSpace *space = tp_units_get_space(context->units, s);

        for (guint p = 0; p < space->n_producers; p++) {
            guint node = space->producers[p];
            const double *scores = context->scores[node];

            for (int u = 0; u < space->n_units; u++) {
                if (isfinite(scores[u]) && scores[u] >= 0.0)
                    continue;
                g_set_error(error, TP_CRITERION_ERROR, TP_CRITERION_ERROR_FAILED,
                            "criterion '%s' gave unit %d of node '%s' (node %u) the score %g; "
                            "scores must be finite and >= 0",
                            context->criterion->info->name, u,
                            tp_model_get_node(context->model, node)->name, node, scores[u]);
                return FALSE;
            }
        }
    }
    return TRUE;
}

/* Whether every producer units names is a node of model (units made from
 * another model is a programmer error). */
static gboolean
units_fit(const TpModel *model, const TpUnits *units)
{
    for (guint s = 0; s < tp_units_get_n_spaces(units); s++) {
        const TpUnitSpace *space = tp_units_get_space(units, s);

        for (guint p = 0; p < space->n_producers; p++)
            if (space->producers[p] >= tp_model_get_n_nodes(model))
                return FALSE;
    }
    return TRUE;
}

/* Data parallelism (docs/scaling.md): each rank scored its share of the
 * samples. Sums over samples (TP_SCORES_SUM) are added over the ranks;
 * means (TP_SCORES_MEAN) are weighted by each rank's n_r samples, added and
 * divided by the total. Either way the result is what one process computes
 * on every sample (up to the order of summation), and every rank gets the
 * same bits, so every rank ranks and cuts the same units. */
static gboolean
sum_over_ranks(TpCriterionContext *context, GError **error)
{
    g_autoptr(GArray) all = g_array_new(FALSE, FALSE, sizeof(double));
    TpCriterion *criterion = context->criterion;
    gboolean sums = criterion->vt.aggregate != NULL &&
                    criterion->vt.aggregate(criterion->self) == TP_SCORES_SUM;
    double samples = (double)context->samples;
    gsize offset = 1;

    /* One pass writes, one reads, in the same order: spaces, producers, units. */
    g_array_append_val(all, samples);
    for (int pass = 0; pass < 2; pass++) {
        for (guint s = 0; s < tp_units_get_n_spaces(context->units); s++) {
            const TpUnitSpace *space = tp_units_get_space(context->units, s);
            for (guint p = 0; p < space->n_producers; p++) {
                double *scores = context->scores[space->producers[p]];
                for (int u = 0; u < space->n_units; u++) {
                    double v = sums ? scores[u] : scores[u] * samples;
                    if (pass == 0)
                        g_array_append_val(all, v);
                    else
                        scores[u] = g_array_index(all, double, offset++) /
                                    (sums ? 1.0 : MAX(samples, 1.0));
                }
            }
        }
        if (pass == 0 && !tp_comm_all_reduce_double(tp_comm_get_parallel(),
                                                     (double *)(gpointer)all->data, all->len,
                                                     error))
            return FALSE;
        samples = g_array_index(all, double, 0);
    }
    return TRUE;
}

/* Runs one scoring round (see the top of the file). model, units and loader
 * are borrowed and must outlive the context; loader may be NULL only for a
 * criterion that needs no data, and is left alone by one (its epoch 0 is
 * started only for a criterion that reads data). */
TpCriterionContext *
tp_criterion_score(TpCriterion *criterion, TpModel *model, const TpUnits *units, TpLoader *loader,
                   guint64 seed, GError **error)
{
    g_autoptr(TpCriterionContext) context = NULL;
    g_autoptr(GError) local = NULL;

    g_return_val_if_fail(criterion != NULL && model != NULL && units != NULL, NULL);
    g_return_val_if_fail(units_fit(model, units), NULL);

    context = context_new(criterion, model, units, loader, seed);
    if ((context->needs & TP_CRITERION_NEEDS_DATA) && loader == NULL) {
        g_set_error(error, TP_CRITERION_ERROR, TP_CRITERION_ERROR_FAILED,
                    "criterion '%s' scores on data, and no scoring samples were given",
                    criterion->info->name);
        return NULL;
    }
    if (context->needs & TP_CRITERION_NEEDS_DATA)
        tp_loader_start_epoch(loader, 0);
    if (!criterion->vt.score(criterion->self, context, &local)) {
        if (local == NULL)
            g_set_error(error, TP_CRITERION_ERROR, TP_CRITERION_ERROR_FAILED,
                        "criterion '%s': score() failed without a reason", criterion->info->name);
        else
            g_propagate_prefixed_error(error, g_steal_pointer(&local),
                                       "criterion '%s': ", criterion->info->name);
        return NULL;
    }
    if (!check_scores(context, error))
        return NULL;
    if ((context->needs & TP_CRITERION_NEEDS_DATA) && tp_comm_get_parallel() != NULL &&
        !sum_over_ranks(context, error))
        return NULL;
    return g_steal_pointer(&context);
}

TpModel *
tp_criterion_context_get_model(TpCriterionContext *context)
{
    g_return_val_if_fail(context != NULL, NULL);
    return context->model;
}

const TpUnits *
tp_criterion_context_get_units(TpCriterionContext *context)
{
    g_return_val_if_fail(context != NULL, NULL);
    return context->units;
}

double *
tp_criterion_context_get_scores(TpCriterionContext *context, guint node)
{
    g_return_val_if_fail(context != NULL, NULL);
    return node < context->n_nodes ? context->scores[node] : NULL;
}

guint64
tp_criterion_context_get_seed(TpCriterionContext *context)
{
    g_return_val_if_fail(context != NULL, 0);
    return context->seed;
}

int
tp_criterion_context_get_batch(TpCriterionContext *context)
{
    g_return_val_if_fail(context != NULL, 0);
    return context->batch;
}

/* The LRP pass on the batch just run forward: makes the TpLrp on first use
 * with the plugin's settings (docs/method.md's defaults without lrp_config). */
static gboolean
run_relevance(TpCriterionContext *context, const float *images, GError **error)
{
    TpCriterion *criterion = context->criterion;

    if (context->lrp == NULL) {
        TpLrpConfig config = default_lrp_config;

        if (criterion->vt.lrp_config != NULL)
            criterion->vt.lrp_config(criterion->self, &config);
        context->lrp = tp_lrp_new(context->model, &config, error);
        if (context->lrp == NULL)
            return FALSE;
    }
    return tp_lrp_run(context->lrp, images, context->batch,
                      (const gint32 *)(gpointer)context->labels->data, error);
}

gboolean
tp_criterion_context_next(TpCriterionContext *context, GError **error)
{
    const float *images;
    const gint32 *labels;
    int batch;
    double loss;

    g_return_val_if_fail(context != NULL, FALSE);

    if (!(context->needs & TP_CRITERION_NEEDS_DATA)) {
        g_set_error(error, TP_CRITERION_ERROR, TP_CRITERION_ERROR_FAILED,
                    "asked for a batch, but criterion '%s' declared that it needs no data",
                    context->criterion->info->name);
        return FALSE;
    }
    do { /* a sharded loader may give this rank an empty slice of a batch */
        if (!tp_loader_next(context->loader, &images, &labels, &batch, error)) {
            context->batch = 0;
            return FALSE;
        }
    } while (batch == 0);
    context->samples += (gsize)batch;
    context->batch = batch;
    g_array_set_size(context->labels, 0);
    g_array_append_vals(context->labels, labels, (guint)batch);

    if (!tp_model_forward(context->model, images, batch, TP_MODE_EVAL, error))
        return FALSE;
    if (context->needs & TP_CRITERION_NEEDS_GRADIENT) {
        if (!tp_model_loss(context->model, labels, 0.0f, &loss, error) ||
            !tp_model_backward(context->model, tp_model_get_logits(context->model), error))
            return FALSE;
    }
    if (context->needs & TP_CRITERION_NEEDS_RELEVANCE) {
        if (!run_relevance(context, images, error)) {
            g_prefix_error(error, "relevance: ");
            return FALSE;
        }
    }
    return TRUE;
}

TpTensor *
tp_criterion_context_get_relevance(TpCriterionContext *context, int value, GError **error)
{
    TpTensor *relevance;

    g_return_val_if_fail(context != NULL, NULL);

    if (context->lrp == NULL || context->batch == 0) {
        g_set_error(error, TP_CRITERION_ERROR, TP_CRITERION_ERROR_FAILED,
                    "no relevance: criterion '%s' %s", context->criterion->info->name,
                    (context->needs & TP_CRITERION_NEEDS_RELEVANCE)
                        ? "has not run a batch yet (tp_criterion_context_next())"
                        : "did not declare NEEDS_RELEVANCE");
        return NULL;
    }
    relevance = tp_lrp_get_relevance(context->lrp, value);
    if (relevance == NULL)
        g_set_error(error, TP_CRITERION_ERROR, TP_CRITERION_ERROR_FAILED,
                    "no relevance for value %d: it is not on the path to the logits", value);
    return relevance;
}
