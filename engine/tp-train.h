/* tp-train.h — training and evaluation: SGD with momentum and weight decay
 * under a step or cosine learning-rate schedule with linear warm-up, label
 * smoothing, per-epoch validation, atomic checkpoints and resumption to the
 * identical result; accuracy, per-class accuracy and the confusion matrix.
 *
 * Determinism: given the model's initial weights, the config (seed included),
 * the data and the backend's thread count, training is a pure function:
 * dropout masks are drawn from (seed, epoch, step) and the loader's order
 * from (seed, epoch), so stopping after any step and resuming from the
 * checkpoint gives the same weights, bit for bit, as not stopping.
 */
#ifndef TP_TRAIN_H
#define TP_TRAIN_H

#include <glib.h>

#include "tp-loader.h"
#include "tp-model.h"
#include "tp-params.h"

G_BEGIN_DECLS

#define TP_TRAIN_ERROR (tp_train_error_quark())
GQuark tp_train_error_quark(void);

typedef enum {
    TP_TRAIN_ERROR_INVALID,    /* a bad setting or a model that does not fit the data */
    TP_TRAIN_ERROR_CHECKPOINT, /* a checkpoint that cannot be written, read or resumed */
    TP_TRAIN_ERROR_DIVERGED,   /* the loss became NaN or infinite */
} TpTrainError;

typedef enum {
    TP_SCHEDULE_CONSTANT,
    TP_SCHEDULE_STEP,   /* lr * gamma^(floor(epoch / step_epochs)) */
    TP_SCHEDULE_COSINE, /* lr * (1 + cos(pi * t)) / 2 over the epochs after warm-up */
} TpSchedule;

typedef struct {
    int epochs;
    int batch_size;
    double lr; /* peak learning rate */
    double momentum;
    double weight_decay;
    gboolean nesterov;
    TpSchedule schedule;
    double warmup_epochs; /* linear from lr / warmup-steps to lr over these epochs */
    int step_epochs;      /* STEP */
    double gamma;         /* STEP */
    double label_smoothing;
    guint64 seed; /* dropout masks and the loader's order */
    gboolean sync_batch_norm; /* more than one rank: BatchNorm with the global batch's
                               * statistics (docs/scaling.md) */
    /* More than one rank: sum the gradients only after the backward pass
     * (FALSE, the default: each bucket starts as soon as backward has
     * finished its layers; the same sums either way, docs/scaling.md). */
    gboolean comm_after_backward;
    double bucket_mib; /* size of a gradient bucket; 0: 16 MiB */
} TpTrainConfig;

/* The [train] keyfile keys (epochs, batch-size, lr, momentum, weight-decay,
 * nesterov, schedule, warmup-epochs, step-epochs, gamma, label-smoothing,
 * seed, validation-fraction, augment, sync-batch-norm, overlap-comm,
 * bucket-mib), as a parameter table. */
const TpParamSpec *tp_train_get_param_specs(void);

/* Fills config from parameters made with tp_train_get_param_specs(). */
void tp_train_config_from_params(const TpParams *params, TpTrainConfig *out_config);

/* The learning rate at step `step` of `steps_per_epoch`-step epochs. */
double tp_train_lr(const TpTrainConfig *config, guint epoch, gsize step, gsize steps_per_epoch);

/* Where a running training stands, for progress reports. */
typedef struct {
    guint epoch, epochs;   /* epoch counts from 0 */
    gsize step, steps;     /* steps done in this epoch, of steps */
    gsize images;          /* images seen in this epoch */
    double loss, accuracy; /* running means over this epoch */
    double lr;
    double seconds; /* in this epoch so far */
} TpTrainProgress;

/* Called after every step; return FALSE to stop (a checkpoint follows). */
typedef gboolean (*TpTrainProgressFunc)(const TpTrainProgress *progress, gpointer data);

typedef struct _TpTrainer TpTrainer;

/* A trainer for model (borrowed) with a fresh optimizer. */
TpTrainer *tp_trainer_new(TpModel *model, const TpTrainConfig *config, GError **error);
void tp_trainer_free(TpTrainer *trainer);

/* Where the trainer is: the next step to run. */
guint tp_trainer_get_epoch(const TpTrainer *trainer);
gsize tp_trainer_get_step(const TpTrainer *trainer);

/* Trains from where the trainer is to the end of its current epoch (or until
 * progress returns FALSE: then *out_stopped is TRUE and the trainer stands
 * after the last step run). At the end of an epoch, epoch advances and step
 * becomes 0. *out_progress (may be NULL) gets the last progress. */
gboolean tp_trainer_run_epoch(TpTrainer *trainer, TpLoader *loader, TpTrainProgressFunc progress,
                              gpointer data, gboolean *out_stopped, TpTrainProgress *out_progress,
                              GError **error);

/* Writes a checkpoint into folder dir (created if needed): the model, the
 * optimizer's velocities and where training stands. Each file is written to
 * a temporary name and renamed; the state file, written last, names the
 * others, so a crash leaves the previous checkpoint intact. */
gboolean tp_trainer_save(TpTrainer *trainer, const char *dir, GError **error);

/* Loads the checkpoint in dir: a new model on backend and a trainer standing
 * where the checkpoint was written, with config as saved. */
TpTrainer *tp_trainer_load(TpBackend *backend, const char *dir, TpModel **out_model,
                           GError **error);

/* The config a trainer runs (borrowed). */
const TpTrainConfig *tp_trainer_get_config(const TpTrainer *trainer);

/* With a default communicator of more than one process (tp-comm.h): whether
 * every rank holds the same model (a SHA-256 of every parameter, compared
 * with rank 0's); fails with TP_COMM_ERROR_DIVERGED naming `when` ("after
 * step 3") otherwise. TRUE at once without one. Training with a sharded
 * loader (tp-loader.h) and such a communicator is data-parallel:
 * docs/scaling.md. */
gboolean tp_train_check_replicas(TpModel *model, const char *when, GError **error);

/* ---------------------------------------------------------------- evaluation */

typedef struct {
    int n_classes;
    gsize n_samples;
    gsize correct;
    double loss;        /* mean cross-entropy */
    guint64 *confusion; /* n_classes x n_classes: [true label][prediction] */
} TpEvaluation;

/* Runs model (eval mode) over every batch of loader, whose labels must be
 * the model's output indices. With a sharded loader and a default
 * communicator of more than one process, the counts and the loss are summed
 * over the ranks (every rank returns the whole evaluation). */
TpEvaluation *tp_evaluate(TpModel *model, TpLoader *loader, GError **error);
void tp_evaluation_free(TpEvaluation *evaluation);

double tp_evaluation_accuracy(const TpEvaluation *evaluation);
/* Recall of class c: correct / samples of class c (0 when it has none). */
double tp_evaluation_class_accuracy(const TpEvaluation *evaluation, int c);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(TpTrainer, tp_trainer_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TpEvaluation, tp_evaluation_free)

G_END_DECLS

#endif /* TP_TRAIN_H */
