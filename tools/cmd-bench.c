/* cmd-bench.c — `taskprune bench MODEL.onnx`: measured forward latency
 * (median and 90th percentile) and throughput at the batch sizes given. */
#include "config.h"

#include <stdio.h>

#include "tp-bench.h"
#include "tp-cli.h"
#include "tp-onnx.h"

static char *batches = "1,64", *backend_name;
static int runs = 50, threads = -1;

static const GOptionEntry options[] = {
    {"batch", 'b', 0, G_OPTION_ARG_STRING, &batches, "Batch sizes, comma-separated (default 1,64)",
     "LIST"},
    {"runs", 'n', 0, G_OPTION_ARG_INT, &runs, "Timed runs per batch size (default 50)", "N"},
    {"backend", 0, 0, G_OPTION_ARG_STRING, &backend_name, "Backend (default cpu)", "NAME"},
    {"threads", 'j', 0, G_OPTION_ARG_INT, &threads, "Backend threads (0: all cores)", "N"},
    {NULL},
};

static int
run(int argc, char **argv)
{
    g_autoptr(GKeyFile) keyfile = g_key_file_new();
    g_autoptr(TpBackend) backend = NULL;
    g_autoptr(TpModel) model = NULL;
    g_auto(GStrv) sizes = NULL;
    GError *error = NULL;
    TpCount count;

    if (!tp_cli_parse(&tp_cmd_bench, &argc, &argv))
        return 2;
    if (argc != 2 || runs < 1) {
        tp_cli_error("bench: give one MODEL.onnx and --runs >= 1 (see 'taskprune help bench')");
        return 2;
    }
    if (backend_name != NULL)
        g_key_file_set_string(keyfile, "backend", "plugin", backend_name);
    if (threads >= 0)
        g_key_file_set_integer(keyfile, "backend", "threads", threads);
    backend = tp_cli_open_backend(keyfile, "the command line", &error);
    if (backend == NULL || !(model = tp_onnx_load(backend, argv[1], &error)))
        return tp_cli_fail(error);
    tp_model_count(model, &count);
    printf("%s on %s: %" G_GUINT64_FORMAT " parameters, %.2f M MACs per image\n", argv[1],
           backend->info->name, count.params, count.macs / 1e6);
    printf("%8s %12s %12s %14s\n", "batch", "p50 (ms)", "p90 (ms)", "images/s");
    sizes = g_strsplit(batches, ",", -1);
    for (int i = 0; sizes[i] != NULL; i++) {
        guint64 batch;
        TpLatency latency;
        if (!g_ascii_string_to_unsigned(g_strstrip(sizes[i]), 10, 1, 65536, &batch, NULL)) {
            tp_cli_error("bench: --batch: '%s' is not a batch size from 1 to 65536", sizes[i]);
            return 2;
        }
        if (!tp_bench_latency(model, (int)batch, 5, runs, &latency, &error))
            return tp_cli_fail(error);
        printf("%8d %12.3f %12.3f %14.1f\n", latency.batch, latency.p50_ms, latency.p90_ms,
               latency.images_per_s);
    }
    return 0;
}

const TpCommand tp_cmd_bench = {
    /* .name = */ "bench",
    /* .summary = */ "Measure a model's forward latency and throughput",
    /* .parameters = */ "MODEL.onnx",
    /* .description = */
    "Times eval-mode forward passes of random images after warm-up runs and prints the median\n"
    "and 90th-percentile latency and the throughput for each batch size.\n\n"
    "Example: taskprune bench footwear.onnx --batch 1 --runs 200",
    /* .run = */ run,
    /* .options = */ options,
};
