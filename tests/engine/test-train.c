/* test-train.c — training and evaluation: the learning-rate schedules against
 * hand values, a small CNN that learns a separable task, bit-identical runs
 * for the same seed, resumption from a mid-epoch checkpoint to the identical
 * result, broken checkpoints, and evaluation counts. */
#include "config.h"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "tp-test.h"
#include "tp-train.h"

/* ---------------------------------------------------------------- data */

/* Two classes of 1x8x8 images: class 0 is bright on the left half, class 1
 * on the right, plus noise that is a pure function of the sample. 96 per
 * class; sample i has class i % 2. */
#define N_SAMPLES 192
#define SIDE 8

static gpointer
halves_open(const TpParams *params, TpSplit split, GError **error)
{
    return GINT_TO_POINTER(split + 1);
}

static void
halves_close(gpointer self)
{
}

static void
halves_describe(gpointer self, TpDatasetInfo *out)
{
    static const char *const names[] = {"left", "right", NULL};

    out->n_samples = N_SAMPLES;
    out->channels = 1;
    out->height = out->width = SIDE;
    out->n_classes = 2;
    out->class_names = names;
}

static gboolean
halves_read(gpointer self, gsize index, float *out, gint32 *out_label, GError **error)
{
    g_autoptr(GRand) rand = g_rand_new_with_seed((guint32)(index * 7919 + GPOINTER_TO_INT(self)));
    int label = (int)(index % 2);

    for (int y = 0; y < SIDE; y++)
        for (int x = 0; x < SIDE; x++)
            out[y * SIDE + x] =
                (float)(((x < SIDE / 2) == (label == 0) ? 0.7 : 0.2) + 0.3 * g_rand_double(rand));
    *out_label = label;
    return TRUE;
}

static const TpDatasetVTable halves_vtable = {
    /* .open = */ halves_open,
    /* .close = */ halves_close,
    /* .describe = */ halves_describe,
    /* .read = */ halves_read,
};

static const TpPluginInfo halves_info = {
    TP_PLUGIN_ABI_MAJOR,
    sizeof(TpPluginInfo),
    TP_PLUGIN_KIND_DATASET,
    "halves",
    "0",
    "test data",
    "MIT",
    &halves_vtable,
    sizeof(halves_vtable),
    NULL,
};

static TpDataset *
halves(void)
{
    g_autoptr(GError) error = NULL;
    TpDataset *dataset = tp_dataset_new(&halves_info, NULL, TP_SPLIT_TRAIN, &error);

    ck_assert_msg(dataset != NULL, "%s", error ? error->message : "");
    return dataset;
}

static TpLoader *
loader(TpDataset *dataset, TpLoaderPart part, guint64 seed)
{
    TpLoaderConfig config = {0};
    g_autoptr(GError) error = NULL;
    TpLoader *l;

    config.part = part;
    config.validation_fraction = 0.25;
    config.seed = seed;
    config.shuffle = part == TP_LOADER_TRAIN;
    config.batch_size = 16;
    config.prefetch = TRUE;
    l = tp_loader_new(dataset, &config, &error);
    ck_assert_msg(l != NULL, "%s", error ? error->message : "");
    return l;
}

/* ---------------------------------------------------------------- model */

/* conv 4@3x3 → BN → ReLU → max-pool 2 → flatten → dropout 0.2 → gemm 2,
 * weights drawn from seed. */
static TpModel *
small_cnn(TpBackend *backend, guint32 seed)
{
    TpModel *model = tp_model_new(backend, 1, SIDE, SIDE);
    TpOpAttrs a;
    int x;

    memset(&a, 0, sizeof(a));
    a.conv = (TpConvAttrs){4, {3, 3}, {1, 1}, {1, 1, 1, 1}, {1, 1}, 1, TRUE};
    x = tp_test_add(model, TP_OP_CONV, NULL, 0, 0, &a);
    x = tp_test_add(model, TP_OP_BATCH_NORM, NULL, x, 0, NULL);
    x = tp_test_add(model, TP_OP_RELU, NULL, x, 0, NULL);
    memset(&a, 0, sizeof(a));
    a.pool = (TpPoolAttrs){{2, 2}, {2, 2}, {0}, FALSE, FALSE};
    x = tp_test_add(model, TP_OP_MAX_POOL, NULL, x, 0, &a);
    x = tp_test_add(model, TP_OP_FLATTEN, NULL, x, 0, NULL);
    memset(&a, 0, sizeof(a));
    a.dropout.ratio = 0.2f;
    x = tp_test_add(model, TP_OP_DROPOUT, NULL, x, 0, &a);
    memset(&a, 0, sizeof(a));
    a.gemm = (TpGemmAttrs){2, TRUE};
    tp_test_add(model, TP_OP_GEMM, NULL, x, 0, &a);

    for (guint i = 0; i < tp_model_get_n_nodes(model); i++) {
        TpTensor *w = tp_model_get_param(model, i, 0);
        if (w == NULL || tp_model_get_node(model, i)->op == TP_OP_BATCH_NORM)
            continue;
        g_autofree float *host = g_new(float, w->numel);
        tp_test_fill_uniform(host, w->numel, -0.5f, 0.5f, seed + i);
        ck_assert(tp_tensor_upload(w, host, NULL));
    }
    return model;
}

