/* tp-plugin.c — small helpers around the plugin ABI of tp-plugin.h. */
#include "config.h"

#include "tp-plugin.h"

/* "criterion", "backend", "dataset" or "communicator"; "unknown" for anything else. */
const char *
tp_plugin_kind_to_string(TpPluginKind kind)
{
    switch (kind) {
    case TP_PLUGIN_KIND_CRITERION:
        return "criterion";
    case TP_PLUGIN_KIND_BACKEND:
        return "backend";
    case TP_PLUGIN_KIND_DATASET:
        return "dataset";
    case TP_PLUGIN_KIND_COMM:
        return "communicator";
    }
    return "unknown";
}

/* Loading and validating one plugin file. Order matters: after dlopen() and
 * dlsym(), the only plugin code that runs is tp_plugin_describe(); every
 * field it returns is checked here before anything else in the plugin is
 * called. */

#include <dlfcn.h>
#include <stddef.h>

#include "tp-backend.h"
#include "tp-comm.h"
#include "tp-criterion.h"
#include "tp-dataset.h"
#include "tp-params.h"
#include "tp-registry.h"

/* The descriptor as ABI 1 defined it; a plugin may have a longer one. */
#define TP_PLUGIN_INFO_SIZE_V1 (offsetof(TpPluginInfo, params) + sizeof(const TpParamSpec *))

static gboolean
name_is_valid(const char *name)
{
    if (name == NULL || *name == '\0')
        return FALSE;
    for (const char *p = name; *p; p++)
        if (!g_ascii_islower(*p) && !g_ascii_isdigit(*p) && *p != '-')
            return FALSE;
    return TRUE;
}

static gboolean
check_info(const TpPluginInfo *info, GError **error)
{
    g_autoptr(GError) local = NULL;

    if (info == NULL) {
        g_set_error(error, TP_PLUGIN_ERROR, TP_PLUGIN_ERROR_INVALID,
                    "tp_plugin_describe() returned NULL");
        return FALSE;
    }
    if (info->abi_major != TP_PLUGIN_ABI_MAJOR) {
        g_set_error(error, TP_PLUGIN_ERROR, TP_PLUGIN_ERROR_ABI,
                    "built for plugin ABI %u, this taskprune loads ABI %d: rebuild the plugin "
                    "against taskprune-%d",
                    info->abi_major, TP_PLUGIN_ABI_MAJOR, TP_PLUGIN_ABI_MAJOR);
        return FALSE;
    }
    if (info->struct_size < TP_PLUGIN_INFO_SIZE_V1) {
        g_set_error(error, TP_PLUGIN_ERROR, TP_PLUGIN_ERROR_ABI,
                    "its TpPluginInfo is %u bytes, ABI %d needs at least %zu: rebuild the "
                    "plugin against the installed tp-plugin.h",
                    info->struct_size, TP_PLUGIN_ABI_MAJOR, (size_t)TP_PLUGIN_INFO_SIZE_V1);
        return FALSE;
    }
    if (!name_is_valid(info->name)) {
        g_set_error(error, TP_PLUGIN_ERROR, TP_PLUGIN_ERROR_INVALID,
                    "plugin name '%s' is not valid (lower-case letters, digits and '-')",
                    info->name ? info->name : "(null)");
        return FALSE;
    }
    if (info->version == NULL || info->description == NULL || info->license == NULL) {
        g_set_error(error, TP_PLUGIN_ERROR, TP_PLUGIN_ERROR_INVALID,
                    "plugin '%s' lacks a version, description or license", info->name);
        return FALSE;
    }
    if (!tp_param_specs_check(info->params, &local)) {
        g_set_error(error, TP_PLUGIN_ERROR, TP_PLUGIN_ERROR_INVALID, "plugin '%s': %s", info->name,
                    local->message);
        return FALSE;
    }
    switch (info->kind) {
    case TP_PLUGIN_KIND_BACKEND:
        return tp_backend_vtable_check(info, error);
    case TP_PLUGIN_KIND_DATASET:
        return tp_dataset_vtable_check(info, error);
    case TP_PLUGIN_KIND_CRITERION:
        return tp_criterion_vtable_check(info, error);
    case TP_PLUGIN_KIND_COMM:
        return tp_comm_vtable_check(info, error);
    }
    g_set_error(error, TP_PLUGIN_ERROR, TP_PLUGIN_ERROR_INVALID,
                "plugin '%s' has unknown kind %d (valid: 1 criterion, 2 backend, 3 dataset, 4 communicator)",
                info->name, (int)info->kind);
    return FALSE;
}

TpPlugin *
tp_plugin_load(const char *path, GError **error)
{
    g_autoptr(GError) local = NULL;
    TpPluginDescribeFunc describe;
    const TpPluginInfo *info;
    void *handle;

    g_return_val_if_fail(path != NULL, NULL);

    handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        g_set_error(error, TP_PLUGIN_ERROR, TP_PLUGIN_ERROR_NOT_LOADABLE,
                    "%s: not a loadable shared object: %s", path, dlerror());
        return NULL;
    }
    *(void **)&describe = dlsym(handle, TP_PLUGIN_ENTRY_SYMBOL);
    if (describe == NULL) {
        g_set_error(error, TP_PLUGIN_ERROR, TP_PLUGIN_ERROR_NO_ENTRY,
                    "%s: not a taskprune plugin: it does not export %s()", path,
                    TP_PLUGIN_ENTRY_SYMBOL);
        dlclose(handle);
        return NULL;
    }
    info = describe();
    if (!check_info(info, &local)) {
        g_set_error(error, TP_PLUGIN_ERROR, local->code, "%s: %s", path, local->message);
        dlclose(handle);
        return NULL;
    }

    TpPlugin *plugin = g_new0(TpPlugin, 1);
    plugin->path = g_strdup(path);
    plugin->info = info;
    plugin->handle = handle;
    return plugin;
}

void
tp_plugin_free(TpPlugin *plugin)
{
    if (plugin == NULL)
        return;
    dlclose(plugin->handle);
    g_free(plugin->path);
    g_free(plugin);
}
