/* tp-train.c — training steps, epochs, checkpoints and evaluation (the
 * contract is in tp-train.h).
 *
 * A step: lr from the schedule, dropout seed from (seed, epoch, step), a
 * training forward, softmax cross-entropy, backward from the logits, one SGD
 * update. Accuracy counts come from the logits copied to the host.
 *
 * A checkpoint is a folder: model-E-S.onnx (weights and BatchNorm
 * statistics), velocity-E-S.bin (the optimizer's velocities, float32 in
 * parameter order) and state.ini (where training stands, its settings, and
 * the names of the other two). state.ini is replaced last, atomically, so
 * the folder always describes one consistent checkpoint.
 */
#include "config.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "tp-comm.h"
#include "tp-grad-buckets.h"
#include "tp-onnx.h"
#include "tp-sgd.h"
#include "tp-train.h"

G_DEFINE_QUARK(tp_train_error, tp_train_error)

#define CHECKPOINT_VERSION 1

static const TpParamSpec train_specs[] = {
    {"epochs", TP_PARAM_INT, "5", 1, 100000, NULL, "passes over the training data"},
    {"batch-size", TP_PARAM_INT, "64", 1, 65536, NULL, "samples per SGD step"},
    {"lr", TP_PARAM_DOUBLE, "0.05", 0, 10, NULL, "peak learning rate"},
    {"momentum", TP_PARAM_DOUBLE, "0.9", 0, 0.999, NULL, "SGD momentum"},
    {"weight-decay", TP_PARAM_DOUBLE, "5e-4", 0, 1, NULL, "L2 weight decay"},
    {"nesterov", TP_PARAM_BOOLEAN, "false", 0, 0, NULL, "Nesterov momentum"},
    {"schedule", TP_PARAM_CHOICE, "cosine", 0, 0, "constant|step|cosine",
     "learning-rate schedule after warm-up"},
    {"warmup-epochs", TP_PARAM_DOUBLE, "0", 0, 1000, NULL,
     "epochs of linear learning-rate warm-up"},
    {"step-epochs", TP_PARAM_INT, "30", 1, 100000, NULL, "step schedule: epochs per decay"},
    {"gamma", TP_PARAM_DOUBLE, "0.1", 0, 1, NULL, "step schedule: decay factor"},
    {"label-smoothing", TP_PARAM_DOUBLE, "0", 0, 0.99, NULL, "label smoothing of the loss"},
    {"seed", TP_PARAM_INT, "0", 0, 9007199254740992.0, NULL,
     "seed of the data order, split and dropout"},
    {"validation-fraction", TP_PARAM_DOUBLE, "0.1", 0, 0.9, NULL,
     "share of each class held out for validation"},
    {"augment", TP_PARAM_BOOLEAN, "false", 0, 0, NULL,
     "pad-and-crop and horizontal flips (for color images)"},
    {"sync-batch-norm", TP_PARAM_BOOLEAN, "false", 0, 0, NULL,
     "with several ranks: BatchNorm normalizes with the whole batch's statistics"},
    {"overlap-comm", TP_PARAM_BOOLEAN, "true", 0, 0, NULL,
     "with several ranks: sum gradients while the backward pass runs"},
    {"bucket-mib", TP_PARAM_DOUBLE, "16", 0.001, 4096, NULL,
     "with several ranks: MiB of gradients summed in one all-reduce"},
    {NULL},
};

const TpParamSpec *
tp_train_get_param_specs(void)
{
    return train_specs;
}

void
tp_train_config_from_params(const TpParams *params, TpTrainConfig *out_config)
{
    const char *schedule = tp_params_get_string(params, "schedule");

    memset(out_config, 0, sizeof(*out_config));
    out_config->epochs = (int)tp_params_get_int(params, "epochs");
    out_config->batch_size = (int)tp_params_get_int(params, "batch-size");
    out_config->lr = tp_params_get_double(params, "lr");
    out_config->momentum = tp_params_get_double(params, "momentum");
    out_config->weight_decay = tp_params_get_double(params, "weight-decay");
    out_config->nesterov = tp_params_get_boolean(params, "nesterov");
    out_config->schedule = g_str_equal(schedule, "step")     ? TP_SCHEDULE_STEP
                           : g_str_equal(schedule, "cosine") ? TP_SCHEDULE_COSINE
                                                             : TP_SCHEDULE_CONSTANT;
    out_config->warmup_epochs = tp_params_get_double(params, "warmup-epochs");
    out_config->step_epochs = (int)tp_params_get_int(params, "step-epochs");
    out_config->gamma = tp_params_get_double(params, "gamma");
    out_config->label_smoothing = tp_params_get_double(params, "label-smoothing");
    out_config->seed = (guint64)tp_params_get_int(params, "seed");
    out_config->sync_batch_norm = tp_params_get_boolean(params, "sync-batch-norm");
    out_config->comm_after_backward = !tp_params_get_boolean(params, "overlap-comm");
    out_config->bucket_mib = tp_params_get_double(params, "bucket-mib");
}