static TpTrainConfig
config(void)
{
    TpTrainConfig c = {0};

    c.epochs = 3;
    c.batch_size = 16;
    c.lr = 0.1;
    c.momentum = 0.9;
    c.weight_decay = 1e-4;
    c.schedule = TP_SCHEDULE_COSINE;
    c.warmup_epochs = 0.5;
    c.step_epochs = 30;
    c.gamma = 0.1;
    c.seed = 3;
    return c;
}

/* Every parameter and BatchNorm statistic, concatenated on the host. */
static GByteArray *
weights(TpModel *model)
{
    GByteArray *all = g_byte_array_new();

    for (guint i = 0; i < tp_model_get_n_nodes(model); i++) {
        for (int p = 0; p < TP_NODE_MAX_PARAMS; p++) {
            TpTensor *t = tp_model_get_param(model, i, p);
            if (t == NULL)
                continue;
            g_autofree float *host = tp_tensor_dup_host(t, NULL);
            g_byte_array_append(all, (const guint8 *)host, (guint)(t->numel * sizeof(float)));
        }
    }
    return all;
}

static void
run_epochs(TpTrainer *trainer, TpLoader *l, int epochs)
{
    g_autoptr(GError) error = NULL;
    gboolean stopped;

    while ((int)tp_trainer_get_epoch(trainer) < epochs) {
        ck_assert_msg(tp_trainer_run_epoch(trainer, l, NULL, NULL, &stopped, NULL, &error), "%s",
                      error ? error->message : "");
        ck_assert(!stopped);
    }
}

/* ---------------------------------------------------------------- tests */

START_TEST(test_schedule)
{
    TpTrainConfig c = {0};

    c.epochs = 10;
    c.lr = 0.1;
    c.schedule = TP_SCHEDULE_COSINE;
    c.warmup_epochs = 2;
    /* Warm-up: linear from one step's worth (100 steps an epoch). */
    ck_assert_double_eq_tol(tp_train_lr(&c, 0, 0, 100), 0.1 * 0.01 / 2, 1e-12);
    ck_assert_double_eq_tol(tp_train_lr(&c, 1, 0, 100), 0.1 * 1.01 / 2, 1e-12);
    /* Cosine over epochs 2..10: the peak, the middle, the end. */
    ck_assert_double_eq_tol(tp_train_lr(&c, 2, 0, 100), 0.1, 1e-12);
    ck_assert_double_eq_tol(tp_train_lr(&c, 6, 0, 100), 0.05, 1e-12);
    ck_assert_double_eq_tol(tp_train_lr(&c, 8, 0, 100), 0.1 * (1 + cos(G_PI * 0.75)) / 2, 1e-12);

    c.warmup_epochs = 0;
    c.schedule = TP_SCHEDULE_STEP;
    c.step_epochs = 3;
    c.gamma = 0.1;
    ck_assert_double_eq_tol(tp_train_lr(&c, 2, 99, 100), 0.1, 1e-12);
    ck_assert_double_eq_tol(tp_train_lr(&c, 3, 0, 100), 0.01, 1e-12);
    ck_assert_double_eq_tol(tp_train_lr(&c, 7, 50, 100), 0.001, 1e-12);
    c.schedule = TP_SCHEDULE_CONSTANT;
    ck_assert_double_eq_tol(tp_train_lr(&c, 7, 50, 100), 0.1, 1e-12);
}
END_TEST

START_TEST(test_params)
{
    g_autoptr(TpParams) params = tp_params_new(tp_train_get_param_specs());
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autoptr(GError) error = NULL;
    TpTrainConfig c;

    ck_assert(tp_param_specs_check(tp_train_get_param_specs(), NULL));
    ck_assert(
        g_key_file_load_from_data(kf, "[train]\nepochs=7\nschedule=step\nlr=0.2\n", -1, 0, NULL));
    ck_assert(tp_params_load(params, kf, "train", "t.ini", NULL, NULL));
    tp_train_config_from_params(params, &c);
    ck_assert_int_eq(c.epochs, 7);
    ck_assert_int_eq(c.schedule, TP_SCHEDULE_STEP);
    ck_assert_double_eq(c.lr, 0.2);
    ck_assert_int_eq(c.batch_size, 64);

    ck_assert(g_key_file_load_from_data(kf, "[train]\nschedule=linear\n", -1, 0, NULL));
    ck_assert(!tp_params_load(params, kf, "train", "t.ini", NULL, &error));
    ck_assert_ptr_nonnull(strstr(error->message, "t.ini: [train] schedule:"));
}
END_TEST

