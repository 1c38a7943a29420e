/* cmd-train.c — `taskprune train`: trains a zoo architecture on a dataset
 * plugin and writes the result as ONNX, from options or a keyfile
 * ([model] arch width, [dataset] plugin + its keys, [train] keys of
 * tp_train_get_param_specs(), [backend] plugin + its keys, [output] model
 * checkpoint). Each epoch ends in an atomic checkpoint; Ctrl-C writes one
 * too, and --resume continues from it to the identical result. */
#include "config.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tp-cli-options.h"
#include "tp-cli.h"
#include "tp-comm.h"
#include "tp-keyfile.h"
#include "tp-lock.h"
#include "tp-normalization.h"
#include "tp-onnx.h"
#include "tp-train.h"
#include "tp-zoo.h"

static char *arch, *dataset_name, *output, *checkpoint;
static double width;
static int epochs;

static const GOptionEntry options[] = {
    {"arch", 'a', 0, G_OPTION_ARG_STRING, &arch, "Architecture from the zoo ([model] arch)",
     "NAME"},
    {"width", 'w', 0, G_OPTION_ARG_DOUBLE, &width, "Width multiplier ([model] width, default 1)",
     "W"},
    {"dataset", 'd', 0, G_OPTION_ARG_STRING, &dataset_name, "Dataset plugin ([dataset] plugin)",
     "PLUGIN"},
    TP_CLI_OPTION_DATA,
    TP_CLI_OPTION_TRAIN,
    TP_CLI_OPTION_CONFIG("Start from this training keyfile (as CONFIG.ini)"),
    TP_CLI_OPTION_SET,
    {"epochs", 'e', 0, G_OPTION_ARG_INT, &epochs, "Epochs ([train] epochs)", "N"},
    TP_CLI_OPTION_MEAN,
    TP_CLI_OPTION_STD,
    {"output", 'o', 0, G_OPTION_ARG_FILENAME, &output, "Write the trained model here", "FILE.onnx"},
    {"checkpoint", 0, 0, G_OPTION_ARG_FILENAME, &checkpoint,
     "Checkpoint folder (default: FILE.onnx.checkpoint)", "DIR"},
    TP_CLI_OPTION_RESUME("Continue the run checkpointed in the checkpoint folder"),
    TP_CLI_OPTION_BACKEND,
    TP_CLI_OPTION_DEVICE,
    TP_CLI_OPTION_THREADS,
    TP_CLI_OPTION_QUIET,
    TP_CLI_OPTION_JSON,
    {NULL},
};

static const char *const groups[] = {"model", "dataset", "train", "backend", "output", NULL};

static volatile sig_atomic_t interrupted;

static void
on_interrupt(int signal_number)
{
    interrupted = 1;
}

/* ---------------------------------------------------------------- progress */

typedef struct {
    gboolean tty;
    gint64 last_draw; /* monotonic µs */
} Reporter;

static void
format_duration(double seconds, char *out, gsize size)
{
    int s = (int)(seconds + 0.5);
    g_snprintf(out, size, "%d:%02d", s / 60, s % 60);
}

/* A progress bar on a terminal, redrawn at most 10 times a second. */
static gboolean
report(const TpTrainProgress *p, gpointer data)
{
    Reporter *r = data;
    gint64 now = g_get_monotonic_time();
    char eta[16];
    int filled;

    if (interrupted)
        return FALSE;
    if (!r->tty || (now - r->last_draw < 100000 && p->step < p->steps))
        return TRUE;
    r->last_draw = now;
    filled = (int)(24.0 * p->step / MAX(p->steps, 1));
    format_duration(p->step ? p->seconds * (p->steps - p->step) / p->step : 0, eta, sizeof(eta));
    fprintf(stderr,
            "\repoch %u/%u [%.*s%*s] %" G_GSIZE_FORMAT "/%" G_GSIZE_FORMAT
            "  loss %.4f  acc %5.2f%%  %.0f img/s  ETA %s ",
            p->epoch + 1, p->epochs, filled, "========================", 24 - filled, "", p->step,
            p->steps, p->loss, 100 * p->accuracy, p->seconds > 0 ? p->images / p->seconds : 0.0,
            eta);
    return TRUE;
}

/* ---------------------------------------------------------------- setup */

