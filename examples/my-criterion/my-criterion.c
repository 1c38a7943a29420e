/* my-criterion.c — an out-of-tree criterion plugin, `linf`: each unit's
 * score is the largest absolute value among its incoming weights (the
 * L-infinity norm of row f of a Conv's weight [out, in / groups, kh, kw] or
 * of a Gemm's [out, in]):
 *
 *     s_f = max_i |W[f, i]|      (with bias = true: also |b_f|)
 *
 * Unlike `magnitude` (a sum over the row), the score does not grow with a
 * layer's fan-in, and one large weight is enough to keep a unit. Needs the
 * weights only; no per-layer normalization of its own.
 *
 * Keys:
 *   bias  count the unit's bias as one more weight (default false)
 *
 * Build and install it with the Makefile beside this file (it asks
 * `pkg-config taskprune-1` for the flags and the folder);
 * docs/writing-a-criterion.md walks through it.
 */
#include <math.h>

#include <tp.h>

static const TpParamSpec linf_params[] = {
    {
        .key = "bias",
        .type = TP_PARAM_BOOLEAN,
        .default_value = "false",
        .help = "count the unit's bias as one more weight",
    },
    {NULL},
};

typedef struct {
    gboolean bias;
    float *host; /* host copy of one weight tensor; grows, never shrinks */
    gsize capacity;
} Linf;

static gpointer
linf_open(const TpParams *params, GError **error)
{
    Linf *linf = g_new0(Linf, 1);

    linf->bias = tp_params_get_boolean(params, "bias");
    return linf;
}

static void
linf_close(gpointer self)
{
    Linf *linf = self;

    if (linf == NULL)
        return;
    g_free(linf->host);
    g_free(linf);
}

static TpCriterionNeeds
linf_needs(gpointer self)
{
    return TP_CRITERION_NEEDS_WEIGHTS;
}

static TpNormalization
linf_normalization(gpointer self)
{
    return TP_NORMALIZE_NONE;
}

/* A host copy of tensor t in linf->host (valid until the next call). */
static const float *
download(Linf *linf, TpTensor *t, GError **error)
{
    if (t->numel > linf->capacity) {
        linf->host = g_renew(float, linf->host, t->numel);
        linf->capacity = t->numel;
    }
    return tp_tensor_download(t, linf->host, error) ? linf->host : NULL;
}

/* Scores the units of producer `node` into scores[0 .. n_units). */
static gboolean
score_producer(Linf *linf, TpModel *model, guint node, double *scores, GError **error)
{
    TpTensor *w = tp_model_get_param(model, node, 0);
    TpTensor *b = tp_model_get_param(model, node, 1);
    const int n_units = w->shape[0];
    const gsize row = w->numel / (gsize)n_units;
    const float *host = download(linf, w, error);

    if (host == NULL)
        return FALSE;
    for (int f = 0; f < n_units; f++) {
        double max = 0.0;

        for (gsize i = 0; i < row; i++)
            max = fmax(max, fabs(host[(gsize)f * row + i]));
        scores[f] = max;
    }
    if (linf->bias && b != NULL) {
        if ((host = download(linf, b, error)) == NULL)
            return FALSE;
        for (int f = 0; f < n_units; f++)
            scores[f] = fmax(scores[f], fabs(host[f]));
    }
    return TRUE;
}

static gboolean
linf_score(gpointer self, TpCriterionContext *context, GError **error)
{
    TpModel *model = tp_criterion_context_get_model(context);
    const TpUnits *units = tp_criterion_context_get_units(context);

    for (guint s = 0; s < tp_units_get_n_spaces(units); s++) {
        const TpUnitSpace *space = tp_units_get_space(units, s);

        for (guint p = 0; p < space->n_producers; p++) {
            guint node = space->producers[p];

            if (!score_producer(self, model, node, tp_criterion_context_get_scores(context, node),
                                error))
                return FALSE;
        }
    }
    return TRUE;
}

static const TpCriterionVTable linf_vtable = {
    /* .open =          */ linf_open,
    /* .close =         */ linf_close,
    /* .needs =         */ linf_needs,
    /* .normalization = */ linf_normalization,
    /* .lrp_config =    */ NULL,
    /* .score =         */ linf_score,
    /* .aggregate =     */ NULL,
};

static const TpPluginInfo linf_info = {
    /* .abi_major =   */ TP_PLUGIN_ABI_MAJOR,
    /* .struct_size = */ sizeof(TpPluginInfo),
    /* .kind =        */ TP_PLUGIN_KIND_CRITERION,
    /* .name =        */ "linf",
    /* .version =     */ "1.0",
    /* .description = */ "largest absolute incoming weight of each unit (an SDK example)",
    /* .license =     */ "MIT",
    /* .vtable =      */ &linf_vtable,
    /* .vtable_size = */ sizeof(TpCriterionVTable),
    /* .params =      */ linf_params,
};

/* The plugin's one exported symbol. */
TP_PLUGIN_EXPORT const TpPluginInfo *
tp_plugin_describe(void)
{
    return &linf_info;
}
