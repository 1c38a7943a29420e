/* lrp.c — the `lrp` criterion (Yeom et al. 2021, "Pruning by explaining: a
 * novel criterion for deep neural network pruning", Pattern Recognition 115,
 * arXiv 1912.08881; docs/method.md §2): the relevance layer-wise relevance
 * propagation assigns to each unit's output, from the true class's logit.
 *
 * The engine runs the LRP pass (tp-lrp.h: canonized model, eval forward,
 * relevance backward with the rule set below) on every batch of scoring
 * samples. R[n, u, m] is the relevance at unit u's output after its
 * nonlinearity (tp_units_get_unit_value(); ReLU passes relevance through,
 * and a folded BatchNorm's output has its conv's relevance), at position m
 * of M (H·W for a Conv, 1 for a Gemm):
 *
 *   aggregate = abs (default):  s_u = Σ_n Σ_m |R[n, u, m]|
 *   aggregate = signed:         s_u = | Σ_n Σ_m R[n, u, m] |
 *
 * summed over all scoring samples in double. `signed` sums without the
 * absolute value, as docs/method.md §2 says; since scores must be >= 0, the
 * absolute value of each unit's total is taken once, at the end (a unit
 * whose positive and negative relevance cancel scores near 0).
 * Normalized per space by L1 (the layer's total).
 *
 * Keys:
 *   rule       composite (default: Gemm ε, first Conv z^B, other Convs α1β0),
 *              zplus, epsilon or alpha2beta1
 *   start      unit (default: 1 at the true class) or logit (its logit's value)
 *   aggregate  abs (default) or signed
 *   epsilon    the ε of the ε rules and stabilizers (default 1e-6)
 */
#include "config.h"

#include <math.h>

#include "tp-criterion.h"
#include "tp-params.h"
#include "tp-plugin.h"

static const TpParamSpec lrp_params[] = {
    {
        .key = "rule",
        .type = TP_PARAM_CHOICE,
        .default_value = "composite",
        .choices = "composite|zplus|epsilon|alpha2beta1",
        .help = "rule set: composite (Gemm eps, first Conv zB, Convs a1b0), or one rule everywhere",
    },
    {
        .key = "start",
        .type = TP_PARAM_CHOICE,
        .default_value = "unit",
        .choices = "unit|logit",
        .help = "relevance at the true class's logit: 1 (unit) or the logit's value (logit)",
    },
    {
        .key = "aggregate",
        .type = TP_PARAM_CHOICE,
        .default_value = "abs",
        .choices = "abs|signed",
        .help = "sum |R| over samples and positions (abs), or |sum of R| (signed)",
    },
    {
        .key = "epsilon",
        .type = TP_PARAM_DOUBLE,
        .default_value = "1e-6",
        .min = 0.0,
        .max = 1.0,
        .help = "epsilon of the epsilon rule and of every stabilizer (0: LRP-0)",
    },
    {NULL},
};

typedef struct {
    TpLrpConfig config;
    gboolean signed_sum;
    float *host; /* one relevance tensor on the host; grows, never shrinks */
    gsize capacity;
} Lrp;

static gpointer
lrp_open(const TpParams *params, GError **error)
{
    Lrp *lrp = g_new0(Lrp, 1);
    const char *rule = tp_params_get_string(params, "rule");

    if (g_str_equal(rule, "zplus"))
        lrp->config.rules = TP_LRP_RULES_ZPLUS;
    else if (g_str_equal(rule, "epsilon"))
        lrp->config.rules = TP_LRP_RULES_EPSILON;
    else if (g_str_equal(rule, "alpha2beta1"))
        lrp->config.rules = TP_LRP_RULES_ALPHA2BETA1;
    else
        lrp->config.rules = TP_LRP_RULES_COMPOSITE;
    lrp->config.start = g_str_equal(tp_params_get_string(params, "start"), "logit")
                            ? TP_LRP_START_LOGIT
                            : TP_LRP_START_UNIT;
    lrp->config.epsilon = tp_params_get_double(params, "epsilon");
    lrp->signed_sum = g_str_equal(tp_params_get_string(params, "aggregate"), "signed");
    return lrp;
}

static void
lrp_close(gpointer self)
{
    Lrp *lrp = self;

    if (lrp == NULL)
        return;
    g_free(lrp->host);
    g_free(lrp);
}

static TpCriterionNeeds
lrp_needs(gpointer self)
{
    return TP_CRITERION_NEEDS_DATA | TP_CRITERION_NEEDS_RELEVANCE;
}

static TpNormalization
lrp_normalization(gpointer self)
{
    return TP_NORMALIZE_L1;
}

