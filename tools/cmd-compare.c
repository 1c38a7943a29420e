/* cmd-compare.c — `taskprune compare A.onnx B.onnx`: two models (say, a
 * base model and its specialization) layer by layer, channels, parameters
 * and MACs side by side, and their latency measured in alternation. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "tp-bench.h"
#include "tp-cli-options.h"
#include "tp-cli.h"
#include "tp-onnx.h"

static int runs = 30, batch = 1;

static const GOptionEntry options[] = {
    {"runs", 'n', 0, G_OPTION_ARG_INT, &runs, "Timed runs of each model (default 30)", "N"},
    {"batch-size", 'b', 0, G_OPTION_ARG_INT, &batch, "Images per timed run (default 1)", "N"},
    TP_CLI_OPTION_BACKEND,
    TP_CLI_OPTION_DEVICE,
    TP_CLI_OPTION_MAX_TENSOR_BYTES,
    TP_CLI_OPTION_THREADS,
    TP_CLI_OPTION_JSON,
    {NULL},
};

/* A layer of A with parameters, and B's layer of the same name. */
typedef struct {
    const char *name, *op;
    int channels[2];
    guint64 params[2], macs[2];
    gboolean in_b;
} Layer;

/* The node of model named name, or -1. */
static int
find_node(TpModel *model, const char *name)
{
    for (guint i = 0; i < tp_model_get_n_nodes(model); i++)
        if (g_str_equal(tp_model_get_node(model, i)->name, name))
            return (int)i;
    return -1;
}

static GArray *
pair_layers(TpModel *a, TpModel *b)
{
    GArray *layers = g_array_new(FALSE, TRUE, sizeof(Layer));

    for (guint i = 0; i < tp_model_get_n_nodes(a); i++) {
        const TpNode *node = tp_model_get_node(a, i);
        int j = find_node(b, node->name);
        TpCount ca, cb = {0};
        Layer layer = {0};
        layer.name = node->name;
        layer.op = tp_op_type_to_string(node->op);
        tp_model_count_node(a, i, &ca);
        if (ca.params == 0)
            continue;
        layer.channels[0] = tp_model_get_shape(a, node->output)->dim[0];
        layer.params[0] = ca.params;
        layer.macs[0] = ca.macs;
        layer.in_b = j >= 0;
        if (layer.in_b) {
            tp_model_count_node(b, (guint)j, &cb);
            layer.channels[1] = tp_model_get_shape(b, tp_model_get_node(b, (guint)j)->output)->dim[0];
            layer.params[1] = cb.params;
            layer.macs[1] = cb.macs;
        }
        g_array_append_val(layers, layer);
    }
    return layers;
}

static void
print_table(const GArray *layers, const TpCount *t, char **paths, const TpLatency *la,
            const TpLatency *lb)
{
    int width = 5;

    for (guint i = 0; i < layers->len; i++)
        width = MAX(width, (int)strlen(g_array_index(layers, Layer, i).name));
    printf("A %s\nB %s\n\n", paths[0], paths[1]);
    printf("%-*s  %-18s %8s %8s %12s %12s %14s %14s\n", width, "layer", "op", "ch A", "ch B",
           "params A", "params B", "MACs A", "MACs B");
    for (guint i = 0; i < layers->len; i++) {
        const Layer *l = &g_array_index(layers, Layer, i);
        printf("%-*s  %-18s %8d", width, l->name, l->op, l->channels[0]);
        if (l->in_b)
            printf(" %8d %12" G_GUINT64_FORMAT " %12" G_GUINT64_FORMAT " %14" G_GUINT64_FORMAT
                   " %14" G_GUINT64_FORMAT "\n",
                   l->channels[1], l->params[0], l->params[1], l->macs[0], l->macs[1]);
        else
            printf(" %8s %12" G_GUINT64_FORMAT " %12s %14" G_GUINT64_FORMAT " %14s\n", "-",
                   l->params[0], "-", l->macs[0], "-");
    }
    printf("\n%-14s %14" G_GUINT64_FORMAT " %14" G_GUINT64_FORMAT "  (B: %.1f%% of A)\n",
           "parameters", t[0].params, t[1].params, 100.0 * t[1].params / MAX(t[0].params, 1));
    printf("%-14s %14" G_GUINT64_FORMAT " %14" G_GUINT64_FORMAT "  (B: %.1f%% of A)\n", "MACs",
           t[0].macs, t[1].macs, 100.0 * t[1].macs / MAX(t[0].macs, 1));
    double ratio = la->p50_ms / MAX(lb->p50_ms, 1e-9);
    printf("%-14s %11.3f ms %11.3f ms  (batch %d, p50 of %d runs; B: ", "latency", la->p50_ms,
           lb->p50_ms, batch, runs);
    if (tp_latency_within_noise(la, lb))
        printf("%.2fx, within noise)\n", ratio);
    else if (ratio >= 1)
        printf("%.2fx faster)\n", ratio);
    else
        printf("%.2fx slower)\n", 1 / ratio);
}

