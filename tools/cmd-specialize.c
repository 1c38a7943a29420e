/* cmd-specialize.c — `taskprune specialize MODEL.onnx --classes 5,7,9
 * --criterion lrp -o out.onnx`: the common pipeline without a keyfile. */
#include "config.h"

#include "tp-cli.h"

static char *classes, *criterion, *output, *dataset_name, *config_file;
static char **data_pairs, **prune_pairs, **finetune_pairs;

static const GOptionEntry options[] = {
    {"classes", 'k', 0, G_OPTION_ARG_STRING, &classes,
     "Target classes by index or name, comma-separated", "LIST"},
    {"criterion", 'c', 0, G_OPTION_ARG_STRING, &criterion, "Criterion plugin (default lrp)",
     "NAME"},
    {"dataset", 'd', 0, G_OPTION_ARG_STRING, &dataset_name, "Dataset plugin (default idx)",
     "PLUGIN"},
    {"data", 'D', 0, G_OPTION_ARG_STRING_ARRAY, &data_pairs, "A dataset key (repeatable)",
     "KEY=VALUE"},
    {"prune", 'p', 0, G_OPTION_ARG_STRING_ARRAY, &prune_pairs,
     "A [prune] key, e.g. -p goal=0.95 (repeatable)", "KEY=VALUE"},
    {"finetune", 'f', 0, G_OPTION_ARG_STRING_ARRAY, &finetune_pairs,
     "A [finetune] key, e.g. -f epochs=0.5 (repeatable)", "KEY=VALUE"},
    {"config", 'C', 0, G_OPTION_ARG_FILENAME, &config_file, "Start from this pipeline keyfile",
     "FILE.ini"},
    {"output", 'o', 0, G_OPTION_ARG_FILENAME, &output, "Write the specialized model here",
     "FILE.onnx"},
    {NULL},
};

static int
run(int argc, char **argv)
{
    g_autoptr(GKeyFile) keyfile = g_key_file_new();
    GError *error = NULL;
    const char *source = config_file ? config_file : "the command line";

    if (!tp_cli_parse(&tp_cmd_specialize, &argc, &argv))
        return 2;
    if (argc != 2 || output == NULL || (classes == NULL && config_file == NULL)) {
        tp_cli_error("specialize: give MODEL.onnx, --classes and -o (see 'taskprune help "
                     "specialize')");
        return 2;
    }
    if (config_file != NULL &&
        !g_key_file_load_from_file(keyfile, config_file, G_KEY_FILE_NONE, &error)) {
        g_prefix_error(&error, "%s: ", config_file);
        return tp_cli_fail(error);
    }
    g_key_file_set_string(keyfile, "model", "path", argv[1]);
    if (classes != NULL)
        g_key_file_set_string(keyfile, "task", "classes", classes);
    if (criterion != NULL || !g_key_file_has_key(keyfile, "criterion", "plugin", NULL))
        g_key_file_set_string(keyfile, "criterion", "plugin", criterion ? criterion : "lrp");
    if (dataset_name != NULL || !g_key_file_has_key(keyfile, "dataset", "plugin", NULL))
        g_key_file_set_string(keyfile, "dataset", "plugin", dataset_name ? dataset_name : "idx");
    g_key_file_set_string(keyfile, "output", "model", output);
    if (!tp_cli_set_pairs(keyfile, "dataset", data_pairs, &error) ||
        !tp_cli_set_pairs(keyfile, "prune", prune_pairs, &error) ||
        !tp_cli_set_pairs(keyfile, "finetune", finetune_pairs, &error))
        return tp_cli_fail(error);
    return tp_cli_run_pipeline(keyfile, source);
}

const TpCommand tp_cmd_specialize = {
    /* .name = */ "specialize",
    /* .summary = */ "Specialize a model to some of its classes (a pipeline in one line)",
    /* .parameters = */ "MODEL.onnx",
    /* .description = */
    "Runs the specialization pipeline with its defaults (taskprune-pipeline(5)) on MODEL.onnx\n"
    "for the classes given, with the criterion given (lrp unless told otherwise), on the\n"
    "dataset given (idx: Fashion-MNIST unless told otherwise); -p and -f set [prune] and\n"
    "[finetune] keys.\n\n"
    "Example: taskprune specialize base.onnx --classes Sandal,Sneaker,\"Ankle boot\" "
    "--criterion lrp -o footwear.onnx",
    /* .run = */ run,
    /* .options = */ options,
};
