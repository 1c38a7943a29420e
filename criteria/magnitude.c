/* magnitude.c — the `magnitude` criterion: the norm of each unit's incoming
 * weights (Li et al. 2017, "Pruning filters for efficient ConvNets"), on
 * BatchNorm-folded weights (docs/method.md §2):
 *
 *     s_f = Σ |W'[f, ...]|  (l1)   or   sqrt(Σ W'[f, ...]²)  (l2),
 *     W'[f, ...] = W[f, ...] · γ_f / σ_f,  σ_f = sqrt(running_var_f + eps)
 *
 * where W[f, ...] is row f of a Conv's weight [out, in / groups, kh, kw] or of
 * a Gemm's [out, in], and the factor applies when a BatchNormalization alone
 * reads the producer's output (eps from that node). Biases are not counted.
 * Needs the weights only; normalized per space by L1 (the layer's sum).
 *
 * Keys:
 *   norm  l1 (default) or l2
 */
#include "config.h"

#include <math.h>

#include "tp-criterion.h"
#include "tp-params.h"
#include "tp-plugin.h"

static const TpParamSpec magnitude_params[] = {
    {
        .key = "norm",
        .type = TP_PARAM_CHOICE,
        .default_value = "l1",
        .choices = "l1|l2",
        .help = "norm of each unit's BN-folded incoming weights",
    },
    {NULL},
};

typedef struct {
    gboolean l2;
    float *weights; /* host copy of one weight tensor; grows, never shrinks */
    gsize capacity;
    float *bn; /* host copies of a BatchNorm's γ [C] then running variance [C] */
    gsize bn_capacity;
} Magnitude;

/* Makes *buffer hold at least n floats (keeping it when it does). */
static float *
reserve(float **buffer, gsize *capacity, gsize n)
{
    if (n > *capacity) {
        *buffer = g_renew(float, *buffer, n);
        *capacity = n;
    }
    return *buffer;
}

static gpointer
magnitude_open(const TpParams *params, GError **error)
{
    Magnitude *mag = g_new0(Magnitude, 1);

    mag->l2 = g_str_equal(tp_params_get_string(params, "norm"), "l2");
    return mag;
}

static void
magnitude_close(gpointer self)
{
    Magnitude *mag = self;

    if (mag == NULL)
        return;
    g_free(mag->weights);
    g_free(mag->bn);
    g_free(mag);
}

static TpCriterionNeeds
magnitude_needs(gpointer self)
{
    return TP_CRITERION_NEEDS_WEIGHTS;
}

static TpNormalization
magnitude_normalization(gpointer self)
{
    return TP_NORMALIZE_L1;
}

/* Scores the units of producer `node` into scores[0 .. n_units). */
static gboolean
score_producer(Magnitude *mag, TpModel *model, const TpUnits *units, guint node, double *scores,
               GError **error)
{
    TpTensor *w = tp_model_get_param(model, node, 0);
    const int bn = tp_units_get_batch_norm(units, node);
    const int n_units = w->shape[0];
    const gsize row = w->numel / (gsize)n_units;
    float *host = reserve(&mag->weights, &mag->capacity, w->numel);
    float *scale = NULL, *var = NULL;
    double eps = 0.0;

    if (!tp_tensor_download(w, host, error))
        return FALSE;
    if (bn >= 0) {
        scale = reserve(&mag->bn, &mag->bn_capacity, 2 * (gsize)n_units);
        var = scale + n_units;
        eps = tp_model_get_node(model, (guint)bn)->attrs.batch_norm.epsilon;
        if (!tp_tensor_download(tp_model_get_param(model, (guint)bn, 0), scale, error) ||
            !tp_tensor_download(tp_model_get_param(model, (guint)bn, 3), var, error))
            return FALSE;
    }
    for (int f = 0; f < n_units; f++) {
        double sum = 0.0;

        for (gsize i = 0; i < row; i++) {
            const double x = host[(gsize)f * row + i];
            sum += mag->l2 ? x * x : fabs(x);
        }
        scores[f] = mag->l2 ? sqrt(sum) : sum;
        if (bn >= 0)
            scores[f] *= fabs((double)scale[f]) / sqrt((double)var[f] + eps);
    }
    return TRUE;
}

static gboolean
magnitude_score(gpointer self, TpCriterionContext *context, GError **error)
{
    TpModel *model = tp_criterion_context_get_model(context);
    const TpUnits *units = tp_criterion_context_get_units(context);

    for (guint s = 0; s < tp_units_get_n_spaces(units); s++) {
        const TpUnitSpace *space = tp_units_get_space(units, s);

        for (guint p = 0; p < space->n_producers; p++) {
            guint node = space->producers[p];

            if (!score_producer(self, model, units, node,
                                tp_criterion_context_get_scores(context, node), error))
                return FALSE;
        }
    }
    return TRUE;
}

static const TpCriterionVTable magnitude_vtable = {
    /* .open =          */ magnitude_open,
    /* .close =         */ magnitude_close,
    /* .needs =         */ magnitude_needs,
    /* .normalization = */ magnitude_normalization,
    /* .lrp_config =    */ NULL,
    /* .score =         */ magnitude_score,
    /* .aggregate =     */ NULL,
};

static const TpPluginInfo magnitude_info = {
    /* .abi_major =   */ TP_PLUGIN_ABI_MAJOR,
    /* .struct_size = */ sizeof(TpPluginInfo),
    /* .kind =        */ TP_PLUGIN_KIND_CRITERION,
    /* .name =        */ "magnitude",
    /* .version =     */ "1.0",
    /* .description = */ "L1/L2 norm of each unit's BatchNorm-folded incoming weights",
    /* .license =     */ "MIT",
    /* .vtable =      */ &magnitude_vtable,
    /* .vtable_size = */ sizeof(TpCriterionVTable),
    /* .params =      */ magnitude_params,
};

/* The plugin's one exported symbol. */
TP_PLUGIN_EXPORT const TpPluginInfo *
tp_plugin_describe(void)
{
    return &magnitude_info;
}
