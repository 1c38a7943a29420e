/* tp-keyfile.c — strict keyfile reading with line numbers (tp-keyfile.h). */
#include "config.h"

#include <string.h>

#include "tp-keyfile.h"

/* Checks each line's shape and that no key repeats in a group, before
 * GLib parses the text (its errors have no line number). */
static gboolean
check_lines(const char *data, gsize length, const char *source, GError **error)
{
    g_autofree char *text = g_strndup(data, length);
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_autofree char *group = NULL;

    for (int i = 0; lines[i] != NULL; i++) {
        char *line = g_strchug(lines[i]);
        const char *eq;
        g_strchomp(line);
        if (*line == '\0' || *line == '#')
            continue;
        if (*line == '[') {
            if (line[strlen(line) - 1] != ']' || strlen(line) < 3) {
                g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_PARSE,
                            "%s:%d: '%s' is not a group header ([NAME])", source, i + 1, line);
                return FALSE;
            }
            g_free(group);
            group = g_strndup(line + 1, strlen(line) - 2);
            continue;
        }
        eq = strchr(line, '=');
        if (eq == NULL || eq == line) {
            g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_PARSE,
                        "%s:%d: '%s' is neither KEY = VALUE, a [group] nor a # comment", source,
                        i + 1, line);
            return FALSE;
        }
        g_autofree char *key = g_strstrip(g_strndup(line, (gsize)(eq - line)));
        if (group == NULL) {
            g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_PARSE,
                        "%s:%d: key '%s' before the first [group]", source, i + 1, key);
            return FALSE;
        }
        char *id = g_strconcat(group, "\n", key, NULL);
        gpointer first = g_hash_table_lookup(seen, id);
        if (first != NULL) {
            g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_PARSE,
                        "%s:%d: [%s] %s: given twice (first on line %d); keep one", source, i + 1,
                        group, key, GPOINTER_TO_INT(first));
            g_free(id);
            return FALSE;
        }
        g_hash_table_insert(seen, id, GINT_TO_POINTER(i + 1));
    }
    return TRUE;
}

gboolean
tp_keyfile_load_data(GKeyFile *keyfile, const char *data, gsize length, const char *source,
                     GError **error)
{
    g_return_val_if_fail(keyfile != NULL && data != NULL && source != NULL, FALSE);

    if (!check_lines(data, length, source, error))
        return FALSE;
    if (!g_key_file_load_from_data(keyfile, data, length, G_KEY_FILE_NONE, error)) {
        g_prefix_error(error, "%s: ", source);
        return FALSE;
    }
    return TRUE;
}

gboolean
tp_keyfile_load(GKeyFile *keyfile, const char *path, GError **error)
{
    g_autofree char *data = NULL;
    gsize length;

    g_return_val_if_fail(keyfile != NULL && path != NULL, FALSE);

    if (!g_file_get_contents(path, &data, &length, error))
        return FALSE;
    return tp_keyfile_load_data(keyfile, data, length, path, error);
}
