/* tp-pipeline-config.c — a pipeline's keyfile, read and checked into a
 * TpPipeline (contract in tp-pipeline.h; keys in docs/pipeline-keys.md):
 * the parameter tables of the engine's groups, the plugin groups, the
 * output paths and the settings a checkpoint must have been made with.
 */
#include "config.h"

#include <string.h>

#include "tp-pipeline-private.h"
#include "tp-settings.h"

G_DEFINE_QUARK(tp_pipeline_error, tp_pipeline_error)

/* ---------------------------------------------------------------- keys */

static const TpParamSpec pipeline_specs[] = {
    {"plugin-path", TP_PARAM_STRING, "", 0, 0, NULL,
     "folders searched for plugins first, ':'-separated"},
    {NULL},
};

static const TpParamSpec model_specs[] = {
    {"path", TP_PARAM_STRING, "", 0, 0, NULL, "the base model (ONNX), trained on every class"},
    {"mean", TP_PARAM_STRING, "", 0, 0, NULL,
     "the input's per-channel mean, overriding the model's (e.g. 0.485,0.456,0.406)"},
    {"std", TP_PARAM_STRING, "", 0, 0, NULL,
     "the input's per-channel standard deviation, overriding the model's"},
    {NULL},
};

static const TpParamSpec task_specs[] = {
    {"classes", TP_PARAM_STRING, "", 0, 0, NULL,
     "target classes, by index or name, comma-separated, in output order"},
    {"name", TP_PARAM_STRING, "", 0, 0, NULL, "a name for reports (default: the class names)"},
    {"validation-fraction", TP_PARAM_DOUBLE, "0.1", 0.01, 0.9, NULL,
     "share of each class's training images held out for validation"},
    {"seed", TP_PARAM_INT, "0", 0, 9007199254740992.0, NULL,
     "seed of the split, the data order and random draws"},
    {"class-map", TP_PARAM_STRING, "", 0, 0, NULL,
     "the base model's output of each target class, comma-separated, when class names "
     "cannot match them"},
    {NULL},
};

static const TpParamSpec prune_specs[] = {
    {"step", TP_PARAM_DOUBLE, "0.05", 0.001, 1, NULL,
     "units cut per step, as a fraction of the original count"},
    {"goal", TP_PARAM_DOUBLE, "0.9", 0, 1, NULL, "stop once this fraction is removed"},
    {"goal-metric", TP_PARAM_CHOICE, "params", 0, 0, "params|macs|units",
     "what the goal measures (against the base model)"},
    {"tolerance", TP_PARAM_DOUBLE, "1", 0, 100, NULL,
     "accuracy points below the specialized baseline allowed"},
    {"min-units", TP_PARAM_INT, "1", 1, 65536, NULL, "no space goes below this many units"},
    {"normalize", TP_PARAM_CHOICE, "default", 0, 0, "default|none|l1|l2",
     "per-space normalization of scores (default: the criterion's)"},
    {"linear", TP_PARAM_BOOLEAN, "true", 0, 0, NULL, "prune hidden Gemm neurons too"},
    {"max-steps", TP_PARAM_INT, "100", 1, 10000, NULL, "at most this many pruning steps"},
    {NULL},
};

static const TpParamSpec finetune_specs[] = {
    {"epochs", TP_PARAM_DOUBLE, "1", 0, 1000, NULL,
     "fine-tuning after each step, in epochs of the target data (0: none)"},
    {"steps", TP_PARAM_INT, "0", 0, 10000000, NULL, "if > 0: SGD steps instead of epochs"},
    {"lr", TP_PARAM_DOUBLE, "0.01", 0, 10, NULL, "learning rate (constant)"},
    {"momentum", TP_PARAM_DOUBLE, "0.9", 0, 0.999, NULL, "SGD momentum"},
    {"weight-decay", TP_PARAM_DOUBLE, "5e-4", 0, 1, NULL, "L2 weight decay"},
    {"batch-size", TP_PARAM_INT, "64", 1, 65536, NULL, "samples per SGD step"},
    {"warmup-epochs", TP_PARAM_DOUBLE, "0", 0, 1000, NULL,
     "fine-tuning after head surgery, before pruning"},
    {"sync-batch-norm", TP_PARAM_BOOLEAN, "false", 0, 0, NULL,
     "with several ranks: BatchNorm normalizes with the whole batch's statistics"},
    {NULL},
};