/* The run's settings: CONFIG.ini (or the checkpoint's copy) with options on top. */
static GKeyFile *
settings(const char *config, char **out_source, GError **error)
{
    g_autoptr(GKeyFile) keyfile = g_key_file_new();
    g_autofree char *folder = checkpoint ? g_strdup(checkpoint)
                              : output   ? g_strconcat(output, ".checkpoint", NULL)
                                         : NULL;
    g_autofree char *saved = NULL;
    const char *file = config;

    if (tp_cli_options.resume) {
        if (folder == NULL) {
            g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                        "--resume: give --checkpoint DIR or -o FILE.onnx (its checkpoint is "
                        "FILE.onnx.checkpoint)");
            return NULL;
        }
        file = saved = g_build_filename(folder, "train.ini", NULL);
    }
    if (file != NULL && !tp_keyfile_load(keyfile, file, error))
        return NULL;
    if (arch != NULL)
        g_key_file_set_string(keyfile, "model", "arch", arch);
    if (width != 0)
        g_key_file_set_double(keyfile, "model", "width", width);
    if (dataset_name != NULL)
        g_key_file_set_string(keyfile, "dataset", "plugin", dataset_name);
    if (epochs > 0)
        g_key_file_set_integer(keyfile, "train", "epochs", epochs);
    if (output != NULL)
        g_key_file_set_string(keyfile, "output", "model", output);
    if (checkpoint != NULL)
        g_key_file_set_string(keyfile, "output", "checkpoint", checkpoint);
    if (!tp_cli_options_apply(keyfile, error))
        return NULL;
    *out_source = g_strdup(file ? file : "the command line");
    return g_steal_pointer(&keyfile);
}

/* Checks the [model] and [output] keys; the other groups are checked by
 * the tables of the plugins and of training. */
static gboolean
check_keys(GKeyFile *keyfile, const char *source, const char *group, const char *const *valid,
           GError **error)
{
    g_auto(GStrv) keys = g_key_file_get_keys(keyfile, group, NULL, NULL);

    for (int i = 0; keys != NULL && keys[i] != NULL; i++) {
        if (!g_strv_contains(valid, keys[i])) {
            g_autofree char *list = g_strjoinv(", ", (char **)valid);
            g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_KEY_NOT_FOUND,
                        "%s: [%s] unknown key '%s' (valid keys: %s)", source, group, keys[i], list);
            return FALSE;
        }
    }
    return TRUE;
}

/* Per-channel mean and standard deviation of the loader's images. */
static gboolean
channel_statistics(TpLoader *loader, int channels, int plane, float *mean, float *std,
                   GError **error)
{
    g_autofree double *sum = g_new0(double, channels), *sum2 = g_new0(double, channels);
    const float *images;
    const gint32 *labels;
    gsize count = 0;
    int batch;

    tp_loader_start_epoch(loader, 0);
    while (TRUE) {
        g_autoptr(GError) local = NULL;
        if (!tp_loader_next(loader, &images, &labels, &batch, &local)) {
            if (local == NULL)
                break;
            g_propagate_error(error, g_steal_pointer(&local));
            return FALSE;
        }
        for (int n = 0; n < batch; n++)
            for (int c = 0; c < channels; c++)
                for (int i = 0; i < plane; i++) {
                    double v = images[((gsize)n * channels + c) * plane + i];
                    sum[c] += v;
                    sum2[c] += v * v;
                }
        count += (gsize)batch * plane;
    }
    for (int c = 0; c < channels; c++) {
        mean[c] = (float)(sum[c] / count);
        std[c] = (float)sqrt(MAX(sum2[c] / count - mean[c] * (double)mean[c], 1e-12));
    }
    return TRUE;
}

