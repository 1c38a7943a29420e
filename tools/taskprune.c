/* taskprune.c — the command line: dispatches `taskprune COMMAND ...` to one
 * file per subcommand (cmd-*.c). */
#include "config.h"

#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "tp-cli.h"
#include "tp-plugin.h"

/* clang-format off */
static const TpCommand *const commands[] = {
    &tp_cmd_specialize,
    &tp_cmd_run,
    &tp_cmd_score,
    &tp_cmd_train,
    &tp_cmd_eval,
    &tp_cmd_predict,
    &tp_cmd_explain,
    &tp_cmd_report,
    &tp_cmd_info,
    &tp_cmd_compare,
    &tp_cmd_bench,
    &tp_cmd_zoo,
    &tp_cmd_plugins,
};
/* clang-format on */

static const TpCommand *
find_command(const char *name)
{
    for (gsize i = 0; i < G_N_ELEMENTS(commands); i++)
        if (g_str_equal(commands[i]->name, name))
            return commands[i];
    return NULL;
}

static void
print_usage(FILE *out)
{
    fprintf(out, "Usage: taskprune COMMAND [OPTION...]\n\n"
                 "Specializes a trained CNN to the classes a device needs by pruning whole\n"
                 "filters and neurons.\n\nCommands:\n");
    for (gsize i = 0; i < G_N_ELEMENTS(commands); i++)
        fprintf(out, "  %-12s %s\n", commands[i]->name, commands[i]->summary);
    fprintf(out, "  %-12s %s\n", "help", "Show the help of a command");
    fprintf(out, "\nOptions:\n"
                 "  -h, --help     Show this help\n"
                 "  --version      Show the version\n\n"
                 "Run 'taskprune help COMMAND' or 'taskprune COMMAND --help' for a command's "
                 "options.\nSee taskprune(1).\n");
}

/* Warnings and errors from the library read as the command's own messages;
 * debug output (G_MESSAGES_DEBUG) keeps GLib's format. */
static GLogWriterOutput
write_log(GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer data)
{
    const char *message = NULL;

    if (level & (G_LOG_LEVEL_INFO | G_LOG_LEVEL_DEBUG))
        return g_log_writer_default(level, fields, n_fields, data);
    for (gsize i = 0; i < n_fields; i++)
        if (g_str_equal(fields[i].key, "MESSAGE"))
            message = fields[i].value;
    fprintf(stderr, "taskprune: %s%s\n",
            level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING) ? "warning: "
                                                                                     : "",
            message ? message : "");
    return G_LOG_WRITER_HANDLED;
}

static int
run_help(int argc, char **argv)
{
    const TpCommand *command;

    if (argc < 2) {
        print_usage(stdout);
        return 0;
    }
    if (g_str_equal(argv[1], "help")) {
        printf("Usage: taskprune help [COMMAND]\n\nShows the options of COMMAND, or the list of "
               "commands.\n");
        return 0;
    }
    command = find_command(argv[1]);
    if (command == NULL) {
        tp_cli_error("no command '%s' (run 'taskprune --help' for the list)", argv[1]);
        return 2;
    }
    g_autoptr(GOptionContext) context = tp_cli_context(command);
    g_autofree char *help = g_option_context_get_help(context, FALSE, NULL);
    fputs(help, stdout);
    return 0;
}

int
main(int argc, char **argv)
{
    const TpCommand *command;

    setlocale(LC_ALL, "");
    g_set_prgname("taskprune");
    g_log_set_writer_func(write_log, NULL, NULL);

    if (argc < 2) {
        print_usage(stderr);
        return 2;
    }
    if (g_str_equal(argv[1], "--help") || g_str_equal(argv[1], "-h")) {
        print_usage(stdout);
        return 0;
    }
    if (g_str_equal(argv[1], "--version")) {
        printf("taskprune %s (plugin ABI %d)\n", PACKAGE_VERSION, TP_PLUGIN_ABI_MAJOR);
        return 0;
    }
    if (g_str_equal(argv[1], "help"))
        return run_help(argc - 1, argv + 1);

    command = find_command(argv[1]);
    if (command == NULL) {
        tp_cli_error("no command '%s' (run 'taskprune --help' for the list)", argv[1]);
        return 2;
    }
    int status = command->run(argc - 1, argv + 1);
    tp_cli_close_comm();
    return status;
}
