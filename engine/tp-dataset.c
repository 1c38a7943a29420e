/* tp-dataset.c — opening a dataset plugin's split and reading through it
 * (the contract is in tp-dataset.h). */
#include "config.h"

#include <stddef.h>
#include <string.h>

#include "tp-dataset.h"
#include "tp-registry.h"

G_DEFINE_QUARK(tp_dataset_error, tp_dataset_error)

#define REQUIRED_END (offsetof(TpDatasetVTable, read) + sizeof(gpointer))

static void
copy_vtable(const TpPluginInfo *info, TpDatasetVTable *out)
{
    memset(out, 0, sizeof(*out));
    memcpy(out, info->vtable, MIN(info->vtable_size, sizeof(*out)));
}

gboolean
tp_dataset_vtable_check(const TpPluginInfo *info, GError **error)
{
    TpDatasetVTable vt;

    if (info->vtable == NULL || info->vtable_size < REQUIRED_END) {
        g_set_error(error, TP_PLUGIN_ERROR, TP_PLUGIN_ERROR_ABI,
                    "dataset '%s' has a vtable of %zu bytes, ABI %d needs at least %zu: "
                    "rebuild it against the installed tp-dataset.h",
                    info->name, (size_t)(info->vtable ? info->vtable_size : 0), TP_PLUGIN_ABI_MAJOR,
                    (size_t)REQUIRED_END);
        return FALSE;
    }
    copy_vtable(info, &vt);
    if (vt.open == NULL || vt.close == NULL || vt.describe == NULL || vt.read == NULL) {
        g_set_error(error, TP_PLUGIN_ERROR, TP_PLUGIN_ERROR_INVALID,
                    "dataset '%s' lacks one of open, close, describe and read", info->name);
        return FALSE;
    }
    return TRUE;
}

static const char *
split_name(TpSplit split)
{
    return split == TP_SPLIT_TEST ? "test" : "train";
}

TpDataset *
tp_dataset_new(const TpPluginInfo *info, const TpParams *params, TpSplit split, GError **error)
{
    g_autoptr(TpParams) defaults = NULL;
    g_autoptr(GError) local = NULL;
    TpDataset *dataset;
    const TpDatasetInfo *meta;

    g_return_val_if_fail(info != NULL && info->kind == TP_PLUGIN_KIND_DATASET, NULL);

    if (params == NULL)
        params = defaults = tp_params_new(info->params);
    dataset = g_new0(TpDataset, 1);
    dataset->info = info;
    dataset->split = split;
    g_mutex_init(&dataset->lock);
    copy_vtable(info, &dataset->vt);
    dataset->self = dataset->vt.open(params, split, &local);
    if (dataset->self == NULL) {
        g_set_error(error, TP_DATASET_ERROR,
                    local && local->domain == TP_DATASET_ERROR ? local->code : TP_DATASET_ERROR_IO,
                    "dataset '%s' (%s split): %s", info->name, split_name(split),
                    local ? local->message : "open() failed without a reason");
        g_mutex_clear(&dataset->lock);
        g_free(dataset);
        return NULL;
    }
    dataset->vt.describe(dataset->self, &dataset->meta);
    meta = &dataset->meta;
    if (meta->n_samples == 0 || meta->channels < 1 || meta->height < 1 || meta->width < 1 ||
        meta->n_classes < 1) {
        g_set_error(error, TP_DATASET_ERROR, TP_DATASET_ERROR_INVALID,
                    "dataset '%s' (%s split) is empty or describes %" G_GSIZE_FORMAT
                    " samples of [%d, %d, %d] in %d classes",
                    info->name, split_name(split), meta->n_samples, meta->channels, meta->height,
                    meta->width, meta->n_classes);
        tp_dataset_free(dataset);
        return NULL;
    }
    return dataset;
}

TpDataset *
tp_dataset_new_from_keyfile(GKeyFile *keyfile, const char *group, const char *source, TpSplit split,
                            GError **error)
{
    return tp_dataset_new_from_registry(tp_registry_get_default(), keyfile, group, source, split,
                                        error);
}

TpDataset *
tp_dataset_new_from_registry(TpRegistry *registry, GKeyFile *keyfile, const char *group,
                             const char *source, TpSplit split, GError **error)
{
    static const char *const own_keys[] = {"plugin", NULL};
    g_autofree char *name = NULL;
    g_autoptr(TpParams) params = NULL;
    const TpPlugin *plugin;

    name = g_key_file_get_string(keyfile, group, "plugin", NULL);
    if (name == NULL) {
        g_set_error(error, TP_DATASET_ERROR, TP_DATASET_ERROR_INVALID,
                    "%s: [%s] plugin: missing (the dataset plugin to read, e.g. idx)", source,
                    group);
        return NULL;
    }
    plugin = tp_registry_lookup(registry, TP_PLUGIN_KIND_DATASET, name, error);
    if (plugin == NULL) {
        g_prefix_error(error, "%s: [%s] plugin: ", source, group);
        return NULL;
    }
    params = tp_params_new(plugin->info->params);
    if (!tp_params_load(params, keyfile, group, source, own_keys, error))
        return NULL;
    return tp_dataset_new(plugin->info, params, split, error);
}

void
tp_dataset_free(TpDataset *dataset)
{
    if (dataset == NULL)
        return;
    dataset->vt.close(dataset->self);
    g_mutex_clear(&dataset->lock);
    g_free(dataset);
}

gboolean
tp_dataset_read(TpDataset *dataset, gsize index, float *out, gint32 *out_label, GError **error)
{
    g_autoptr(GError) local = NULL;
    gint32 label = -1;

    g_return_val_if_fail(dataset != NULL && index < dataset->meta.n_samples, FALSE);

    g_mutex_lock(&dataset->lock);
    gboolean ok = dataset->vt.read(dataset->self, index, out, &label, &local);
    g_mutex_unlock(&dataset->lock);
    if (!ok) {
        g_set_error(error, TP_DATASET_ERROR,
                    local && local->domain == TP_DATASET_ERROR ? local->code : TP_DATASET_ERROR_IO,
                    "dataset '%s': sample %" G_GSIZE_FORMAT ": %s", dataset->info->name, index,
                    local ? local->message : "read() failed without a reason");
        return FALSE;
    }
    if (label < 0 || label >= dataset->meta.n_classes) {
        g_set_error(error, TP_DATASET_ERROR, TP_DATASET_ERROR_INVALID,
                    "dataset '%s': sample %" G_GSIZE_FORMAT " has label %d, outside 0 to %d",
                    dataset->info->name, index, label, dataset->meta.n_classes - 1);
        return FALSE;
    }
    *out_label = label;
    return TRUE;
}

int
tp_dataset_find_class(const TpDataset *dataset, const char *name)
{
    const char *const *names = dataset->meta.class_names;

    for (int i = 0; names != NULL && i < dataset->meta.n_classes; i++)
        if (names[i] != NULL && g_str_equal(names[i], name))
            return i;
    /* Then ignoring case: "sandal" is Sandal. */
    g_autofree char *folded = g_utf8_casefold(name, -1);
    for (int i = 0; names != NULL && i < dataset->meta.n_classes; i++) {
        g_autofree char *other = names[i] ? g_utf8_casefold(names[i], -1) : NULL;
        if (other != NULL && g_str_equal(other, folded))
            return i;
    }
    return -1;
}
