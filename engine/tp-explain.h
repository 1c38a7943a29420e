/* tp-explain.h — what LRP shows a person: the relevance at the model input
 * for chosen or predicted classes (heatmaps), the relevance each class puts
 * on each channel of a layer (class × filter maps), and the diverging colour
 * map both are drawn with. Every relevance comes from one TpLrp pass
 * (tp-lrp.h), so the rules and canonization are the lrp criterion's.
 */
#ifndef TP_EXPLAIN_H
#define TP_EXPLAIN_H

#include <glib.h>

#include "tp-lrp.h"

G_BEGIN_DECLS

/* Runs lrp on a batch (host input, normalized as the model expects) from
 * classes[n] for sample n or, when predicted, from each sample's predicted
 * class (the argmax of its logits), which is then written to classes[n].
 * Returns the relevance at the model input summed over its channels, host
 * [batch, H, W] in sample order (owned; g_free). Afterwards
 * tp_lrp_get_relevance(lrp, v) holds this run's relevance at every value v,
 * value 0 ([batch, C, H, W]) included. */
float *tp_explain_input(TpLrp *lrp, const float *input, int batch, gint32 *classes,
                        gboolean predicted, GError **error);

/* Adds to sums[c], for each channel c of value (the per-sample shape's first
 * dimension), the relevance at value from lrp's last run, summed over the
 * batch and every position of the channel (signed). Fails, naming the value,
 * when it has no relevance (not on the path to the logits, or no run). */
gboolean tp_explain_add_channels(TpLrp *lrp, TpModel *model, int value, double *sums,
                                 GError **error);

/* The largest |map[i]| of n values (0 for none): the scale of a symmetric
 * normalization around zero. */
float tp_explain_scale(const float *map, gsize n);

/* Writes n RGB triples to rgb for map, normalized symmetrically by scale
 * (> 0; values beyond ±scale saturate): t = map / scale in [-1, 1] is white
 * at 0, fading to pure red (255, 0, 0) at +1 and pure blue (0, 0, 255) at -1. */
void tp_explain_colorize(const float *map, gsize n, float scale, guint8 *rgb);

G_END_DECLS

#endif /* TP_EXPLAIN_H */
