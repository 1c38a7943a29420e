/* tp-report-html.h — the page a person opens after a run: one self-contained
 * HTML file (no network, no script; every figure inline SVG) drawn only from
 * a report JSON, so `taskprune report` rebuilds exactly what the run wrote.
 *
 * A run's report (NAME.report.json, docs/pipeline-keys.md "[output]") gives
 * the summary (classes, accuracy of the base model and of the specialist on
 * the validation and test splits, parameters, MACs, file size, latency), the
 * accuracy curves against parameters and MACs removed with the baseline,
 * tolerance band and chosen step, the channels kept per layer per step, the
 * confusion matrices of the base model (on the task's classes) and of the
 * specialist, relevance heatmaps of the same validation images before and
 * after, and the settings. Sections whose data a report lacks say so. A
 * sweep's comparison (an object with "runs", each a run's report) gives one
 * page comparing its runs: a summary row and curves per task.
 */
#ifndef TP_REPORT_HTML_H
#define TP_REPORT_HTML_H

#include <glib.h>

G_BEGIN_DECLS

#define TP_REPORT_ERROR (tp_report_error_quark())
GQuark tp_report_error_quark(void);

typedef enum {
    TP_REPORT_ERROR_INVALID, /* not a report: unparsable, or a member missing or mistyped */
} TpReportError;

/* The page for the report JSON json (len bytes, -1: NUL-terminated), a
 * run's or a sweep's (owned string). source names the JSON in messages,
 * which also name the first missing or mistyped member ("result.accuracy"). */
char *tp_report_html_render(const char *json, gssize len, const char *source, GError **error);

/* Reads the report JSON at json_path and writes its page to html_path
 * (atomically: a temporary file renamed into place). */
gboolean tp_report_html_write(const char *json_path, const char *html_path, GError **error);

G_END_DECLS

#endif /* TP_REPORT_HTML_H */