static const TpParamSpec output_specs[] = {
    {"model", TP_PARAM_STRING, "", 0, 0, NULL, "the pruned model (ONNX)"},
    {"report", TP_PARAM_STRING, "", 0, 0, NULL,
     "JSON report (default: MODEL.report.json; CSV beside it)"},
    {"plot", TP_PARAM_STRING, "", 0, 0, NULL, "SVG plot (default: MODEL.svg)"},
    {"checkpoint", TP_PARAM_STRING, "", 0, 0, NULL,
     "checkpoint folder (default: MODEL.checkpoint)"},
    {"latency-runs", TP_PARAM_INT, "30", 1, 100000, NULL,
     "timed batch-1 forward passes of each model, base and pruned alternating"},
    {NULL},
};

const TpParamSpec *
tp_pipeline_get_param_specs(const char *group)
{
    static const struct {
        const char *group;
        const TpParamSpec *specs;
    } tables[] = {{"pipeline", pipeline_specs}, {"model", model_specs},
                  {"task", task_specs},         {"prune", prune_specs},
                  {"finetune", finetune_specs}, {"output", output_specs}};

    for (gsize i = 0; i < G_N_ELEMENTS(tables); i++)
        if (g_str_equal(tables[i].group, group))
            return tables[i].specs;
    return NULL;
}

/* Keys of [criterion] the engine reads (the rest are the plugin's). */
static const char *const criterion_own_keys[] = {"plugin", "samples", NULL};

static const char *const known_groups[] = {"pipeline",  "model", "dataset",  "task",
                                           "criterion", "prune", "finetune", "backend",
                                           "output",    "sweep", NULL};

gboolean
tp_pipeline_config_error(GError **error, const char *source, const char *group, const char *key,
                         const char *format, ...)
{
    va_list args;
    g_autofree char *message = NULL;

    va_start(args, format);
    message = g_strdup_vprintf(format, args);
    va_end(args);
    g_set_error(error, TP_PIPELINE_ERROR, TP_PIPELINE_ERROR_CONFIG, "%s: [%s] %s: %s", source,
                group, key, message);
    return FALSE;
}

/* Parses a group against specs into a new TpParams. */
static TpParams *
load_group(GKeyFile *keyfile, const char *source, const char *group, const TpParamSpec *specs,
           GError **error)
{
    g_autoptr(TpParams) params = tp_params_new(specs);
    g_autoptr(GError) local = NULL;

    if (!tp_params_load(params, keyfile, group, source, NULL, &local)) {
        g_set_error(error, TP_PIPELINE_ERROR, TP_PIPELINE_ERROR_CONFIG, "%s", local->message);
        return NULL;
    }
    return g_steal_pointer(&params);
}

TpRegistry *
tp_pipeline_get_registry(const TpPipeline *p)
{
    return p->registry != NULL ? p->registry : tp_registry_get_default();
}

/* With [pipeline] plugin-path: a registry of its own that searches those
 * folders first (tp-registry.h). A folder that does not exist is an error. */
static gboolean
open_registry(TpPipeline *p, GKeyFile *keyfile, GError **error)
{
    g_autoptr(TpParams) params = load_group(keyfile, p->source, "pipeline", pipeline_specs, error);
    const char *path;
    g_auto(GStrv) dirs = NULL;

    if (params == NULL)
        return FALSE;
    path = tp_params_get_string(params, "plugin-path");
    if (!*path)
        return TRUE;
    dirs = g_strsplit(path, G_SEARCHPATH_SEPARATOR_S, -1);
    for (int i = 0; dirs[i] != NULL; i++)
        if (*dirs[i] && !g_file_test(dirs[i], G_FILE_TEST_IS_DIR))
            return tp_pipeline_config_error(error, p->source, "pipeline", "plugin-path",
                                            "'%s' is not a folder", dirs[i]);
    p->registry = tp_registry_new();
    tp_registry_scan_default(p->registry, path);
    return TRUE;
}

static char *
with_suffix(const char *path, const char *suffix)
{
    return g_strconcat(path, suffix, NULL);
}

static char *
or_default(const char *value, const char *model, const char *suffix)
{
    return *value ? g_strdup(value) : with_suffix(model, suffix);
}

/* tp_pipeline_new(); without writes, [output] model may be missing (a
 * pipeline for tp_pipeline_plan() alone). */
