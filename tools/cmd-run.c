/* cmd-run.c — `taskprune run PIPELINE.ini`: the specialization pipeline (or,
 * with a [sweep] group, one per criterion and task) with progress on the
 * terminal and a before/after table at the end. */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "tp-cli-options.h"
#include "tp-cli.h"
#include "tp-comm.h"
#include "tp-keyfile.h"
#include "tp-pipeline.h"
#include "tp-sweep.h"

static gboolean merge;
static int sweep_index = -1;

static const GOptionEntry options[] = {
    TP_CLI_OPTION_RESUME("Continue from the pipeline's checkpoint folder"),
    TP_CLI_OPTION_SET,
    TP_CLI_OPTION_BACKEND,
    TP_CLI_OPTION_DEVICE,
    TP_CLI_OPTION_MAX_TENSOR_BYTES,
    TP_CLI_OPTION_THREADS,
    TP_CLI_OPTION_QUIET,
    TP_CLI_OPTION_JSON,
    {"sweep-index", 0, 0, G_OPTION_ARG_INT, &sweep_index,
     "Run only run N of the [sweep] (a Slurm job array's $SLURM_ARRAY_TASK_ID)", "N"},
    {"merge", 0, 0, G_OPTION_ARG_NONE, &merge,
     "Write the [sweep]'s comparison from runs made with --sweep-index", NULL},
    {NULL},
};

typedef struct {
    gboolean tty;
    guint last_step;
} Reporter;

static void
on_progress(const TpPipelineProgress *p, gpointer data)
{
    Reporter *r = data;
    char eta[32] = "?";

    if (tp_cli_options.quiet || tp_cli_options.json)
        return;
    if (p->eta_s >= 0)
        g_snprintf(eta, sizeof(eta), "%d:%02d", (int)p->eta_s / 60, (int)p->eta_s % 60);
    if (r->tty) {
        fprintf(stderr, "\r\033[Kstep %u/%u  %-9s  params left %5.1f%%  accuracy %6.2f%%  ETA %s",
                p->step, p->steps_expected, p->phase, 100 * p->params_left, 100 * p->accuracy, eta);
    } else if (g_str_equal(p->phase, "done") || g_str_equal(p->phase, "baseline")) {
        printf("step %u/%u: params left %.1f%%, accuracy %.2f%%, ETA %s\n", p->step,
               p->steps_expected, 100 * p->params_left, 100 * p->accuracy, eta);
        fflush(stdout);
    }
}

static void
on_label(const char *run, gpointer data)
{
    Reporter *r = data;

    if (r->tty)
        fprintf(stderr, "\r\033[K");
    if (!tp_cli_options.quiet && !tp_cli_options.json)
        printf("== %s\n", run);
}

static void
print_summary(const TpPipeline *pipeline)
{
    const TpPipelineResult *res = tp_pipeline_get_result(pipeline);
    g_autofree char *base_size = g_format_size(res->base_bytes);
    g_autofree char *size = g_format_size(res->bytes);
    double ratio = res->base_latency_ms / MAX(res->latency_ms, 1e-9);
    g_autofree char *speed =
        res->latency_within_noise ? g_strdup_printf("%.2fx, within noise", ratio)
        : ratio >= 1              ? g_strdup_printf("%.2fx faster", ratio)
                                  : g_strdup_printf("%.2fx slower", 1 / ratio);

    printf("\n%-22s %18s %18s\n", "", "base model", "specialized");
    printf("%-22s %18d %18d  (%s)\n", "classes", res->base_classes, res->classes,
           tp_pipeline_get_task_name(pipeline));
    printf("%-22s %17.2f%% %17.2f%%  (step %u; step 0: %.2f%%)\n", "accuracy (validation)",
           100 * res->base_accuracy, 100 * res->accuracy, res->step,
           100 * res->baseline_accuracy);
    printf("%-22s %18s %17.2f%%\n", "accuracy (test)", "", 100 * res->test_accuracy);
    printf("%-22s %18" G_GUINT64_FORMAT " %18" G_GUINT64_FORMAT "  (%.1f%% removed)\n",
           "parameters", res->base_params, res->params,
           100.0 * (1.0 - (double)res->params / MAX(res->base_params, 1)));
    printf("%-22s %18" G_GUINT64_FORMAT " %18" G_GUINT64_FORMAT "  (%.1f%% removed)\n",
           "MACs per image", res->base_macs, res->macs,
           100.0 * (1.0 - (double)res->macs / MAX(res->base_macs, 1)));
    printf("%-22s %18s %18s\n", "file size", base_size, size);
    printf("%-22s %15.3f ms %15.3f ms  (%s)\n", "latency (batch 1)", res->base_latency_ms,
           res->latency_ms, speed);
    printf("\nstopped: %s\n", res->stop_reason);
    printf("model %s (step %u)\nreport %s, %s\nplot %s\npage %s\n", res->model_path, res->step,
           res->report_path, res->csv_path, res->plot_path, res->html_path);
}

static void
on_interrupt(int signal_number)
{
    tp_pipeline_interrupt();
}

/* Ctrl-C: the message, and how to continue. */
static int
interrupted(GError *error, const char *resume_command)
{
    tp_cli_error("%s; continue with '%s'", error->message, resume_command);
    g_error_free(error);
    return 130;
}

