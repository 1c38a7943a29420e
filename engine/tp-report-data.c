/* tp-report-data.c — the layers, confusion matrices and heatmaps of a run's
 * report JSON (tp-report-data.h). */
#include "config.h"

#include <string.h>

#include "tp-explain.h"
#include "tp-report-data.h"

void
tp_report_data_layers(JsonBuilder *b, const TpUnits *units)
{
    json_builder_begin_array(b);
    for (guint s = 0; s < tp_units_get_n_spaces(units); s++) {
        const TpUnitSpace *space = tp_units_get_space(units, s);
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "name");
        json_builder_add_string_value(b, space->name);
        json_builder_set_member_name(b, "units");
        json_builder_add_int_value(b, space->n_units);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
}

void
tp_report_data_channels(JsonBuilder *b, const TpUnits *units)
{
    json_builder_begin_array(b);
    for (guint s = 0; s < tp_units_get_n_spaces(units); s++)
        json_builder_add_int_value(b, tp_units_get_space(units, s)->n_units);
    json_builder_end_array(b);
}

void
tp_report_data_confusion(JsonBuilder *b, const TpEvaluation *e)
{
    json_builder_begin_array(b);
    for (int i = 0; i < e->n_classes; i++) {
        json_builder_begin_array(b);
        for (int j = 0; j < e->n_classes; j++)
            json_builder_add_int_value(b, (gint64)e->confusion[i * e->n_classes + j]);
        json_builder_end_array(b);
    }
    json_builder_end_array(b);
}

static void
add_floats(JsonBuilder *b, const char *name, const float *v, gsize n)
{
    json_builder_set_member_name(b, name);
    json_builder_begin_array(b);
    for (gsize i = 0; i < n; i++)
        json_builder_add_double_value(b, v[i]);
    json_builder_end_array(b);
}

JsonNode *
tp_report_data_heatmaps(TpModel *base, const int *base_outputs, TpModel *specialist,
                        TpLoader *val, int max_images, GError **error)
{
    g_autoptr(JsonBuilder) b = json_builder_new();
    const TpShape *shape = tp_model_get_shape(specialist, 0);
    const int C = shape->dim[0], H = shape->dim[1], W = shape->dim[2];
    const gsize per = (gsize)C * H * W;
    const TpLrpConfig config = {TP_LRP_RULES_COMPOSITE, TP_LRP_START_UNIT, 1e-6};
    g_autoptr(TpLrp) before = NULL, after = NULL;
    g_autoptr(GArray) picked = g_array_new(FALSE, FALSE, sizeof(int));
    g_autofree float *x = NULL;
    g_autofree gint32 *labels = NULL;
    const float *images, *mean = NULL, *std = NULL;
    const gint32 *batch_labels;
    int got;

    if (shape->ndim != 3) {
        g_set_error(error, TP_PRUNE_ERROR, TP_PRUNE_ERROR_INVALID,
                    "heatmaps need images [C, H, W] in, not %d dimensions", shape->ndim);
        return NULL;
    }
    tp_loader_start_epoch(val, 0);
    if (!tp_loader_next(val, &images, &batch_labels, &got, error)) {
        if (error != NULL && *error == NULL)
            g_set_error(error, TP_PRUNE_ERROR, TP_PRUNE_ERROR_INVALID, "no validation images");
        return NULL;
    }
    /* The first image of each class, then the next ones in order. */
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < got && (int)picked->len < max_images; i++) {
            gboolean seen = FALSE, taken = FALSE;
            for (guint j = 0; j < picked->len; j++) {
                int k = g_array_index(picked, int, j);
                seen |= batch_labels[k] == batch_labels[i];
                taken |= k == i;
            }
            if (!taken && (pass == 1 || !seen))
                g_array_append_val(picked, i);
        }
    const int n = (int)picked->len;
    x = g_new(float, per * MAX(n, 1));
    labels = g_new(gint32, MAX(n, 1));
    for (int i = 0; i < n; i++) {
        int k = g_array_index(picked, int, i);
        memcpy(x + per * i, images + per * k, per * sizeof(float));
        labels[i] = batch_labels[k];
    }
    if (!(before = tp_lrp_new(base, &config, error)) ||
        !(after = tp_lrp_new(specialist, &config, error)))
        return NULL;
    tp_model_get_normalization(specialist, &mean, &std);

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "height");
    json_builder_add_int_value(b, H);
    json_builder_set_member_name(b, "width");
    json_builder_add_int_value(b, W);
    json_builder_set_member_name(b, "channels");
    json_builder_add_int_value(b, C == 3 ? 3 : 1);
    json_builder_set_member_name(b, "images");
    json_builder_begin_array(b);
    for (int i = 0; i < n; i++) {
        gint32 base_class = base_outputs[labels[i]], own = labels[i];
        g_autofree float *seen = g_new(float, per);
        g_autofree float *r0 = tp_explain_input(before, x + per * i, 1, &base_class, FALSE, error);
        g_autofree float *r1 = r0 ? tp_explain_input(after, x + per * i, 1, &own, FALSE, error)
                                  : NULL;
        if (r1 == NULL)
            return NULL;
        /* Undo the normalization; more than 3 channels: the first only. */
        for (gsize c = 0; c < (gsize)(C == 3 ? 3 : 1); c++)
            for (gsize p = 0; p < (gsize)H * W; p++)
                seen[c * H * W + p] =
                    x[per * i + c * H * W + p] * (std ? std[c] : 1) + (mean ? mean[c] : 0);
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "class");
        json_builder_add_int_value(b, labels[i]);
        add_floats(b, "image", seen, (gsize)(C == 3 ? 3 : 1) * H * W);
        add_floats(b, "base", r0, (gsize)H * W);
        add_floats(b, "specialist", r1, (gsize)H * W);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
    json_builder_end_object(b);
    return json_builder_get_root(b);
}