static TpPipeline *
pipeline_new(GKeyFile *keyfile, const char *source, gboolean writes, GError **error)
{
    g_autoptr(TpPipeline) p = g_new0(TpPipeline, 1);
    g_auto(GStrv) groups = g_key_file_get_groups(keyfile, NULL);
    g_autofree char *data = NULL, *samples = NULL;
    const TpPlugin *plugin;

    g_return_val_if_fail(keyfile != NULL && source != NULL, NULL);

    p->source = g_strdup(source);
    p->rows = g_array_new(FALSE, TRUE, sizeof(TpPipelineRow));
    p->channels = g_ptr_array_new_with_free_func((GDestroyNotify)g_array_unref);
    p->keyfile = g_key_file_new();
    data = g_key_file_to_data(keyfile, NULL, NULL);
    g_key_file_load_from_data(p->keyfile, data, (gsize)-1, G_KEY_FILE_NONE, NULL);

    for (int i = 0; groups[i] != NULL; i++) {
        /* [criterion NAME] groups hold a sweep's per-criterion keys
         * (tp-sweep.c checks them); a run of its own has none. */
        if (g_str_has_prefix(groups[i], "criterion ") &&
            !g_strv_contains((const char *const *)groups, "sweep")) {
            g_set_error(error, TP_PIPELINE_ERROR, TP_PIPELINE_ERROR_CONFIG,
                        "%s: group [%s]: only a [sweep] reads [criterion NAME] groups; put the "
                        "keys in [criterion]",
                        source, groups[i]);
            return NULL;
        }
        if (!g_strv_contains(known_groups, groups[i]) &&
            !g_str_has_prefix(groups[i], "criterion ")) {
            g_autofree char *valid = g_strjoinv("], [", (char **)known_groups);
            g_set_error(error, TP_PIPELINE_ERROR, TP_PIPELINE_ERROR_CONFIG,
                        "%s: unknown group [%s] (valid: [%s])", source, groups[i], valid);
            return NULL;
        }
    }
    if (!open_registry(p, keyfile, error) ||
        !(p->model = load_group(keyfile, source, "model", model_specs, error)) ||
        !(p->task = load_group(keyfile, source, "task", task_specs, error)) ||
        !(p->prune = load_group(keyfile, source, "prune", prune_specs, error)) ||
        !(p->finetune = load_group(keyfile, source, "finetune", finetune_specs, error)) ||
        !(p->output = load_group(keyfile, source, "output", output_specs, error)))
        return NULL;
    if (!*tp_params_get_string(p->model, "path")) {
        tp_pipeline_config_error(error, source, "model", "path", "missing (the base model, ONNX)");
        return NULL;
    }
    if (!*tp_params_get_string(p->task, "classes")) {
        tp_pipeline_config_error(error, source, "task", "classes",
                                 "missing (e.g. classes = 5,7,9 or Sandal,Sneaker,Ankle boot)");
        return NULL;
    }
    {
        g_auto(GStrv) words = g_strsplit(tp_params_get_string(p->task, "classes"), ",", -1);
        if (g_strv_length(words) < 2) {
            tp_pipeline_config_error(
                error, source, "task", "classes",
                "'%s' is one class: a one-class task is always right; give two or more",
                tp_params_get_string(p->task, "classes"));
            return NULL;
        }
    }
    if (!g_key_file_has_key(keyfile, "dataset", "plugin", NULL)) {
        tp_pipeline_config_error(error, source, "dataset", "plugin", "missing (e.g. plugin = idx)");
        return NULL;
    }
    if (writes && !*tp_params_get_string(p->output, "model")) {
        tp_pipeline_config_error(error, source, "output", "model",
                                 "missing (where the pruned model goes)");
        return NULL;
    }

    /* The criterion plugin and its keys. */
    p->criterion_name = g_key_file_get_string(keyfile, "criterion", "plugin", NULL);
    if (p->criterion_name == NULL) {
        tp_pipeline_config_error(
            error, source, "criterion", "plugin",
            "missing (magnitude, taylor, lrp, random or another criterion plugin)");
        return NULL;
    }
    g_autoptr(GError) local = NULL;
    plugin = tp_registry_lookup(tp_pipeline_get_registry(p), TP_PLUGIN_KIND_CRITERION,
                                p->criterion_name, &local);
    if (plugin == NULL) {
        tp_pipeline_config_error(error, source, "criterion", "plugin", "%s", local->message);
        return NULL;
    }
    p->criterion_params = tp_params_new(plugin->info->params);
    if (!tp_params_load(p->criterion_params, keyfile, "criterion", source, criterion_own_keys,
                        &local)) {
        g_set_error(error, TP_PIPELINE_ERROR, TP_PIPELINE_ERROR_CONFIG, "%s", local->message);
        return NULL;
    }
    samples = g_key_file_get_string(keyfile, "criterion", "samples", NULL);
    if (samples != NULL && !g_str_equal(samples, "all")) {
        guint64 n;
        if (!g_ascii_string_to_unsigned(samples, 10, 1, 1000000, &n, NULL)) {
            tp_pipeline_config_error(
                error, source, "criterion", "samples",
                "'%s' is neither 'all' nor a count per class from 1 to 1000000", samples);
            return NULL;
        }
        p->samples_per_class = (int)n;
    }

    if (*tp_params_get_string(p->output, "model")) {
        p->model_path = g_strdup(tp_params_get_string(p->output, "model"));
        p->report_path =
            or_default(tp_params_get_string(p->output, "report"), p->model_path, ".report.json");
        if (g_str_has_suffix(p->report_path, ".json")) {
            g_autofree char *stem = g_strndup(p->report_path, strlen(p->report_path) - 5);
            p->csv_path = with_suffix(stem, ".csv");
            p->html_path = with_suffix(stem, ".html");
        } else {
            p->csv_path = with_suffix(p->report_path, ".csv");
            p->html_path = with_suffix(p->report_path, ".html");
        }
        p->plot_path = or_default(tp_params_get_string(p->output, "plot"), p->model_path, ".svg");
        p->checkpoint =
            or_default(tp_params_get_string(p->output, "checkpoint"), p->model_path, ".checkpoint");
    }
    p->task_name = g_strdup(tp_params_get_string(p->task, "name"));

    /* What a checkpoint must have been made with: everything that decides
     * the models (not [output], [backend] or [pipeline], nor where the loop
     * stops: a resume may go further). */
    p->settings = g_key_file_new();
    tp_settings_add_params(p->settings, "model", model_specs, p->model);
    tp_settings_add_params(p->settings, "task", task_specs, p->task);
    tp_settings_add_params(p->settings, "prune", prune_specs, p->prune);
    tp_settings_add_params(p->settings, "finetune", finetune_specs, p->finetune);
    tp_settings_add_group(p->settings, keyfile, "dataset");
    g_key_file_set_string(p->settings, TP_SETTINGS_GROUP, "criterion.plugin", p->criterion_name);
    g_key_file_set_integer(p->settings, TP_SETTINGS_GROUP, "criterion.samples",
                           p->samples_per_class);
    tp_settings_add_params(p->settings, "criterion", plugin->info->params, p->criterion_params);
    g_key_file_remove_key(p->settings, TP_SETTINGS_GROUP, "prune.goal", NULL);
    g_key_file_remove_key(p->settings, TP_SETTINGS_GROUP, "prune.goal-metric", NULL);
    g_key_file_remove_key(p->settings, TP_SETTINGS_GROUP, "prune.max-steps", NULL);
    return g_steal_pointer(&p);
}

