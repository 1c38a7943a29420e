/* tp-rows.c — the one schema of a run's rows and result (tp-rows.h): a table
 * of members (name, type, offset), read by every writer and reader. */
#include "config.h"

#include "tp-rows.h"

typedef enum { U32, SIZE, U64, INT, DOUBLE, BOOLEAN } Type;

typedef struct {
    const char *name;
    Type type;
    gsize offset;
    const char *csv_format; /* for DOUBLE: the CSV's precision */
} Field;

#define ROW(name, type, format) {#name, type, G_STRUCT_OFFSET(TpPipelineRow, name), format}
static const Field row_fields[] = {
    ROW(step, U32, NULL),           ROW(units, SIZE, NULL),
    ROW(params, U64, NULL),         ROW(macs, U64, NULL),
    ROW(params_removed, DOUBLE, "%.6f"), ROW(macs_removed, DOUBLE, "%.6f"),
    ROW(accuracy, DOUBLE, "%.6f"),  ROW(loss, DOUBLE, "%.6f"),
    ROW(score_s, DOUBLE, "%.3f"),   ROW(prune_s, DOUBLE, "%.3f"),
    ROW(finetune_s, DOUBLE, "%.3f"), ROW(eval_s, DOUBLE, "%.3f"),
    ROW(accepted, BOOLEAN, NULL),
};
#undef ROW

#define RES(name, type) {#name, type, G_STRUCT_OFFSET(TpPipelineResult, name), NULL}
static const Field result_fields[] = {
    RES(step, U32),
    RES(base_classes, INT),
    RES(classes, INT),
    RES(baseline_accuracy, DOUBLE),
    RES(base_accuracy, DOUBLE),
    RES(base_test_accuracy, DOUBLE),
    RES(test_accuracy, DOUBLE),
    RES(accuracy, DOUBLE),
    RES(tolerance, DOUBLE),
    RES(base_params, U64),
    RES(params, U64),
    RES(base_macs, U64),
    RES(macs, U64),
    RES(base_bytes, SIZE),
    RES(bytes, SIZE),
    RES(base_latency_ms, DOUBLE),
    RES(latency_ms, DOUBLE),
    RES(latency_within_noise, BOOLEAN),
};
#undef RES

/* A member as a double (integers are exact below 2^53). */
static double
get(const Field *f, const void *base)
{
    const char *p = (const char *)base + f->offset;
    switch (f->type) {
    case U32: return *(const guint *)p;
    case SIZE: return (double)*(const gsize *)p;
    case U64: return (double)*(const guint64 *)p;
    case INT: return *(const int *)p;
    case DOUBLE: return *(const double *)p;
    case BOOLEAN: return *(const gboolean *)p;
    }
    g_assert_not_reached();
}

static void
to_json(JsonBuilder *b, const Field *fields, gsize n, const void *base)
{
    for (gsize i = 0; i < n; i++) {
        const Field *f = &fields[i];
        json_builder_set_member_name(b, f->name);
        if (f->type == DOUBLE)
            json_builder_add_double_value(b, get(f, base));
        else if (f->type == BOOLEAN)
            json_builder_add_boolean_value(b, (gboolean)get(f, base));
        else
            json_builder_add_int_value(b, (gint64)get(f, base));
    }
}

static void
save(GKeyFile *kf, const char *group, const Field *fields, gsize n, const void *base)
{
    char buf[G_ASCII_DTOSTR_BUF_SIZE];

    for (gsize i = 0; i < n; i++) {
        const Field *f = &fields[i];
        if (f->type == DOUBLE)
            g_key_file_set_string(kf, group, f->name, g_ascii_dtostr(buf, sizeof(buf), get(f, base)));
        else if (f->type == BOOLEAN)
            g_key_file_set_boolean(kf, group, f->name, (gboolean)get(f, base));
        else
            g_key_file_set_uint64(kf, group, f->name, (guint64)get(f, base));
    }
}

