/* tp-pipeline-plan.c — a pipeline's dry run (contract in tp-pipeline.h):
 * the scores each step ranks and the units it cuts, with the counts after
 * it, from the same code as the run (tp_pipeline_rank()) but with neither
 * fine-tuning nor evaluation between the steps.
 */
#include "config.h"

#include "tp-pipeline-private.h"
#include "tp-prune.h"

struct _TpPipelinePlan {
    GArray *steps; /* TpPipelinePlanStep */
    char *stop_reason;
};

static void
step_clear(gpointer data)
{
    TpPipelinePlanStep *step = data;

    for (guint s = 0; s < step->n_spaces; s++) {
        g_free(step->spaces[s].layer);
        g_free(step->spaces[s].scores);
        g_free(step->spaces[s].cut);
    }
    g_free(step->spaces);
}

void
tp_pipeline_plan_free(TpPipelinePlan *plan)
{
    if (plan == NULL)
        return;
    g_array_unref(plan->steps);
    g_free(plan->stop_reason);
    g_free(plan);
}

guint
tp_pipeline_plan_get_n_steps(const TpPipelinePlan *plan)
{
    return plan->steps->len;
}

const TpPipelinePlanStep *
tp_pipeline_plan_get_step(const TpPipelinePlan *plan, guint step)
{
    g_return_val_if_fail(step < plan->steps->len, NULL);
    return &g_array_index(plan->steps, TpPipelinePlanStep, step);
}

const char *
tp_pipeline_plan_get_stop_reason(const TpPipelinePlan *plan)
{
    return plan->stop_reason;
}

/* Appends the step whose counts row holds. */
static TpPipelinePlanStep *
add_step(TpPipelinePlan *plan, guint step, const TpPipelineRow *row)
{
    TpPipelinePlanStep s = {0};

    s.step = step;
    s.units = row->units;
    s.params = row->params;
    s.macs = row->macs;
    s.params_removed = row->params_removed;
    s.macs_removed = row->macs_removed;
    g_array_append_val(plan->steps, s);
    return &g_array_index(plan->steps, TpPipelinePlanStep, plan->steps->len - 1);
}

/* The spaces of units with their scores and the units keep drops. */
static void
fill_spaces(TpPipelinePlanStep *step, const TpUnits *units, GPtrArray *scores, GPtrArray *keep)
{
    step->n_spaces = tp_units_get_n_spaces(units);
    step->spaces = g_new0(TpPipelinePlanSpace, MAX(step->n_spaces, 1));
    for (guint s = 0; s < step->n_spaces; s++) {
        const TpUnitSpace *space = tp_units_get_space(units, s);
        const gboolean *mask = g_ptr_array_index(keep, s);
        TpPipelinePlanSpace *out = &step->spaces[s];

        out->layer = g_strdup(space->name);
        out->n_units = space->n_units;
        out->scores = g_steal_pointer(&g_ptr_array_index(scores, s));
        out->cut = g_new(int, MAX(space->n_units, 1));
        for (int u = 0; u < space->n_units; u++)
            if (!mask[u])
                out->cut[out->n_cut++] = u;
    }
}

TpPipelinePlan *
tp_pipeline_plan(TpPipeline *p, guint max_steps, GError **error)
{
    g_autoptr(TpPipelinePlan) plan = g_new0(TpPipelinePlan, 1);
    TpPipelineRun r = {0};
    TpPipelineRow row = {0};
    gboolean linear = tp_params_get_boolean(p->prune, "linear");
    double goal = tp_params_get_double(p->prune, "goal");
    gboolean ok = FALSE;

    g_return_val_if_fail(p != NULL, NULL);

    max_steps = MIN(max_steps, (guint)tp_params_get_int(p->prune, "max-steps"));
    plan->steps = g_array_new(FALSE, TRUE, sizeof(TpPipelinePlanStep));
    g_array_set_clear_func(plan->steps, step_clear);
    r.p = p;
    if (!tp_pipeline_run_start(&r, error))
        goto out;
    {
        g_autoptr(TpUnits) units = tp_units_new(r.model, linear, error);
        if (units == NULL)
            goto out;
        tp_pipeline_fill_counts(&r, r.model, units, &row);
        add_step(plan, 0, &row);
    }
    for (guint step = 1;; step++) {
        g_autoptr(TpUnits) units = NULL, after = NULL;
        g_autoptr(GPtrArray) scores = NULL, keep = NULL;
        gssize cut;

        if (step > max_steps) {
            plan->stop_reason = g_strdup_printf("%u steps done", max_steps);
            break;
        }
        if (tp_pipeline_removed(&r, &row) >= goal) {
            plan->stop_reason =
                g_strdup_printf("goal reached: %.1f%% of the %s removed at step %u",
                                100 * tp_pipeline_removed(&r, &row),
                                tp_params_get_string(p->prune, "goal-metric"), step - 1);
            break;
        }
        units = tp_units_new(r.model, linear, error);
        if (units == NULL ||
            (cut = tp_pipeline_rank(&r, units, step, NULL, &scores, &keep, error)) < 0)
            goto out;
        if (cut == 0) {
            plan->stop_reason = g_strdup_printf(
                "nothing more to cut: every layer is at [prune] min-units after step %u", step - 1);
            break;
        }
        TpModel *pruned =
            tp_prune_apply(r.model, units, (const gboolean *const *)keep->pdata, NULL, 0, error);
        if (pruned == NULL || !(after = tp_units_new(pruned, linear, error))) {
            tp_model_free(pruned);
            goto out;
        }
        tp_pipeline_fill_counts(&r, pruned, after, &row);
        fill_spaces(add_step(plan, step, &row), units, scores, keep);
        g_clear_pointer(&units, tp_units_free); /* it reads r.model */
        tp_model_free(r.model);
        r.model = pruned;
    }
    ok = TRUE;
out:
    if (!ok && error != NULL && !g_str_has_prefix((*error)->message, p->source))
        g_prefix_error(error, "%s: ", p->source);
    tp_pipeline_run_clear(&r);
    return ok ? g_steal_pointer(&plan) : NULL;
}
