/* cmd-specialize.c — `taskprune specialize MODEL.onnx --classes 5,7,9
 * --criterion lrp -o out.onnx`: the common pipeline without a keyfile. */
#include "config.h"

#include "tp-cli-options.h"
#include "tp-cli.h"
#include "tp-keyfile.h"

static char *classes, *criterion, *output, *dataset_name, *checkpoint;

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
    TP_CLI_OPTION_BACKEND,
    TP_CLI_OPTION_DEVICE,
    TP_CLI_OPTION_THREADS,
    TP_CLI_OPTION_QUIET,
    TP_CLI_OPTION_JSON,
    {NULL},
};

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
    if (argc != 2 || output == NULL || (classes == NULL && config_file == NULL)) {
        tp_cli_error("specialize: give MODEL.onnx, --classes and -o (see 'taskprune help "
                     "specialize')");
        return 2;
    }
    if (config_file != NULL &&
        !tp_keyfile_load(keyfile, config_file, &error))
        return tp_cli_fail(error);
    g_key_file_set_string(keyfile, "model", "path", argv[1]);
    if (classes != NULL)
        g_key_file_set_string(keyfile, "task", "classes", classes);
    if (criterion != NULL || !g_key_file_has_key(keyfile, "criterion", "plugin", NULL))
        g_key_file_set_string(keyfile, "criterion", "plugin", criterion ? criterion : "lrp");
    if (dataset_name != NULL || !g_key_file_has_key(keyfile, "dataset", "plugin", NULL))
        g_key_file_set_string(keyfile, "dataset", "plugin", dataset_name ? dataset_name : "idx");
    g_key_file_set_string(keyfile, "output", "model", output);
    if (checkpoint != NULL)
        g_key_file_set_string(keyfile, "output", "checkpoint", checkpoint);
    if (!tp_cli_options_apply(keyfile, &error))
        return tp_cli_fail(error);
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
    "prints the command that continues.\n\n"
    "Example: taskprune specialize base.onnx --classes Sandal,Sneaker,\"Ankle boot\" "
    "--criterion lrp -o footwear.onnx",
    /* .run = */ run,
    /* .options = */ options,
};
