/* tp-cli.c — what the subcommands share: option parsing with each
 * command's help, messages, and opening backends and datasets from keyfile
 * groups that options fill in. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <fcntl.h>
#include <unistd.h>

#include "tp-cli.h"
#include "tp-comm.h"
#include "tp-normalization.h"
#include "tp-registry.h"

void
tp_cli_error(const char *format, ...)
{
    va_list args;
    g_autofree char *message = NULL;

    va_start(args, format);
    message = g_strdup_vprintf(format, args);
    va_end(args);
    fprintf(stderr, "taskprune: %s\n", message);
}

int
tp_cli_fail(GError *error)
{
    TpComm *comm = tp_comm_get_parallel();

    if (comm != NULL) {
        g_autofree char *message = g_strdup_printf("taskprune: rank %d of %d: %s", comm->rank,
                                                   comm->size, error->message);
        fflush(stdout);
        tp_comm_abort(comm, message);
    }
    tp_cli_error("%s", error->message);
    g_error_free(error);
    return 1;
}

static TpComm *cli_comm;

gboolean
tp_cli_open_comm(GError **error)
{
    const char *name = g_getenv("TASKPRUNE_COMM");
    const TpPlugin *plugin;

    if (name == NULL || *name == '\0')
        name = tp_comm_detect();
    plugin = tp_registry_lookup(tp_registry_get_default(), TP_PLUGIN_KIND_COMM, name, error);
    if (plugin == NULL) {
        if (g_str_equal(name, "mpi"))
            g_prefix_error(error, "started by mpirun or srun, but without the mpi communicator "
                                  "(Debian: taskprune-mpi; build: configure --with-mpi): ");
        return FALSE;
    }
    cli_comm = tp_comm_new(plugin->info, NULL, error);
    if (cli_comm == NULL)
        return FALSE;
    tp_comm_set_default(cli_comm);
    if (cli_comm->rank != 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) {
            fflush(stdout);
            dup2(null, STDOUT_FILENO);
            close(null);
        }
    }
    return TRUE;
}

void
tp_cli_close_comm(void)
{
    g_clear_pointer(&cli_comm, tp_comm_free);
}

GOptionContext *
tp_cli_context(const TpCommand *command)
{
    g_autofree char *prgname = g_strdup_printf("taskprune %s", command->name);
    GOptionContext *context = g_option_context_new(command->parameters);

    g_set_prgname(prgname);

    g_option_context_set_summary(context, command->description);
    if (command->options != NULL)
        g_option_context_add_main_entries(context, command->options, NULL);
    return context;
}

gboolean
tp_cli_parse(const TpCommand *command, int *argc, char ***argv)
{
    g_autoptr(GOptionContext) context = tp_cli_context(command);
    g_autoptr(GError) error = NULL;

    if (!g_option_context_parse(context, argc, argv, &error)) {
        tp_cli_error("%s: %s (see 'taskprune help %s')", command->name, error->message,
                     command->name);
        return FALSE;
    }
    return TRUE;
}

gboolean
tp_cli_set_pairs(GKeyFile *keyfile, const char *group, char **pairs, GError **error)
{
    for (int i = 0; pairs != NULL && pairs[i] != NULL; i++) {
        const char *eq = strchr(pairs[i], '=');
        if (eq == NULL || eq == pairs[i]) {
            g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                        "'%s' is not KEY=VALUE (a key of the [%s] group)", pairs[i], group);
            return FALSE;
        }
        g_autofree char *key = g_strndup(pairs[i], (gsize)(eq - pairs[i]));
        g_key_file_set_string(keyfile, group, key, eq + 1);
    }
    return TRUE;
}

gboolean
tp_cli_check_groups(GKeyFile *keyfile, const char *source, const char *const *groups,
                    GError **error)
{
    g_auto(GStrv) present = g_key_file_get_groups(keyfile, NULL);

    for (int i = 0; present[i] != NULL; i++) {
        if (!g_strv_contains(groups, present[i])) {
            g_autofree char *valid = g_strjoinv("], [", (char **)groups);
            g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_GROUP_NOT_FOUND,
                        "%s: unknown group [%s] (valid: [%s])", source, present[i], valid);
            return FALSE;
        }
    }
    return TRUE;
}

TpBackend *
tp_cli_open_backend(GKeyFile *keyfile, const char *source, GError **error)
{
    static const char *const own_keys[] = {"plugin", "max-tensor-bytes", NULL};
    g_autofree char *name = g_key_file_get_string(keyfile, "backend", "plugin", NULL);
    const TpPlugin *plugin = tp_registry_lookup(tp_registry_get_default(), TP_PLUGIN_KIND_BACKEND,
                                                name ? name : "cpu", error);
    g_autoptr(TpParams) params = NULL;
    TpBackend *backend;

    if (plugin == NULL)
        return NULL;
    params = tp_params_new(plugin->info->params);
    if (!tp_params_load(params, keyfile, "backend", source, own_keys, error))
        return NULL;
    backend = tp_backend_new(plugin->info, params, error);
    if (backend != NULL && !tp_backend_load_limits(backend, keyfile, source, error))
        g_clear_pointer(&backend, tp_backend_free);
    return backend;
}

char *
tp_cli_quote(const char *arg)
{
    static const char safe[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                               "-_./,=:+@%";

    if (*arg && strspn(arg, safe) == strlen(arg))
        return g_strdup(arg);
    return g_shell_quote(arg);
}

const char *
tp_cli_output_name(const TpModel *model, int k, char *buf, gsize size)
{
    const char *const *names = tp_model_get_class_names(model);

    if (names != NULL && k < (int)g_strv_length((char **)names))
        return names[k];
    g_snprintf(buf, size, "%d", k);
    return buf;
}

void
tp_cli_warn_unnormalized(const TpModel *model, const char *path)
{
    g_autofree char *message = tp_normalization_missing_message(model, path);

    if (message != NULL)
        g_warning("%s", message);
}

gsize
tp_cli_numel(const TpShape *shape)
{
    gsize n = 1;

    for (int i = 0; i < shape->ndim; i++)
        n *= (gsize)shape->dim[i];
    return n;
}

void
tp_cli_json_string(GString *out, const char *s)
{
    g_string_append_c(out, '"');
    for (const char *p = s; *p; p++) {
        if (*p == '"' || *p == '\\')
            g_string_append_printf(out, "\\%c", *p);
        else if ((guchar)*p < 0x20)
            g_string_append_printf(out, "\\u%04x", (guchar)*p);
        else
            g_string_append_c(out, *p);
    }
    g_string_append_c(out, '"');
}
