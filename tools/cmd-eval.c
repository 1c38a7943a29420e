/* cmd-eval.c — `taskprune eval MODEL.onnx --dataset PLUGIN`: accuracy,
 * per-class accuracy and the confusion matrix on a dataset split. A model
 * that records class names (or, without names, its outputs' class indices in
 * the model it was specialized from) is evaluated on the dataset's images of
 * those classes, its outputs in its own order. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "tp-cli-options.h"
#include "tp-cli.h"
#include "tp-keyfile.h"
#include "tp-normalization.h"
#include "tp-onnx.h"
#include "tp-train.h"

static char *dataset_name, *split_name;
static int batch_size = 256;

static const GOptionEntry options[] = {
    {"dataset", 'd', 0, G_OPTION_ARG_STRING, &dataset_name, "Dataset plugin ([dataset] plugin)",
     "PLUGIN"},
    TP_CLI_OPTION_DATA,
    TP_CLI_OPTION_CONFIG("Take [dataset] and [backend] from this keyfile"),
    TP_CLI_OPTION_SET,
    TP_CLI_OPTION_MEAN,
    TP_CLI_OPTION_STD,
    {"split", 0, 0, G_OPTION_ARG_STRING, &split_name, "test (default) or train", "SPLIT"},
    {"batch-size", 'b', 0, G_OPTION_ARG_INT, &batch_size, "Images per forward (default 256)", "N"},
    TP_CLI_OPTION_BACKEND,
    TP_CLI_OPTION_DEVICE,
    TP_CLI_OPTION_THREADS,
    TP_CLI_OPTION_JSON,
    {NULL},
};

/* The dataset class of each model output: by name when the model has class
 * names, else the identity (then the counts must agree). */
static int *
match_classes(TpModel *model, TpDataset *dataset, int *out_n, GError **error)
{
    const char *const *names = tp_model_get_class_names(model);
    int outputs = tp_model_get_shape(model, tp_model_get_logits(model))->dim[0];
    g_autofree int *classes = g_new(int, outputs);

    int n_indices;
    const int *indices = tp_model_get_class_indices(model, &n_indices);

    for (int i = 0; i < outputs; i++) {
        const char *name =
            names != NULL && i < (int)g_strv_length((char **)names) ? names[i] : NULL;
        if (name == NULL && indices != NULL && i < n_indices) {
            /* A specialized model without names: its outputs' original classes. */
            classes[i] = indices[i];
            if (classes[i] >= dataset->meta.n_classes) {
                g_set_error(error, TP_LOADER_ERROR, TP_LOADER_ERROR_INVALID,
                            "the model's output %d is class %d of its original model, and "
                            "dataset '%s' has %d classes",
                            i, classes[i], dataset->info->name, dataset->meta.n_classes);
                return NULL;
            }
            continue;
        }
        classes[i] = name ? tp_dataset_find_class(dataset, name) : i;
        if (name != NULL && classes[i] < 0) {
            g_set_error(error, TP_LOADER_ERROR, TP_LOADER_ERROR_INVALID,
                        "the model's class '%s' (output %d) is not a class of dataset '%s'", name,
                        i, dataset->info->name);
            return NULL;
        }
        if (name == NULL && indices == NULL && outputs != dataset->meta.n_classes) {
            g_set_error(error, TP_LOADER_ERROR, TP_LOADER_ERROR_INVALID,
                        "the model has %d outputs and no class names, dataset '%s' has %d "
                        "classes",
                        outputs, dataset->info->name, dataset->meta.n_classes);
            return NULL;
        }
    }
    *out_n = outputs;
    return g_steal_pointer(&classes);
}

static void
print_json(TpModel *model, const char *path, const TpEvaluation *e)
{
    g_autoptr(GString) out = g_string_new("{\n  \"model\": ");
    char buf[16];

    tp_cli_json_string(out, path);
    g_string_append_printf(out,
                           ",\n  \"samples\": %" G_GSIZE_FORMAT
                           ",\n  \"accuracy\": %.6f,\n  \"loss\": %.6f,\n  \"classes\": [",
                           e->n_samples, tp_evaluation_accuracy(e), e->loss);
    for (int c = 0; c < e->n_classes; c++) {
        g_string_append_printf(out, "%s\n    {\"name\": ", c ? "," : "");
        tp_cli_json_string(out, tp_cli_output_name(model, c, buf, sizeof(buf)));
        g_string_append_printf(out, ", \"accuracy\": %.6f}", tp_evaluation_class_accuracy(e, c));
    }
    g_string_append(out, "\n  ],\n  \"confusion\": [");
    for (int c = 0; c < e->n_classes; c++) {
        g_string_append_printf(out, "%s\n    [", c ? "," : "");
        for (int j = 0; j < e->n_classes; j++)
            g_string_append_printf(out, "%s%" G_GUINT64_FORMAT, j ? ", " : "",
                                   e->confusion[c * e->n_classes + j]);
        g_string_append_c(out, ']');
    }
    g_string_append(out, "\n  ]\n}\n");
    fputs(out->str, stdout);
}

