/* fuzz.c — the helpers of fuzz.h. */
#include "config.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>

#include "fuzz.h"
#include "tp-registry.h"

/* Writes the message, then aborts on a warning, critical or error: SIGABRT
 * is what libFuzzer catches and saves the input for (GLib's own fatal
 * warnings raise SIGTRAP, which it does not). */
static GLogWriterOutput
abort_on_warnings(GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer data)
{
    g_log_writer_standard_streams(level, fields, n_fields, data);
    if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING))
        abort();
    return G_LOG_WRITER_HANDLED;
}

TpBackend *
fuzz_backend(void)
{
    static TpBackend *backend;

    if (backend == NULL) {
        g_autoptr(GError) error = NULL;
        const TpPlugin *plugin;
        g_log_set_writer_func(abort_on_warnings, NULL, NULL);
        plugin =
            tp_registry_lookup(tp_registry_get_default(), TP_PLUGIN_KIND_BACKEND, "cpu", &error);
        if (plugin == NULL || !(backend = tp_backend_new(plugin->info, NULL, &error)))
            g_error("fuzz: no cpu backend (set TASKPRUNE_PLUGIN_PATH): %s", error->message);
    }
    return backend;
}

const char *
fuzz_dir(void)
{
    static char *dir;

    if (dir == NULL) {
        g_autoptr(GError) error = NULL;
        if (!(dir = g_dir_make_tmp("taskprune-fuzz-XXXXXX", &error)))
            g_error("fuzz: %s", error->message);
    }
    return dir;
}

char *
fuzz_write(const char *name, const guint8 *data, gsize size)
{
    g_autofree char *path = g_build_filename(fuzz_dir(), name, NULL);
    g_autofree char *folder = g_path_get_dirname(path);

    if (g_mkdir_with_parents(folder, 0700) != 0 ||
        !g_file_set_contents(path, (const char *)data, (gssize)size, NULL))
        g_error("fuzz: cannot write %s", path);
    return g_steal_pointer(&path);
}

TpDataset *
fuzz_open_dataset(const char *name, TpSplit split, const char *first_key, ...)
{
    g_autoptr(GError) error = NULL;
    const TpPlugin *plugin =
        tp_registry_lookup(tp_registry_get_default(), TP_PLUGIN_KIND_DATASET, name, &error);
    g_autoptr(TpParams) params = NULL;
    va_list ap;

    fuzz_backend(); /* warnings fatal */
    if (plugin == NULL)
        g_error("fuzz: %s", error->message);
    params = tp_params_new(plugin->info->params);
    va_start(ap, first_key);
    for (const char *key = first_key; key != NULL; key = va_arg(ap, const char *))
        if (!tp_params_set(params, key, va_arg(ap, const char *), &error))
            g_error("fuzz: %s", error->message);
    va_end(ap);
    return tp_dataset_new(plugin->info, params, split, NULL);
}

void
fuzz_read_all(TpDataset *dataset)
{
    const TpDatasetInfo *meta = &dataset->meta;
    gsize n = (gsize)meta->channels * meta->height * meta->width;
    g_autofree float *x = g_new(float, n);
    gint32 label;

    for (gsize i = 0; i < MIN(meta->n_samples, 64); i++) {
        if (!tp_dataset_read(dataset, i, x, &label, NULL))
            continue;
        if (label < 0 || label >= meta->n_classes)
            g_error("fuzz: sample %" G_GSIZE_FORMAT " has label %d of %d classes", i, label,
                    meta->n_classes);
        for (gsize j = 0; j < n; j++)
            if (!isfinite(x[j]))
                g_error("fuzz: sample %" G_GSIZE_FORMAT " holds %g", i, x[j]);
    }
}

gsize
fuzz_sample_numel(TpModel *model)
{
    const TpShape *shape = tp_model_get_shape(model, 0);
    gsize n = 1;

    for (int i = 0; i < shape->ndim; i++)
        n *= (gsize)shape->dim[i]; /* checked when the model was made */
    return n;
}
