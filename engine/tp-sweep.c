/* tp-sweep.c — the [sweep] group: the same pipeline over several criteria
 * and target tasks, and one comparison of the runs (tp-sweep.h). */
#include "config.h"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "tp-plot.h"
#include "tp-sweep.h"

typedef struct {
    char *task, *criterion;
    GArray *rows; /* TpPipelineRow */
    TpPipelineResult result;
    char *model;
} Done;

static void
done_clear(gpointer data)
{
    Done *d = data;
    g_free(d->task);
    g_free(d->criterion);
    g_free(d->model);
    g_clear_pointer(&d->rows, g_array_unref);
}

/* The largest share of parameters (and MACs) removed by a step whose
 * validation accuracy is within `points` of the specialized baseline. */
static void
within(const Done *d, double points, double *out_params, double *out_macs)
{
    *out_params = *out_macs = 0;
    for (guint i = 0; i < d->rows->len; i++) {
        const TpPipelineRow *row = &g_array_index(d->rows, TpPipelineRow, i);
        if (row->accuracy >= d->result.baseline_accuracy - points / 100.0) {
            *out_params = MAX(*out_params, row->params_removed);
            *out_macs = MAX(*out_macs, row->macs_removed);
        }
    }
}

static gboolean
write_comparison(const char *folder, GArray *runs, char **tasks, GError **error)
{
    g_autofree char *json_path = g_build_filename(folder, "comparison.json", NULL);
    g_autofree char *csv_path = g_build_filename(folder, "comparison.csv", NULL);
    g_autoptr(GString) json = g_string_new("{\n  \"runs\": [");
    g_autoptr(GString) csv = g_string_new(
        "task,criterion,steps,baseline_accuracy,base_accuracy,test_accuracy,params_removed,"
        "macs_removed,params_removed_within_1pt,macs_removed_within_1pt,base_latency_ms,"
        "latency_ms,model\n");

    for (guint i = 0; i < runs->len; i++) {
        const Done *d = &g_array_index(runs, Done, i);
        const TpPipelineResult *res = &d->result;
        double p1, m1;
        double pr = 1.0 - (double)res->params / MAX(res->base_params, 1);
        double mr = 1.0 - (double)res->macs / MAX(res->base_macs, 1);
        within(d, 1.0, &p1, &m1);
        g_string_append_printf(
            json,
            "%s\n    {\"task\": \"%s\", \"criterion\": \"%s\", \"steps\": %u, "
            "\"baseline_accuracy\": %.6f, \"base_accuracy\": %.6f, \"test_accuracy\": %.6f, "
            "\"params_removed\": %.6f, \"macs_removed\": %.6f, \"params_removed_within_1pt\": "
            "%.6f, \"macs_removed_within_1pt\": %.6f, \"base_latency_ms\": %.4f, "
            "\"latency_ms\": %.4f, \"model\": \"%s\"}",
            i ? "," : "", d->task, d->criterion, res->step, res->baseline_accuracy,
            res->base_accuracy, res->test_accuracy, pr, mr, p1, m1, res->base_latency_ms,
            res->latency_ms, d->model);
        g_string_append_printf(csv, "%s,%s,%u,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.4f,%.4f,%s\n",
                               d->task, d->criterion, res->step, res->baseline_accuracy,
                               res->base_accuracy, res->test_accuracy, pr, mr, p1, m1,
                               res->base_latency_ms, res->latency_ms, d->model);
    }
    g_string_append(json, "\n  ]\n}\n");
    if (!g_file_set_contents(json_path, json->str, (gssize)json->len, error) ||
        !g_file_set_contents(csv_path, csv->str, (gssize)csv->len, error))
        return FALSE;

    for (int t = 0; tasks[t] != NULL; t++) {
        g_autoptr(GArray) series = g_array_new(FALSE, TRUE, sizeof(TpPlotSeries));
        g_autoptr(GPtrArray) owned = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GArray) marked = g_array_new(FALSE, TRUE, sizeof(int));
        TpPlotGuides guides = {.baseline = NAN, .min_y_span = 10};
        for (guint i = 0; i < runs->len; i++) {
            const Done *d = &g_array_index(runs, Done, i);
            if (!g_str_equal(d->task, tasks[t]))
                continue;
            double *x = g_new(double, d->rows->len), *y = g_new(double, d->rows->len);
            g_ptr_array_add(owned, x);
            g_ptr_array_add(owned, y);
            int chosen = -1;
            for (guint j = 0; j < d->rows->len; j++) {
                const TpPipelineRow *row = &g_array_index(d->rows, TpPipelineRow, j);
                x[j] = 100 * row->params_removed;
                y[j] = 100 * row->accuracy;
                if (row->step == d->result.step)
                    chosen = (int)j;
            }
            g_array_append_val(marked, chosen);
            guides.baseline = 100 * d->result.baseline_accuracy; /* one base model per task */
            TpPlotSeries s = {d->criterion, (int)d->rows->len, x, y};
            g_array_append_val(series, s);
        }
        g_autofree char *file = g_strconcat(tasks[t], ".svg", NULL);
        g_autofree char *path = g_build_filename(folder, file, NULL);
        g_autofree char *title = g_strdup_printf("%s: validation accuracy against parameters "
                                                 "removed",
                                                 tasks[t]);
        guides.marked = (const int *)marked->data;
        if (!tp_plot_write_svg(path, title, "parameters removed (%)", "validation accuracy (%)",
                               (const TpPlotSeries *)series->data, (int)series->len, &guides,
                               error))
            return FALSE;
    }
    return TRUE;
}

