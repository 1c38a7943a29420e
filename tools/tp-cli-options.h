/* tp-cli-options.h — the options every command spells the same way: one
 * row each in the OPTION GRAMMAR table of taskprune(1), which
 * tests/tools/test-grammar.sh holds every command's --help against. A
 * command lists the rows that apply to it with these macros; their values
 * land in tp_cli_options, and tp_cli_options_apply() writes them into the
 * command's keyfile. */
#ifndef TP_CLI_OPTIONS_H
#define TP_CLI_OPTIONS_H

#include <glib.h>

typedef struct {
    char *config;                        /* -C FILE.ini */
    char **set;                          /* -s GROUP.KEY=VALUE */
    char **data, **prune, **finetune, **train; /* -D, -p, -f, -t KEY=VALUE */
    char *mean, *std;                    /* --mean, --std LIST */
    char *backend;                       /* --backend NAME */
    int device;                          /* --device N; -1: not given */
    int threads;                         /* -j N; -1: not given */
    gboolean quiet;                      /* -q */
    gboolean json;                       /* --json */
    gboolean resume;                     /* -r */
} TpCliOptions;

extern TpCliOptions tp_cli_options;

/* clang-format off */
#define TP_CLI_OPTION_CONFIG(help) \
    {"config", 'C', 0, G_OPTION_ARG_FILENAME, &tp_cli_options.config, help, "FILE.ini"}
#define TP_CLI_OPTION_SET \
    {"set", 's', 0, G_OPTION_ARG_STRING_ARRAY, &tp_cli_options.set, \
     "Set a keyfile key, e.g. --set prune.goal=0.95 (repeatable; wins over the others)", \
     "GROUP.KEY=VALUE"}
#define TP_CLI_OPTION_DATA \
    {"data", 'D', 0, G_OPTION_ARG_STRING_ARRAY, &tp_cli_options.data, \
     "A [dataset] key, e.g. -D path=/data (repeatable)", "KEY=VALUE"}
#define TP_CLI_OPTION_PRUNE \
    {"prune", 'p', 0, G_OPTION_ARG_STRING_ARRAY, &tp_cli_options.prune, \
     "A [prune] key, e.g. -p goal=0.95 (repeatable)", "KEY=VALUE"}
#define TP_CLI_OPTION_FINETUNE \
    {"finetune", 'f', 0, G_OPTION_ARG_STRING_ARRAY, &tp_cli_options.finetune, \
     "A [finetune] key, e.g. -f epochs=0.5 (repeatable)", "KEY=VALUE"}
#define TP_CLI_OPTION_TRAIN \
    {"train", 't', 0, G_OPTION_ARG_STRING_ARRAY, &tp_cli_options.train, \
     "A [train] key, e.g. -t lr=0.1 (repeatable)", "KEY=VALUE"}
#define TP_CLI_OPTION_MEAN \
    {"mean", 0, 0, G_OPTION_ARG_STRING, &tp_cli_options.mean, \
     "The input's per-channel mean, pixels in 0..1 ([model] mean; e.g. 0.485,0.456,0.406)", \
     "LIST"}
#define TP_CLI_OPTION_STD \
    {"std", 0, 0, G_OPTION_ARG_STRING, &tp_cli_options.std, \
     "The input's per-channel standard deviation ([model] std; e.g. 0.229,0.224,0.225)", "LIST"}
#define TP_CLI_OPTION_BACKEND \
    {"backend", 0, 0, G_OPTION_ARG_STRING, &tp_cli_options.backend, \
     "Backend plugin ([backend] plugin; default cpu)", "NAME"}
#define TP_CLI_OPTION_DEVICE \
    {"device", 0, 0, G_OPTION_ARG_INT, &tp_cli_options.device, \
     "GPU of a GPU backend ([backend] device)", "N"}
#define TP_CLI_OPTION_THREADS \
    {"threads", 'j', 0, G_OPTION_ARG_INT, &tp_cli_options.threads, \
     "Threads of the cpu backend ([backend] threads; 0: all cores)", "N"}
#define TP_CLI_OPTION_QUIET \
    {"quiet", 'q', 0, G_OPTION_ARG_NONE, &tp_cli_options.quiet, "Print only the result", NULL}
#define TP_CLI_OPTION_JSON \
    {"json", 0, 0, G_OPTION_ARG_NONE, &tp_cli_options.json, "Print the result as JSON", NULL}
#define TP_CLI_OPTION_RESUME(help) \
    {"resume", 'r', 0, G_OPTION_ARG_NONE, &tp_cli_options.resume, help, NULL}
/* clang-format on */

/* Writes the options given into keyfile: --mean and --std into [model];
 * --backend, --device and -j into [backend]; -D, -p, -f, -t into their
 * groups; then every --set, so a --set wins. */
gboolean tp_cli_options_apply(GKeyFile *keyfile, GError **error);

#endif /* TP_CLI_OPTIONS_H */
