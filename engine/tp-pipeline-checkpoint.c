/* tp-pipeline-checkpoint.c — a pipeline's checkpoint folder: the model after
 * every accepted step and state.ini with the rows so far and the settings
 * they were made with; and the checks of the outputs and of the resume state
 * made before any work (contracts in tp-pipeline-private.h).
 */
#include "config.h"

#include "tp-comm.h"
#include "tp-onnx.h"
#include "tp-paths.h"
#include "tp-pipeline-private.h"
#include "tp-rows.h"
#include "tp-settings.h"

gboolean
tp_pipeline_save_checkpoint(TpPipelineRun *r, guint step, GError **error)
{
    TpPipeline *p = r->p;
    g_autoptr(GKeyFile) state = g_key_file_new();
    g_autofree char *name = g_strdup_printf("step-%u.onnx", step);
    g_autofree char *path = g_build_filename(p->checkpoint, name, NULL);
    g_autofree char *state_path = g_build_filename(p->checkpoint, "state.ini", NULL);

    if (tp_comm_rank() != 0) /* rank 0 writes for every rank */
        return TRUE;
    if (g_mkdir_with_parents(p->checkpoint, 0755) != 0) {
        g_set_error(error, TP_PIPELINE_ERROR, TP_PIPELINE_ERROR_CHECKPOINT,
                    "cannot create checkpoint folder %s", p->checkpoint);
        return FALSE;
    }
    if (!tp_onnx_save(r->model, path, error))
        return FALSE;
    g_key_file_set_integer(state, "state", "step", (int)step);
    g_key_file_set_string(state, "state", "model", name);
    for (guint i = 0; i < p->rows->len; i++) {
        g_autofree char *group = g_strdup_printf("row-%u", i);
        GArray *channels = g_ptr_array_index(p->channels, i);
        tp_rows_save(state, group, &g_array_index(p->rows, TpPipelineRow, i));
        g_key_file_set_integer_list(state, group, "channels", (int *)channels->data, channels->len);
    }
    tp_settings_copy(state, p->settings);
    return g_key_file_save_to_file(state, state_path, error);
}

gboolean
tp_pipeline_load_checkpoint(TpPipelineRun *r, guint *out_step, GError **error)
{
    TpPipeline *p = r->p;
    g_autofree char *state_path = g_build_filename(p->checkpoint, "state.ini", NULL);
    g_autoptr(GKeyFile) state = g_key_file_new();
    g_autofree char *name = NULL, *path = NULL;

    if (!g_key_file_load_from_file(state, state_path, G_KEY_FILE_NONE, error) ||
        !(name = g_key_file_get_string(state, "state", "model", error))) {
        g_prefix_error(error, "cannot resume from %s: ", state_path);
        return FALSE;
    }
    path = g_build_filename(p->checkpoint, name, NULL);
    g_clear_pointer(&r->model, tp_model_free);
    r->model = tp_onnx_load(r->backend, path, error);
    if (r->model == NULL)
        return FALSE;
    *out_step = (guint)g_key_file_get_integer(state, "state", "step", NULL);
    g_array_set_size(p->rows, 0);
    g_ptr_array_set_size(p->channels, 0);
    for (guint i = 0;; i++) {
        g_autofree char *group = g_strdup_printf("row-%u", i);
        g_autofree int *list = NULL;
        gsize n = 0;
        TpPipelineRow row;
        GArray *channels = g_array_new(FALSE, FALSE, sizeof(int));
        if (!g_key_file_has_group(state, group)) {
            g_array_unref(channels);
            break;
        }
        g_ptr_array_add(p->channels, channels);
        if (!tp_rows_load(state, group, &row, error) ||
            !(list = g_key_file_get_integer_list(state, group, "channels", &n, error))) {
            g_prefix_error(error, "cannot resume from %s: ", state_path);
            return FALSE;
        }
        g_array_append_vals(channels, list, (guint)n);
        g_array_append_val(p->rows, row);
    }
    if (p->rows->len == 0) {
        g_set_error(error, TP_PIPELINE_ERROR, TP_PIPELINE_ERROR_CHECKPOINT,
                    "%s holds no step: start the pipeline without --resume", state_path);
        return FALSE;
    }
    return TRUE;
}

gboolean
tp_pipeline_check_before_work(TpPipeline *p, gboolean resume, GError **error)
{
    const char *base = tp_params_get_string(p->model, "path");
    const char *inputs[] = {base, NULL};
    const struct {
        const char *path, *what;
    } outputs[] = {{p->model_path, "[output] model"},
                   {p->report_path, "[output] report"},
                   {p->csv_path, "the CSV report"},
                   {p->html_path, "the report's page"},
                   {p->plot_path, "[output] plot"}};
    g_autofree char *state_path = g_build_filename(p->checkpoint, "state.ini", NULL);
    g_autoptr(GKeyFile) state = g_key_file_new();
    g_autofree char *diff = NULL;

    for (gsize i = 0; i < G_N_ELEMENTS(outputs); i++)
        if (!tp_paths_check_output(outputs[i].path, outputs[i].what, inputs, error))
            return FALSE;
    if (!tp_paths_check_folder(p->checkpoint, "[output] checkpoint", error))
        return FALSE;
    if (!resume)
        return TRUE;
    if (!g_file_test(state_path, G_FILE_TEST_EXISTS)) {
        g_set_error(error, TP_PIPELINE_ERROR, TP_PIPELINE_ERROR_CHECKPOINT,
                    "cannot resume: no checkpoint in %s (run without --resume)", p->checkpoint);
        return FALSE;
    }
    if (!g_key_file_load_from_file(state, state_path, G_KEY_FILE_NONE, error)) {
        g_prefix_error(error, "cannot resume from %s: ", state_path);
        return FALSE;
    }
    if (!g_key_file_has_group(state, TP_SETTINGS_GROUP)) {
        g_set_error(error, TP_PIPELINE_ERROR, TP_PIPELINE_ERROR_CHECKPOINT,
                    "cannot resume from %s: it does not record the settings it was made with "
                    "(an older version wrote it); run without --resume",
                    state_path);
        return FALSE;
    }
    diff = tp_settings_diff(state, p->settings);
    if (diff != NULL) {
        g_set_error(error, TP_PIPELINE_ERROR, TP_PIPELINE_ERROR_CHECKPOINT,
                    "cannot resume from %s: the settings differ from the checkpoint's: %s (run "
                    "with the checkpoint's settings, or without --resume)",
                    p->checkpoint, diff);
        return FALSE;
    }
    return TRUE;
}
