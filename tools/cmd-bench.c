/* cmd-bench.c — `taskprune bench MODEL.onnx`: measured latency (median and
 * 90th percentile) and throughput of inference or of training steps at the
 * batch sizes given; optionally the time per layer and the cost of scoring
 * with criteria against a forward and backward pass; as text or JSON. */
#include "config.h"

#include <stdio.h>
#include <sys/resource.h>

#include "tp-bench.h"
#include "tp-cli-options.h"
#include "tp-cli.h"
#include "tp-normalization.h"
#include "tp-onnx.h"
#include "tp-registry.h"

static char *batches = "1,64", *score_list;
static int runs = 50, warmup = 5;
static gboolean train, layers;

static const GOptionEntry options[] = {
    {"batch-size", 'b', 0, G_OPTION_ARG_STRING, &batches, "Batch sizes, comma-separated (default 1,64)",
     "LIST"},
    /* The spellings before the option grammar, kept for scripts. */
    {"batch", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, &batches, NULL, "LIST"},
    {"train", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_NONE, &train, NULL, NULL},
    {"runs", 'n', 0, G_OPTION_ARG_INT, &runs, "Timed runs per batch size (default 50)", "N"},
    {"warmup", 0, 0, G_OPTION_ARG_INT, &warmup, "Untimed runs first (default 5, at least 1)", "N"},
    {"training", 0, 0, G_OPTION_ARG_NONE, &train,
     "Time training steps (forward, loss, backward, SGD update) instead of inference", NULL},
    {"layers", 0, 0, G_OPTION_ARG_NONE, &layers, "Also time each layer (mean of --runs runs)",
     NULL},
    {"score", 0, 0, G_OPTION_ARG_STRING, &score_list,
     "Also time each criterion scoring one batch of synthetic samples, against a forward and "
     "backward pass over them",
     "LIST"},
    TP_CLI_OPTION_MEAN,
    TP_CLI_OPTION_STD,
    TP_CLI_OPTION_BACKEND,
    TP_CLI_OPTION_DEVICE,
    TP_CLI_OPTION_THREADS,
    TP_CLI_OPTION_JSON,
    {NULL},
};

/* The mean time per node over `runs` profiled runs at `batch`: forward_ms
 * (and, training, backward_ms) get one entry per node. */
static gboolean
time_layers(TpModel *model, int batch, double *forward_ms, double *backward_ms, GError **error)
{
    guint n = tp_model_get_n_nodes(model);
    TpLatency latency;
    gboolean ok;

    for (guint i = 0; i < n; i++)
        forward_ms[i] = backward_ms[i] = 0;
    tp_model_set_profile(model, forward_ms, train ? backward_ms : NULL);
    ok = tp_bench_latency(model, train ? TP_BENCH_TRAIN : TP_BENCH_INFER, batch, 0, runs, NULL,
                          &latency, error);
    tp_model_set_profile(model, NULL, NULL);
    for (guint i = 0; i < n; i++) {
        forward_ms[i] /= runs + 1; /* the warm-up run was profiled too */
        backward_ms[i] /= runs + 1;
    }
    return ok;
}

/* Times criterion `name` scoring `batch` synthetic samples shaped for the
 * model (one batch), and a forward and backward pass over them. */
