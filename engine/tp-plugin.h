/* tp-plugin.h — the plugin ABI: what a taskprune plugin exports and what the
 * loader checks before it calls anything else in it.
 *
 * A plugin is one shared object that exports exactly one symbol:
 *
 *     const TpPluginInfo *tp_plugin_describe (void);
 *
 * returning a pointer to a `static const TpPluginInfo`. The loader calls it once,
 * right after dlopen(), and validates every field (ABI major, struct sizes, kind,
 * name, vtable, parameter table) before it calls any other plugin code.
 *
 * Compatibility rules, in one sentence each:
 *  - Fields are only ever appended to TpPluginInfo and to the vtables; a plugin
 *    built against an older header is still loaded, the missing tail reads as NULL.
 *  - TP_PLUGIN_ABI_MAJOR changes when a field is removed, reordered or changes
 *    type, or when the meaning of an existing vtable member changes; plugins with
 *    another major number are refused.
 */
#ifndef TP_PLUGIN_H
#define TP_PLUGIN_H

#include <glib.h>

G_BEGIN_DECLS

/* Bump only for incompatible changes (see above); the installed plugin folder
 * carries this number: $(libdir)/taskprune-1/. */
#define TP_PLUGIN_ABI_MAJOR 1

/* The one symbol a plugin exports. */
#define TP_PLUGIN_ENTRY_SYMBOL "tp_plugin_describe"

typedef enum {
    TP_PLUGIN_KIND_CRITERION = 1, /* scores prunable units (interface: later ABI) */
    TP_PLUGIN_KIND_BACKEND = 2,   /* kernels: TpBackendVTable in tp-backend.h */
    TP_PLUGIN_KIND_DATASET = 3,   /* samples and labels (interface: later ABI) */
    TP_PLUGIN_KIND_COMM = 4,      /* processes of one job: TpCommVTable in tp-comm.h */
} TpPluginKind;

typedef enum {
    TP_PARAM_INT = 1,     /* gint64; min and max apply */
    TP_PARAM_DOUBLE = 2,  /* double; min and max apply */
    TP_PARAM_BOOLEAN = 3, /* true or false */
    TP_PARAM_STRING = 4,  /* any UTF-8 string */
    TP_PARAM_CHOICE = 5,  /* one of the '|'-separated words in `choices` */
} TpParamType;

/* One key a plugin accepts in its keyfile group. A table of these ends with an
 * entry whose key is NULL. The engine alone parses and checks values; a plugin
 * reads them back with tp_params_get_*(). */
typedef struct {
    const char *key; /* [a-z0-9-]+, unique within the table */
    TpParamType type;
    const char *default_value; /* as it would be written in a keyfile */
    double min, max;           /* inclusive range for INT and DOUBLE; ignored otherwise */
    const char *choices;       /* CHOICE only: "l1|l2|none" */
    const char *help;          /* one line, shown by `taskprune plugins --describe` */
} TpParamSpec;

/* The descriptor. All pointers must stay valid while the plugin is loaded
 * (in practice: point at static const data). */
typedef struct {
    guint32 abi_major;   /* TP_PLUGIN_ABI_MAJOR the plugin was built with */
    guint32 struct_size; /* sizeof (TpPluginInfo) the plugin was built with */
    TpPluginKind kind;
    const char *name;          /* [a-z0-9-]+, unique within its kind */
    const char *version;       /* the plugin's own version, free form */
    const char *description;   /* one line */
    const char *license;       /* SPDX identifier */
    const void *vtable;        /* the kind's table, e.g. a TpBackendVTable */
    gsize vtable_size;         /* sizeof that table as the plugin saw it */
    const TpParamSpec *params; /* keys, ending with { NULL }; may be NULL for none */
} TpPluginInfo;

/* Declares the entry point with default visibility; a plugin writes
 *     TP_PLUGIN_EXPORT const TpPluginInfo *tp_plugin_describe (void) { return &info; } */
#define TP_PLUGIN_EXPORT __attribute__((visibility("default")))

typedef const TpPluginInfo *(*TpPluginDescribeFunc)(void);

/* The entry point every plugin defines (and the only symbol it exports). */
TP_PLUGIN_EXPORT const TpPluginInfo *tp_plugin_describe(void);

const char *tp_plugin_kind_to_string(TpPluginKind kind);

G_END_DECLS

#endif /* TP_PLUGIN_H */