/* --json: the report the run wrote, as it is. */
static int
print_file(const char *path)
{
    g_autofree char *text = NULL;
    GError *error = NULL;

    if (!g_file_get_contents(path, &text, NULL, &error))
        return tp_cli_fail(error);
    fputs(text, stdout);
    return 0;
}

int
tp_cli_run_pipeline(GKeyFile *keyfile, const char *source, const char *resume_command)
{
    GError *error = NULL;
    Reporter reporter = {isatty(STDERR_FILENO) && tp_comm_rank() == 0, 0};
    gboolean resume = tp_cli_options.resume;

    if ((sweep_index >= 0 || merge) && !g_key_file_has_group(keyfile, "sweep")) {
        tp_cli_error("run: %s has no [sweep] group for --%s", source,
                     merge ? "merge" : "sweep-index");
        return 2;
    }
    if (g_key_file_has_group(keyfile, "sweep")) {
        g_autofree char *folder = g_key_file_get_string(keyfile, "sweep", "folder", NULL);

        signal(SIGINT, on_interrupt);
        if (merge) {
            if (!tp_sweep_merge(keyfile, source, &error))
                return tp_cli_fail(error);
        } else if (!tp_sweep_run_index(keyfile, source, resume, sweep_index, on_label,
                                       on_progress, &reporter, &error)) {
            return g_error_matches(error, TP_PIPELINE_ERROR, TP_PIPELINE_ERROR_INTERRUPTED)
                       ? interrupted(error, resume_command)
                       : tp_cli_fail(error);
        }
        if (reporter.tty)
            fprintf(stderr, "\r\033[K");
        if (sweep_index >= 0) {
            printf("sweep run %d done; once every run is, write the comparison with "
                   "'taskprune run --merge %s'\n",
                   sweep_index, source);
            return 0;
        }
        if (tp_cli_options.json) {
            g_autofree char *path = g_build_filename(folder, "comparison.json", NULL);
            return print_file(path);
        }
        printf("sweep done: %s/comparison.html, comparison.json, comparison.csv and a plot per "
               "task\n",
               folder);
        return 0;
    }
    g_autoptr(TpPipeline) pipeline = tp_pipeline_new(keyfile, source, &error);
    if (pipeline == NULL)
        return tp_cli_fail(error);
    signal(SIGINT, on_interrupt);
    if (!tp_pipeline_run(pipeline, resume, on_progress, &reporter, &error)) {
        if (reporter.tty)
            fprintf(stderr, "\r\033[K");
        return g_error_matches(error, TP_PIPELINE_ERROR, TP_PIPELINE_ERROR_INTERRUPTED)
                   ? interrupted(error, resume_command)
                   : tp_cli_fail(error);
    }
    if (reporter.tty)
        fprintf(stderr, "\r\033[K");
    if (tp_cli_options.json)
        return print_file(tp_pipeline_get_result(pipeline)->report_path);
    print_summary(pipeline);
    return 0;
}

static int
run(int argc, char **argv)
{
    g_autoptr(GKeyFile) keyfile = g_key_file_new();
    GError *error = NULL;

    if (!tp_cli_parse(&tp_cmd_run, &argc, &argv))
        return 2;
    if (argc != 2) {
        tp_cli_error("run: give one PIPELINE.ini (see 'taskprune help run')");
        return 2;
    }
    if (!tp_cli_open_comm(&error) || !tp_keyfile_load(keyfile, argv[1], &error) ||
        !tp_cli_options_apply(keyfile, &error))
        return tp_cli_fail(error);
    g_autofree char *quoted = tp_cli_quote(argv[1]);
    g_autofree char *again = g_strdup_printf("taskprune run --resume %s", quoted);
    return tp_cli_run_pipeline(keyfile, argv[1], again);
}

const TpCommand tp_cmd_run = {
    /* .name = */ "run",
    /* .summary = */ "Run a specialization pipeline (or a sweep) from a keyfile",
    /* .parameters = */ "PIPELINE.ini",
    /* .description = */
    "Specializes a base model to a target task: cuts its head to the task's classes, then\n"
    "repeatedly scores every prunable unit with the criterion, removes the lowest, fine-tunes\n"
    "and validates, until the goal is met or accuracy leaves its tolerance. Writes the pruned\n"
    "model, a JSON and CSV report and an SVG plot, and prints a before/after table. A [sweep]\n"
    "group runs the pipeline over several criteria and tasks and writes one comparison;\n"
    "--sweep-index N runs one of its runs (Slurm job arrays) and --merge writes the\n"
    "comparison of runs made so. Under mpirun or srun, training, scoring and evaluation\n"
    "are spread over the processes, and a sweep's runs are dealt out to them\n"
    "(docs/scaling.md). Every key is described in taskprune-pipeline(5) and\n"
    "docs/pipeline-keys.md; --set GROUP.KEY=VALUE overrides one. Ctrl-C stops at a\n"
    "checkpoint and prints the command that continues.\n\n"
    "Example: taskprune run examples/pipelines/footwear-lrp.ini",
    /* .run = */ run,
    /* .options = */ options,
};
