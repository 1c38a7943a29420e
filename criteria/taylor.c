/* taylor.c — the `taylor` criterion (Molchanov et al. 2017, "Pruning
 * convolutional neural networks for resource efficient inference", ICLR,
 * arXiv 1611.06440; docs/method.md §2): the first-order Taylor estimate of the
 * loss change when a unit's output is set to zero.
 *
 * A[n, u, m] is the unit's output after its nonlinearity
 * (tp_units_get_unit_value(): the producer's output through the BatchNorm
 * and Relu that alone read it) at position m of M (H·W for a Conv, 1 for a
 * Gemm), G = ∂C_n/∂A the gradient of sample n's own cross-entropy C_n, both
 * from an eval-mode forward and one backward per batch. The engine's backward
 * differentiates the batch's *mean* loss, so G_mean = G / B for a batch of B;
 * this file multiplies by B to get the per-sample gradient.
 *
 *   accumulate = sample (default, Molchanov's criterion):
 *       θ(u, n) = | (1/M) Σ_m A[n,u,m] · G[n,u,m] |
 *       s_u = (1/N) Σ_n θ(u, n)                    over all N scoring samples
 *   accumulate = batch (the absolute value after summing over the batch):
 *       θ_b(u) = | (1/B) Σ_{n in b} (1/M) Σ_m A[n,u,m] · G[n,u,m] |
 *       s_u = Σ_b B_b θ_b(u) / N                   the batches' mean, by size
 *
 * Needs gradients; normalized per space by L2 (the layer's Euclidean norm).
 *
 * Keys:
 *   accumulate  sample (default) or batch
 */
#include "config.h"

#include <math.h>

#include "tp-criterion.h"
#include "tp-params.h"
#include "tp-plugin.h"

static const TpParamSpec taylor_params[] = {
    {
        .key = "accumulate",
        .type = TP_PARAM_CHOICE,
        .default_value = "sample",
        .choices = "sample|batch",
        .help = "abs per sample then mean (sample), or abs of each batch's mean (batch)",
    },
    {NULL},
};

typedef struct {
    gboolean per_batch;
    float *a, *g; /* host copies of one value and its gradient; grow, never shrink */
    gsize capacity;
    double *sum; /* per unit: the batch's sum of per-sample means (per_batch) */
    gsize sum_capacity;
} Taylor;

static gpointer
taylor_open(const TpParams *params, GError **error)
{
    Taylor *taylor = g_new0(Taylor, 1);

    taylor->per_batch = g_str_equal(tp_params_get_string(params, "accumulate"), "batch");
    return taylor;
}

static void
taylor_close(gpointer self)
{
    Taylor *taylor = self;

    if (taylor == NULL)
        return;
    g_free(taylor->a);
    g_free(taylor->g);
    g_free(taylor->sum);
    g_free(taylor);
}

static TpCriterionNeeds
taylor_needs(gpointer self)
{
    return TP_CRITERION_NEEDS_DATA | TP_CRITERION_NEEDS_GRADIENT;
}

static TpNormalization
taylor_normalization(gpointer self)
{
    return TP_NORMALIZE_L2;
}