static void
lrp_config(gpointer self, TpLrpConfig *out_config)
{
    const Lrp *lrp = self;

    *out_config = lrp->config;
}

/* Adds this batch's relevance at `value` ([batch, n_units, ...]) to scores,
 * per unit: |R| summed (abs), or R summed (signed; abs taken at the end). */
static gboolean
accumulate_producer(Lrp *lrp, TpCriterionContext *context, int value, int n_units, double *scores,
                    GError **error)
{
    const int batch = tp_criterion_context_get_batch(context);
    TpTensor *r = tp_criterion_context_get_relevance(context, value, error);
    gsize m;

    if (r == NULL)
        return FALSE;
    m = r->numel / ((gsize)batch * (gsize)n_units);
    if (r->numel > lrp->capacity) {
        lrp->host = g_renew(float, lrp->host, r->numel);
        lrp->capacity = r->numel;
    }
    if (!tp_tensor_download(r, lrp->host, error))
        return FALSE;
    for (int n = 0; n < batch; n++)
        for (int u = 0; u < n_units; u++) {
            const float *at = lrp->host + ((gsize)n * (gsize)n_units + (gsize)u) * m;
            double sum = 0.0;

            if (lrp->signed_sum)
                for (gsize i = 0; i < m; i++)
                    sum += at[i];
            else
                for (gsize i = 0; i < m; i++)
                    sum += fabs((double)at[i]);
            scores[u] += sum;
        }
    return TRUE;
}

static gboolean
lrp_score(gpointer self, TpCriterionContext *context, GError **error)
{
    Lrp *lrp = self;
    TpModel *model = tp_criterion_context_get_model(context);
    const TpUnits *units = tp_criterion_context_get_units(context);
    g_autoptr(GError) local = NULL;
    gsize samples = 0;

    while (tp_criterion_context_next(context, &local)) {
        for (guint s = 0; s < tp_units_get_n_spaces(units); s++) {
            const TpUnitSpace *space = tp_units_get_space(units, s);

            for (guint p = 0; p < space->n_producers; p++) {
                const guint node = space->producers[p];
                const int value = tp_units_get_unit_value(units, node);

                if (!accumulate_producer(lrp, context, value,
                                         tp_model_get_shape(model, value)->dim[0],
                                         tp_criterion_context_get_scores(context, node), error)) {
                    g_prefix_error(error, "node '%s': ", tp_model_get_node(model, node)->name);
                    return FALSE;
                }
            }
        }
        samples += (gsize)tp_criterion_context_get_batch(context);
    }
    if (local != NULL) {
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    if (samples == 0) {
        g_set_error(error, TP_CRITERION_ERROR, TP_CRITERION_ERROR_FAILED, "no scoring samples");
        return FALSE;
    }
    if (lrp->signed_sum)
        for (guint s = 0; s < tp_units_get_n_spaces(units); s++) {
            const TpUnitSpace *space = tp_units_get_space(units, s);

            for (guint p = 0; p < space->n_producers; p++) {
                double *scores = tp_criterion_context_get_scores(context, space->producers[p]);

                for (int u = 0; u < space->n_units; u++)
                    scores[u] = fabs(scores[u]);
            }
        }
    return TRUE;
}

/* Relevance is summed over the samples (see the top). */
static TpScoreAggregate
lrp_aggregate(gpointer self)
{
    return TP_SCORES_SUM;
}

static const TpCriterionVTable lrp_vtable = {
    /* .open =          */ lrp_open,
    /* .close =         */ lrp_close,
    /* .needs =         */ lrp_needs,
    /* .normalization = */ lrp_normalization,
    /* .lrp_config =    */ lrp_config,
    /* .score =         */ lrp_score,
    /* .aggregate =     */ lrp_aggregate,
};

static const TpPluginInfo lrp_info = {
    /* .abi_major =   */ TP_PLUGIN_ABI_MAJOR,
    /* .struct_size = */ sizeof(TpPluginInfo),
    /* .kind =        */ TP_PLUGIN_KIND_CRITERION,
    /* .name =        */ "lrp",
    /* .version =     */ "1.0",
    /* .description = */ "relevance of each unit by layer-wise relevance propagation (Yeom 2021)",
    /* .license =     */ "MIT",
    /* .vtable =      */ &lrp_vtable,
    /* .vtable_size = */ sizeof(TpCriterionVTable),
    /* .params =      */ lrp_params,
};

/* The plugin's one exported symbol. */
TP_PLUGIN_EXPORT const TpPluginInfo *
tp_plugin_describe(void)
{
    return &lrp_info;
}
