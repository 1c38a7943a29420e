/* cmd-specialize.c — `taskprune specialize MODEL.onnx --classes 5,7,9
 * --criterion lrp -o out.onnx`: the common pipeline without a keyfile. */
#include "config.h"

#include <stdio.h>

#include "tp-cli-options.h"
#include "tp-cli.h"
#include "tp-pipeline.h"

static char *classes, *criterion, *output, *dataset_name, *checkpoint;
static gboolean dry_run;

static const GOptionEntry options[] = {
    {"classes", 'k', 0, G_OPTION_ARG_STRING, &classes,
     "Target classes by index or name, comma-separated", "LIST"},
    {"criterion", 'c', 0, G_OPTION_ARG_STRING, &criterion, "Criterion plugin (default lrp)",
     "NAME"},
    {"dataset", 'd', 0, G_OPTION_ARG_STRING, &dataset_name, "Dataset plugin (default idx)",
     "PLUGIN"},
    TP_CLI_OPTION_DATA,
    TP_CLI_OPTION_PRUNE,
    TP_CLI_OPTION_FINETUNE,
    TP_CLI_OPTION_MEAN,
    TP_CLI_OPTION_STD,
    TP_CLI_OPTION_CONFIG("Start from this pipeline keyfile"),
    TP_CLI_OPTION_SET,
    {"output", 'o', 0, G_OPTION_ARG_FILENAME, &output, "Write the specialized model here",
     "FILE.onnx"},
    {"checkpoint", 0, 0, G_OPTION_ARG_FILENAME, &checkpoint,
     "Checkpoint folder ([output] checkpoint; default FILE.onnx.checkpoint)", "DIR"},
    TP_CLI_OPTION_RESUME("Continue from the checkpoint of the same command"),
    {"dry-run", 0, 0, G_OPTION_ARG_NONE, &dry_run,
     "Print the units each step would remove and the counts after it, without fine-tuning; "
     "write nothing",
     NULL},
    TP_CLI_OPTION_BACKEND,
    TP_CLI_OPTION_DEVICE,
    TP_CLI_OPTION_MAX_TENSOR_BYTES,
    TP_CLI_OPTION_THREADS,
    TP_CLI_OPTION_QUIET,
    TP_CLI_OPTION_JSON,
    {NULL},
};

/* The cuts of one step: "conv1 2,5; conv2 0" (spaces that lose nothing
 * left out). */
static char *
cuts_text(const TpPipelinePlanStep *step)
{
    GString *text = g_string_new(NULL);

    for (guint s = 0; s < step->n_spaces; s++) {
        const TpPipelinePlanSpace *space = &step->spaces[s];
        if (space->n_cut == 0)
            continue;
        g_string_append_printf(text, "%s%s ", text->len ? "; " : "", space->layer);
        for (int i = 0; i < space->n_cut; i++)
            g_string_append_printf(text, "%s%d", i ? "," : "", space->cut[i]);
    }
    return g_string_free(text, FALSE);
}

static void
print_json(const TpPipeline *pipeline, const TpPipelinePlan *plan, const char *model)
{
    g_autoptr(GString) json = tp_cli_json_task(model, tp_pipeline_get_criterion_name(pipeline),
                                               tp_pipeline_get_task_name(pipeline));

    g_string_append(json, ",\n  \"steps\": [");
    for (guint i = 0; i < tp_pipeline_plan_get_n_steps(plan); i++) {
        const TpPipelinePlanStep *step = tp_pipeline_plan_get_step(plan, i);
        g_string_append_printf(json,
                               "%s\n    {\"step\": %u, \"units\": %" G_GSIZE_FORMAT
                               ", \"params\": %" G_GUINT64_FORMAT ", \"macs\": %" G_GUINT64_FORMAT
                               ", \"params_removed\": %.6f, \"macs_removed\": %.6f, \"cut\": [",
                               i ? "," : "", step->step, step->units, step->params, step->macs,
                               step->params_removed, step->macs_removed);
        for (guint s = 0, n = 0; s < step->n_spaces; s++) {
            const TpPipelinePlanSpace *space = &step->spaces[s];
            if (space->n_cut == 0)
                continue;
            g_string_append(json, n++ ? ", {\"layer\": " : "{\"layer\": ");
            tp_cli_json_string(json, space->layer);
            g_string_append(json, ", \"units\": [");
            for (int u = 0; u < space->n_cut; u++)
                g_string_append_printf(json, "%s%d", u ? ", " : "", space->cut[u]);
            g_string_append(json, "]}");
        }
        g_string_append(json, "]}");
    }
    g_string_append(json, "\n  ],\n  \"stop_reason\": ");
    tp_cli_json_string(json, tp_pipeline_plan_get_stop_reason(plan));
    g_string_append(json, "\n}\n");
    fputs(json->str, stdout);
}