static gboolean
load(GKeyFile *kf, const char *group, const Field *fields, gsize n, void *base, GError **error)
{
    for (gsize i = 0; i < n; i++) {
        const Field *f = &fields[i];
        char *p = (char *)base + f->offset;
        GError *local = NULL;

        switch (f->type) {
        case U32: *(guint *)p = (guint)g_key_file_get_uint64(kf, group, f->name, &local); break;
        case SIZE: *(gsize *)p = g_key_file_get_uint64(kf, group, f->name, &local); break;
        case U64: *(guint64 *)p = g_key_file_get_uint64(kf, group, f->name, &local); break;
        case INT: *(int *)p = (int)g_key_file_get_int64(kf, group, f->name, &local); break;
        case DOUBLE: *(double *)p = g_key_file_get_double(kf, group, f->name, &local); break;
        case BOOLEAN: *(gboolean *)p = g_key_file_get_boolean(kf, group, f->name, &local); break;
        }
        if (local != NULL) {
            g_set_error(error, TP_PIPELINE_ERROR, TP_PIPELINE_ERROR_CHECKPOINT,
                        "[%s] %s: %s", group, f->name, local->message);
            g_error_free(local);
            return FALSE;
        }
    }
    return TRUE;
}

void
tp_rows_json(JsonBuilder *b, const TpPipelineRow *row)
{
    to_json(b, row_fields, G_N_ELEMENTS(row_fields), row);
}

void
tp_rows_csv_header(GString *csv)
{
    for (gsize i = 0; i < G_N_ELEMENTS(row_fields); i++)
        g_string_append_printf(csv, "%s%s", i ? "," : "", row_fields[i].name);
    g_string_append_c(csv, '\n');
}

void
tp_rows_csv(GString *csv, const TpPipelineRow *row)
{
    char buf[G_ASCII_DTOSTR_BUF_SIZE];

    for (gsize i = 0; i < G_N_ELEMENTS(row_fields); i++) {
        const Field *f = &row_fields[i];
        g_string_append(csv, i ? "," : "");
        if (f->type == DOUBLE)
            g_string_append(csv, g_ascii_formatd(buf, sizeof(buf), f->csv_format, get(f, row)));
        else
            g_string_append_printf(csv, "%" G_GUINT64_FORMAT, (guint64)get(f, row));
    }
    g_string_append_c(csv, '\n');
}

void
tp_rows_save(GKeyFile *kf, const char *group, const TpPipelineRow *row)
{
    save(kf, group, row_fields, G_N_ELEMENTS(row_fields), row);
}

gboolean
tp_rows_load(GKeyFile *kf, const char *group, TpPipelineRow *out, GError **error)
{
    TpPipelineRow row = {0};

    if (!load(kf, group, row_fields, G_N_ELEMENTS(row_fields), &row, error))
        return FALSE;
    *out = row;
    return TRUE;
}

void
tp_rows_result_json(JsonBuilder *b, const TpPipelineResult *res)
{
    to_json(b, result_fields, G_N_ELEMENTS(result_fields), res);
    json_builder_set_member_name(b, "stop_reason");
    json_builder_add_string_value(b, res->stop_reason ? res->stop_reason : "");
}

void
tp_rows_result_save(GKeyFile *kf, const char *group, const TpPipelineResult *res)
{
    save(kf, group, result_fields, G_N_ELEMENTS(result_fields), res);
    g_key_file_set_string(kf, group, "stop_reason", res->stop_reason ? res->stop_reason : "");
}

gboolean
tp_rows_result_load(GKeyFile *kf, const char *group, TpPipelineResult *res, char **out_stop,
                    GError **error)
{
    TpPipelineResult r = {0};
    char *stop;

    if (!load(kf, group, result_fields, G_N_ELEMENTS(result_fields), &r, error))
        return FALSE;
    if (!(stop = g_key_file_get_string(kf, group, "stop_reason", error))) {
        g_prefix_error(error, "[%s] stop_reason: ", group);
        return FALSE;
    }
    *res = r;
    *out_stop = stop;
    return TRUE;
}
