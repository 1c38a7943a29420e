/* cmd-info.c — `taskprune info MODEL.onnx`: one row per layer (op, output
 * shape, channels, parameters, MACs), totals, input normalization and class
 * names; --json for scripts. */
#include "config.h"

#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>

#include "tp-cli-options.h"
#include "tp-cli.h"
#include "tp-onnx.h"

static const GOptionEntry options[] = {
    TP_CLI_OPTION_JSON,
    TP_CLI_OPTION_BACKEND,
    TP_CLI_OPTION_DEVICE,
    TP_CLI_OPTION_MAX_TENSOR_BYTES,
    {NULL},
};

/* "1,234,567" */
static char *
thousands(guint64 n)
{
    g_autofree char *digits = g_strdup_printf("%" G_GUINT64_FORMAT, n);
    GString *s = g_string_new(NULL);
    int len = (int)strlen(digits);

    for (int i = 0; i < len; i++) {
        if (i > 0 && (len - i) % 3 == 0)
            g_string_append_c(s, ',');
        g_string_append_c(s, digits[i]);
    }
    return g_string_free(s, FALSE);
}

static char *
shape_string(const TpShape *shape, const char *sep)
{
    GString *s = g_string_new("[");
    for (int i = 0; i < shape->ndim; i++)
        g_string_append_printf(s, "%s%d", i ? sep : "", shape->dim[i]);
    g_string_append_c(s, ']');
    return g_string_free(s, FALSE);
}

static void
json_floats(GString *out, const float *v, int n)
{
    g_string_append_c(out, '[');
    for (int i = 0; i < n; i++)
        g_string_append_printf(out, "%s%.9g", i ? ", " : "", v[i]);
    g_string_append_c(out, ']');
}

static void
print_json(TpModel *model, const char *path, goffset bytes)
{
    g_autoptr(GString) out = g_string_new("{\n  \"file\": ");
    const float *mean, *std;
    const char *const *classes = tp_model_get_class_names(model);
    g_autofree char *input = shape_string(tp_model_get_shape(model, 0), ", ");
    TpCount total;

    tp_cli_json_string(out, path);
    g_string_append_printf(out,
                           ",\n  \"file_bytes\": %" G_GOFFSET_FORMAT ",\n  \"input\": %s,\n"
                           "  \"layers\": [",
                           bytes, input);
    for (guint i = 0; i < tp_model_get_n_nodes(model); i++) {
        const TpNode *node = tp_model_get_node(model, i);
        const TpShape *shape = tp_model_get_shape(model, node->output);
        g_autofree char *dims = shape_string(shape, ", ");
        TpCount count;

        tp_model_count_node(model, i, &count);
        g_string_append_printf(out, "%s\n    {\"name\": ", i ? "," : "");
        tp_cli_json_string(out, node->name);
        g_string_append_printf(
            out,
            ", \"op\": \"%s\", \"output\": %s, \"channels\": %d, "
            "\"params\": %" G_GUINT64_FORMAT ", \"macs\": %" G_GUINT64_FORMAT "}",
            tp_op_type_to_string(node->op), dims, shape->dim[0], count.params, count.macs);
    }
    tp_model_count(model, &total);
    g_string_append_printf(out,
                           "\n  ],\n  \"total\": {\"params\": %" G_GUINT64_FORMAT
                           ", \"running_stats\": %" G_GUINT64_FORMAT
                           ", \"macs\": %" G_GUINT64_FORMAT "}",
                           total.params, total.running_stats, total.macs);
    if (tp_model_get_normalization(model, &mean, &std)) {
        int channels = tp_model_get_shape(model, 0)->dim[0];
        g_string_append(out, ",\n  \"normalization\": {\"mean\": ");
        json_floats(out, mean, channels);
        g_string_append(out, ", \"std\": ");
        json_floats(out, std, channels);
        g_string_append_c(out, '}');
    }
    if (classes != NULL) {
        g_string_append(out, ",\n  \"classes\": [");
        for (guint i = 0; classes[i] != NULL; i++) {
            if (i > 0)
                g_string_append(out, ", ");
            tp_cli_json_string(out, classes[i]);
        }
        g_string_append_c(out, ']');
    }
    g_string_append(out, "\n}\n");
    fputs(out->str, stdout);
}

