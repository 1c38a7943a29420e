/* tp-settings.h — the effective settings of a run as one flat keyfile group
 * ("GROUP.KEY = VALUE", defaults filled in), kept beside a checkpoint so that
 * a resume with other settings is refused, naming the keys that differ. */
#ifndef TP_SETTINGS_H
#define TP_SETTINGS_H

#include <glib.h>

#include "tp-params.h"

G_BEGIN_DECLS

/* The keyfile group the settings live in. */
#define TP_SETTINGS_GROUP "settings"

/* Adds every key of specs with its value in params (a default when not set)
 * to out's settings as "GROUP.KEY". */
void tp_settings_add_params(GKeyFile *out, const char *group, const TpParamSpec *specs,
                            const TpParams *params);

/* Adds every key present in group `group` of in, as written, to out's
 * settings as "GROUP.KEY" (for a group whose keys belong to a plugin). */
void tp_settings_add_group(GKeyFile *out, GKeyFile *in, const char *group);

/* Copies the settings of in into out (a checkpoint's state file). */
void tp_settings_copy(GKeyFile *out, GKeyFile *in);

/* NULL when saved and now hold the same settings; else the differences,
 * "[GROUP] KEY: A in the checkpoint, B now; ...". */
char *tp_settings_diff(GKeyFile *saved, GKeyFile *now);

G_END_DECLS

#endif /* TP_SETTINGS_H */