/* The small CNN learns the halves task; evaluation counts are consistent. */
START_TEST(test_learns)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open(tp_test_backend_name(_i));
    g_autoptr(TpDataset) data = halves();
    g_autoptr(TpLoader) train = loader(data, TP_LOADER_TRAIN, 1);
    g_autoptr(TpLoader) val = loader(data, TP_LOADER_VALIDATION, 1);
    g_autoptr(TpModel) model = small_cnn(backend, 5);
    TpTrainConfig c = config();
    g_autoptr(TpTrainer) trainer = tp_trainer_new(model, &c, NULL);
    g_autoptr(GError) error = NULL;

    g_autoptr(TpEvaluation) before = tp_evaluate(model, val, &error);
    ck_assert_msg(before != NULL, "%s", error ? error->message : "");
    run_epochs(trainer, train, c.epochs);
    g_autoptr(TpEvaluation) after = tp_evaluate(model, val, &error);
    ck_assert_msg(after != NULL, "%s", error ? error->message : "");

    ck_assert_uint_eq(after->n_samples, 48); /* 25% of 96 per class */
    guint64 total = 0, diagonal = 0;
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            total += after->confusion[i * 2 + j];
            diagonal += i == j ? after->confusion[i * 2 + j] : 0;
        }
    ck_assert_uint_eq(total, after->n_samples);
    ck_assert_uint_eq(diagonal, after->correct);
    ck_assert_msg(tp_evaluation_accuracy(after) >= 0.95, "accuracy %.3f after training",
                  tp_evaluation_accuracy(after));
    ck_assert_msg(after->loss < before->loss, "loss %.4f, before %.4f", after->loss, before->loss);
}
END_TEST

/* The same seed gives the same weights, bit for bit; another seed does not. */
START_TEST(test_deterministic)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open(tp_test_backend_name(_i));
    g_autoptr(TpDataset) data = halves();
    GByteArray *result[3];
    TpTrainConfig c = config();

    for (int run = 0; run < 3; run++) {
        g_autoptr(TpLoader) train = loader(data, TP_LOADER_TRAIN, 1);
        g_autoptr(TpModel) model = small_cnn(backend, 5);
        c.seed = run < 2 ? 3 : 4;
        g_autoptr(TpTrainer) trainer = tp_trainer_new(model, &c, NULL);
        run_epochs(trainer, train, 2);
        result[run] = weights(model);
    }
    ck_assert(result[0]->len == result[1]->len &&
              memcmp(result[0]->data, result[1]->data, result[0]->len) == 0);
    ck_assert(memcmp(result[0]->data, result[2]->data, result[0]->len) != 0);
    for (int run = 0; run < 3; run++)
        g_byte_array_unref(result[run]);
}
END_TEST

typedef struct {
    gsize stop_at;
} StopAt;

static gboolean
stop_at(const TpTrainProgress *p, gpointer data)
{
    return p->step < ((StopAt *)data)->stop_at;
}

/* Stopping mid-epoch, checkpointing, loading and going on gives the weights
 * of a run that never stopped. */
