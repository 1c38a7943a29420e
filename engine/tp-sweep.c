/* tp-sweep.c — the [sweep] group: the same pipeline over several criteria
 * and target tasks, and one comparison of the runs (tp-sweep.h).
 *
 * Each run ends by writing FOLDER/TASK-CRITERION.run.ini (its rows and
 * result); the comparison is made from those files, so runs made by other
 * processes (a job of several ranks, or a Slurm job array with
 * --sweep-index) merge the same way as runs made here. */
#include "config.h"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "tp-comm.h"
#include "tp-plot.h"
#include "tp-report-html.h"
#include "tp-rows.h"
#include "tp-sweep.h"

typedef struct {
    char *task, *criterion;
    GArray *rows; /* TpPipelineRow */
    TpPipelineResult result;
    char *model;
    char *stop_reason; /* owned when loaded; result.stop_reason points here */
} Done;

static void
done_clear(gpointer data)
{
    Done *d = data;
    g_free(d->task);
    g_free(d->criterion);
    g_free(d->model);
    g_free(d->stop_reason);
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

/* FOLDER/comparison.json: a row per run (its figures, and its steps and
 * result in the schema of a run's report, so that the sweep's page can be
 * drawn from it alone); comparison.csv: the figures; comparison.html: the
 * page; TASK.svg: each task's curves. */
static gboolean
write_comparison(const char *folder, GArray *runs, char **tasks, GError **error)
{
    g_autofree char *json_path = g_build_filename(folder, "comparison.json", NULL);
    g_autofree char *csv_path = g_build_filename(folder, "comparison.csv", NULL);
    g_autofree char *html_path = g_build_filename(folder, "comparison.html", NULL);
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_autoptr(JsonGenerator) gen = json_generator_new();
    g_autoptr(JsonNode) root = NULL;
    g_autoptr(GString) csv = g_string_new(
        "task,criterion,steps,baseline_accuracy,base_accuracy,test_accuracy,params_removed,"
        "macs_removed,params_removed_within_1pt,macs_removed_within_1pt,base_latency_ms,"
        "latency_ms,model\n");
    g_autofree char *json = NULL;

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "runs");
    json_builder_begin_array(b);
    for (guint i = 0; i < runs->len; i++) {
        const Done *d = &g_array_index(runs, Done, i);
        const TpPipelineResult *res = &d->result;
        double p1, m1;
        double pr = 1.0 - (double)res->params / MAX(res->base_params, 1);
        double mr = 1.0 - (double)res->macs / MAX(res->base_macs, 1);
        within(d, 1.0, &p1, &m1);
        const struct {
            const char *name;
            double value;
        } figures[] = {{"params_removed", pr},
                       {"macs_removed", mr},
                       {"params_removed_within_1pt", p1},
                       {"macs_removed_within_1pt", m1}};

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "task");
        json_builder_add_string_value(b, d->task);
        json_builder_set_member_name(b, "criterion");
        json_builder_add_string_value(b, d->criterion);
        json_builder_set_member_name(b, "model");
        json_builder_add_string_value(b, d->model);
        for (gsize f = 0; f < G_N_ELEMENTS(figures); f++) {
            json_builder_set_member_name(b, figures[f].name);
            json_builder_add_double_value(b, figures[f].value);
        }
        json_builder_set_member_name(b, "steps");
        json_builder_begin_array(b);
        for (guint j = 0; j < d->rows->len; j++) {
            json_builder_begin_object(b);
            tp_rows_json(b, &g_array_index(d->rows, TpPipelineRow, j));
            json_builder_end_object(b);
        }
        json_builder_end_array(b);
        json_builder_set_member_name(b, "result");
        json_builder_begin_object(b);
        tp_rows_result_json(b, res);
        json_builder_end_object(b);
        json_builder_end_object(b);
        g_string_append_printf(csv, "%s,%s,%u,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.4f,%.4f,%s\n",
                               d->task, d->criterion, res->step, res->baseline_accuracy,
                               res->base_accuracy, res->test_accuracy, pr, mr, p1, m1,
                               res->base_latency_ms, res->latency_ms, d->model);
    }
    json_builder_end_array(b);
    json_builder_end_object(b);
    root = json_builder_get_root(b);
    json_generator_set_root(gen, root);
    json_generator_set_pretty(gen, TRUE);
    json = json_generator_to_data(gen, NULL);
    if (!g_file_set_contents(json_path, json, -1, error) ||
        !g_file_set_contents(csv_path, csv->str, (gssize)csv->len, error) ||
        !tp_report_html_write(json_path, html_path, error))
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

/* ---------------------------------------------------------------- run files */

