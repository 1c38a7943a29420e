/* tp-paths.h — checks on the files and folders a command will write, made
 * before any work, so that a run never ends by failing to save its result
 * or by overwriting what it read. */
#ifndef TP_PATHS_H
#define TP_PATHS_H

#include <glib.h>

G_BEGIN_DECLS

/* Fails (G_FILE_ERROR) unless `path` can be written as a new or replaced
 * file: it is not a folder, its folder exists and is writable, and it is
 * not one of the NULL-terminated `inputs` (the same name, or another name
 * of the same file: a hard or symbolic link). `what` names the path in
 * messages, e.g. "[output] model". */
gboolean tp_paths_check_output(const char *path, const char *what, const char *const *inputs,
                               GError **error);

/* Fails (G_FILE_ERROR) unless `folder` is a writable folder, or does not
 * exist and its nearest existing parent is a writable folder. */
gboolean tp_paths_check_folder(const char *folder, const char *what, GError **error);

G_END_DECLS

#endif /* TP_PATHS_H */
