/* tp-registry.h — the plugins found on the plugin path, by kind and name.
 *
 * Search order: the caller's extra folders (`taskprune plugins --plugin-path`,
 * a pipeline's [pipeline] plugin-path key), then $TASKPRUNE_PLUGIN_PATH (':'-separated), then the installed folders
 * $(libdir)/taskprune-1/{criteria,backends,datasets,comms}. Within one of these
 * three sources, two plugins of one kind and name are a conflict: the second
 * is skipped with a warning. A plugin from an earlier source shadows one of
 * the same kind and name from a later source (logged at debug level), so a
 * build tree's plugins can be tried against an installed taskprune.
 *
 * A file that cannot be loaded — not a shared object, no tp_plugin_describe,
 * a wrong ABI, a malformed descriptor — is skipped with a warning naming the
 * file and the reason; the registry keeps those reasons.
 */
#ifndef TP_REGISTRY_H
#define TP_REGISTRY_H

#include <glib.h>

#include "tp-plugin.h"

G_BEGIN_DECLS

#define TP_PLUGIN_ERROR (tp_plugin_error_quark())
GQuark tp_plugin_error_quark(void);

typedef enum {
    TP_PLUGIN_ERROR_NOT_LOADABLE, /* dlopen() failed: not a shared object, missing libraries */
    TP_PLUGIN_ERROR_NO_ENTRY,     /* no tp_plugin_describe symbol */
    TP_PLUGIN_ERROR_ABI,          /* wrong ABI major or a struct smaller than ABI 1's */
    TP_PLUGIN_ERROR_INVALID,      /* a malformed descriptor, vtable or parameter table */
    TP_PLUGIN_ERROR_DUPLICATE,    /* a plugin of that kind and name is loaded already */
    TP_PLUGIN_ERROR_NOT_FOUND,    /* asked for a plugin that is not there */
} TpPluginError;

/* A loaded plugin. Owned by its registry; valid while it lives. */
typedef struct {
    char *path;               /* the file it came from */
    const TpPluginInfo *info; /* validated descriptor */
    void *handle;             /* from dlopen() */
} TpPlugin;

typedef struct _TpRegistry TpRegistry;

/* Loads and validates one file. Returns an owned TpPlugin, or NULL with error
 * (in TP_PLUGIN_ERROR, naming path and the fix). Nothing in the plugin but
 * tp_plugin_describe() runs. */
TpPlugin *tp_plugin_load(const char *path, GError **error);
void tp_plugin_free(TpPlugin *plugin);

/* An empty registry. */
TpRegistry *tp_registry_new(void);
void tp_registry_free(TpRegistry *registry);

/* Loads every "*.so" in dir (not recursive) as one search source; files that
 * fail are skipped with a warning. A missing folder is not an error. */
void tp_registry_scan(TpRegistry *registry, const char *dir);

/* Scans the whole search path (see above); extra_path may be NULL. */
void tp_registry_scan_default(TpRegistry *registry, const char *extra_path);

/* The process-wide registry, scanned on first use with the default path and
 * never changed afterwards. */
TpRegistry *tp_registry_get_default(void);

/* The plugin of that kind and name (borrowed), or NULL with an error that
 * lists the plugins of that kind that are there. */
const TpPlugin *tp_registry_lookup(TpRegistry *registry, TpPluginKind kind, const char *name,
                                   GError **error);

/* The loaded plugins of one kind, sorted by name (a new array of borrowed
 * TpPlugin pointers). */
GPtrArray *tp_registry_list(TpRegistry *registry, TpPluginKind kind);

/* One message ("FILE: REASON") per file skipped so far (borrowed strings). */
const GPtrArray *tp_registry_get_skipped(TpRegistry *registry);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(TpRegistry, tp_registry_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TpPlugin, tp_plugin_free)

G_END_DECLS

#endif /* TP_REGISTRY_H */