static char *
run_file(const char *folder, const char *task, const char *criterion)
{
    g_autofree char *name = g_strdup_printf("%s-%s.run.ini", task, criterion);
    return g_build_filename(folder, name, NULL);
}

/* Writes one run's rows and result (to a temporary name, then renamed). */
static gboolean
save_run(const char *folder, const Done *d, GError **error)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autofree char *path = run_file(folder, d->task, d->criterion);

    g_key_file_set_string(kf, "run", "task", d->task);
    g_key_file_set_string(kf, "run", "criterion", d->criterion);
    g_key_file_set_string(kf, "run", "model", d->model);
    tp_rows_result_save(kf, "result", &d->result);
    for (guint i = 0; i < d->rows->len; i++) {
        g_autofree char *group = g_strdup_printf("row-%u", i);
        tp_rows_save(kf, group, &g_array_index(d->rows, TpPipelineRow, i));
    }
    return g_key_file_save_to_file(kf, path, error);
}

/* Reads the run file of (task, criterion) into *out; names the file and
 * the command that makes it when it is missing. */
static gboolean
load_run(const char *folder, const char *task, const char *criterion, guint index, Done *out,
         GError **error)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autofree char *path = run_file(folder, task, criterion);
    g_autoptr(GError) local = NULL;

    if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &local)) {
        g_set_error(error, TP_PIPELINE_ERROR, TP_PIPELINE_ERROR_FAILED,
                    "run %u (%s / %s) has no result: %s: %s (run it with --sweep-index %u)",
                    index, task, criterion, path, local->message, index);
        return FALSE;
    }
    memset(out, 0, sizeof(*out));
    out->task = g_strdup(task);
    out->criterion = g_strdup(criterion);
    out->model = g_key_file_get_string(kf, "run", "model", NULL);
    out->rows = g_array_new(FALSE, TRUE, sizeof(TpPipelineRow));
    if (!tp_rows_result_load(kf, "result", &out->result, &out->stop_reason, error)) {
        g_prefix_error(error, "%s: ", path);
        done_clear(out);
        return FALSE;
    }
    out->result.stop_reason = out->stop_reason;
    for (guint i = 0;; i++) {
        g_autofree char *group = g_strdup_printf("row-%u", i);
        TpPipelineRow row;
        if (!g_key_file_has_group(kf, group))
            break;
        if (!tp_rows_load(kf, group, &row, error)) {
            g_prefix_error(error, "%s: ", path);
            done_clear(out);
            return FALSE;
        }
        g_array_append_val(out->rows, row);
    }
    if (out->model == NULL || out->rows->len == 0) {
        g_set_error(error, TP_PIPELINE_ERROR, TP_PIPELINE_ERROR_FAILED,
                    "%s: not a run's result (no model or no rows)", path);
        done_clear(out);
        return FALSE;
    }
    return TRUE;
}

/* ---------------------------------------------------------------- the sweep */

typedef struct {
    char *folder;
    char **criteria;
    GPtrArray *task_names; /* NULL-terminated */
    GPtrArray *task_classes;
} Sweep;

static void
sweep_clear(Sweep *sw)
{
    g_free(sw->folder);
    g_strfreev(sw->criteria);
    g_clear_pointer(&sw->task_names, g_ptr_array_unref);
    g_clear_pointer(&sw->task_classes, g_ptr_array_unref);
}

static guint
sweep_count(const Sweep *sw)
{
    return (sw->task_names->len - 1) * g_strv_length(sw->criteria);
}

/* Run `index`: tasks outer, criteria inner. */
static void
sweep_nth(const Sweep *sw, guint index, const char **out_task, const char **out_classes,
          const char **out_criterion)
{
    guint n = g_strv_length(sw->criteria);

    *out_task = g_ptr_array_index(sw->task_names, index / n);
    *out_classes = g_ptr_array_index(sw->task_classes, index / n);
    *out_criterion = sw->criteria[index % n];
}