double
tp_train_lr(const TpTrainConfig *config, guint epoch, gsize step, gsize steps_per_epoch)
{
    double t = epoch + (double)step / MAX(steps_per_epoch, 1); /* epochs done */
    double warmup = config->warmup_epochs;

    if (t < warmup) /* linear, from one step's worth up to the peak */
        return config->lr * (t + 1.0 / MAX(steps_per_epoch, 1)) / warmup;
    switch (config->schedule) {
    case TP_SCHEDULE_STEP:
        return config->lr * pow(config->gamma, floor(t / config->step_epochs));
    case TP_SCHEDULE_COSINE: {
        double span = config->epochs - warmup;
        double progress = span > 0 ? (t - warmup) / span : 1.0;
        return config->lr * 0.5 * (1.0 + cos(G_PI * MIN(progress, 1.0)));
    }
    case TP_SCHEDULE_CONSTANT:
        break;
    }
    return config->lr;
}

/* SplitMix64's finalizer. */
static guint64
mix(guint64 z)
{
    z += G_GUINT64_CONSTANT(0x9E3779B97F4A7C15);
    z = (z ^ (z >> 30)) * G_GUINT64_CONSTANT(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * G_GUINT64_CONSTANT(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* ---------------------------------------------------------------- trainer */

struct _TpTrainer {
    TpModel *model; /* borrowed, or owned when loaded from a checkpoint (see owns_model) */
    TpTrainConfig config;
    TpSgd *sgd;
    guint epoch;
    gsize step;
    /* Running sums of the current epoch, kept in checkpoints. */
    double sum_loss;
    gsize correct, images;
    double seconds;
    float *logits; /* host copy of a batch's logits, grown as needed */
    gsize logits_capacity;
    float *bucket;          /* data parallelism: running statistics on their way */
    TpGradBuckets *buckets; /* data parallelism: gradients on their way */
};

static gboolean
config_check(const TpTrainConfig *config, GError **error)
{
    if (config->epochs < 1 || config->batch_size < 1 || !(config->lr >= 0) ||
        !(config->label_smoothing >= 0 && config->label_smoothing < 1) || config->step_epochs < 1 ||
        !(config->gamma >= 0) || !(config->bucket_mib >= 0 && config->bucket_mib <= 4096)) {
        g_set_error(error, TP_TRAIN_ERROR, TP_TRAIN_ERROR_INVALID,
                    "training settings out of range (epochs %d, batch size %d, lr %g, label "
                    "smoothing %g, step epochs %d, bucket MiB %g)",
                    config->epochs, config->batch_size, config->lr, config->label_smoothing,
                    config->step_epochs, config->bucket_mib);
        return FALSE;
    }
    return TRUE;
}

TpTrainer *
tp_trainer_new(TpModel *model, const TpTrainConfig *config, GError **error)
{
    TpSgdHyper hyper;
    TpTrainer *trainer;

    g_return_val_if_fail(model != NULL && config != NULL, NULL);

    if (!config_check(config, error))
        return NULL;
    hyper.lr = (float)tp_train_lr(config, 0, 0, 1);
    hyper.momentum = (float)config->momentum;
    hyper.weight_decay = (float)config->weight_decay;
    hyper.nesterov = config->nesterov;
    trainer = g_new0(TpTrainer, 1);
    trainer->model = model;
    trainer->config = *config;
    trainer->sgd = tp_sgd_new(model, &hyper, error);
    if (trainer->sgd == NULL) {
        g_free(trainer);
        return NULL;
    }
    return trainer;
}

void
tp_trainer_free(TpTrainer *trainer)
{
    if (trainer == NULL)
        return;
    tp_sgd_free(trainer->sgd);
    g_free(trainer->logits);
    g_free(trainer->bucket);
    tp_grad_buckets_free(trainer->buckets);
    g_free(trainer);
}

guint
tp_trainer_get_epoch(const TpTrainer *trainer)
{
    return trainer->epoch;
}

gsize
tp_trainer_get_step(const TpTrainer *trainer)
{
    return trainer->step;
}

const TpTrainConfig *
tp_trainer_get_config(const TpTrainer *trainer)
{
    return &trainer->config;
}

/* Copies the logits of the last forward to the host (a buffer the trainer
 * keeps) and returns them with the class count. */
static const float *
host_logits(TpModel *model, float **buffer, gsize *capacity, int *out_classes, GError **error)
{
    TpTensor *logits = tp_model_get_value(model, tp_model_get_logits(model));

    if (logits->numel > *capacity) {
        g_free(*buffer);
        *buffer = g_new(float, logits->numel);
        *capacity = logits->numel;
    }
    if (!tp_tensor_download(logits, *buffer, error))
        return NULL;
    *out_classes = logits->shape[1];
    return *buffer;
}

static int
argmax(const float *row, int n)
{
    int best = 0;

    for (int j = 1; j < n; j++)
        if (row[j] > row[best])
            best = j;
    return best;
}

/* Checks the loader's labels fit the model's outputs. */
static gboolean
check_labels(const gint32 *labels, int batch, int classes, GError **error)
{
    for (int i = 0; i < batch; i++) {
        if (labels[i] < 0 || labels[i] >= classes) {
            g_set_error(error, TP_TRAIN_ERROR, TP_TRAIN_ERROR_INVALID,
                        "a sample has label %d but the model has %d outputs: the model does not "
                        "fit the data's classes",
                        labels[i], classes);
            return FALSE;
        }
    }
    return TRUE;
}

/* ---------------------------------------------------------------- data parallelism
 *
 * With a communicator of more than one process (docs/scaling.md) each rank
 * runs its slice of the global batch (tp-loader.h). Its loss is the mean
 * over its b samples, so its gradient is scaled by b / B before the sum over
 * ranks: the sum is the gradient of the global batch's mean loss, the one a
 * single process computes (up to the order of summation). Every rank then
 * applies the same SGD step. Gradients travel in buckets through a host
 * buffer, each started as soon as the backward pass has finished its layers
 * (tp-grad-buckets.h). BatchNorm normalizes
 * with each rank's own batch statistics, or with the global batch's when
 * sync-batch-norm is set (batch-norm.c); its running statistics are
 * averaged over the ranks that had samples after each step so the replicas
 * stay equal. */

#define BUCKET_FLOATS ((gsize)4 << 20) /* 16 MiB */

/* Sends the bucket's `fill` floats through the all-reduce and writes the
 * sums back to the tensors they came from. */
static gboolean
flush_bucket(TpComm *comm, float *bucket, gsize fill, TpTensor **tensors, guint n_tensors,
             GError **error)
{
    gsize offset = 0;

    if (!tp_comm_all_reduce_float(comm, bucket, fill, error))
        return FALSE;
    for (guint i = 0; i < n_tensors; i++) {
        if (!tp_tensor_upload(tensors[i], bucket + offset, error))
            return FALSE;
        offset += tensors[i]->numel;
    }
    return TRUE;
}

/* Sums BatchNorm's running statistics over the ranks, each rank's scaled by
 * `scale` first. */
static gboolean
reduce_running_stats(TpTrainer *trainer, TpComm *comm, float scale, GError **error)
{
    TpModel *model = trainer->model;
    g_autoptr(GPtrArray) pending = g_ptr_array_new();
    gsize fill = 0;

    if (trainer->bucket == NULL)
        trainer->bucket = g_new(float, BUCKET_FLOATS);
    for (guint i = 0; i < tp_model_get_n_nodes(model); i++) {
        const TpNode *node = tp_model_get_node(model, i);
        for (int p = 2; node->op == TP_OP_BATCH_NORM && p < node->n_params; p++) {
            TpTensor *t = tp_model_get_param(model, i, p);
            if (fill > 0 && fill + t->numel > BUCKET_FLOATS) {
                if (!flush_bucket(comm, trainer->bucket, fill, (TpTensor **)pending->pdata,
                                  pending->len, error))
                    return FALSE;
                g_ptr_array_set_size(pending, 0);
                fill = 0;
            }
            if (t->numel > BUCKET_FLOATS) { /* a tensor larger than a bucket goes alone */
                g_autofree float *host = tp_tensor_dup_host(t, error);
                if (host == NULL)
                    return FALSE;
                for (gsize k = 0; k < t->numel; k++)
                    host[k] *= scale;
                if (!flush_bucket(comm, host, t->numel, &t, 1, error))
                    return FALSE;
                continue;
            }
            if (!tp_tensor_download(t, trainer->bucket + fill, error))
                return FALSE;
            for (gsize k = 0; k < t->numel; k++)
                trainer->bucket[fill + k] *= scale;
            fill += t->numel;
            g_ptr_array_add(pending, t);
        }
    }
    return fill == 0 || flush_bucket(comm, trainer->bucket, fill, (TpTensor **)pending->pdata,
                                     pending->len, error);
}

/* Zeroes every trainable gradient (a rank whose slice of a batch is empty). */
static gboolean
zero_grads(TpModel *model, int rank, GError **error)
{
    for (guint i = 0; i < tp_model_get_n_nodes(model); i++) {
        const TpNode *node = tp_model_get_node(model, i);
        for (int p = 0; p < node->n_params; p++) {
            TpTensor *g = tp_model_get_param_grad(model, i, p);
            if (!tp_model_param_is_trainable(model, i, p))
                continue;
            if (g == NULL) {
                g_set_error(error, TP_TRAIN_ERROR, TP_TRAIN_ERROR_INVALID,
                            "rank %d got no sample of the first batch: use fewer processes or a "
                            "larger batch",
                            rank);
                return FALSE;
            }
            g_autofree float *zeros = g_new0(float, g->numel);
            if (!tp_tensor_upload(g, zeros, error))
                return FALSE;
        }
    }
    return TRUE;
}

gboolean
tp_train_check_replicas(TpModel *model, const char *when, GError **error)
{
    TpComm *comm = tp_comm_get_parallel();
    g_autoptr(GChecksum) sum = NULL;
    guint8 digest[32];
    gsize length = sizeof(digest);

    if (comm == NULL)
        return TRUE;
    sum = g_checksum_new(G_CHECKSUM_SHA256);
    for (guint i = 0; i < tp_model_get_n_nodes(model); i++) {
        const TpNode *node = tp_model_get_node(model, i);
        for (int p = 0; p < node->n_params; p++) {
            g_autofree float *host = tp_tensor_dup_host(node->params[p], error);
            if (host == NULL)
                return FALSE;
            g_checksum_update(sum, (const guchar *)host, node->params[p]->numel * sizeof(float));
        }
    }
    g_checksum_get_digest(sum, digest, &length);
    g_autofree char *what = g_strdup_printf("the model %s", when);
    return tp_comm_check_equal(comm, digest, length, what, error);
}

static gboolean
train_step(TpTrainer *trainer, const float *images, const gint32 *labels, int batch, int total,
           gsize steps, GError **error)
{
    TpModel *model = trainer->model;
    TpComm *comm = tp_comm_get_parallel();
    const float *logits = NULL;
    double loss = 0.0, sums[2] = {0.0, 0.0}; /* loss x samples, correct */
    int classes = 0;
    int shape_classes = tp_model_get_shape(model, tp_model_get_logits(model))->dim[0];

    if (!check_labels(labels, batch, shape_classes, error))
        return FALSE;
    tp_sgd_set_lr(trainer->sgd,
                  (float)tp_train_lr(&trainer->config, trainer->epoch, trainer->step, steps));
    tp_model_set_seed(model, mix(trainer->config.seed ^ mix(trainer->epoch) ^
                                 mix(G_GUINT64_CONSTANT(1) << 40 | trainer->step)));
    /* A batch smaller than the ranks leaves some slices empty; those ranks
     * run no forward, so that step normalizes per rank (every rank knows
     * total, so all of them decide alike). */
    tp_model_set_sync_comm(model, trainer->config.sync_batch_norm && comm != NULL &&
                                          total >= comm->size
                                      ? comm
                                      : NULL);
    if (comm != NULL && trainer->buckets == NULL)
        trainer->buckets = tp_grad_buckets_new(
            comm, (gsize)(trainer->config.bucket_mib * (1 << 20) / sizeof(float)));
    if (comm != NULL)
        tp_grad_buckets_begin(trainer->buckets, model, (float)batch / total,
                              !trainer->config.comm_after_backward);
    if (batch > 0) {
        if (!tp_model_forward(model, images, batch, TP_MODE_TRAIN, error) ||
            !tp_model_loss(model, labels, (float)trainer->config.label_smoothing, &loss, error))
            return FALSE;
        logits = host_logits(model, &trainer->logits, &trainer->logits_capacity, &classes, error);
        if (logits == NULL || !tp_model_backward_params(model, tp_model_get_logits(model), error))
            return FALSE;
        tp_model_set_sync_comm(model, NULL);
        sums[0] = loss * batch;
        for (int i = 0; i < batch; i++)
            sums[1] += argmax(logits + (gsize)i * classes, classes) == labels[i];
    } else if (!zero_grads(model, comm ? comm->rank : 0, error)) {
        return FALSE;
    }
    if (comm != NULL && (!tp_grad_buckets_finish(trainer->buckets, error) ||
                         !tp_comm_all_reduce_double(comm, sums, 2, error)))
        return FALSE;
    loss = sums[0] / total;
    if (!isfinite(loss)) {
        g_set_error(error, TP_TRAIN_ERROR, TP_TRAIN_ERROR_DIVERGED,
                    "the loss became %g at epoch %u, step %" G_GSIZE_FORMAT
                    ": lower the learning rate",
                    loss, trainer->epoch + 1, trainer->step + 1);
        return FALSE;
    }
    if (!tp_sgd_step(trainer->sgd, error))
        return FALSE;
    /* A batch smaller than the ranks leaves MIN(total, size) slices with
     * samples; the others ran no forward and keep their old running
     * statistics out of the average. */
    if (comm != NULL &&
        !reduce_running_stats(trainer, comm,
                              batch > 0 ? 1.0f / (float)MIN(total, comm->size) : 0.0f, error))
        return FALSE;
    trainer->correct += (gsize)sums[1];
    trainer->sum_loss += sums[0];
    trainer->images += (gsize)total;
    return TRUE;
}

static void
fill_progress(const TpTrainer *trainer, gsize steps, TpTrainProgress *p)
{
    p->epoch = trainer->epoch;
    p->epochs = (guint)trainer->config.epochs;
    p->step = trainer->step;
    p->steps = steps;
    p->images = trainer->images;
    p->loss = trainer->images ? trainer->sum_loss / trainer->images : 0.0;
    p->accuracy = trainer->images ? (double)trainer->correct / trainer->images : 0.0;
    p->lr = tp_train_lr(&trainer->config, trainer->epoch, trainer->step, steps);
    p->seconds = trainer->seconds;
}

gboolean
tp_trainer_run_epoch(TpTrainer *trainer, TpLoader *loader, TpTrainProgressFunc progress,
                     gpointer data, gboolean *out_stopped, TpTrainProgress *out_progress,
                     GError **error)
{
    gsize steps = tp_loader_get_n_batches(loader);
    TpComm *comm = tp_comm_get_parallel();
    g_autoptr(GTimer) timer = g_timer_new();
    double seconds_before = trainer->seconds;
    TpTrainProgress p;
    const float *images;
    const gint32 *labels;
    int batch;

    g_return_val_if_fail(trainer != NULL && loader != NULL, FALSE);
    *out_stopped = FALSE;

    tp_loader_start_epoch(loader, trainer->epoch);
    for (gsize skip = 0; skip < trainer->step; skip++) {
        g_autoptr(GError) local = NULL;
        if (!tp_loader_next(loader, &images, &labels, &batch, &local)) {
            if (local != NULL)
                g_propagate_error(error, g_steal_pointer(&local));
            else
                g_set_error(error, TP_TRAIN_ERROR, TP_TRAIN_ERROR_CHECKPOINT,
                            "the checkpoint stands at step %" G_GSIZE_FORMAT
                            " but an epoch of this data has %" G_GSIZE_FORMAT " steps",
                            trainer->step, steps);
            return FALSE;
        }
    }
    while (TRUE) {
        g_autoptr(GError) local = NULL;
        if (!tp_loader_next(loader, &images, &labels, &batch, &local)) {
            if (local != NULL) {
                g_propagate_error(error, g_steal_pointer(&local));
                return FALSE;
            }
            break;
        }
        if (!train_step(trainer, images, labels, batch, tp_loader_get_batch_total(loader), steps,
                        error))
            return FALSE;
        trainer->step++;
        trainer->seconds = seconds_before + g_timer_elapsed(timer, NULL);
        fill_progress(trainer, steps, &p);
        /* Every rank stops at the same step: one rank asking is enough. */
        double stop = progress != NULL && !progress(&p, data);
        if (comm != NULL && !tp_comm_all_reduce_double(comm, &stop, 1, error))
            return FALSE;
        if (stop != 0 && trainer->step < steps) {
            *out_stopped = TRUE;
            break;
        }
    }
    fill_progress(trainer, steps, &p);
    if (out_progress != NULL)
        *out_progress = p;
    if (!*out_stopped) {
        trainer->epoch++;
        trainer->step = 0;
        trainer->sum_loss = 0.0;
        trainer->correct = trainer->images = 0;
        trainer->seconds = 0.0;
    }
    return TRUE;
}

/* ---------------------------------------------------------------- checkpoints */

static void
save_config(GKeyFile *state, const TpTrainConfig *c)
{
    static const char *const schedules[] = {"constant", "step", "cosine"};
    char buf[G_ASCII_DTOSTR_BUF_SIZE];

    g_key_file_set_integer(state, "train", "epochs", c->epochs);
    g_key_file_set_integer(state, "train", "batch-size", c->batch_size);
    g_key_file_set_string(state, "train", "lr", g_ascii_dtostr(buf, sizeof(buf), c->lr));
    g_key_file_set_string(state, "train", "momentum",
                          g_ascii_dtostr(buf, sizeof(buf), c->momentum));
    g_key_file_set_string(state, "train", "weight-decay",
                          g_ascii_dtostr(buf, sizeof(buf), c->weight_decay));
    g_key_file_set_boolean(state, "train", "nesterov", c->nesterov);
    g_key_file_set_string(state, "train", "schedule", schedules[c->schedule]);
    g_key_file_set_string(state, "train", "warmup-epochs",
                          g_ascii_dtostr(buf, sizeof(buf), c->warmup_epochs));
    g_key_file_set_integer(state, "train", "step-epochs", c->step_epochs);
    g_key_file_set_string(state, "train", "gamma", g_ascii_dtostr(buf, sizeof(buf), c->gamma));
    g_key_file_set_string(state, "train", "label-smoothing",
                          g_ascii_dtostr(buf, sizeof(buf), c->label_smoothing));
    g_key_file_set_uint64(state, "train", "seed", c->seed);
    g_key_file_set_boolean(state, "train", "sync-batch-norm", c->sync_batch_norm);
}

/* Removes checkpoint files in dir other than the two the state names. */
static void
remove_stale(const char *dir, const char *model, const char *velocity)
{
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *name;

    while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
        gboolean ours = (g_str_has_prefix(name, "model-") && g_str_has_suffix(name, ".onnx")) ||
                        (g_str_has_prefix(name, "velocity-") && g_str_has_suffix(name, ".bin"));
        if (ours && !g_str_equal(name, model) && !g_str_equal(name, velocity)) {
            g_autofree char *path = g_build_filename(dir, name, NULL);
            g_unlink(path);
        }
    }
}

gboolean
tp_trainer_save(TpTrainer *trainer, const char *dir, GError **error)
{
    g_autofree char *model_name =
        g_strdup_printf("model-%u-%" G_GSIZE_FORMAT ".onnx", trainer->epoch, trainer->step);
    g_autofree char *velocity_name =
        g_strdup_printf("velocity-%u-%" G_GSIZE_FORMAT ".bin", trainer->epoch, trainer->step);
    g_autofree char *model_path = g_build_filename(dir, model_name, NULL);
    g_autofree char *velocity_path = g_build_filename(dir, velocity_name, NULL);
    g_autofree char *state_path = g_build_filename(dir, "state.ini", NULL);
    g_autoptr(GKeyFile) state = g_key_file_new();
    g_autoptr(GByteArray) velocities = g_byte_array_new();
    g_autoptr(GError) local = NULL;
    char buf[G_ASCII_DTOSTR_BUF_SIZE];

    if (g_mkdir_with_parents(dir, 0755) != 0) {
        g_set_error(error, TP_TRAIN_ERROR, TP_TRAIN_ERROR_CHECKPOINT,
                    "cannot create checkpoint folder %s: %s", dir, g_strerror(errno));
        return FALSE;
    }
    for (guint i = 0; i < tp_sgd_get_n_velocities(trainer->sgd); i++) {
        TpTensor *v = tp_sgd_get_velocity(trainer->sgd, i);
        g_autofree float *host = tp_tensor_dup_host(v, error);
        if (host == NULL)
            return FALSE;
        g_byte_array_append(velocities, (const guint8 *)host, (guint)(v->numel * sizeof(float)));
    }
    if (!tp_onnx_save(trainer->model, model_path, error) ||
        !g_file_set_contents(velocity_path, (const char *)velocities->data, velocities->len,
                             &local)) {
        if (local != NULL)
            g_set_error(error, TP_TRAIN_ERROR, TP_TRAIN_ERROR_CHECKPOINT, "checkpoint: %s",
                        local->message);
        else
            g_prefix_error(error, "checkpoint: ");
        return FALSE;
    }

    g_key_file_set_integer(state, "checkpoint", "version", CHECKPOINT_VERSION);
    g_key_file_set_integer(state, "checkpoint", "epoch", (int)trainer->epoch);
    g_key_file_set_uint64(state, "checkpoint", "step", trainer->step);
    g_key_file_set_string(state, "checkpoint", "model", model_name);
    g_key_file_set_string(state, "checkpoint", "velocity", velocity_name);
    g_key_file_set_string(state, "checkpoint", "sum-loss",
                          g_ascii_dtostr(buf, sizeof(buf), trainer->sum_loss));
    g_key_file_set_uint64(state, "checkpoint", "correct", trainer->correct);
    g_key_file_set_uint64(state, "checkpoint", "images", trainer->images);
    g_key_file_set_string(state, "checkpoint", "seconds",
                          g_ascii_dtostr(buf, sizeof(buf), trainer->seconds));
    save_config(state, &trainer->config);
    if (!g_key_file_save_to_file(state, state_path, &local)) {
        g_set_error(error, TP_TRAIN_ERROR, TP_TRAIN_ERROR_CHECKPOINT, "checkpoint: %s",
                    local->message);
        return FALSE;
    }
    remove_stale(dir, model_name, velocity_name);
    return TRUE;
}

/* Reads a file name the state names; it must be a plain name in dir. */
static char *
state_file(GKeyFile *state, const char *key, const char *dir, GError **error)
{
    g_autofree char *name = g_key_file_get_string(state, "checkpoint", key, error);

    if (name == NULL)
        return NULL;
    if (strchr(name, '/') != NULL || g_str_equal(name, "..")) {
        g_set_error(error, TP_TRAIN_ERROR, TP_TRAIN_ERROR_CHECKPOINT,
                    "%s names '%s', which is not a file in the checkpoint folder", key, name);
        return NULL;
    }
    return g_build_filename(dir, name, NULL);
}

TpTrainer *
tp_trainer_load(TpBackend *backend, const char *dir, TpModel **out_model, GError **error)
{
    g_autofree char *state_path = g_build_filename(dir, "state.ini", NULL);
    g_autoptr(GKeyFile) state = g_key_file_new();
    g_autoptr(TpParams) params = tp_params_new(train_specs);
    g_autofree char *model_path = NULL, *velocity_path = NULL, *bytes = NULL;
    g_autoptr(TpModel) model = NULL;
    g_autoptr(GError) local = NULL;
    TpTrainer *trainer;
    TpTrainConfig config;
    gsize length, offset = 0;
    gint64 version;

    if (!g_key_file_load_from_file(state, state_path, G_KEY_FILE_NONE, &local) ||
        (version = g_key_file_get_int64(state, "checkpoint", "version", &local)) == 0 ||
        !tp_params_load(params, state, "train", state_path, NULL, &local) ||
        (model_path = state_file(state, "model", dir, &local)) == NULL ||
        (velocity_path = state_file(state, "velocity", dir, &local)) == NULL) {
        g_set_error(error, TP_TRAIN_ERROR, TP_TRAIN_ERROR_CHECKPOINT,
                    "%s: not a usable checkpoint: %s", state_path,
                    local ? local->message : "unknown version");
        return NULL;
    }
    if (version != CHECKPOINT_VERSION) {
        g_set_error(error, TP_TRAIN_ERROR, TP_TRAIN_ERROR_CHECKPOINT,
                    "%s: checkpoint version %" G_GINT64_FORMAT ", this taskprune reads %d",
                    state_path, version, CHECKPOINT_VERSION);
        return NULL;
    }
    model = tp_onnx_load(backend, model_path, error);
    if (model == NULL)
        return NULL;
    tp_train_config_from_params(params, &config);
    trainer = tp_trainer_new(model, &config, error);
    if (trainer == NULL)
        return NULL;
    if (!g_file_get_contents(velocity_path, &bytes, &length, &local)) {
        g_set_error(error, TP_TRAIN_ERROR, TP_TRAIN_ERROR_CHECKPOINT, "%s", local->message);
        tp_trainer_free(trainer);
        return NULL;
    }
    for (guint i = 0; i < tp_sgd_get_n_velocities(trainer->sgd); i++) {
        TpTensor *v = tp_sgd_get_velocity(trainer->sgd, i);
        gsize size = v->numel * sizeof(float);
        if (offset + size > length ||
            !tp_tensor_upload(v, (const float *)(bytes + offset), error)) {
            if (offset + size > length)
                g_set_error(error, TP_TRAIN_ERROR, TP_TRAIN_ERROR_CHECKPOINT,
                            "%s: %" G_GSIZE_FORMAT " bytes, too short for the model's "
                            "velocities",
                            velocity_path, length);
            tp_trainer_free(trainer);
            return NULL;
        }
        offset += size;
    }
    if (offset != length) {
        g_set_error(error, TP_TRAIN_ERROR, TP_TRAIN_ERROR_CHECKPOINT,
                    "%s: %" G_GSIZE_FORMAT " bytes, the model's velocities take %" G_GSIZE_FORMAT,
                    velocity_path, length, offset);
        tp_trainer_free(trainer);
        return NULL;
    }
    trainer->epoch = (guint)g_key_file_get_integer(state, "checkpoint", "epoch", NULL);
    trainer->step = g_key_file_get_uint64(state, "checkpoint", "step", NULL);
    trainer->sum_loss = g_key_file_get_double(state, "checkpoint", "sum-loss", NULL);
    trainer->correct = g_key_file_get_uint64(state, "checkpoint", "correct", NULL);
    trainer->images = g_key_file_get_uint64(state, "checkpoint", "images", NULL);
    trainer->seconds = g_key_file_get_double(state, "checkpoint", "seconds", NULL);
    trainer->model = model;
    *out_model = g_steal_pointer(&model);
    return trainer;
}

/* ---------------------------------------------------------------- evaluation */

/* With a sharded loader: the counts and the loss of every rank's share,
 * summed (as doubles: exact for counts below 2^53). */
static gboolean
sum_over_ranks(TpEvaluation *e, GError **error)
{
    gsize cells = (gsize)e->n_classes * e->n_classes;
    g_autofree double *v = g_new(double, cells + 3);

    v[0] = (double)e->n_samples;
    v[1] = (double)e->correct;
    v[2] = e->loss;
    for (gsize i = 0; i < cells; i++)
        v[3 + i] = (double)e->confusion[i];
    if (!tp_comm_all_reduce_double(tp_comm_get_parallel(), v, cells + 3, error))
        return FALSE;
    e->n_samples = (gsize)v[0];
    e->correct = (gsize)v[1];
    e->loss = v[2];
    for (gsize i = 0; i < cells; i++)
        e->confusion[i] = (guint64)v[3 + i];
    return TRUE;
}

TpEvaluation *
tp_evaluate(TpModel *model, TpLoader *loader, GError **error)
{
    int classes = tp_model_get_shape(model, tp_model_get_logits(model))->dim[0];
    g_autoptr(TpEvaluation) e = g_new0(TpEvaluation, 1);
    g_autofree float *buffer = NULL;
    gsize capacity = 0;
    const float *images;
    const gint32 *labels;
    int batch, n;

    e->n_classes = classes;
    e->confusion = g_new0(guint64, (gsize)classes * classes);
    tp_loader_start_epoch(loader, 0);
    while (TRUE) {
        g_autoptr(GError) local = NULL;
        const float *logits;
        if (!tp_loader_next(loader, &images, &labels, &batch, &local)) {
            if (local != NULL) {
                g_propagate_error(error, g_steal_pointer(&local));
                return NULL;
            }
            break;
        }
        if (batch == 0) /* this rank's slice of a small last batch (sharded loader) */
            continue;
        if (!check_labels(labels, batch, classes, error) ||
            !tp_model_forward(model, images, batch, TP_MODE_INFER, error))
            return NULL;
        logits = host_logits(model, &buffer, &capacity, &n, error);
        if (logits == NULL)
            return NULL;
        for (int i = 0; i < batch; i++) {
            const float *row = logits + (gsize)i * n;
            int best = argmax(row, n);
            double sum = 0.0;
            for (int j = 0; j < n; j++)
                sum += exp((double)row[j] - row[best]);
            e->loss += log(sum) - ((double)row[labels[i]] - row[best]);
            e->correct += best == labels[i];
            e->confusion[(gsize)labels[i] * classes + best]++;
        }
        e->n_samples += (gsize)batch;
    }
    if (tp_comm_get_parallel() != NULL && !sum_over_ranks(e, error))
        return NULL;
    if (e->n_samples > 0)
        e->loss /= (double)e->n_samples;
    return g_steal_pointer(&e);
}

void
tp_evaluation_free(TpEvaluation *evaluation)
{
    if (evaluation == NULL)
        return;
    g_free(evaluation->confusion);
    g_free(evaluation);
}

double
tp_evaluation_accuracy(const TpEvaluation *evaluation)
{
    return evaluation->n_samples ? (double)evaluation->correct / evaluation->n_samples : 0.0;
}

double
tp_evaluation_class_accuracy(const TpEvaluation *evaluation, int c)
{
    guint64 total = 0;

    for (int j = 0; j < evaluation->n_classes; j++)
        total += evaluation->confusion[(gsize)c * evaluation->n_classes + j];
    return total ? (double)evaluation->confusion[(gsize)c * evaluation->n_classes + c] / total
                 : 0.0;
}
