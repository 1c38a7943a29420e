/* tp-params.h — a plugin's declared keys (TpParamSpec) turned into checked
 * values, read from a keyfile group or set one by one from the command line. */
#ifndef TP_PARAMS_H
#define TP_PARAMS_H

#include <glib.h>

#include "tp-plugin.h"

G_BEGIN_DECLS

#define TP_PARAMS_ERROR (tp_params_error_quark())
GQuark tp_params_error_quark(void);

typedef enum {
    TP_PARAMS_ERROR_UNKNOWN_KEY, /* a key the table does not declare */
    TP_PARAMS_ERROR_BAD_VALUE,   /* wrong type, out of range, not a choice */
    TP_PARAMS_ERROR_BAD_SPEC,    /* the table itself is malformed */
} TpParamsError;

typedef struct _TpParams TpParams;

/* Checks a table: keys well formed and unique, types known, defaults valid for
 * their own type and range. error names the key at fault. */
gboolean tp_param_specs_check(const TpParamSpec *specs, GError **error);

/* Number of entries before the { NULL } end (0 for NULL). */
guint tp_param_specs_count(const TpParamSpec *specs);

/* Appends a human-readable table of the keys (key, type, default, range or
 * choices, help) to out, one key a line, each line starting with indent. */
void tp_param_specs_describe(const TpParamSpec *specs, const char *indent, GString *out);

/* New parameters holding every key's default. specs (may be NULL: no keys)
 * must have passed tp_param_specs_check() and must outlive the result. */
TpParams *tp_params_new(const TpParamSpec *specs);
void tp_params_free(TpParams *params);

/* Sets every key present in keyfile group `group` (a missing group sets
 * nothing). source names the keyfile in messages. An unknown key or a bad
 * value fails with "SOURCE: [GROUP] KEY: ..." and what would be valid; on
 * failure params keep their earlier values. `skip`, if not NULL, is a
 * NULL-terminated list of keys in the group that belong to the caller (for
 * example `plugin`), not to the table. */
gboolean tp_params_load(TpParams *params, GKeyFile *keyfile, const char *group, const char *source,
                        const char *const *skip, GError **error);

/* Sets one key from its keyfile spelling, as the command line does. */
gboolean tp_params_set(TpParams *params, const char *key, const char *value, GError **error);

/* Getters. Asking for a key the table lacks, or with the wrong type, is a
 * programmer error (g_return_val_if_fail). */
gint64 tp_params_get_int(const TpParams *params, const char *key);
double tp_params_get_double(const TpParams *params, const char *key);
gboolean tp_params_get_boolean(const TpParams *params, const char *key);
/* STRING and CHOICE keys; the string is borrowed from params. */
const char *tp_params_get_string(const TpParams *params, const char *key);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(TpParams, tp_params_free)

G_END_DECLS

#endif /* TP_PARAMS_H */