/* The keyfile of one run: [sweep] dropped, [task] classes and [criterion]
 * set, the run's outputs in folder. */
static GKeyFile *
run_keyfile(GKeyFile *keyfile, const char *folder, const char *task, const char *classes,
            const char *criterion)
{
    GKeyFile *run = g_key_file_new();
    g_autofree char *data = g_key_file_to_data(keyfile, NULL, NULL);
    g_autofree char *own = g_strconcat("criterion ", criterion, NULL);
    g_autofree char *stem = g_strdup_printf("%s/%s-%s", folder, task, criterion);
    g_autofree char *model = g_strconcat(stem, ".onnx", NULL);
    g_auto(GStrv) groups = NULL;
    g_autofree char *samples = NULL;

    g_key_file_load_from_data(run, data, (gsize)-1, G_KEY_FILE_NONE, NULL);
    samples = g_key_file_get_string(run, "criterion", "samples", NULL);
    g_key_file_remove_group(run, "sweep", NULL);
    g_key_file_remove_group(run, "criterion", NULL);
    g_key_file_set_string(run, "criterion", "plugin", criterion);
    if (samples != NULL)
        g_key_file_set_string(run, "criterion", "samples", samples);
    groups = g_key_file_get_groups(run, NULL);
    for (int i = 0; groups[i] != NULL; i++) {
        if (!g_str_has_prefix(groups[i], "criterion "))
            continue;
        if (g_str_equal(groups[i], own)) {
            g_auto(GStrv) keys = g_key_file_get_keys(run, own, NULL, NULL);
            for (int k = 0; keys[k] != NULL; k++) {
                g_autofree char *v = g_key_file_get_value(run, own, keys[k], NULL);
                g_key_file_set_value(run, "criterion", keys[k], v);
            }
        }
        g_key_file_remove_group(run, groups[i], NULL);
    }
    g_key_file_set_string(run, "task", "classes", classes);
    g_key_file_set_string(run, "task", "name", task);
    g_key_file_set_string(run, "output", "model", model);
    g_key_file_remove_key(run, "output", "report", NULL);
    g_key_file_remove_key(run, "output", "plot", NULL);
    g_key_file_remove_key(run, "output", "checkpoint", NULL);
    return run;
}

/* Each [criterion NAME] group must name a criterion of the sweep (a typo
 * would otherwise be ignored). */
static gboolean
check_criterion_groups(GKeyFile *keyfile, const char *source, char **criteria, GError **error)
{
    g_auto(GStrv) groups = g_key_file_get_groups(keyfile, NULL);

    for (int i = 0; groups[i] != NULL; i++) {
        if (!g_str_has_prefix(groups[i], "criterion "))
            continue;
        if (!g_strv_contains((const char *const *)criteria, groups[i] + strlen("criterion "))) {
            g_autofree char *listed = g_strjoinv(", ", criteria);
            g_set_error(error, TP_PIPELINE_ERROR, TP_PIPELINE_ERROR_CONFIG,
                        "%s: group [%s]: '%s' is not a criterion of the sweep (%s)", source,
                        groups[i], groups[i] + strlen("criterion "), listed);
            return FALSE;
        }
    }
    return TRUE;
}