static void
print_table(TpModel *model, const char *path, const TpEvaluation *e)
{
    char buf[16];
    int width = 5;

    for (int c = 0; c < e->n_classes; c++)
        width = MAX(width, (int)strlen(tp_cli_output_name(model, c, buf, sizeof(buf))));
    printf("%s: accuracy %.2f%% (%" G_GSIZE_FORMAT "/%" G_GSIZE_FORMAT "), loss %.4f\n\n", path,
           100 * tp_evaluation_accuracy(e), e->correct, e->n_samples, e->loss);
    printf("%-*s  accuracy   confusion (rows: true class, columns: predicted)\n", width, "class");
    for (int c = 0; c < e->n_classes; c++) {
        printf("%-*s  %7.2f%%  ", width, tp_cli_output_name(model, c, buf, sizeof(buf)),
               100 * tp_evaluation_class_accuracy(e, c));
        for (int j = 0; j < e->n_classes; j++)
            printf(" %6" G_GUINT64_FORMAT, e->confusion[c * e->n_classes + j]);
        printf("\n");
    }
}

static int
run(int argc, char **argv)
{
    static const char *const groups[] = {"model", "dataset", "backend", NULL};
    GError *error = NULL;
    g_autoptr(GKeyFile) keyfile = g_key_file_new();
    g_autoptr(TpBackend) backend = NULL;
    g_autoptr(TpModel) model = NULL;
    g_autoptr(TpDataset) dataset = NULL;
    g_autoptr(TpLoader) loader = NULL;
    g_autoptr(TpEvaluation) e = NULL;
    g_autofree int *classes = NULL;
    const char *config_file, *source;
    TpLoaderConfig config = {0};
    TpSplit split = TP_SPLIT_TEST;

    if (!tp_cli_parse(&tp_cmd_eval, &argc, &argv))
        return 2;
    config_file = tp_cli_options.config;
    source = config_file ? config_file : "the command line";
    if (argc != 2) {
        tp_cli_error("eval: give one MODEL.onnx (see 'taskprune help eval')");
        return 2;
    }
    if (split_name != NULL && !g_str_equal(split_name, "test")) {
        if (!g_str_equal(split_name, "train")) {
            tp_cli_error("eval: --split %s: valid splits are test and train", split_name);
            return 2;
        }
        split = TP_SPLIT_TRAIN;
    }
    if (batch_size < 1) {
        tp_cli_error("eval: --batch-size must be at least 1");
        return 2;
    }
    if (config_file != NULL &&
        !tp_keyfile_load(keyfile, config_file, &error))
        return tp_cli_fail(error);
    /* A pipeline or training keyfile has other groups too; eval reads
     * [dataset], [backend], and [model] mean and std. */
    g_auto(GStrv) present = g_key_file_get_groups(keyfile, NULL);
    for (int i = 0; present[i] != NULL; i++)
        if (!g_strv_contains(groups, present[i]))
            g_key_file_remove_group(keyfile, present[i], NULL);
    if (dataset_name != NULL)
        g_key_file_set_string(keyfile, "dataset", "plugin", dataset_name);
    if (!tp_cli_options_apply(keyfile, &error))
        return tp_cli_fail(error);

    backend = tp_cli_open_backend(keyfile, source, &error);
    if (backend == NULL || !(model = tp_onnx_load(backend, argv[1], &error)) ||
        !tp_normalization_apply_keys(model, keyfile, "model", source, &error) ||
        !(dataset = tp_dataset_new_from_keyfile(keyfile, "dataset", source, split, &error)))
        return tp_cli_fail(error);
    tp_cli_warn_unnormalized(model, argv[1]);
    if (tp_model_get_shape(model, 0)->dim[0] != dataset->meta.channels ||
        tp_model_get_shape(model, 0)->dim[1] != dataset->meta.height ||
        tp_model_get_shape(model, 0)->dim[2] != dataset->meta.width) {
        tp_cli_error("%s takes [%d, %d, %d] images, dataset '%s' has [%d, %d, %d]", argv[1],
                     tp_model_get_shape(model, 0)->dim[0], tp_model_get_shape(model, 0)->dim[1],
                     tp_model_get_shape(model, 0)->dim[2], dataset->info->name,
                     dataset->meta.channels, dataset->meta.height, dataset->meta.width);
        return 1;
    }
    classes = match_classes(model, dataset, &config.n_classes, &error);
    if (classes == NULL)
        return tp_cli_fail(error);
    config.classes = classes;
    config.part = TP_LOADER_ALL;
    config.batch_size = batch_size;
    config.prefetch = TRUE;
    tp_model_get_normalization(model, &config.mean, &config.std);
    loader = tp_loader_new(dataset, &config, &error);
    if (loader == NULL || !(e = tp_evaluate(model, loader, &error)))
        return tp_cli_fail(error);
    if (tp_cli_options.json)
        print_json(model, argv[1], e);
    else
        print_table(model, argv[1], e);
    return 0;
}

const TpCommand tp_cmd_eval = {
    /* .name = */ "eval",
    /* .summary = */ "Evaluate a model on a dataset: accuracy, per class, confusion",
    /* .parameters = */ "MODEL.onnx",
    /* .description = */
    "Runs the model over a dataset split (the test split unless --split train) and prints\n"
    "the accuracy, the loss, each class's accuracy and the confusion matrix. A model that\n"
    "records class names is evaluated on the dataset's images of its classes only, matched\n"
    "by name; otherwise its outputs must be the dataset's classes. Images are normalized\n"
    "as the model's metadata says, or as --mean and --std say (for a model trained\n"
    "elsewhere on normalized inputs).\n\n"
    "Example: taskprune eval lenet.onnx --dataset idx",
    /* .run = */ run,
    /* .options = */ options,
};
