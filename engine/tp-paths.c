/* tp-paths.c — checks on output files and folders before any work
 * (tp-paths.h). */
#include "config.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <unistd.h>

#include "tp-paths.h"

/* Whether a and b name the same existing file. */
static gboolean
same_file(const char *a, const char *b)
{
    GStatBuf sa, sb;

    return g_stat(a, &sa) == 0 && g_stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

static gboolean
writable_folder(const char *folder, const char *what, const char *path, GError **error)
{
    if (!g_file_test(folder, G_FILE_TEST_IS_DIR)) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT, "%s %s: folder %s does not exist",
                    what, path, folder);
        return FALSE;
    }
    if (g_access(folder, W_OK) != 0) {
        int saved = errno;
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(saved),
                    "%s %s: cannot write in folder %s: %s", what, path, folder, g_strerror(saved));
        return FALSE;
    }
    return TRUE;
}

gboolean
tp_paths_check_output(const char *path, const char *what, const char *const *inputs,
                      GError **error)
{
    g_autofree char *folder = g_path_get_dirname(path);

    g_return_val_if_fail(path != NULL && what != NULL, FALSE);

    if (g_file_test(path, G_FILE_TEST_IS_DIR)) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_ISDIR,
                    "%s %s: is a folder (give a file name)", what, path);
        return FALSE;
    }
    for (int i = 0; inputs != NULL && inputs[i] != NULL; i++) {
        if (same_file(path, inputs[i])) {
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_EXIST,
                        "%s %s: is the input %s; refusing to overwrite it (give another name)",
                        what, path, inputs[i]);
            return FALSE;
        }
    }
    if (g_file_test(path, G_FILE_TEST_EXISTS) && g_access(path, W_OK) != 0 &&
        g_access(folder, W_OK) != 0) {
        int saved = errno;
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(saved), "%s %s: cannot write: %s",
                    what, path, g_strerror(saved));
        return FALSE;
    }
    return writable_folder(folder, what, path, error);
}

gboolean
tp_paths_check_folder(const char *folder, const char *what, GError **error)
{
    g_autofree char *parent = NULL;

    g_return_val_if_fail(folder != NULL && what != NULL, FALSE);

    if (g_file_test(folder, G_FILE_TEST_EXISTS)) {
        if (!g_file_test(folder, G_FILE_TEST_IS_DIR)) {
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOTDIR,
                        "%s %s: is a file, not a folder", what, folder);
            return FALSE;
        }
        return writable_folder(folder, what, folder, error);
    }
    /* The nearest existing parent must take the new folders. */
    parent = g_path_get_dirname(folder);
    while (!g_file_test(parent, G_FILE_TEST_EXISTS)) {
        char *up = g_path_get_dirname(parent);
        if (g_str_equal(up, parent)) {
            g_free(up);
            break;
        }
        g_free(parent);
        parent = up;
    }
    return writable_folder(parent, what, folder, error);
}