static gboolean
time_score(TpModel *model, const TpUnits *units, const char *name, int batch, double *out_score_ms,
           double *out_pass_ms, GError **error)
{
    const TpShape *in = tp_model_get_shape(model, 0);
    int classes = tp_model_get_shape(model, tp_model_get_logits(model))->dim[0];
    g_autoptr(GKeyFile) keyfile = g_key_file_new();
    g_autoptr(TpDataset) dataset = NULL;
    g_autoptr(TpLoader) loader = NULL;
    g_autoptr(TpCriterion) criterion = NULL;
    const TpPlugin *plugin;
    TpLoaderConfig config = {.batch_size = batch};

    g_key_file_set_string(keyfile, "dataset", "plugin", "synthetic");
    g_key_file_set_integer(keyfile, "dataset", "classes", classes);
    g_key_file_set_integer(keyfile, "dataset", "samples", (batch + classes - 1) / classes);
    g_key_file_set_integer(keyfile, "dataset", "channels", in->dim[0]);
    g_key_file_set_integer(keyfile, "dataset", "height", in->dim[1]);
    g_key_file_set_integer(keyfile, "dataset", "width", in->dim[2]);
    plugin = tp_registry_lookup(tp_registry_get_default(), TP_PLUGIN_KIND_CRITERION, name, error);
    if (plugin == NULL || !(criterion = tp_criterion_new(plugin->info, NULL, error)))
        return FALSE;
    if (!(dataset = tp_dataset_new_from_keyfile(keyfile, "dataset", "--score", TP_SPLIT_TRAIN,
                                                error)) ||
        !(loader = tp_loader_new(dataset, &config, error))) {
        g_prefix_error(error, "--score needs synthetic samples shaped like the model input: ");
        return FALSE;
    }
    return tp_bench_score(model, criterion, units, loader, MIN(runs, 10), out_score_ms,
                          out_pass_ms, error);
}

/* Everything measured at one batch size. */
typedef struct {
    TpLatency latency;
    double *ms;                        /* runs */
    double *forward_ms, *backward_ms;  /* per node, with --layers */
    double *score_ms, *pass_ms;        /* per criterion, with --score */
} Result;

static gboolean
measure(TpModel *model, const TpUnits *units, char **criteria, int batch, Result *result,
        GError **error)
{
    guint n = tp_model_get_n_nodes(model);
    guint n_criteria = criteria != NULL ? g_strv_length(criteria) : 0;

    result->ms = g_new(double, runs);
    if (!tp_bench_latency(model, train ? TP_BENCH_TRAIN : TP_BENCH_INFER, batch, warmup, runs,
                          result->ms, &result->latency, error))
        return FALSE;
    if (layers) {
        result->forward_ms = g_new(double, n);
        result->backward_ms = g_new(double, n);
        if (!time_layers(model, batch, result->forward_ms, result->backward_ms, error))
            return FALSE;
    }
    result->score_ms = g_new(double, n_criteria);
    result->pass_ms = g_new(double, n_criteria);
    for (guint c = 0; c < n_criteria; c++) {
        if (!time_score(model, units, criteria[c], batch, &result->score_ms[c],
                        &result->pass_ms[c], error))
            return FALSE;
    }
    return TRUE;
}

static void
result_clear(Result *result)
{
    g_free(result->ms);
    g_free(result->forward_ms);
    g_free(result->backward_ms);
    g_free(result->score_ms);
    g_free(result->pass_ms);
}

/* GFLOP/s of `macs` multiply-adds per image, `passes` times over, at batch images in ms. */
static double
gflops(guint64 macs, double passes, int batch, double ms)
{
    return ms > 0 ? 2.0 * passes * (double)macs * batch / (ms * 1e6) : 0;
}

static void
print_text(TpModel *model, char **criteria, const Result *result)
{
    const TpLatency *l = &result->latency;

    printf("%8d %12.3f %12.3f %14.1f\n", l->batch, l->p50_ms, l->p90_ms, l->images_per_s);
    if (result->forward_ms != NULL) {
        printf("    %-24s %-22s %10s %11s %11s %9s\n", "layer", "op", "M MACs", "fwd (ms)",
               train ? "bwd (ms)" : "", "GFLOP/s");
        for (guint i = 0; i < tp_model_get_n_nodes(model); i++) {
            const TpNode *node = tp_model_get_node(model, i);
            TpCount count;
            tp_model_count_node(model, i, &count);
            printf("    %-24s %-22s %10.2f %11.3f ", node->name, tp_op_type_to_string(node->op),
                   count.macs / 1e6, result->forward_ms[i]);
            if (train)
                printf("%11.3f ", result->backward_ms[i]);
            else
                printf("%11s ", "");
            printf("%9.1f\n", gflops(count.macs, train ? 3 : 1, l->batch,
                                     result->forward_ms[i] + (train ? result->backward_ms[i] : 0)));
        }
    }
    for (guint c = 0; criteria != NULL && criteria[c] != NULL; c++)
        printf("    score with %-12s %10.3f ms = %.2fx a forward+backward pass (%.3f ms)\n",
               criteria[c], result->score_ms[c], result->score_ms[c] / result->pass_ms[c],
               result->pass_ms[c]);
}

