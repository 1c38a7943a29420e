/* random.c — the `random` criterion: a uniform(0, 1) score per unit, the
 * baseline every other criterion must beat (docs/method.md §2, experiment E2).
 *
 * The draws come from a GRand (Mersenne Twister) seeded with the array
 *     { seed & 0xffffffff, seed >> 32, round & 0xffffffff, round >> 32 }
 * where `seed` is the key below and `round` is tp_criterion_context_get_seed()
 * (the pipeline seed and the step), so every step draws anew and a run is
 * reproducible. One g_rand_double() per unit, spaces in order, units in
 * order. A space written by several producers (a residual stream) gets one
 * draw per unit, split evenly over its producers: each gets draw / n, so the
 * sum the engine ranks by is the draw. Needs the weights only (it reads
 * nothing); no normalization.
 *
 * Keys:
 *   seed  mixed with the round's seed (default 0)
 */
#include "config.h"

#include "tp-criterion.h"
#include "tp-params.h"
#include "tp-plugin.h"

static const TpParamSpec random_params[] = {
    {
        .key = "seed",
        .type = TP_PARAM_INT,
        .default_value = "0",
        .min = 0,
        .max = 4294967295.0,
        .help = "seed of the draws, mixed with the pipeline's seed and step",
    },
    {NULL},
};

typedef struct {
    guint64 seed;
} Random;

static gpointer
random_open(const TpParams *params, GError **error)
{
    Random *state = g_new0(Random, 1);

    state->seed = (guint64)tp_params_get_int(params, "seed");
    return state;
}

static void
random_close(gpointer self)
{
    g_free(self);
}

static TpCriterionNeeds
random_needs(gpointer self)
{
    return TP_CRITERION_NEEDS_WEIGHTS;
}

static TpNormalization
random_normalization(gpointer self)
{
    return TP_NORMALIZE_NONE;
}

static gboolean
random_score(gpointer self, TpCriterionContext *context, GError **error)
{
    const Random *state = self;
    const TpUnits *units = tp_criterion_context_get_units(context);
    const guint64 round = tp_criterion_context_get_seed(context);
    const guint32 seed[4] = {
        (guint32)(state->seed & 0xffffffffu),
        (guint32)(state->seed >> 32),
        (guint32)(round & 0xffffffffu),
        (guint32)(round >> 32),
    };
    g_autoptr(GRand) draws = g_rand_new_with_seed_array(seed, G_N_ELEMENTS(seed));

    for (guint s = 0; s < tp_units_get_n_spaces(units); s++) {
        const TpUnitSpace *space = tp_units_get_space(units, s);

        for (int u = 0; u < space->n_units; u++) {
            const double share = g_rand_double(draws) / space->n_producers;

            for (guint p = 0; p < space->n_producers; p++)
                tp_criterion_context_get_scores(context, space->producers[p])[u] = share;
        }
    }
    return TRUE;
}

static const TpCriterionVTable random_vtable = {
    /* .open =          */ random_open,
    /* .close =         */ random_close,
    /* .needs =         */ random_needs,
    /* .normalization = */ random_normalization,
    /* .lrp_config =    */ NULL,
    /* .score =         */ random_score,
    /* .aggregate =     */ NULL,
};

static const TpPluginInfo random_info = {
    /* .abi_major =   */ TP_PLUGIN_ABI_MAJOR,
    /* .struct_size = */ sizeof(TpPluginInfo),
    /* .kind =        */ TP_PLUGIN_KIND_CRITERION,
    /* .name =        */ "random",
    /* .version =     */ "1.0",
    /* .description = */ "uniform(0, 1) per unit, seeded, redrawn each step: the baseline",
    /* .license =     */ "MIT",
    /* .vtable =      */ &random_vtable,
    /* .vtable_size = */ sizeof(TpCriterionVTable),
    /* .params =      */ random_params,
};

/* The plugin's one exported symbol. */
TP_PLUGIN_EXPORT const TpPluginInfo *
tp_plugin_describe(void)
{
    return &random_info;
}
