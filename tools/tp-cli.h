/* tp-cli.h — what the subcommands of the taskprune command share. */
#ifndef TP_CLI_H
#define TP_CLI_H

#include <glib.h>

#include "tp-backend.h"

/* A subcommand: argv[0] is its name; returns the process exit status. */
typedef struct {
    const char *name;
    const char *summary;     /* one line for `taskprune --help` */
    const char *parameters;  /* arguments after the options in the usage line: "MODEL.onnx" */
    const char *description; /* the paragraph under the usage line */
    int (*run)(int argc, char **argv);
    const GOptionEntry *options;
} TpCommand;

extern const TpCommand tp_cmd_info;
extern const TpCommand tp_cmd_plugins;
extern const TpCommand tp_cmd_zoo;

/* Parses argv against the command's options with its help text; on failure
 * prints the error and returns FALSE (the caller exits with 2). */
gboolean tp_cli_parse(const TpCommand *command, int *argc, char ***argv);

/* Opens backend `name` (from the default registry) with its default
 * parameters; NULL with error naming what is there. */
TpBackend *tp_cli_open_backend(const char *name, GError **error);

/* Prints "taskprune: MESSAGE" to stderr. */
void tp_cli_error(const char *format, ...) G_GNUC_PRINTF(1, 2);

#endif /* TP_CLI_H */