static gboolean
sweep_parse(GKeyFile *keyfile, const char *source, Sweep *sw, GError **error)
{
    g_autofree char *criteria_text = g_key_file_get_string(keyfile, "sweep", "criteria", NULL);
    g_autofree char *tasks_text = g_key_file_get_string(keyfile, "sweep", "tasks", NULL);
    g_autofree char *default_criterion =
        g_key_file_get_string(keyfile, "criterion", "plugin", NULL);
    g_autofree char *default_classes = g_key_file_get_string(keyfile, "task", "classes", NULL);
    g_auto(GStrv) task_specs = NULL, keys = NULL;
    static const char *const valid[] = {"criteria", "tasks", "folder", NULL};

    sw->folder = g_key_file_get_string(keyfile, "sweep", "folder", NULL);
    sw->task_names = g_ptr_array_new_with_free_func(g_free);
    sw->task_classes = g_ptr_array_new_with_free_func(g_free);
    keys = g_key_file_get_keys(keyfile, "sweep", NULL, NULL);
    for (int i = 0; keys != NULL && keys[i] != NULL; i++)
        if (!g_strv_contains(valid, keys[i])) {
            g_set_error(error, TP_PIPELINE_ERROR, TP_PIPELINE_ERROR_CONFIG,
                        "%s: [sweep] unknown key '%s' (valid keys: criteria, tasks, folder)",
                        source, keys[i]);
            return FALSE;
        }
    if (sw->folder == NULL) {
        g_set_error(error, TP_PIPELINE_ERROR, TP_PIPELINE_ERROR_CONFIG,
                    "%s: [sweep] folder: missing (where the runs and the comparison go)", source);
        return FALSE;
    }
    sw->criteria = g_strsplit(criteria_text ? criteria_text : (default_criterion ?: ""), ",", -1);
    for (int c = 0; sw->criteria[c] != NULL; c++) {
        g_strstrip(sw->criteria[c]);
        for (int d = 0; d < c; d++)
            if (g_str_equal(sw->criteria[d], sw->criteria[c])) {
                g_set_error(error, TP_PIPELINE_ERROR, TP_PIPELINE_ERROR_CONFIG,
                            "%s: [sweep] criteria: '%s' is listed twice (its runs would write "
                            "the same files)",
                            source, sw->criteria[c]);
                return FALSE;
            }
    }
    if (!check_criterion_groups(keyfile, source, sw->criteria, error))
        return FALSE;
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
            char *name = g_strstrip(g_strndup(task_specs[i], eq - task_specs[i]));
            g_ptr_array_add(sw->task_names, name);
            g_ptr_array_add(sw->task_classes, g_strdup(eq + 1));
            if (*name == '\0' || strchr(name, '/') != NULL) {
                g_set_error(error, TP_PIPELINE_ERROR, TP_PIPELINE_ERROR_CONFIG,
                            "%s: [sweep] tasks: '%s' cannot name files in %s (no '/', not "
                            "empty)",
                            source, name, sw->folder);
                return FALSE;
            }
            for (guint d = 0; d + 1 < sw->task_names->len; d++)
                if (g_str_equal(g_ptr_array_index(sw->task_names, d), name)) {
                    g_set_error(error, TP_PIPELINE_ERROR, TP_PIPELINE_ERROR_CONFIG,
                                "%s: [sweep] tasks: '%s' is named twice (its runs would write "
                                "the same files)",
                                source, name);
                    return FALSE;
                }
        }
    } else {
        g_ptr_array_add(sw->task_names, g_strdup("task"));
        g_ptr_array_add(sw->task_classes, g_strdup(default_classes ? default_classes : ""));
    }
    g_ptr_array_add(sw->task_names, NULL);
    return TRUE;
}

/* Checks every run's keys, so that a bad key fails before the first run
 * starts (and before the sweep's folder is made). */
static gboolean
check_runs(GKeyFile *keyfile, const char *source, const Sweep *sw, GError **error)
{
    for (guint i = 0; i < sweep_count(sw); i++) {
        const char *task, *classes, *criterion;
        sweep_nth(sw, i, &task, &classes, &criterion);
        g_autoptr(GKeyFile) kf = run_keyfile(keyfile, sw->folder, task, classes, criterion);
        g_autoptr(TpPipeline) pipeline = tp_pipeline_new(kf, source, error);

        if (pipeline == NULL) {
            g_prefix_error(error, "%s / %s: ", task, criterion);
            return FALSE;
        }
    }
    return TRUE;
}

/* Runs run `index` of the sweep in this process alone and writes its run file. */
static gboolean
run_one(GKeyFile *keyfile, const char *source, const Sweep *sw, guint index, gboolean resume,
        void (*label)(const char *run, gpointer data), TpPipelineProgressFunc progress,
        gpointer data, GError **error)
{
    const char *task, *classes, *criterion;
    sweep_nth(sw, index, &task, &classes, &criterion);
    g_autoptr(GKeyFile) kf = run_keyfile(keyfile, sw->folder, task, classes, criterion);
    g_autofree char *name = g_strdup_printf("%s / %s", task, criterion);
    g_autoptr(TpPipeline) pipeline = tp_pipeline_new(kf, source, error);
    g_autofree char *state = NULL;
    TpComm *comm = tp_comm_get_default();
    gboolean ok;

    if (pipeline == NULL)
        return FALSE;
    if (label != NULL)
        label(name, data);
    state = g_strdup_printf("%s/%s-%s.onnx.checkpoint/state.ini", sw->folder, task, criterion);
    tp_comm_set_default(NULL); /* a run is one process's: whole data, its own files */
    ok = tp_pipeline_run(pipeline, resume && g_file_test(state, G_FILE_TEST_EXISTS), progress,
                         data, error);
    tp_comm_set_default(comm);
    if (!ok) {
        g_prefix_error(error, "%s: ", name);
        return FALSE;
    }
    Done done = {(char *)task, (char *)criterion, (GArray *)tp_pipeline_get_rows(pipeline),
                 *tp_pipeline_get_result(pipeline), (char *)tp_pipeline_get_result(pipeline)->model_path,
                 NULL};
    return save_run(sw->folder, &done, error);
}

