/* cmd-score.c — `taskprune score MODEL.onnx --classes 5,7,9 --criterion lrp`:
 * the score of every prunable unit, layer by layer, as the first pruning
 * step of the pipeline ranks them (tp_pipeline_plan()). */
#include "config.h"

#include <stdio.h>

#include "tp-cli-options.h"
#include "tp-cli.h"
#include "tp-pipeline.h"

static char *classes, *criterion, *dataset_name;

static const GOptionEntry options[] = {
    {"classes", 'k', 0, G_OPTION_ARG_STRING, &classes,
     "Target classes by index or name, comma-separated", "LIST"},
    {"criterion", 'c', 0, G_OPTION_ARG_STRING, &criterion, "Criterion plugin (default lrp)",
     "NAME"},
    {"dataset", 'd', 0, G_OPTION_ARG_STRING, &dataset_name, "Dataset plugin (default idx)",
     "PLUGIN"},
    TP_CLI_OPTION_DATA,
    TP_CLI_OPTION_PRUNE,
    TP_CLI_OPTION_CONFIG("Start from this pipeline keyfile"),
    TP_CLI_OPTION_SET,
    TP_CLI_OPTION_BACKEND,
    TP_CLI_OPTION_DEVICE,
    TP_CLI_OPTION_MAX_TENSOR_BYTES,
    TP_CLI_OPTION_THREADS,
    TP_CLI_OPTION_JSON,
    {NULL},
};

static void
print_json(const TpPipeline *pipeline, const TpPipelinePlanStep *step, const char *model)
{
    g_autoptr(GString) json = tp_cli_json_task(model, tp_pipeline_get_criterion_name(pipeline),
                                               tp_pipeline_get_task_name(pipeline));

    g_string_append(json, ",\n  \"layers\": [");
    for (guint s = 0; s < step->n_spaces; s++) {
        const TpPipelinePlanSpace *space = &step->spaces[s];
        g_string_append(json, s ? ",\n    {\"layer\": " : "\n    {\"layer\": ");
        tp_cli_json_string(json, space->layer);
        g_string_append_printf(json, ", \"units\": %d, \"scores\": [", space->n_units);
        for (int u = 0; u < space->n_units; u++)
            g_string_append_printf(json, "%s%.9g", u ? ", " : "", space->scores[u]);
        g_string_append(json, "], \"cut\": [");
        for (int u = 0; u < space->n_cut; u++)
            g_string_append_printf(json, "%s%d", u ? ", " : "", space->cut[u]);
        g_string_append(json, "]}");
    }
    g_string_append(json, "\n  ]\n}\n");
    fputs(json->str, stdout);
}

static int
run(int argc, char **argv)
{
    g_autoptr(GKeyFile) keyfile = g_key_file_new();
    g_autoptr(TpPipeline) pipeline = NULL;
    g_autoptr(TpPipelinePlan) plan = NULL;
    GError *error = NULL;
    const char *source;
    const TpPipelinePlanStep *step;

    if (!tp_cli_parse(&tp_cmd_score, &argc, &argv))
        return 2;
    source = tp_cli_options.config ? tp_cli_options.config : "the command line";
    if (argc != 2 || (classes == NULL && tp_cli_options.config == NULL)) {
        tp_cli_error("score: give MODEL.onnx and --classes (see 'taskprune help score')");
        return 2;
    }
    if (!tp_cli_task_keyfile(keyfile, argv[1], classes, criterion, dataset_name, &error) ||
        !tp_cli_options_apply(keyfile, &error) ||
        !(pipeline = tp_pipeline_new_dry_run(keyfile, source, &error)) ||
        !(plan = tp_pipeline_plan(pipeline, 1, &error)))
        return tp_cli_fail(error);
    if (tp_pipeline_plan_get_n_steps(plan) < 2) {
        tp_cli_error("score: nothing to score: %s", tp_pipeline_plan_get_stop_reason(plan));
        return 1;
    }
    step = tp_pipeline_plan_get_step(plan, 1);
    if (tp_cli_options.json) {
        print_json(pipeline, step, argv[1]);
        return 0;
    }
    printf("%s scores of %s for %s, by layer (as the first pruning step ranks them: summed "
           "over coupled layers, normalized per layer; * marks the units it removes)\n",
           tp_pipeline_get_criterion_name(pipeline), argv[1], tp_pipeline_get_task_name(pipeline));
    for (guint s = 0; s < step->n_spaces; s++) {
        const TpPipelinePlanSpace *space = &step->spaces[s];
        printf("%s (%d units):", space->layer, space->n_units);
        for (int u = 0, c = 0; u < space->n_units; u++) {
            gboolean cut = c < space->n_cut && space->cut[c] == u;
            c += cut;
            printf(" %d:%.4g%s", u, space->scores[u], cut ? "*" : "");
        }
        printf("\n");
    }
    return 0;
}

const TpCommand tp_cmd_score = {
    /* .name = */ "score",
    /* .summary = */ "Print the criterion's score of every prunable unit, by layer",
    /* .parameters = */ "MODEL.onnx",
    /* .description = */
    "Cuts the head of MODEL.onnx to the classes given and scores every prunable unit\n"
    "(filter or hidden neuron) with the criterion given (lrp unless told otherwise) on the\n"
    "dataset given (idx unless told otherwise): the numbers the first step of `specialize`\n"
    "ranks, summed over coupled layers and normalized per layer ([prune] normalize), with\n"
    "the units that step would remove marked. No fine-tuning (not even [finetune]\n"
    "warmup-epochs) comes before; -p and --set set keys of the pipeline keyfile.\n\n"
    "Example: taskprune score base.onnx --classes Sandal,Sneaker --criterion lrp --json",
    /* .run = */ run,
    /* .options = */ options,
};
