/* tp-rows.h — one schema for what a run records: a step's row
 * (TpPipelineRow) and the result (TpPipelineResult), with the same member
 * names and order in the report JSON, the CSV, a checkpoint's state.ini and
 * a sweep's run files. Internal to the engine. */
#ifndef TP_ROWS_H
#define TP_ROWS_H

#include <json-glib/json-glib.h>

#include "tp-pipeline.h"

G_BEGIN_DECLS

/* Adds row's members (step, units, params, macs, params_removed,
 * macs_removed, accuracy, loss, score_s, prune_s, finetune_s, eval_s,
 * accepted) to the object builder b is in. */
void tp_rows_json(JsonBuilder *b, const TpPipelineRow *row);

/* The CSV header line (with its newline), and one row. */
void tp_rows_csv_header(GString *csv);
void tp_rows_csv(GString *csv, const TpPipelineRow *row);

/* Saves row as the keys of group, and reads it back; a missing or mistyped
 * key fails naming the group and key. */
void tp_rows_save(GKeyFile *kf, const char *group, const TpPipelineRow *row);
gboolean tp_rows_load(GKeyFile *kf, const char *group, TpPipelineRow *out, GError **error);

/* The same for the result's numbers and stop reason (not its paths). */
void tp_rows_result_json(JsonBuilder *b, const TpPipelineResult *res);
void tp_rows_result_save(GKeyFile *kf, const char *group, const TpPipelineResult *res);
/* stop_reason is read into *out_stop (owned); res->stop_reason is left NULL. */
gboolean tp_rows_result_load(GKeyFile *kf, const char *group, TpPipelineResult *res,
                             char **out_stop, GError **error);

G_END_DECLS

#endif /* TP_ROWS_H */