/* A new model from [model] for the dataset's images and classes. */
static TpModel *
build_model(GKeyFile *keyfile, const char *source, TpBackend *backend, TpDataset *train,
            guint64 seed, GError **error)
{
    g_autofree char *name = g_key_file_get_string(keyfile, "model", "arch", NULL);
    TpZooConfig config = {train->meta.channels,
                          train->meta.height,
                          train->meta.width,
                          train->meta.n_classes,
                          1.0,
                          seed};
    g_autoptr(GError) local = NULL;
    TpModel *model;

    if (name == NULL) {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_KEY_NOT_FOUND,
                    "%s: [model] arch: missing (give --arch; see 'taskprune zoo')", source);
        return NULL;
    }
    if (g_key_file_has_key(keyfile, "model", "width", NULL)) {
        config.width_multiplier = g_key_file_get_double(keyfile, "model", "width", &local);
        if (local != NULL || !(config.width_multiplier > 0)) {
            g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                        "%s: [model] width: not a number > 0", source);
            return NULL;
        }
    }
    model = tp_zoo_build(backend, name, &config, error);
    if (model == NULL)
        g_prefix_error(error, "%s: [model] arch: ", source);
    else if (train->meta.class_names != NULL)
        tp_model_set_class_names(model, train->meta.class_names);
    return model;
}

/* shard: this process's share of each batch in a job of several
 * (docs/scaling.md); the channel statistics read everything on every rank. */
static TpLoader *
make_loader(TpDataset *dataset, TpModel *model, const TpParams *params, TpLoaderPart part,
            gboolean shard, GError **error)
{
    const float *mean = NULL, *std = NULL;
    TpLoaderConfig config = {0};

    tp_model_get_normalization(model, &mean, &std);
    config.part = part;
    config.validation_fraction = tp_params_get_double(params, "validation-fraction");
    config.seed = (guint64)tp_params_get_int(params, "seed");
    config.shuffle = part == TP_LOADER_TRAIN;
    config.batch_size = (int)tp_params_get_int(params, "batch-size");
    config.mean = mean;
    config.std = std;
    config.augment = part == TP_LOADER_TRAIN && tp_params_get_boolean(params, "augment");
    config.prefetch = TRUE;
    config.shard_rank = shard ? tp_comm_rank() : 0;
    config.shard_count = shard ? tp_comm_size() : 1;
    return tp_loader_new(dataset, &config, error);
}

/* ---------------------------------------------------------------- run */

