/* tp-registry.c — the plugins found on the search path, by kind and name
 * (rules in tp-registry.h). */
#include "config.h"

#include <string.h>

#include "tp-registry.h"

G_DEFINE_QUARK(tp_plugin_error, tp_plugin_error)

/* The installed plugin folders, one per kind. */
static const char *const installed_folders[] = {"criteria", "backends", "datasets", "comms"};

typedef struct {
    TpPlugin *plugin;
    guint source; /* which scan found it: earlier sources shadow later ones */
} Entry;

struct _TpRegistry {
    GArray *entries;     /* Entry */
    GPtrArray *skipped;  /* "FILE: REASON" */
    GPtrArray *searched; /* folders scanned, for messages */
    guint source;        /* the current scan's number */
};

static void
entry_clear(gpointer data)
{
    Entry *entry = data;
    g_clear_pointer(&entry->plugin, tp_plugin_free);
}

TpRegistry *
tp_registry_new(void)
{
    TpRegistry *registry = g_new0(TpRegistry, 1);

    registry->entries = g_array_new(FALSE, TRUE, sizeof(Entry));
    g_array_set_clear_func(registry->entries, entry_clear);
    registry->skipped = g_ptr_array_new_with_free_func(g_free);
    registry->searched = g_ptr_array_new_with_free_func(g_free);
    return registry;
}

void
tp_registry_free(TpRegistry *registry)
{
    if (registry == NULL)
        return;
    g_array_unref(registry->entries);
    g_ptr_array_unref(registry->skipped);
    g_ptr_array_unref(registry->searched);
    g_free(registry);
}

static void
skip(TpRegistry *registry, const char *message)
{
    g_warning("skipping plugin %s", message);
    g_ptr_array_add(registry->skipped, g_strdup(message));
}

static Entry *
find(TpRegistry *registry, TpPluginKind kind, const char *name)
{
    for (guint i = 0; i < registry->entries->len; i++) {
        Entry *entry = &g_array_index(registry->entries, Entry, i);
        if (entry->plugin->info->kind == kind && g_str_equal(entry->plugin->info->name, name))
            return entry;
    }
    return NULL;
}

static void
add_file(TpRegistry *registry, const char *path)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(TpPlugin) plugin = tp_plugin_load(path, &error);
    Entry *other;

    if (plugin == NULL) {
        skip(registry, error->message);
        return;
    }
    other = find(registry, plugin->info->kind, plugin->info->name);
    if (other != NULL && other->source == registry->source) {
        g_autofree char *message = g_strdup_printf(
            "%s: a %s named '%s' is already loaded from %s: remove one of the two", path,
            tp_plugin_kind_to_string(plugin->info->kind), plugin->info->name, other->plugin->path);
        skip(registry, message);
        return;
    }
    if (other != NULL) {
        g_debug("%s: shadowed by %s, found earlier on the plugin path", path, other->plugin->path);
        return;
    }
    g_debug("loaded %s '%s' from %s", tp_plugin_kind_to_string(plugin->info->kind),
            plugin->info->name, path);
    Entry entry = {g_steal_pointer(&plugin), registry->source};
    g_array_append_val(registry->entries, entry);
}