static void
print_json(GString *out, TpModel *model, char **criteria, const Result *result)
{
    const TpLatency *l = &result->latency;

    g_string_append_printf(out,
                           "    {\"batch\": %d, \"runs\": %d, \"p50_ms\": %.4f, \"p90_ms\": %.4f, "
                           "\"images_per_s\": %.2f,\n     \"ms\": [",
                           l->batch, l->runs, l->p50_ms, l->p90_ms, l->images_per_s);
    for (int r = 0; r < l->runs; r++)
        g_string_append_printf(out, "%s%.4f", r > 0 ? ", " : "", result->ms[r]);
    g_string_append(out, "]");
    if (result->forward_ms != NULL) {
        g_string_append(out, ",\n     \"layers\": [");
        for (guint i = 0; i < tp_model_get_n_nodes(model); i++) {
            const TpNode *node = tp_model_get_node(model, i);
            TpCount count;
            tp_model_count_node(model, i, &count);
            g_string_append_printf(out, "%s\n       {\"name\": ", i > 0 ? "," : "");
            tp_cli_json_string(out, node->name);
            g_string_append_printf(out,
                                   ", \"op\": \"%s\", \"macs\": %" G_GUINT64_FORMAT
                                   ", \"forward_ms\": %.4f",
                                   tp_op_type_to_string(node->op), count.macs,
                                   result->forward_ms[i]);
            if (train)
                g_string_append_printf(out, ", \"backward_ms\": %.4f", result->backward_ms[i]);
            g_string_append(out, "}");
        }
        g_string_append(out, "]");
    }
    if (criteria != NULL) {
        g_string_append(out, ",\n     \"scores\": [");
        for (guint c = 0; criteria[c] != NULL; c++) {
            g_string_append(out, c > 0 ? ", {\"criterion\": " : "{\"criterion\": ");
            tp_cli_json_string(out, criteria[c]);
            g_string_append_printf(out, ", \"score_ms\": %.4f, \"pass_ms\": %.4f}",
                                   result->score_ms[c], result->pass_ms[c]);
        }
        g_string_append(out, "]");
    }
    g_string_append(out, "}");
}

/* Peak resident set of this process so far, in KiB (Linux reports KiB). */
static long
peak_rss_kib(void)
{
    struct rusage usage;

    return getrusage(RUSAGE_SELF, &usage) == 0 ? usage.ru_maxrss : 0;
}