static int
run(int argc, char **argv)
{
    static const char *const model_keys[] = {"arch", "width", "mean", "std", NULL};
    static const char *const output_keys[] = {"model", "checkpoint", NULL};
    GError *error = NULL;
    g_autofree char *source = NULL, *out_path = NULL, *ckpt = NULL;
    g_autoptr(GKeyFile) keyfile = NULL;
    g_autoptr(TpParams) params = tp_params_new(tp_train_get_param_specs());
    g_autoptr(TpBackend) backend = NULL;
    g_autoptr(TpDataset) train = NULL, test = NULL;
    g_autoptr(TpModel) model = NULL;
    g_autoptr(TpTrainer) trainer = NULL;
    g_autoptr(TpLoader) train_loader = NULL, val_loader = NULL, test_loader = NULL;
    g_autoptr(TpEvaluation) final = NULL;
    TpTrainConfig config;
    gboolean quiet = tp_cli_options.quiet || tp_cli_options.json;
    Reporter reporter = {isatty(STDERR_FILENO) && !quiet, 0};
    double total_seconds = 0;
    gboolean writer; /* rank 0 writes files for every rank */

    if (!tp_cli_parse(&tp_cmd_train, &argc, &argv))
        return 2;
    if (!tp_cli_open_comm(&error))
        return tp_cli_fail(error);
    writer = tp_comm_rank() == 0;
    if (argc > 2 || (argc == 2 && tp_cli_options.config != NULL) ||
        (tp_cli_options.resume && (argc == 2 || tp_cli_options.config != NULL))) {
        tp_cli_error("train: give at most one CONFIG.ini, and none with --resume "
                     "(see 'taskprune help train')");
        return 2;
    }
    keyfile = settings(argc == 2 ? argv[1] : tp_cli_options.config, &source, &error);
    if (keyfile == NULL || !tp_cli_check_groups(keyfile, source, groups, &error) ||
        !check_keys(keyfile, source, "model", model_keys, &error) ||
        !check_keys(keyfile, source, "output", output_keys, &error) ||
        !tp_params_load(params, keyfile, "train", source, NULL, &error))
        return tp_cli_fail(error);
    tp_train_config_from_params(params, &config);
    out_path = g_key_file_get_string(keyfile, "output", "model", NULL);
    if (out_path == NULL) {
        tp_cli_error("train: give -o FILE.onnx (or [output] model in %s)", source);
        return 2;
    }
    ckpt = g_key_file_get_string(keyfile, "output", "checkpoint", NULL);
    if (ckpt == NULL)
        ckpt = g_strconcat(out_path, ".checkpoint", NULL);
    /* One run at a time per output model and per checkpoint folder, held by
     * the rank that writes them. */
    g_autoptr(TpLock) out_lock = NULL;
    g_autoptr(TpLock) ckpt_lock = NULL;
    if (writer && ((out_lock = tp_lock_acquire(out_path, &error)) == NULL ||
                   (ckpt_lock = tp_lock_acquire(ckpt, &error)) == NULL))
        return tp_cli_fail(error);

    backend = tp_cli_open_backend(keyfile, source, &error);
    if (backend == NULL ||
        !(train = tp_dataset_new_from_keyfile(keyfile, "dataset", source, TP_SPLIT_TRAIN, &error)))
        return tp_cli_fail(error);

    if (tp_cli_options.resume) {
        trainer = tp_trainer_load(backend, ckpt, &model, &error);
        if (trainer == NULL)
            return tp_cli_fail(error);
        config = *tp_trainer_get_config(trainer);
    } else {
        g_autofree float *mean = g_new(float, train->meta.channels);
        g_autofree float *std = g_new(float, train->meta.channels);
        g_autoptr(TpLoader) all = NULL;
        model = build_model(keyfile, source, backend, train, config.seed, &error);
        if (model == NULL)
            return tp_cli_fail(error);
        /* Normalize as [model] mean and std say, else with the training
         * split's own per-channel statistics. */
        if (!tp_normalization_apply_keys(model, keyfile, "model", source, &error))
            return tp_cli_fail(error);
        if (!g_key_file_has_key(keyfile, "model", "mean", NULL)) {
            all = make_loader(train, model, params, TP_LOADER_ALL, FALSE, &error);
            if (all == NULL || !channel_statistics(all, train->meta.channels,
                                                   train->meta.height * train->meta.width, mean,
                                                   std, &error))
                return tp_cli_fail(error);
            tp_model_set_normalization(model, mean, std);
        }
        trainer = tp_trainer_new(model, &config, &error);
        if (trainer == NULL)
            return tp_cli_fail(error);
    }
    train_loader = make_loader(train, model, params, TP_LOADER_TRAIN, TRUE, &error);
    if (train_loader == NULL)
        return tp_cli_fail(error);
    if (tp_params_get_double(params, "validation-fraction") > 0 &&
        !(val_loader = make_loader(train, model, params, TP_LOADER_VALIDATION, TRUE, &error)))
        return tp_cli_fail(error);

    /* The checkpoint folder keeps the settings, so --resume needs nothing else. */
    g_autofree char *saved = g_build_filename(ckpt, "train.ini", NULL);
    if (writer &&
        (g_mkdir_with_parents(ckpt, 0755) != 0 || !g_key_file_save_to_file(keyfile, saved, &error))) {
        if (error == NULL)
            g_set_error(&error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "cannot create %s", ckpt);
        return tp_cli_fail(error);
    }

    signal(SIGINT, on_interrupt);
    g_autofree char *arch_name = g_key_file_get_string(keyfile, "model", "arch", NULL);
    if (!quiet)
        printf("training %s on %s: %" G_GSIZE_FORMAT " images (%" G_GSIZE_FORMAT
               " held out), %d epochs, batch %d, lr %g (%s), checkpoints in %s\n",
               arch_name ? arch_name : "the checkpoint's model", train->info->name,
               tp_loader_get_n_samples(train_loader),
               val_loader ? tp_loader_get_n_samples(val_loader) : 0, config.epochs,
               config.batch_size, config.lr, tp_params_get_string(params, "schedule"), ckpt);
    while (tp_trainer_get_epoch(trainer) < (guint)config.epochs) {
        TpTrainProgress p;
        gboolean stopped;
        g_autoptr(TpEvaluation) val = NULL;

        if (!tp_trainer_run_epoch(trainer, train_loader, report, &reporter, &stopped, &p, &error))
            return tp_cli_fail(error);
        if (reporter.tty)
            fprintf(stderr, "\r\033[K");
        if (!stopped && tp_comm_get_parallel() != NULL) { /* one rank's Ctrl-C stops all */
            double any = interrupted;
            if (!tp_comm_all_reduce_double(tp_comm_get_parallel(), &any, 1, &error))
                return tp_cli_fail(error);
            interrupted = any != 0;
        }
        if (stopped || interrupted) {
            if (writer && !tp_trainer_save(trainer, ckpt, &error))
                return tp_cli_fail(error);
            tp_cli_error("interrupted at epoch %u, step %" G_GSIZE_FORMAT
                         ": checkpoint in %s; continue with 'taskprune train --resume "
                         "--checkpoint %s'",
                         tp_trainer_get_epoch(trainer) + 1, tp_trainer_get_step(trainer), ckpt,
                         ckpt);
            return 130;
        }
        total_seconds += p.seconds;
        g_autofree char *when = g_strdup_printf("after epoch %u", p.epoch + 1);
        if (!tp_train_check_replicas(model, when, &error) ||
            (val_loader != NULL && !(val = tp_evaluate(model, val_loader, &error))))
            return tp_cli_fail(error);
        if (writer && !tp_trainer_save(trainer, ckpt, &error))
            return tp_cli_fail(error);
        if (!quiet) {
            printf("epoch %u/%u: loss %.4f, accuracy %.2f%%", p.epoch + 1, p.epochs, p.loss,
                   100 * p.accuracy);
            if (val != NULL)
                printf("; validation loss %.4f, accuracy %.2f%%", val->loss,
                       100 * tp_evaluation_accuracy(val));
            printf("; %.1f s, %.0f images/s\n", p.seconds, p.images / MAX(p.seconds, 1e-9));
            fflush(stdout);
        }
    }
    if (writer && !tp_onnx_save(model, out_path, &error))
        return tp_cli_fail(error);

    test = tp_dataset_new_from_keyfile(keyfile, "dataset", source, TP_SPLIT_TEST, &error);
    if (test != NULL) {
        g_autoptr(TpParams) all = tp_params_new(tp_train_get_param_specs());
        if (!tp_params_load(all, keyfile, "train", source, NULL, &error) ||
            !(test_loader = make_loader(test, model, all, TP_LOADER_ALL, TRUE, &error)) ||
            !(final = tp_evaluate(model, test_loader, &error)))
            return tp_cli_fail(error);
        if (tp_cli_options.json) {
            g_autoptr(GString) json = g_string_new("{\"model\": ");
            tp_cli_json_string(json, out_path);
            g_string_append_printf(json,
                                   ", \"test_accuracy\": %.6f, \"test_loss\": %.6f, "
                                   "\"test_samples\": %" G_GSIZE_FORMAT
                                   ", \"epochs\": %d, \"seconds\": %.3f}\n",
                                   tp_evaluation_accuracy(final), final->loss, final->n_samples,
                                   config.epochs, total_seconds);
            fputs(json->str, stdout);
            return 0;
        }
        printf("test accuracy %.2f%% (%" G_GSIZE_FORMAT "/%" G_GSIZE_FORMAT
               "), loss %.4f; model written to %s\n",
               100 * tp_evaluation_accuracy(final), final->correct, final->n_samples, final->loss,
               out_path);
    } else {
        printf("model written to %s (no test split: %s)\n", out_path, error->message);
        g_clear_error(&error);
    }
    if (!quiet && total_seconds > 0)
        printf("training time %.1f s, %.1f s per epoch\n", total_seconds,
               total_seconds / config.epochs);
    return 0;
}

const TpCommand tp_cmd_train = {
    /* .name = */ "train",
    /* .summary = */ "Train a zoo architecture on a dataset",
    /* .parameters = */ "[CONFIG.ini]",
    /* .description = */
    "Trains a zoo architecture on a dataset plugin with SGD (momentum, weight decay, step or\n"
    "cosine schedule with warm-up, label smoothing), validates after each epoch on a held-out\n"
    "share of the training data, writes the model as ONNX with its class names and input\n"
    "normalization (the training split's per-channel statistics, or --mean and --std), and\n"
    "reports test accuracy. Settings come from CONFIG.ini (groups [model],\n"
    "[dataset], [train], [backend], [output]) and options, options winning. Every epoch\n"
    "ends in a checkpoint; Ctrl-C writes one and --resume continues to the same result.\n\n"
    "Example: taskprune train --arch lenet5 --dataset idx --epochs 1 -o lenet.onnx",
    /* .run = */ run,
    /* .options = */ options,
};
