/* tp-report.c — the reports of a finished pipeline run: the JSON report
 * (settings, one row per step, the result), the CSV of the rows and the SVG
 * plot of validation accuracy against parameters removed (contract in
 * tp-pipeline-private.h).
 */
#include "config.h"

#include "tp-pipeline-private.h"
#include "tp-plot.h"

gboolean
tp_pipeline_write_reports(TpPipelineRun *r, GError **error)
{
    TpPipeline *p = r->p;
    const TpPipelineResult *res = &p->result;
    g_autoptr(GString) json = g_string_new("{\n");
    g_autoptr(GString) csv = g_string_new(
        "step,units,params,macs,params_removed,macs_removed,accuracy,loss,score_s,prune_s,"
        "finetune_s,eval_s,accepted\n");
    g_autofree double *x = g_new(double, MAX(p->rows->len, 1));
    g_autofree double *y = g_new(double, MAX(p->rows->len, 1));
    g_autofree char *title = NULL;
    int n = 0, chosen = -1;

    g_string_append_printf(json,
                           "  \"pipeline\": \"%s\",\n  \"task\": \"%s\",\n  \"criterion\": "
                           "\"%s\",\n  \"classes\": [",
                           p->source, p->task_name, p->criterion_name);
    for (int i = 0; i < r->n_classes; i++)
        g_string_append_printf(json, "%s%d", i ? ", " : "", r->classes[i]);
    g_string_append(json, "],\n  \"steps\": [");
    for (guint i = 0; i < p->rows->len; i++) {
        const TpPipelineRow *row = &g_array_index(p->rows, TpPipelineRow, i);
        g_string_append_printf(
            json,
            "%s\n    {\"step\": %u, \"units\": %" G_GSIZE_FORMAT ", \"params\": %" G_GUINT64_FORMAT
            ", \"macs\": %" G_GUINT64_FORMAT ", \"params_removed\": %.6f, \"macs_removed\": %.6f, "
            "\"accuracy\": %.6f, \"loss\": %.6f, \"seconds\": {\"score\": %.3f, \"prune\": %.3f, "
            "\"finetune\": %.3f, \"eval\": %.3f}, \"accepted\": %s}",
            i ? "," : "", row->step, row->units, row->params, row->macs, row->params_removed,
            row->macs_removed, row->accuracy, row->loss, row->score_s, row->prune_s,
            row->finetune_s, row->eval_s, row->accepted ? "true" : "false");
        g_string_append_printf(csv,
                               "%u,%" G_GSIZE_FORMAT ",%" G_GUINT64_FORMAT ",%" G_GUINT64_FORMAT
                               ",%.6f,%.6f,%.6f,%.6f,%.3f,%.3f,%.3f,%.3f,%d\n",
                               row->step, row->units, row->params, row->macs, row->params_removed,
                               row->macs_removed, row->accuracy, row->loss, row->score_s,
                               row->prune_s, row->finetune_s, row->eval_s, row->accepted);
        if (row->step == res->step)
            chosen = n;
        x[n] = 100 * row->params_removed;
        y[n++] = 100 * row->accuracy;
    }
    g_string_append_printf(
        json,
        "\n  ],\n  \"result\": {\"step\": %u, \"baseline_accuracy\": %.6f, "
        "\"base_accuracy\": %.6f, \"test_accuracy\": %.6f, \"base_params\": %" G_GUINT64_FORMAT
        ", \"params\": %" G_GUINT64_FORMAT ", \"base_macs\": %" G_GUINT64_FORMAT
        ", \"macs\": %" G_GUINT64_FORMAT ", \"base_bytes\": %" G_GSIZE_FORMAT
        ", \"bytes\": %" G_GSIZE_FORMAT ", \"base_latency_ms\": %.4f, \"latency_ms\": %.4f, "
        "\"latency_within_noise\": %s, \"accuracy\": %.6f, \"stop_reason\": \"%s\", "
        "\"backend\": \"%s\", \"model\": \"%s\"}\n}\n",
        res->step, res->baseline_accuracy, res->base_accuracy, res->test_accuracy, res->base_params,
        res->params, res->base_macs, res->macs, res->base_bytes, res->bytes, res->base_latency_ms,
        res->latency_ms, res->latency_within_noise ? "true" : "false", res->accuracy,
        res->stop_reason, r->backend->info->name, p->model_path);
    title = g_strdup_printf("%s: validation accuracy against parameters removed", p->task_name);
    TpPlotSeries series = {p->criterion_name, n, x, y};
    TpPlotGuides guides = {.baseline = 100 * res->baseline_accuracy,
                           .tolerance = tp_params_get_double(p->prune, "tolerance"),
                           .marked = &chosen,
                           .min_y_span = 10};
    return g_file_set_contents(p->report_path, json->str, (gssize)json->len, error) &&
           g_file_set_contents(p->csv_path, csv->str, (gssize)csv->len, error) &&
           tp_plot_write_svg(p->plot_path, title, "parameters removed (%)",
                             "validation accuracy (%)", &series, 1, &guides, error);
}
