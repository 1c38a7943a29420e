/* tp-cli-options.c — the options every command spells the same way
 * (tp-cli-options.h). */
#include "config.h"

#include <string.h>

#include "tp-cli-options.h"
#include "tp-cli.h"

TpCliOptions tp_cli_options = {.device = -1, .threads = -1};

/* "GROUP.KEY=VALUE": the group is everything before the last dot of the
 * part before '=' (keys have no dots; a group may have spaces). */
static gboolean
set_key(GKeyFile *keyfile, const char *pair, GError **error)
{
    const char *eq = strchr(pair, '=');
    g_autofree char *name = eq ? g_strndup(pair, (gsize)(eq - pair)) : NULL;
    char *dot = name ? strrchr(name, '.') : NULL;

    if (dot == NULL || dot == name || dot[1] == '\0') {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "--set %s: not GROUP.KEY=VALUE (e.g. --set prune.goal=0.95)", pair);
        return FALSE;
    }
    *dot = '\0';
    g_key_file_set_string(keyfile, name, dot + 1, eq + 1);
    return TRUE;
}

gboolean
tp_cli_options_apply(GKeyFile *keyfile, GError **error)
{
    const TpCliOptions *o = &tp_cli_options;

    if (o->mean != NULL)
        g_key_file_set_string(keyfile, "model", "mean", o->mean);
    if (o->std != NULL)
        g_key_file_set_string(keyfile, "model", "std", o->std);
    if (o->backend != NULL)
        g_key_file_set_string(keyfile, "backend", "plugin", o->backend);
    if (o->device >= 0)
        g_key_file_set_integer(keyfile, "backend", "device", o->device);
    if (o->threads >= 0)
        g_key_file_set_integer(keyfile, "backend", "threads", o->threads);
    if (!tp_cli_set_pairs(keyfile, "dataset", o->data, error) ||
        !tp_cli_set_pairs(keyfile, "prune", o->prune, error) ||
        !tp_cli_set_pairs(keyfile, "finetune", o->finetune, error) ||
        !tp_cli_set_pairs(keyfile, "train", o->train, error))
        return FALSE;
    for (int i = 0; o->set != NULL && o->set[i] != NULL; i++)
        if (!set_key(keyfile, o->set[i], error))
            return FALSE;
    return TRUE;
}