static void
print_table(TpModel *model, const char *path, goffset bytes)
{
    const float *mean, *std;
    const char *const *classes = tp_model_get_class_names(model);
    g_autofree char *input = shape_string(tp_model_get_shape(model, 0), "x");
    TpCount total;

    int name_width = 5, op_width = 2;
    for (guint i = 0; i < tp_model_get_n_nodes(model); i++) {
        const TpNode *node = tp_model_get_node(model, i);
        name_width = MAX(name_width, (int)strlen(node->name));
        op_width = MAX(op_width, (int)strlen(tp_op_type_to_string(node->op)));
    }
    printf("%s: input %s, %u layers\n\n", path, input, tp_model_get_n_nodes(model));
    printf("%4s  %-*s  %-*s  %-14s %8s %12s %14s\n", "#", name_width, "layer", op_width, "op",
           "output", "channels", "params", "MACs");
    for (guint i = 0; i < tp_model_get_n_nodes(model); i++) {
        const TpNode *node = tp_model_get_node(model, i);
        const TpShape *shape = tp_model_get_shape(model, node->output);
        g_autofree char *dims = shape_string(shape, "x");
        TpCount count;

        tp_model_count_node(model, i, &count);
        g_autofree char *params = thousands(count.params);
        g_autofree char *macs = thousands(count.macs);
        printf("%4u  %-*s  %-*s  %-14s %8d %12s %14s\n", i, name_width, node->name, op_width,
               tp_op_type_to_string(node->op), dims, shape->dim[0], params, macs);
    }
    tp_model_count(model, &total);
    g_autofree char *params = thousands(total.params);
    g_autofree char *stats = thousands(total.running_stats);
    g_autofree char *macs = thousands(total.macs);
    g_autofree char *size = g_format_size((guint64)bytes);
    printf("\ntotal: %s parameters (+ %s running statistics), %s MACs per sample, file %s\n",
           params, stats, macs, size);
    if (tp_model_get_normalization(model, &mean, &std)) {
        printf("input normalization:");
        for (int c = 0; c < tp_model_get_shape(model, 0)->dim[0]; c++)
            printf(" (x - %g) / %g", mean[c], std[c]);
        printf("\n");
    }
    if (classes != NULL) {
        g_autofree char *joined = g_strjoinv(", ", (char **)classes);
        printf("classes: %s\n", joined);
    }
}

static int
run(int argc, char **argv)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(TpBackend) backend = NULL;
    g_autoptr(TpModel) model = NULL;
    GStatBuf st;

    if (!tp_cli_parse(&tp_cmd_info, &argc, &argv))
        return 2;
    if (argc != 2) {
        tp_cli_error("info: give one MODEL.onnx (see 'taskprune help info')");
        return 2;
    }
    g_autoptr(GKeyFile) settings = g_key_file_new();
    if (tp_cli_options_apply(settings, &error))
        backend = tp_cli_open_backend(settings, "the command line", &error);
    if (backend != NULL)
        model = tp_onnx_load(backend, argv[1], &error);
    if (model == NULL) {
        tp_cli_error("%s", error->message);
        return 1;
    }
    if (g_stat(argv[1], &st) != 0)
        st.st_size = 0;
    if (tp_cli_options.json)
        print_json(model, argv[1], st.st_size);
    else
        print_table(model, argv[1], st.st_size);
    return 0;
}

const TpCommand tp_cmd_info = {
    /* .name = */ "info",
    /* .summary = */ "Show a model's layers, shapes, parameters and MACs",
    /* .parameters = */ "MODEL.onnx",
    /* .description = */
    "Loads an ONNX model and prints one row per layer: op, output shape (per sample),\n"
    "output channels, parameters and multiply-accumulates per sample, then the totals,\n"
    "the input normalization and the class names when the model records them.\n\n"
    "Example: taskprune info base.onnx --json",
    /* .run = */ run,
    /* .options = */ options,
};