/* The comparison of every run, from their run files. */
static gboolean
merge(const Sweep *sw, GError **error)
{
    g_autoptr(GArray) runs = g_array_new(FALSE, TRUE, sizeof(Done));

    g_array_set_clear_func(runs, done_clear);
    for (guint i = 0; i < sweep_count(sw); i++) {
        const char *task, *classes, *criterion;
        Done done;
        sweep_nth(sw, i, &task, &classes, &criterion);
        if (!load_run(sw->folder, task, criterion, i, &done, error))
            return FALSE;
        g_array_append_val(runs, done);
    }
    return write_comparison(sw->folder, runs, (char **)sw->task_names->pdata, error);
}

gboolean
tp_sweep_run(GKeyFile *keyfile, const char *source, gboolean resume,
             void (*label)(const char *run, gpointer data), TpPipelineProgressFunc progress,
             gpointer data, GError **error)
{
    return tp_sweep_run_index(keyfile, source, resume, -1, label, progress, data, error);
}

gboolean
tp_sweep_run_index(GKeyFile *keyfile, const char *source, gboolean resume, int index,
                   void (*label)(const char *run, gpointer data), TpPipelineProgressFunc progress,
                   gpointer data, GError **error)
{
    Sweep sw = {0};
    TpComm *comm = tp_comm_get_parallel();
    int rank = comm ? comm->rank : 0, size = comm ? comm->size : 1;
    gboolean ok = FALSE;

    if (!sweep_parse(keyfile, source, &sw, error))
        goto out;
    if (index >= 0 && size > 1) {
        g_set_error(error, TP_PIPELINE_ERROR, TP_PIPELINE_ERROR_CONFIG,
                    "%s: --sweep-index runs one run in one process, and this job has %d: start "
                    "it without mpirun (or let the sweep deal its runs out to the processes)",
                    source, size);
        goto out;
    }
    if (index >= 0 && (guint)index >= sweep_count(&sw)) {
        g_set_error(error, TP_PIPELINE_ERROR, TP_PIPELINE_ERROR_CONFIG,
                    "%s: --sweep-index %d: the sweep has runs 0 to %u", source, index,
                    sweep_count(&sw) - 1);
        goto out;
    }
    if (!check_runs(keyfile, source, &sw, error))
        goto out;
    if (g_mkdir_with_parents(sw.folder, 0755) != 0) {
        g_set_error(error, TP_PIPELINE_ERROR, TP_PIPELINE_ERROR_FAILED, "cannot create %s",
                    sw.folder);
        goto out;
    }
    if (index >= 0) {
        ok = run_one(keyfile, source, &sw, (guint)index, resume, label, progress, data, error);
        goto out;
    }
    /* Whole runs round-robin over the ranks; rank 0 merges once all are done. */
    for (guint i = (guint)rank; i < sweep_count(&sw); i += (guint)size)
        if (!run_one(keyfile, source, &sw, i, resume, label, progress, data, error))
            goto out;
    if (comm != NULL && !tp_comm_barrier(comm, error))
        goto out;
    ok = rank != 0 || merge(&sw, error);
out:
    sweep_clear(&sw);
    return ok;
}

gboolean
tp_sweep_check(GKeyFile *keyfile, const char *source, GError **error)
{
    Sweep sw = {0};
    gboolean ok = sweep_parse(keyfile, source, &sw, error) && check_runs(keyfile, source, &sw, error);

    sweep_clear(&sw);
    return ok;
}

gboolean
tp_sweep_merge(GKeyFile *keyfile, const char *source, GError **error)
{
    Sweep sw = {0};
    gboolean ok = sweep_parse(keyfile, source, &sw, error) &&
                  (tp_comm_rank() != 0 || merge(&sw, error)); /* rank 0 writes */

    sweep_clear(&sw);
    return ok;
}