TpPipeline *
tp_pipeline_new(GKeyFile *keyfile, const char *source, GError **error)
{
    return pipeline_new(keyfile, source, TRUE, error);
}

TpPipeline *
tp_pipeline_new_dry_run(GKeyFile *keyfile, const char *source, GError **error)
{
    return pipeline_new(keyfile, source, FALSE, error);
}

void
tp_pipeline_free(TpPipeline *p)
{
    if (p == NULL)
        return;
    g_clear_pointer(&p->keyfile, g_key_file_unref);
    g_free(p->source);
    tp_params_free(p->model);
    tp_params_free(p->task);
    tp_params_free(p->prune);
    tp_params_free(p->finetune);
    tp_params_free(p->output);
    tp_params_free(p->criterion_params);
    g_free(p->criterion_name);
    g_free(p->task_name);
    g_free(p->model_path);
    g_free(p->report_path);
    g_free(p->csv_path);
    g_free(p->html_path);
    g_free(p->plot_path);
    g_free(p->checkpoint);
    g_clear_pointer(&p->settings, g_key_file_unref);
    g_free(p->stop_reason);
    g_array_unref(p->rows);
    g_ptr_array_unref(p->channels);
    tp_registry_free(p->registry);
    g_free(p);
}

const GArray *
tp_pipeline_get_rows(const TpPipeline *p)
{
    return p->rows;
}

const TpPipelineResult *
tp_pipeline_get_result(const TpPipeline *p)
{
    return &p->result;
}

const char *
tp_pipeline_get_criterion_name(const TpPipeline *p)
{
    return p->criterion_name;
}

const char *
tp_pipeline_get_task_name(const TpPipeline *p)
{
    return p->task_name;
}