static void
print_json(const GArray *layers, const TpCount *t, char **paths, const TpLatency *la,
           const TpLatency *lb)
{
    g_autoptr(GString) out = g_string_new("{\n  \"a\": ");

    tp_cli_json_string(out, paths[0]);
    g_string_append(out, ",\n  \"b\": ");
    tp_cli_json_string(out, paths[1]);
    g_string_append(out, ",\n  \"layers\": [");
    for (guint i = 0; i < layers->len; i++) {
        const Layer *l = &g_array_index(layers, Layer, i);
        g_string_append_printf(out, "%s\n    {\"name\": ", i ? "," : "");
        tp_cli_json_string(out, l->name);
        g_string_append_printf(out, ", \"op\": \"%s\", ", l->op);
        if (l->in_b)
            g_string_append_printf(out,
                                   "\"channels\": [%d, %d], \"params\": [%" G_GUINT64_FORMAT
                                   ", %" G_GUINT64_FORMAT "], \"macs\": [%" G_GUINT64_FORMAT
                                   ", %" G_GUINT64_FORMAT "]}",
                                   l->channels[0], l->channels[1], l->params[0], l->params[1],
                                   l->macs[0], l->macs[1]);
        else
            g_string_append_printf(out,
                                   "\"channels\": [%d, null], \"params\": [%" G_GUINT64_FORMAT
                                   ", null], \"macs\": [%" G_GUINT64_FORMAT ", null]}",
                                   l->channels[0], l->params[0], l->macs[0]);
    }
    g_string_append_printf(out,
                           "\n  ],\n  \"params\": [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT
                           "],\n  \"macs\": [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT
                           "],\n  \"latency\": {\"batch\": %d, \"runs\": %d, \"p50_ms\": [%.4f, "
                           "%.4f], \"p90_ms\": [%.4f, %.4f], \"within_noise\": %s}\n}\n",
                           t[0].params, t[1].params, t[0].macs, t[1].macs, batch, runs,
                           la->p50_ms, lb->p50_ms, la->p90_ms, lb->p90_ms,
                           tp_latency_within_noise(la, lb) ? "true" : "false");
    fputs(out->str, stdout);
}

static int
run(int argc, char **argv)
{
    GError *error = NULL;
    g_autoptr(GKeyFile) keyfile = g_key_file_new();
    g_autoptr(TpBackend) backend = NULL;
    g_autoptr(TpModel) a = NULL;
    g_autoptr(TpModel) b = NULL;
    g_autoptr(GArray) layers = NULL;
    TpLatency la, lb;
    TpCount totals[2];

    if (!tp_cli_parse(&tp_cmd_compare, &argc, &argv))
        return 2;
    if (argc != 3) {
        tp_cli_error("compare: give A.onnx and B.onnx (see 'taskprune help compare')");
        return 2;
    }
    if (runs < 1 || batch < 1) {
        tp_cli_error("compare: --runs and --batch-size must be at least 1");
        return 2;
    }
    if (!tp_cli_options_apply(keyfile, &error) ||
        !(backend = tp_cli_open_backend(keyfile, "the command line", &error)) ||
        !(a = tp_onnx_load(backend, argv[1], &error)) ||
        !(b = tp_onnx_load(backend, argv[2], &error)))
        return tp_cli_fail(error);
    if (memcmp(tp_model_get_shape(a, 0), tp_model_get_shape(b, 0), sizeof(TpShape)) != 0) {
        tp_cli_error("compare: %s and %s take inputs of different sizes", argv[1], argv[2]);
        return 1;
    }
    if (!tp_bench_compare(a, b, TP_BENCH_INFER, batch, 3, runs, &la, &lb, &error))
        return tp_cli_fail(error);
    layers = pair_layers(a, b);
    tp_model_count(a, &totals[0]);
    tp_model_count(b, &totals[1]);
    if (tp_cli_options.json)
        print_json(layers, totals, argv + 1, &la, &lb);
    else
        print_table(layers, totals, argv + 1, &la, &lb);
    return 0;
}

const TpCommand tp_cmd_compare = {
    /* .name = */ "compare",
    /* .summary = */ "Compare two models layer by layer, and their measured latency",
    /* .parameters = */ "A.onnx B.onnx",
    /* .description = */
    "Prints, for each layer of A with parameters, its output channels, parameters and MACs\n"
    "beside those of B's layer of the same name (a specialized model keeps its base model's\n"
    "layer names), the totals, and the latency of both measured in alternation on the same\n"
    "backend (the ratio as measured, or \"within noise\" when the difference is inside the\n"
    "spread of the runs).\n\n"
    "Example: taskprune compare base.onnx footwear.onnx",
    /* .run = */ run,
    /* .options = */ options,
};
