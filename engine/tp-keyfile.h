/* tp-keyfile.h — reading a keyfile (pipeline, training) strictly: GLib's
 * parser, plus the line number of a syntax error and a refusal of a key
 * given twice in a group (GLib would silently keep the last). */
#ifndef TP_KEYFILE_H
#define TP_KEYFILE_H

#include <glib.h>

G_BEGIN_DECLS

/* Loads path into keyfile. Errors read "PATH:LINE: what is wrong" where the
 * line is known (G_KEY_FILE_ERROR_PARSE for syntax, a key given twice in
 * the same group, a key before the first group), else "PATH: ...". */
gboolean tp_keyfile_load(GKeyFile *keyfile, const char *path, GError **error);

/* The same for text already in memory; source names it in messages. */
gboolean tp_keyfile_load_data(GKeyFile *keyfile, const char *data, gsize length,
                              const char *source, GError **error);

G_END_DECLS

#endif /* TP_KEYFILE_H */
