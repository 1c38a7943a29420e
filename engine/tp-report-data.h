/* tp-report-data.h — the members of a run's report JSON that come from the
 * models and the data rather than from the loop's rows: the prunable layers,
 * confusion matrices, and relevance heatmaps of the same validation images
 * before and after specialization (drawn by tp-report-html.c). Internal to
 * the engine. */
#ifndef TP_REPORT_DATA_H
#define TP_REPORT_DATA_H

#include <json-glib/json-glib.h>

#include "tp-loader.h"
#include "tp-prune.h"
#include "tp-train.h"

G_BEGIN_DECLS

/* Adds an array of {"name", "units"}, one per space of units, in order. */
void tp_report_data_layers(JsonBuilder *b, const TpUnits *units);

/* Adds the channels of each space of units, in order (an array of counts). */
void tp_report_data_channels(JsonBuilder *b, const TpUnits *units);

/* Adds e's confusion matrix (rows: true class; columns: prediction). */
void tp_report_data_confusion(JsonBuilder *b, const TpEvaluation *e);

/* The heatmaps object (owned): for up to max_images images of val's first
 * batch (the first of each class, then the next ones), the image before
 * normalization, and the relevance at the input summed over channels of base
 * at base_outputs[label] and of specialist at label. Fails as the loader or
 * LRP fails (tp_lrp_new() for an op without a rule). */
JsonNode *tp_report_data_heatmaps(TpModel *base, const int *base_outputs, TpModel *specialist,
                                  TpLoader *val, int max_images, GError **error);

G_END_DECLS

#endif /* TP_REPORT_DATA_H */
