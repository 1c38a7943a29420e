/* cmd-zoo.c — `taskprune zoo`: the built-in architectures, and with an ARCH
 * and -o one of them built on the cpu backend, initialized from a seed, and
 * written as ONNX. */
#include "config.h"

#include <math.h>
#include <stdio.h>

#include "tp-cli.h"
#include "tp-onnx.h"
#include "tp-zoo.h"

static double width = 1.0;
static char *input;
static int classes = 10;
static char *seed;
static char *output;

static const GOptionEntry options[] = {
    {"width", 'w', 0, G_OPTION_ARG_DOUBLE, &width,
     "Width multiplier of the hidden layers, 0 < W <= 16 (default 1)", "W"},
    {"input", 'i', 0, G_OPTION_ARG_STRING, &input, "Input shape per sample (default 1x28x28)",
     "CxHxW"},
    {"outputs", 0, 0, G_OPTION_ARG_INT, &classes, "Number of outputs, one per class (default 10)",
     "N"},
    /* The spelling before the option grammar, kept for scripts. */
    {"classes", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_INT, &classes, NULL, "N"},
    {"seed", 0, 0, G_OPTION_ARG_STRING, &seed, "Seed of the initial weights (default 0)", "N"},
    {"output", 'o', 0, G_OPTION_ARG_FILENAME, &output, "Write the model here", "FILE.onnx"},
    {NULL},
};

static void
print_list(void)
{
    const char *const *archs = tp_zoo_get_archs();

    printf("architectures:\n");
    for (int i = 0; archs[i] != NULL; i++)
        printf("  %-10s %s\n", archs[i], tp_zoo_describe(archs[i]));
}

/* Parses "CxHxW" (three positive decimal integers) into config; FALSE with
 * a message otherwise. */
static gboolean
parse_input(const char *text, TpZooConfig *config)
{
    g_auto(GStrv) parts = g_strsplit(text, "x", -1);
    int dims[3];

    if (g_strv_length(parts) != 3)
        goto bad;
    for (int i = 0; i < 3; i++) {
        guint64 value;

        if (!g_ascii_string_to_unsigned(parts[i], 10, 1, G_MAXINT, &value, NULL))
            goto bad;
        dims[i] = (int)value;
    }
    config->channels = dims[0];
    config->height = dims[1];
    config->width = dims[2];
    return TRUE;
bad:
    tp_cli_error("zoo: --input '%s': expected CxHxW with three positive integers, e.g. 3x32x32",
                 text);
    return FALSE;
}

/* Checks and collects the options into config; FALSE (a usage error) with a
 * message otherwise. */
static gboolean
parse_config(TpZooConfig *config)
{
    if (!parse_input(input != NULL ? input : "1x28x28", config))
        return FALSE;
    if (classes < 1) {
        tp_cli_error("zoo: --outputs %d: must be at least 1", classes);
        return FALSE;
    }
    config->classes = classes;
    if (!(width > 0.0 && isfinite(width))) {
        tp_cli_error("zoo: --width %g: must be a number greater than 0", width);
        return FALSE;
    }
    config->width_multiplier = width;
    if (seed != NULL &&
        !g_ascii_string_to_unsigned(seed, 10, 0, G_MAXUINT64, &config->seed, NULL)) {
        tp_cli_error("zoo: --seed '%s': expected an integer from 0 to %" G_GUINT64_FORMAT, seed,
                     G_MAXUINT64);
        return FALSE;
    }
    return TRUE;
}

/* Builds arch, writes it to `output` and prints one line about it; the exit
 * status. */
static int
write_model(const char *arch, const TpZooConfig *config)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(TpBackend) backend = NULL;
    g_autoptr(TpModel) model = NULL;
    TpCount count;

    g_autoptr(GKeyFile) settings = g_key_file_new(); /* the default backend: cpu */
    backend = tp_cli_open_backend(settings, "the command line", &error);
    if (backend == NULL) {
        tp_cli_error("zoo: %s", error->message);
        return 1;
    }
    model = tp_zoo_build(backend, arch, config, &error);
    if (model == NULL) {
        tp_cli_error("zoo: %s", error->message);
        return 1;
    }
    if (!tp_onnx_save(model, output, &error)) {
        tp_cli_error("zoo: %s", error->message);
        return 1;
    }
    tp_model_count(model, &count);
    printf("%s (width %g, input %dx%dx%d, %d classes, seed %" G_GUINT64_FORMAT
           "): %" G_GUINT64_FORMAT " parameters, %.1f M MACs -> %s\n",
           arch, config->width_multiplier, config->channels, config->height, config->width,
           config->classes, config->seed, count.params, (double)count.macs / 1e6, output);
    return 0;
}

static int
run(int argc, char **argv)
{
    TpZooConfig config = {0};

    if (!tp_cli_parse(&tp_cmd_zoo, &argc, &argv))
        return 2;
    if (argc > 2) {
        tp_cli_error("zoo: unexpected argument '%s'", argv[2]);
        return 2;
    }
    if (argc == 1) {
        if (output != NULL) {
            tp_cli_error("zoo: -o needs an ARCH (run 'taskprune zoo' for the list)");
            return 2;
        }
        print_list();
        return 0;
    }
    if (output == NULL) {
        tp_cli_error("zoo: no output file: add -o FILE.onnx");
        return 2;
    }
    if (tp_zoo_describe(argv[1]) == NULL) {
        g_autofree char *list = g_strjoinv(", ", (char **)tp_zoo_get_archs());

        tp_cli_error("zoo: no architecture '%s' (available: %s)", argv[1], list);
        return 1;
    }
    if (!parse_config(&config))
        return 2;
    return write_model(argv[1], &config);
}

const TpCommand tp_cmd_zoo = {
    /* .name = */ "zoo",
    /* .summary = */ "List the built-in architectures, or write one initialized",
    /* .parameters = */ "[ARCH]",
    /* .description = */
    "Without ARCH, lists the built-in architectures. With ARCH and -o, builds it for the\n"
    "given input shape and class count, initializes it as PyTorch does (Kaiming-normal\n"
    "convolutions, uniform linear layers, BatchNorm 1/0) from the seed, and writes it as\n"
    "ONNX, ready for training. The same seed gives the same file.\n"
    "\n"
    "Example: taskprune zoo vgg11 --width 0.5 --input 3x32x32 --outputs 10 -o vgg11.onnx",
    /* .run = */ run,
    /* .options = */ options,
};
