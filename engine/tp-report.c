/* tp-report.c — the reports of a finished pipeline run (contract in
 * tp-pipeline-private.h): the JSON report written with json-glib (the rows
 * and result in the schema of tp-rows.h, plus the classes, settings, layers,
 * channels per step, confusion matrices and heatmaps its page draws), the CSV
 * of the rows, the SVG plot of validation accuracy against parameters
 * removed, and the page (tp-report-html.h), drawn from the JSON alone.
 */
#include "config.h"

#include "tp-pipeline-private.h"
#include "tp-plot.h"
#include "tp-report-data.h"
#include "tp-report-html.h"
#include "tp-rows.h"
#include "tp-settings.h"

/* Heatmaps on the report's page: this many validation images. */
#define REPORT_HEATMAPS 4

static void
add_string(JsonBuilder *b, const char *name, const char *value)
{
    json_builder_set_member_name(b, name);
    json_builder_add_string_value(b, value);
}

/* Channels are recorded for every row, the same spaces each time. */
static gboolean
have_channels(const TpPipeline *p)
{
    if (p->channels->len != p->rows->len || p->rows->len == 0)
        return FALSE;
    for (guint i = 0; i < p->channels->len; i++)
        if (((GArray *)g_ptr_array_index(p->channels, i))->len !=
            ((GArray *)g_ptr_array_index(p->channels, 0))->len)
            return FALSE;
    return TRUE;
}

static JsonNode *
build_json(TpPipelineRun *r)
{
    TpPipeline *p = r->p;
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_auto(GStrv) keys = g_key_file_get_keys(p->settings, TP_SETTINGS_GROUP, NULL, NULL);
    const char *const *names = r->train->meta.class_names;
    const gboolean channels = have_channels(p);
    g_autoptr(GError) local = NULL;
    JsonNode *heatmaps;

    json_builder_begin_object(b);
    add_string(b, "pipeline", p->source);
    add_string(b, "task", p->task_name);
    add_string(b, "criterion", p->criterion_name);
    json_builder_set_member_name(b, "classes");
    json_builder_begin_array(b);
    for (int i = 0; i < r->n_classes; i++)
        json_builder_add_int_value(b, r->classes[i]);
    json_builder_end_array(b);
    json_builder_set_member_name(b, "class_names");
    json_builder_begin_array(b);
    for (int i = 0; i < r->n_classes; i++) {
        g_autofree char *index = g_strdup_printf("%d", r->classes[i]);
        json_builder_add_string_value(b, names ? names[r->classes[i]] : index);
    }
    json_builder_end_array(b);

    if (channels) {
        /* The spaces keep their names and order through surgery (no layer
         * goes to zero), so step 0's counts are the original ones. */
        GArray *first = g_ptr_array_index(p->channels, 0);
        g_autoptr(TpUnits) units =
            tp_units_new(r->accepted, tp_params_get_boolean(p->prune, "linear"), NULL);
        json_builder_set_member_name(b, "layers");
        json_builder_begin_array(b);
        for (guint s = 0; units != NULL && s < first->len && s < tp_units_get_n_spaces(units);
             s++) {
            json_builder_begin_object(b);
            add_string(b, "name", tp_units_get_space(units, s)->name);
            json_builder_set_member_name(b, "units");
            json_builder_add_int_value(b, g_array_index(first, int, s));
            json_builder_end_object(b);
        }
        json_builder_end_array(b);
    }
    json_builder_set_member_name(b, "steps");
    json_builder_begin_array(b);
    for (guint i = 0; i < p->rows->len; i++) {
        json_builder_begin_object(b);
        tp_rows_json(b, &g_array_index(p->rows, TpPipelineRow, i));
        if (channels) {
            GArray *c = g_ptr_array_index(p->channels, i);
            json_builder_set_member_name(b, "channels");
            json_builder_begin_array(b);
            for (guint s = 0; s < c->len; s++)
                json_builder_add_int_value(b, g_array_index(c, int, s));
            json_builder_end_array(b);
        }
        json_builder_end_object(b);
    }
    json_builder_end_array(b);

    json_builder_set_member_name(b, "confusion");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "base");
    tp_report_data_confusion(b, r->base_test);
    json_builder_set_member_name(b, "specialist");
    tp_report_data_confusion(b, r->result_test);
    json_builder_end_object(b);

    heatmaps = tp_report_data_heatmaps(r->base, r->head, r->accepted, r->val, REPORT_HEATMAPS,
                                       &local);
    if (heatmaps != NULL) {
        json_builder_set_member_name(b, "heatmaps");
        json_builder_add_value(b, heatmaps);
    } else {
        g_debug("%s: no heatmaps in the report: %s", p->source, local->message);
    }

    json_builder_set_member_name(b, "settings");
    json_builder_begin_object(b);
    for (int i = 0; keys != NULL && keys[i] != NULL; i++) {
        g_autofree char *v = g_key_file_get_value(p->settings, TP_SETTINGS_GROUP, keys[i], NULL);
        add_string(b, keys[i], v ? v : "");
    }
    json_builder_end_object(b);

    json_builder_set_member_name(b, "result");
    json_builder_begin_object(b);
    tp_rows_result_json(b, &p->result);
    add_string(b, "backend", r->backend->info->name);
    add_string(b, "model", p->model_path);
    json_builder_end_object(b);
    json_builder_end_object(b);
    return json_builder_get_root(b);
}

gboolean
tp_pipeline_write_reports(TpPipelineRun *r, GError **error)
{
    TpPipeline *p = r->p;
    const TpPipelineResult *res = &p->result;
    g_autoptr(JsonNode) root = build_json(r);
    g_autoptr(JsonGenerator) gen = json_generator_new();
    g_autoptr(GString) csv = g_string_new(NULL);
    g_autofree double *x = g_new(double, MAX(p->rows->len, 1));
    g_autofree double *y = g_new(double, MAX(p->rows->len, 1));
    g_autofree char *title = NULL, *json = NULL;
    int n = 0, chosen = -1;

    tp_rows_csv_header(csv);
    for (guint i = 0; i < p->rows->len; i++) {
        const TpPipelineRow *row = &g_array_index(p->rows, TpPipelineRow, i);
        tp_rows_csv(csv, row);
        if (row->step == res->step)
            chosen = n;
        x[n] = 100 * row->params_removed;
        y[n++] = 100 * row->accuracy;
    }
    json_generator_set_root(gen, root);
    json_generator_set_pretty(gen, TRUE);
    json = json_generator_to_data(gen, NULL);
    title = g_strdup_printf("%s: validation accuracy against parameters removed", p->task_name);
    TpPlotSeries series = {p->criterion_name, n, x, y};
    TpPlotGuides guides = {.baseline = 100 * res->baseline_accuracy,
                           .tolerance = res->tolerance,
                           .marked = &chosen,
                           .min_y_span = 10};
    return g_file_set_contents(p->report_path, json, -1, error) &&
           g_file_set_contents(p->csv_path, csv->str, (gssize)csv->len, error) &&
           tp_plot_write_svg(p->plot_path, title, "parameters removed (%)",
                             "validation accuracy (%)", &series, 1, &guides, error) &&
           tp_report_html_write(p->report_path, p->html_path, error);
}
