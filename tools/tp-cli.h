/* tp-cli.h — what the subcommands of the taskprune command share. */
#ifndef TP_CLI_H
#define TP_CLI_H

#include <glib.h>

#include "tp-backend.h"
#include "tp-model.h"

/* A subcommand: argv[0] is its name; returns the process exit status. */
typedef struct {
    const char *name;
    const char *summary;     /* one line for `taskprune --help` */
    const char *parameters;  /* arguments after the options in the usage line: "MODEL.onnx" */
    const char *description; /* the paragraph under the usage line */
    int (*run)(int argc, char **argv);
    const GOptionEntry *options;
} TpCommand;

extern const TpCommand tp_cmd_bench;
extern const TpCommand tp_cmd_compare;
extern const TpCommand tp_cmd_eval;
extern const TpCommand tp_cmd_explain;
extern const TpCommand tp_cmd_info;
extern const TpCommand tp_cmd_plugins;
extern const TpCommand tp_cmd_report;
extern const TpCommand tp_cmd_predict;
extern const TpCommand tp_cmd_run;
extern const TpCommand tp_cmd_score;
extern const TpCommand tp_cmd_specialize;
extern const TpCommand tp_cmd_train;
extern const TpCommand tp_cmd_zoo;

/* Parses argv against the command's options with its help text; on failure
 * prints the error and returns FALSE (the caller exits with 2). */
gboolean tp_cli_parse(const TpCommand *command, int *argc, char ***argv);

/* The GOptionContext of a command: its options, usage line and description. */
GOptionContext *tp_cli_context(const TpCommand *command);

/* Sets "KEY=VALUE" strings (NULL-terminated; NULL for none) in group. */
gboolean tp_cli_set_pairs(GKeyFile *keyfile, const char *group, char **pairs, GError **error);

/* Fails, naming source and the valid groups, if keyfile has a group not in
 * the NULL-terminated list. */
gboolean tp_cli_check_groups(GKeyFile *keyfile, const char *source, const char *const *groups,
                             GError **error);

/* The pipeline keyfile of `specialize` and `score`: -C's file, if given,
 * with [model] path = model, and [task] classes, [criterion] plugin (default
 * lrp) and [dataset] plugin (default idx) where given; the common options
 * (tp_cli_options_apply()) are not applied yet. */
gboolean tp_cli_task_keyfile(GKeyFile *keyfile, const char *model, const char *classes,
                             const char *criterion, const char *dataset, GError **error);

/* Opens the backend the [backend] group names (`plugin`, default cpu) with
 * the group's other keys as its parameters. */
TpBackend *tp_cli_open_backend(GKeyFile *keyfile, const char *source, GError **error);

/* Prints error's message (tp_cli_error), frees it, and returns 1, the exit
 * status of a failed command. In a job of several processes it names the
 * rank and ends the whole job (the others would wait for this one). */
int tp_cli_fail(GError *error);

/* The name of the model's output k: its class name, else k written into buf
 * (size bytes). */
const char *tp_cli_output_name(const TpModel *model, int k, char *buf, gsize size);

/* Warns when the model (read from path) records no input normalization
 * (tp_normalization_missing_message()). */
void tp_cli_warn_unnormalized(const TpModel *model, const char *path);

/* Values per sample of shape (the product of its dimensions). */
gsize tp_cli_numel(const TpShape *shape);

/* Appends s to out as a JSON string literal (quoted and escaped). */
void tp_cli_json_string(GString *out, const char *s);

/* A new JSON object left open after its "model", "criterion" and "task"
 * members (for `score` and `specialize --dry-run`). */
GString *tp_cli_json_task(const char *model, const char *criterion, const char *task);

/* Runs the pipeline (or sweep) keyfile describes, with progress and the
 * final table, or the report with --json (cmd-run.c); with -r, from its
 * checkpoint. Ctrl-C stops it at a checkpoint, prints resume_command (the
 * command line that continues it) and exits 130. Returns the exit status. */
int tp_cli_run_pipeline(GKeyFile *keyfile, const char *source, const char *resume_command);

/* arg as a shell word: as is when it needs no quotes, else quoted. */
char *tp_cli_quote(const char *arg);

/* Opens the communicator (docs/scaling.md): $TASKPRUNE_COMM, else "mpi"
 * when a launcher started several processes, else "single"; makes it the
 * engine's default. On ranks other than 0, standard output goes to
 * /dev/null (rank 0 prints progress and results). */
gboolean tp_cli_open_comm(GError **error);
/* Closes it (MPI_Finalize for mpi); main() calls this after the command. */
void tp_cli_close_comm(void);

/* Prints "taskprune: MESSAGE" to stderr. */
void tp_cli_error(const char *format, ...) G_GNUC_PRINTF(1, 2);

#endif /* TP_CLI_H */
