/* tp-explain.c — input heatmaps and class × filter relevance from one LRP
 * pass (contract: tp-explain.h; the rules: tp-lrp.h and docs/method.md §2).
 *
 * The predicted class of a sample is the argmax of the canonized model's
 * logits, which equal the original model's within float rounding; a tie
 * goes to the lower class. The input heatmap of sample n is
 *     H[n, y, x] = Σ_c R[n, c, y, x]
 * at value 0, so positive pixels spoke for the class and negative ones
 * against it; with a conserving rule set (z⁺, or z^B at the input) the
 * heatmap sums to the relevance started at the logits.
 */
#include "config.h"

#include <math.h>

#include "tp-explain.h"
#include "tp-op.h"

/* Each sample's argmax over the logits of the last forward of canon. */
static gboolean
argmax_logits(TpModel *canon, int batch, gint32 *classes, GError **error)
{
    const int logits = tp_model_get_logits(canon);
    const int n_classes = tp_model_get_shape(canon, logits)->dim[0];
    g_autofree float *host = tp_tensor_dup_host(tp_model_get_value(canon, logits), error);

    if (host == NULL)
        return FALSE;
    for (int n = 0; n < batch; n++) {
        const float *row = host + (gsize)n * n_classes;
        int best = 0;

        for (int c = 1; c < n_classes; c++)
            if (row[c] > row[best])
                best = c;
        classes[n] = best;
    }
    return TRUE;
}

float *
tp_explain_input(TpLrp *lrp, const float *input, int batch, gint32 *classes, gboolean predicted,
                 GError **error)
{
    TpModel *canon;
    TpTensor *r;
    g_autofree float *host = NULL;
    float *map;
    gsize plane;
    int channels;

    g_return_val_if_fail(lrp != NULL && input != NULL && classes != NULL, NULL);
    g_return_val_if_fail(batch > 0, NULL);
    g_return_val_if_fail(error == NULL || *error == NULL, NULL);

    canon = tp_lrp_get_canonized(lrp);
    if (predicted && (!tp_model_forward(canon, input, batch, TP_MODE_EVAL, error) ||
                      !argmax_logits(canon, batch, classes, error))) {
        g_prefix_error(error, "LRP: the predicted classes: ");
        return NULL;
    }
    if (!tp_lrp_run(lrp, input, batch, classes, error))
        return NULL;
    r = tp_lrp_get_relevance(lrp, 0);
    g_return_val_if_fail(r != NULL, NULL); /* the input is on every path to the logits */
    host = tp_tensor_dup_host(r, error);
    if (host == NULL)
        return NULL;

    channels = tp_model_get_shape(canon, 0)->dim[0];
    plane = r->numel / ((gsize)batch * (gsize)channels);
    map = g_new0(float, (gsize)batch *plane);
    for (int n = 0; n < batch; n++)
        for (int c = 0; c < channels; c++) {
            const float *at = host + ((gsize)n * channels + (gsize)c) * plane;

            for (gsize i = 0; i < plane; i++)
                map[(gsize)n * plane + i] += at[i];
        }
    return map;
}

gboolean
tp_explain_add_channels(TpLrp *lrp, TpModel *model, int value, double *sums, GError **error)
{
    TpTensor *r;
    const TpShape *shape;
    g_autofree float *host = NULL;
    gsize per_channel, samples;

    g_return_val_if_fail(lrp != NULL && model != NULL && sums != NULL, FALSE);
    g_return_val_if_fail(value >= 0 && (guint)value < tp_model_get_n_values(model), FALSE);

    r = tp_lrp_get_relevance(lrp, value);
    if (r == NULL) {
        g_set_error(error, TP_MODEL_ERROR, TP_MODEL_ERROR_INVALID,
                    "LRP: value %d has no relevance (not on the path to the logits, or no run)",
                    value);
        return FALSE;
    }
    shape = tp_model_get_shape(model, value);
    per_channel = tp_shape_numel(shape) / (gsize)shape->dim[0];
    samples = r->numel / tp_shape_numel(shape);
    host = tp_tensor_dup_host(r, error);
    if (host == NULL)
        return FALSE;
    for (gsize n = 0; n < samples; n++)
        for (int c = 0; c < shape->dim[0]; c++) {
            const float *at = host + (n * (gsize)shape->dim[0] + (gsize)c) * per_channel;
            double sum = 0.0;

            for (gsize i = 0; i < per_channel; i++)
                sum += at[i];
            sums[c] += sum;
        }
    return TRUE;
}

float
tp_explain_scale(const float *map, gsize n)
{
    float scale = 0.0f;

    for (gsize i = 0; i < n; i++)
        scale = MAX(scale, fabsf(map[i]));
    return scale;
}

void
tp_explain_colorize(const float *map, gsize n, float scale, guint8 *rgb)
{
    g_return_if_fail(scale > 0.0f);

    for (gsize i = 0; i < n; i++) {
        float t = CLAMP(map[i] / scale, -1.0f, 1.0f);
        guint8 fade = (guint8)lrintf(255.0f * (1.0f - fabsf(t)));

        rgb[3 * i + 0] = t < 0.0f ? fade : 255;
        rgb[3 * i + 1] = fade;
        rgb[3 * i + 2] = t > 0.0f ? fade : 255;
    }
}