/* --dry-run: the schedule without fine-tuning, step by step. */
static int
print_dry_run(GKeyFile *keyfile, const char *source)
{
    GError *error = NULL;
    g_autoptr(TpPipeline) pipeline = tp_pipeline_new_dry_run(keyfile, source, &error);
    g_autoptr(TpPipelinePlan) plan = NULL;

    if (pipeline == NULL || !(plan = tp_pipeline_plan(pipeline, G_MAXUINT, &error)))
        return tp_cli_fail(error);
    if (tp_cli_options.json) {
        g_autofree char *model = g_key_file_get_string(keyfile, "model", "path", NULL);
        print_json(pipeline, plan, model);
        return 0;
    }
    for (guint i = 0; i < tp_pipeline_plan_get_n_steps(plan); i++) {
        const TpPipelinePlanStep *step = tp_pipeline_plan_get_step(plan, i);
        g_autofree char *cuts = cuts_text(step);
        if (i == 0)
            printf("step 0 (%s, before pruning): %" G_GSIZE_FORMAT " units, %" G_GUINT64_FORMAT
                   " parameters, %" G_GUINT64_FORMAT " MACs\n",
                   tp_pipeline_get_task_name(pipeline), step->units, step->params, step->macs);
        else
            printf("step %u: removes %s\n  then %" G_GSIZE_FORMAT " units, %" G_GUINT64_FORMAT
                   " parameters (%.1f%% removed), %" G_GUINT64_FORMAT " MACs (%.1f%% removed)\n",
                   step->step, cuts, step->units, step->params, 100 * step->params_removed,
                   step->macs, 100 * step->macs_removed);
    }
    printf("stopped: %s\ndry run: no fine-tuning, nothing written\n",
           tp_pipeline_plan_get_stop_reason(plan));
    return 0;
}

static int
run(int argc, char **argv)
{
    g_autoptr(GKeyFile) keyfile = g_key_file_new();
    GError *error = NULL;
    const char *config_file, *source;
    g_autoptr(GString) again = g_string_new("taskprune");

    /* The command that continues this one after Ctrl-C. */
    for (int i = 0; i < argc; i++) {
        g_autofree char *quoted = tp_cli_quote(argv[i]);
        if (!g_str_equal(argv[i], "--resume") && !g_str_equal(argv[i], "-r"))
            g_string_append_printf(again, " %s", quoted);
    }
    g_string_append(again, " --resume");
    if (!tp_cli_parse(&tp_cmd_specialize, &argc, &argv))
        return 2;
    config_file = tp_cli_options.config;
    source = config_file ? config_file : "the command line";
    if (argc != 2 || (output == NULL && !dry_run) || (classes == NULL && config_file == NULL)) {
        tp_cli_error("specialize: give MODEL.onnx, --classes and -o (see 'taskprune help "
                     "specialize')");
        return 2;
    }
    if (!tp_cli_task_keyfile(keyfile, argv[1], classes, criterion, dataset_name, &error))
        return tp_cli_fail(error);
    if (output != NULL)
        g_key_file_set_string(keyfile, "output", "model", output);
    if (checkpoint != NULL)
        g_key_file_set_string(keyfile, "output", "checkpoint", checkpoint);
    if (!tp_cli_options_apply(keyfile, &error))
        return tp_cli_fail(error);
    if (dry_run)
        return print_dry_run(keyfile, source);
    return tp_cli_run_pipeline(keyfile, source, again->str);
}

const TpCommand tp_cmd_specialize = {
    /* .name = */ "specialize",
    /* .summary = */ "Specialize a model to some of its classes (a pipeline in one line)",
    /* .parameters = */ "MODEL.onnx",
    /* .description = */
    "Runs the specialization pipeline with its defaults (taskprune-pipeline(5)) on MODEL.onnx\n"
    "for the classes given, with the criterion given (lrp unless told otherwise), on the\n"
    "dataset given (idx: Fashion-MNIST unless told otherwise); -p, -f and --set set keys\n"
    "of the pipeline keyfile (taskprune-pipeline(5)). Ctrl-C stops at a checkpoint and\n"
    "prints the command that continues. --dry-run prints which units of which layers each\n"
    "step would remove and the parameters and MACs after it, scoring again after every\n"
    "step but without fine-tuning (-p max-steps=1: the first step alone).\n\n"
    "Example: taskprune specialize base.onnx --classes Sandal,Sneaker,\"Ankle boot\" "
    "--criterion lrp -o footwear.onnx",
    /* .run = */ run,
    /* .options = */ options,
};
