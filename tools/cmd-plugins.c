/* cmd-plugins.c — `taskprune plugins`: the plugins found, by kind, and with
 * --describe one plugin's keys. */
#include "config.h"

#include <stdio.h>

#include "tp-cli.h"
#include "tp-params.h"
#include "tp-registry.h"

static char *describe;
static char *plugin_path;

static const GOptionEntry options[] = {
    {"describe", 0, 0, G_OPTION_ARG_STRING, &describe,
     "Show one plugin's description and keyfile keys", "NAME"},
    {"plugin-path", 0, 0, G_OPTION_ARG_STRING, &plugin_path,
     "Search these ':'-separated folders first", "DIRS"},
    {NULL},
};

static const TpPluginKind kinds[] = {
    TP_PLUGIN_KIND_BACKEND,
    TP_PLUGIN_KIND_CRITERION,
    TP_PLUGIN_KIND_DATASET,
    TP_PLUGIN_KIND_COMM,
};

static void
print_list(TpRegistry *registry)
{
    for (gsize k = 0; k < G_N_ELEMENTS(kinds); k++) {
        g_autoptr(GPtrArray) plugins = tp_registry_list(registry, kinds[k]);

        printf("%s%s plugins:\n", k ? "\n" : "", tp_plugin_kind_to_string(kinds[k]));
        if (plugins->len == 0)
            printf("  (none)\n");
        for (guint i = 0; i < plugins->len; i++) {
            const TpPlugin *plugin = g_ptr_array_index(plugins, i);
            printf("  %-12s %-8s %s\n", plugin->info->name, plugin->info->version,
                   plugin->info->description);
        }
    }
}

static gboolean
print_description(TpRegistry *registry, const char *name)
{
    gboolean found = FALSE;

    for (gsize k = 0; k < G_N_ELEMENTS(kinds); k++) {
        const TpPlugin *plugin = tp_registry_lookup(registry, kinds[k], name, NULL);
        g_autoptr(GString) keys = g_string_new(NULL);

        if (plugin == NULL)
            continue;
        if (found)
            printf("\n");
        found = TRUE;
        printf("%s (%s plugin, version %s, %s)\n  %s\n  file: %s\n", plugin->info->name,
               tp_plugin_kind_to_string(plugin->info->kind), plugin->info->version,
               plugin->info->license, plugin->info->description, plugin->path);
        tp_param_specs_describe(plugin->info->params, "  ", keys);
        printf("\nkeys:\n%s", keys->len ? keys->str : "  (none)\n");
    }
    if (!found) {
        g_autoptr(GString) names = g_string_new(NULL);
        for (gsize k = 0; k < G_N_ELEMENTS(kinds); k++) {
            g_autoptr(GPtrArray) plugins = tp_registry_list(registry, kinds[k]);
            for (guint i = 0; i < plugins->len; i++) {
                const TpPlugin *plugin = g_ptr_array_index(plugins, i);
                g_string_append_printf(names, "%s%s", names->len ? ", " : "", plugin->info->name);
            }
        }
        tp_cli_error("no plugin named '%s' (available: %s)", name,
                     names->len ? names->str : "none");
    }
    return found;
}

static int
run(int argc, char **argv)
{
    g_autoptr(TpRegistry) registry = NULL;

    if (!tp_cli_parse(&tp_cmd_plugins, &argc, &argv))
        return 2;
    if (argc > 1) {
        tp_cli_error("plugins: unexpected argument '%s'", argv[1]);
        return 2;
    }
    registry = tp_registry_new();
    tp_registry_scan_default(registry, plugin_path);
    if (describe != NULL)
        return print_description(registry, describe) ? 0 : 1;
    print_list(registry);
    return 0;
}

const TpCommand tp_cmd_plugins = {
    /* .name = */ "plugins",
    /* .summary = */ "List the criterion, backend and dataset plugins found",
    /* .parameters = */ "",
    /* .description = */
    "Lists the plugins found on the plugin path ($TASKPRUNE_PLUGIN_PATH, then the installed\n"
    "folder), by kind. With --describe, prints one plugin's description and the keys it\n"
    "accepts in a pipeline keyfile, with their types, defaults and ranges.",
    /* .run = */ run,
    /* .options = */ options,
};