/* Adds this batch's terms for producer `node` to scores (see the top). */
static gboolean
accumulate_producer(Taylor *taylor, TpModel *model, int value, int batch, double *scores,
                    GError **error)
{
    TpTensor *a = tp_model_get_value(model, value);
    TpTensor *g = tp_model_get_grad(model, value);
    const int n_units = tp_model_get_shape(model, value)->dim[0];
    const gsize m = a->numel / ((gsize)batch * (gsize)n_units);

    if (g == NULL) {
        g_set_error(error, TP_CRITERION_ERROR, TP_CRITERION_ERROR_FAILED,
                    "value %d has no gradient after the backward pass", value);
        return FALSE;
    }
    if (a->numel > taylor->capacity) {
        taylor->a = g_renew(float, taylor->a, a->numel);
        taylor->g = g_renew(float, taylor->g, a->numel);
        taylor->capacity = a->numel;
    }
    if ((gsize)n_units > taylor->sum_capacity) {
        taylor->sum = g_renew(double, taylor->sum, n_units);
        taylor->sum_capacity = (gsize)n_units;
    }
    if (!tp_tensor_download(a, taylor->a, error) || !tp_tensor_download(g, taylor->g, error))
        return FALSE;

    for (int u = 0; u < n_units; u++)
        taylor->sum[u] = 0.0;
    for (int n = 0; n < batch; n++)
        for (int u = 0; u < n_units; u++) {
            const gsize base = ((gsize)n * (gsize)n_units + (gsize)u) * m;
            double dot = 0.0;

            for (gsize i = 0; i < m; i++)
                dot += (double)taylor->a[base + i] * (double)taylor->g[base + i];
            /* × batch: the gradient of sample n's own loss, not the mean's. */
            dot = dot * batch / (double)m;
            if (taylor->per_batch)
                taylor->sum[u] += dot;
            else
                scores[u] += fabs(dot);
        }
    if (taylor->per_batch)
        for (int u = 0; u < n_units; u++)
            scores[u] += fabs(taylor->sum[u]); /* = B · |batch mean| */
    return TRUE;
}

static gboolean
taylor_score(gpointer self, TpCriterionContext *context, GError **error)
{
    TpModel *model = tp_criterion_context_get_model(context);
    const TpUnits *units = tp_criterion_context_get_units(context);
    g_autoptr(GError) local = NULL;
    gsize samples = 0;

    while (tp_criterion_context_next(context, &local)) {
        const int batch = tp_criterion_context_get_batch(context);

        for (guint s = 0; s < tp_units_get_n_spaces(units); s++) {
            const TpUnitSpace *space = tp_units_get_space(units, s);

            for (guint p = 0; p < space->n_producers; p++) {
                const guint node = space->producers[p];
                const int value = tp_units_get_unit_value(units, node);

                if (!accumulate_producer(self, model, value, batch,
                                         tp_criterion_context_get_scores(context, node), error))
                    return FALSE;
            }
        }
        samples += (gsize)batch;
    }
    if (local != NULL) {
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    if (samples == 0) {
        g_set_error(error, TP_CRITERION_ERROR, TP_CRITERION_ERROR_FAILED, "no scoring samples");
        return FALSE;
    }
    for (guint s = 0; s < tp_units_get_n_spaces(units); s++) {
        const TpUnitSpace *space = tp_units_get_space(units, s);

        for (guint p = 0; p < space->n_producers; p++) {
            double *scores = tp_criterion_context_get_scores(context, space->producers[p]);

            for (int u = 0; u < space->n_units; u++)
                scores[u] /= (double)samples;
        }
    }
    return TRUE;
}

static const TpCriterionVTable taylor_vtable = {
    /* .open =          */ taylor_open,
    /* .close =         */ taylor_close,
    /* .needs =         */ taylor_needs,
    /* .normalization = */ taylor_normalization,
    /* .lrp_config =    */ NULL,
    /* .score =         */ taylor_score,
    /* .aggregate =     */ NULL, /* means over the samples */
};

static const TpPluginInfo taylor_info = {
    /* .abi_major =   */ TP_PLUGIN_ABI_MAJOR,
    /* .struct_size = */ sizeof(TpPluginInfo),
    /* .kind =        */ TP_PLUGIN_KIND_CRITERION,
    /* .name =        */ "taylor",
    /* .version =     */ "1.0",
    /* .description = */ "first-order Taylor estimate of each unit's loss change (Molchanov 2017)",
    /* .license =     */ "MIT",
    /* .vtable =      */ &taylor_vtable,
    /* .vtable_size = */ sizeof(TpCriterionVTable),
    /* .params =      */ taylor_params,
};

/* The plugin's one exported symbol. */
TP_PLUGIN_EXPORT const TpPluginInfo *
tp_plugin_describe(void)
{
    return &taylor_info;
}