START_TEST(test_resume)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open(tp_test_backend_name(_i));
    g_autoptr(TpDataset) data = halves();
    g_autofree char *dir = tp_test_make_temp_dir();
    g_autoptr(GError) error = NULL;
    TpTrainConfig c = config();
    StopAt stop = {4};
    gboolean stopped;
    TpTrainProgress p;

    g_autoptr(TpLoader) l1 = loader(data, TP_LOADER_TRAIN, 1);
    g_autoptr(TpModel) straight = small_cnn(backend, 5);
    g_autoptr(TpTrainer) t1 = tp_trainer_new(straight, &c, NULL);
    run_epochs(t1, l1, c.epochs);
    g_autoptr(GByteArray) want = weights(straight);

    g_autoptr(TpLoader) l2 = loader(data, TP_LOADER_TRAIN, 1);
    g_autoptr(TpModel) first = small_cnn(backend, 5);
    g_autoptr(TpTrainer) t2 = tp_trainer_new(first, &c, NULL);
    run_epochs(t2, l2, 1);
    ck_assert(tp_trainer_run_epoch(t2, l2, stop_at, &stop, &stopped, &p, &error));
    ck_assert(stopped);
    ck_assert_uint_eq(tp_trainer_get_epoch(t2), 1);
    ck_assert_uint_eq(tp_trainer_get_step(t2), 4);
    ck_assert_msg(tp_trainer_save(t2, dir, &error), "%s", error ? error->message : "");

    TpModel *resumed = NULL;
    g_autoptr(TpTrainer) t3 = tp_trainer_load(backend, dir, &resumed, &error);
    ck_assert_msg(t3 != NULL, "%s", error ? error->message : "");
    ck_assert_uint_eq(tp_trainer_get_epoch(t3), 1);
    ck_assert_uint_eq(tp_trainer_get_step(t3), 4);
    g_autoptr(TpLoader) l3 = loader(data, TP_LOADER_TRAIN, 1);
    run_epochs(t3, l3, c.epochs);
    g_autoptr(GByteArray) got = weights(resumed);
    ck_assert(got->len == want->len && memcmp(got->data, want->data, got->len) == 0);

    /* A second save replaces the first: one model and one velocity file. */
    ck_assert(tp_trainer_save(t3, dir, NULL));
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    int files = 0;
    while (g_dir_read_name(d) != NULL)
        files++;
    ck_assert_int_eq(files, 3);
    g_clear_pointer(&t3, tp_trainer_free);
    tp_model_free(resumed);
    tp_test_remove_dir(dir);
}
END_TEST

START_TEST(test_bad_checkpoint)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open("cpu");
    g_autoptr(TpModel) model = small_cnn(backend, 5);
    TpTrainConfig c = config();
    g_autoptr(TpTrainer) trainer = tp_trainer_new(model, &c, NULL);
    g_autofree char *dir = tp_test_make_temp_dir();
    g_autoptr(GError) error = NULL;
    TpModel *loaded = NULL;

    ck_assert_ptr_null(tp_trainer_load(backend, "/nonexistent/checkpoint", &loaded, &error));
    ck_assert(g_error_matches(error, TP_TRAIN_ERROR, TP_TRAIN_ERROR_CHECKPOINT));
    ck_assert_ptr_nonnull(strstr(error->message, "/nonexistent/checkpoint/state.ini"));
    g_clear_error(&error);

    ck_assert(tp_trainer_save(trainer, dir, NULL));
    g_autofree char *velocity = g_build_filename(dir, "velocity-0-0.bin", NULL);
    ck_assert(g_file_set_contents(velocity, "short", 5, NULL));
    ck_assert_ptr_null(tp_trainer_load(backend, dir, &loaded, &error));
    ck_assert(g_error_matches(error, TP_TRAIN_ERROR, TP_TRAIN_ERROR_CHECKPOINT));
    ck_assert_msg(strstr(error->message, "velocity-0-0.bin") != NULL, "%s", error->message);
    tp_test_remove_dir(dir);
}
END_TEST

START_TEST(test_diverges)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open("cpu");
    g_autoptr(TpDataset) data = halves();
    g_autoptr(TpLoader) train = loader(data, TP_LOADER_TRAIN, 1);
    g_autoptr(TpModel) model = small_cnn(backend, 5);
    TpTrainConfig c = config();
    g_autoptr(GError) error = NULL;
    gboolean stopped;

    c.lr = 1e30;
    c.warmup_epochs = 0;
    c.schedule = TP_SCHEDULE_CONSTANT;
    g_autoptr(TpTrainer) trainer = tp_trainer_new(model, &c, NULL);
    gboolean ok = TRUE;
    for (int e = 0; ok && e < 20; e++)
        ok = tp_trainer_run_epoch(trainer, train, NULL, NULL, &stopped, NULL, &error);
    ck_assert_msg(!ok, "training at lr 1e30 never diverged");
    ck_assert(g_error_matches(error, TP_TRAIN_ERROR, TP_TRAIN_ERROR_DIVERGED));
    ck_assert_ptr_nonnull(strstr(error->message, "lower the learning rate"));
}
END_TEST

int
main(void)
{
    Suite *suite = suite_create("train");
    TCase *tc = tcase_create("train");
    int n;

    tp_test_init();
    n = tp_test_count_backends();
    tcase_add_test(tc, test_schedule);
    tcase_add_test(tc, test_params);
    tcase_add_loop_test(tc, test_learns, 0, n);
    tcase_add_loop_test(tc, test_deterministic, 0, n);
    tcase_add_loop_test(tc, test_resume, 0, n);
    tcase_add_test(tc, test_bad_checkpoint);
    tcase_add_test(tc, test_diverges);
    suite_add_tcase(suite, tc);
    return tp_test_run(suite);
}