gboolean
tp_sweep_run(GKeyFile *keyfile, const char *source, gboolean resume,
             void (*label)(const char *run, gpointer data), TpPipelineProgressFunc progress,
             gpointer data, GError **error)
{
    g_autofree char *criteria_text = g_key_file_get_string(keyfile, "sweep", "criteria", NULL);
    g_autofree char *tasks_text = g_key_file_get_string(keyfile, "sweep", "tasks", NULL);
    g_autofree char *folder = g_key_file_get_string(keyfile, "sweep", "folder", NULL);
    g_autofree char *default_criterion =
        g_key_file_get_string(keyfile, "criterion", "plugin", NULL);
    g_autofree char *default_classes = g_key_file_get_string(keyfile, "task", "classes", NULL);
    g_autoptr(GArray) runs = g_array_new(FALSE, TRUE, sizeof(Done));
    g_auto(GStrv) criteria = NULL, task_specs = NULL, keys = NULL;
    g_autoptr(GPtrArray) task_names = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) task_classes = g_ptr_array_new_with_free_func(g_free);
    static const char *const valid[] = {"criteria", "tasks", "folder", NULL};

    g_array_set_clear_func(runs, done_clear);
    keys = g_key_file_get_keys(keyfile, "sweep", NULL, NULL);
    for (int i = 0; keys != NULL && keys[i] != NULL; i++)
        if (!g_strv_contains(valid, keys[i])) {
            g_set_error(error, TP_PIPELINE_ERROR, TP_PIPELINE_ERROR_CONFIG,
                        "%s: [sweep] unknown key '%s' (valid keys: criteria, tasks, folder)",
                        source, keys[i]);
            return FALSE;
        }
    if (folder == NULL) {
        g_set_error(error, TP_PIPELINE_ERROR, TP_PIPELINE_ERROR_CONFIG,
                    "%s: [sweep] folder: missing (where the runs and the comparison go)", source);
        return FALSE;
    }
    criteria = g_strsplit(criteria_text ? criteria_text : (default_criterion ?: ""), ",", -1);
    if (tasks_text != NULL) {
        task_specs = g_strsplit(tasks_text, ";", -1);
        for (int i = 0; task_specs[i] != NULL; i++) {
            char *eq = strchr(task_specs[i], '=');
            if (eq == NULL || eq == task_specs[i] || eq[1] == '\0') {
                g_set_error(error, TP_PIPELINE_ERROR, TP_PIPELINE_ERROR_CONFIG,
                            "%s: [sweep] tasks: '%s' is not NAME=CLASSES (e.g. "
                            "footwear=Sandal,Sneaker,Ankle boot)",
                            source, task_specs[i]);
                return FALSE;
            }
            g_ptr_array_add(task_names, g_strstrip(g_strndup(task_specs[i], eq - task_specs[i])));
            g_ptr_array_add(task_classes, g_strdup(eq + 1));
        }
    } else {
        g_ptr_array_add(task_names, g_strdup("task"));
        g_ptr_array_add(task_classes, g_strdup(default_classes ? default_classes : ""));
    }
    g_ptr_array_add(task_names, NULL);
    for (int c = 0; criteria[c] != NULL; c++)
        g_strstrip(criteria[c]);
    if (!check_criterion_groups(keyfile, source, criteria, error))
        return FALSE;

    /* Every run's keys are checked before the first run starts. */
    g_autoptr(GPtrArray) pipelines = g_ptr_array_new_with_free_func((GDestroyNotify)tp_pipeline_free);
    for (guint t = 0; t + 1 < task_names->len; t++) {
        for (int c = 0; criteria[c] != NULL; c++) {
            const char *task = g_ptr_array_index(task_names, t);
            g_autoptr(GKeyFile) kf = run_keyfile(keyfile, folder, task,
                                                 g_ptr_array_index(task_classes, t), criteria[c]);
            TpPipeline *pipeline = tp_pipeline_new(kf, source, error);
            if (pipeline == NULL) {
                g_prefix_error(error, "%s / %s: ", task, criteria[c]);
                return FALSE;
            }
            g_ptr_array_add(pipelines, pipeline);
        }
    }
    if (g_mkdir_with_parents(folder, 0755) != 0) {
        g_set_error(error, TP_PIPELINE_ERROR, TP_PIPELINE_ERROR_FAILED, "cannot create %s", folder);
        return FALSE;
    }

    for (guint t = 0, i = 0; t + 1 < task_names->len; t++) {
        for (int c = 0; criteria[c] != NULL; c++) {
            const char *task = g_ptr_array_index(task_names, t);
            const char *criterion = criteria[c];
            g_autofree char *name = g_strdup_printf("%s / %s", task, criterion);
            TpPipeline *pipeline = g_ptr_array_index(pipelines, i++);
            g_autofree char *state = NULL;

            if (label != NULL)
                label(name, data);
            state = g_strdup_printf("%s/%s-%s.onnx.checkpoint/state.ini", folder, task, criterion);
            if (!tp_pipeline_run(pipeline, resume && g_file_test(state, G_FILE_TEST_EXISTS),
                                 progress, data, error)) {
                g_prefix_error(error, "%s: ", name);
                return FALSE;
            }
            Done done = {g_strdup(task), g_strdup(criterion),
                         g_array_copy((GArray *)tp_pipeline_get_rows(pipeline)),
                         *tp_pipeline_get_result(pipeline), NULL};
            done.model = g_strdup(done.result.model_path);
            done.result.model_path = done.result.report_path = NULL;
            done.result.csv_path = done.result.plot_path = NULL;
            g_array_append_val(runs, done);
        }
    }
    return write_comparison(folder, runs, (char **)task_names->pdata, error);
}