static int
compare_strings(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Loads the "*.so" files of one folder, in name order, into the current source. */
static void
scan_folder(TpRegistry *registry, const char *dir)
{
    g_autoptr(GDir) folder = NULL;
    g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func(g_free);
    const char *name;

    g_ptr_array_add(registry->searched, g_strdup(dir));
    folder = g_dir_open(dir, 0, NULL);
    if (folder == NULL) {
        g_debug("plugin folder %s does not exist", dir);
        return;
    }
    while ((name = g_dir_read_name(folder)) != NULL)
        if (g_str_has_suffix(name, ".so"))
            g_ptr_array_add(files, g_build_filename(dir, name, NULL));
    g_ptr_array_sort(files, compare_strings);
    for (guint i = 0; i < files->len; i++)
        add_file(registry, g_ptr_array_index(files, i));
}

void
tp_registry_scan(TpRegistry *registry, const char *dir)
{
    g_return_if_fail(registry != NULL && dir != NULL);
    registry->source++;
    scan_folder(registry, dir);
}

/* Scans each folder of a ':'-separated list as one source. */
static void
scan_path(TpRegistry *registry, const char *path)
{
    g_auto(GStrv) dirs = NULL;

    if (path == NULL || *path == '\0')
        return;
    registry->source++;
    dirs = g_strsplit(path, G_SEARCHPATH_SEPARATOR_S, -1);
    for (guint i = 0; dirs[i] != NULL; i++)
        if (*dirs[i] != '\0')
            scan_folder(registry, dirs[i]);
}

void
tp_registry_scan_default(TpRegistry *registry, const char *extra_path)
{
    g_return_if_fail(registry != NULL);

    scan_path(registry, extra_path);
    scan_path(registry, g_getenv("TASKPRUNE_PLUGIN_PATH"));
    registry->source++;
    for (guint i = 0; i < G_N_ELEMENTS(installed_folders); i++) {
        g_autofree char *dir = g_build_filename(TP_PLUGINDIR, installed_folders[i], NULL);
        scan_folder(registry, dir);
    }
}

TpRegistry *
tp_registry_get_default(void)
{
    static gsize initialized;
    static TpRegistry *registry;

    if (g_once_init_enter(&initialized)) {
        registry = tp_registry_new();
        tp_registry_scan_default(registry, NULL);
        g_once_init_leave(&initialized, 1);
    }
    return registry;
}

const TpPlugin *
tp_registry_lookup(TpRegistry *registry, TpPluginKind kind, const char *name, GError **error)
{
    Entry *entry;

    g_return_val_if_fail(registry != NULL && name != NULL, NULL);

    entry = find(registry, kind, name);
    if (entry != NULL)
        return entry->plugin;

    g_autoptr(GPtrArray) present = tp_registry_list(registry, kind);
    g_autoptr(GString) names = g_string_new(NULL);
    for (guint i = 0; i < present->len; i++) {
        const TpPlugin *plugin = g_ptr_array_index(present, i);
        g_string_append_printf(names, "%s%s", i ? ", " : "", plugin->info->name);
    }
    g_autoptr(GString) searched = g_string_new(NULL);
    for (guint i = 0; i < registry->searched->len; i++)
        g_string_append_printf(searched, "%s%s", i ? ", " : "",
                               (const char *)g_ptr_array_index(registry->searched, i));
    g_set_error(error, TP_PLUGIN_ERROR, TP_PLUGIN_ERROR_NOT_FOUND,
                "no %s plugin named '%s' (available: %s; searched: %s)",
                tp_plugin_kind_to_string(kind), name, names->len ? names->str : "none",
                searched->len ? searched->str : "nothing");
    return NULL;
}

static int
compare_plugins(gconstpointer a, gconstpointer b)
{
    const TpPlugin *pa = *(const TpPlugin *const *)a;
    const TpPlugin *pb = *(const TpPlugin *const *)b;
    return strcmp(pa->info->name, pb->info->name);
}

GPtrArray *
tp_registry_list(TpRegistry *registry, TpPluginKind kind)
{
    GPtrArray *list = g_ptr_array_new();

    g_return_val_if_fail(registry != NULL, list);
    for (guint i = 0; i < registry->entries->len; i++) {
        Entry *entry = &g_array_index(registry->entries, Entry, i);
        if (entry->plugin->info->kind == kind)
            g_ptr_array_add(list, entry->plugin);
    }
    g_ptr_array_sort(list, compare_plugins);
    return list;
}

const GPtrArray *
tp_registry_get_skipped(TpRegistry *registry)
{
    g_return_val_if_fail(registry != NULL, NULL);
    return registry->skipped;
}