static int
run(int argc, char **argv)
{
    g_autoptr(GKeyFile) keyfile = g_key_file_new();
    g_autoptr(TpBackend) backend = NULL;
    g_autoptr(TpModel) model = NULL;
    g_autoptr(TpUnits) units = NULL;
    g_autoptr(GString) out = g_string_new(NULL);
    g_auto(GStrv) sizes = NULL;
    g_auto(GStrv) criteria = NULL;
    g_autofree int *batch = NULL;
    GError *error = NULL;
    TpCount count;

    if (!tp_cli_parse(&tp_cmd_bench, &argc, &argv))
        return 2;
    if (argc != 2 || runs < 1 || warmup < 1) {
        tp_cli_error("bench: give one MODEL.onnx, --runs >= 1 and --warmup >= 1 (see 'taskprune "
                     "help bench')");
        return 2;
    }
    sizes = g_strsplit(batches, ",", -1);
    batch = g_new(int, g_strv_length(sizes));
    for (int i = 0; sizes[i] != NULL; i++) {
        guint64 value;
        if (!g_ascii_string_to_unsigned(g_strstrip(sizes[i]), 10, 1, 65536, &value, NULL)) {
            tp_cli_error("bench: --batch-size: '%s' is not a batch size from 1 to 65536", sizes[i]);
            return 2;
        }
        batch[i] = (int)value;
    }
    if (score_list != NULL) {
        criteria = g_strsplit(score_list, ",", -1);
        for (int i = 0; criteria[i] != NULL; i++)
            g_strstrip(criteria[i]);
    }
    if (!tp_cli_options_apply(keyfile, &error))
        return tp_cli_fail(error);
    backend = tp_cli_open_backend(keyfile, "the command line", &error);
    if (backend == NULL || !(model = tp_onnx_load(backend, argv[1], &error)) ||
        !tp_normalization_apply_keys(model, keyfile, "model", "the command line", &error))
        return tp_cli_fail(error);
    if (criteria != NULL && !(units = tp_units_new(model, TRUE, &error)))
        return tp_cli_fail(error);
    tp_model_count(model, &count);

    if (tp_cli_options.json) {
        g_string_append(out, "{\"model\": ");
        tp_cli_json_string(out, argv[1]);
        g_string_append_printf(out,
                               ", \"backend\": \"%s\", \"task\": \"%s\", \"params\": %" G_GUINT64_FORMAT
                               ", \"macs\": %" G_GUINT64_FORMAT ",\n  \"batches\": [\n",
                               backend->info->name, train ? "train" : "infer", count.params,
                               count.macs);
    } else {
        printf("%s on %s: %" G_GUINT64_FORMAT " parameters, %.2f M MACs per image; %s\n", argv[1],
               backend->info->name, count.params, count.macs / 1e6,
               train ? "training steps (forward, loss, backward, SGD update)" : "inference");
        printf("%8s %12s %12s %14s\n", "batch", "p50 (ms)", "p90 (ms)", "images/s");
    }
    for (int i = 0; sizes[i] != NULL; i++) {
        Result result = {0};
        gboolean ok = measure(model, units, criteria, batch[i], &result, &error);

        if (ok && tp_cli_options.json) {
            print_json(out, model, criteria, &result);
            g_string_append(out, sizes[i + 1] != NULL ? ",\n" : "\n");
        } else if (ok) {
            print_text(model, criteria, &result);
        }
        result_clear(&result);
        if (!ok)
            return tp_cli_fail(error);
    }
    if (tp_cli_options.json) {
        g_string_append_printf(out, "  ],\n  \"peak_rss_kib\": %ld}\n", peak_rss_kib());
        fputs(out->str, stdout);
    } else {
        printf("peak RSS %.1f MiB\n", peak_rss_kib() / 1024.0);
    }
    return 0;
}

const TpCommand tp_cmd_bench = {
    /* .name = */ "bench",
    /* .summary = */ "Measure a model's inference or training speed",
    /* .parameters = */ "MODEL.onnx",
    /* .description = */
    "Times inference forward passes (or, with --training, training steps) of seeded random images\n"
    "after warm-up runs, and prints the median and 90th-percentile time and the throughput for\n"
    "each batch size, then the process's peak resident memory. Inference runs each Conv fused\n"
    "with the BatchNormalization and Relu that alone read its output. --layers adds the time of\n"
    "each layer (a fused op's in its Conv's row) and its GFLOP/s (a training step counts 3\n"
    "passes: forward, data and weight gradients); --score adds the time each criterion takes to\n"
    "score one batch.\n\n"
    "Examples:\n"
    "  taskprune bench footwear.onnx --batch-size 1 --runs 200\n"
    "  taskprune bench base.onnx --training --batch-size 64 --layers\n"
    "  taskprune bench base.onnx --batch-size 64 --score lrp,taylor --json",
    /* .run = */ run,
    /* .options = */ options,
};
