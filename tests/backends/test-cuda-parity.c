/* test-cuda-parity.c — whole-model parity of a GPU backend with the cpu
 * backend (tagged: it needs a GPU): the same weights and batch give the same
 * training steps, the same criterion rankings and the same specialization
 * result on both.
 *
 *   train_step   VGG-11 and ResNet-20 (zoo builders, narrow, small inputs):
 *                two SGD steps (momentum, weight decay) from the same weights
 *                and batches; each step's loss within LOSS_RTOL, and then
 *                every parameter and BatchNorm statistic within
 *                WEIGHT_ATOL + WEIGHT_RTOL * |cpu|.
 *   ranking      every criterion plugin found (magnitude, taylor, lrp,
 *                random) scores a VGG-11 on the same samples on both; within
 *                each producer the units must be ranked alike, a pair counting
 *                as a tie (either order passes) when its two scores are within
 *                TIE_RTOL of each other.
 *   pipeline     a short specialization pipeline (magnitude, fine-tuning,
 *                VGG-11 base trained here on the synthetic dataset) run with
 *                [backend] plugin = the backend under test reaches the cpu
 *                run's test accuracy within ACCURACY_POINTS.
 *
 * The backend under test is TP_TEST_PARITY_BACKEND (default cuda). With
 * "cpu" the test compares cpu with a second cpu instance: that runs all of
 * its logic on a machine without a GPU (tests/backends/test-parity-cpu.sh).
 * Without the backend (not built, or no device) the program exits 77,
 * automake's SKIP, after saying why.
 */
#include "config.h"

#include <glib/gstdio.h>
#include <math.h>

#include "tp-criterion.h"
#include "tp-onnx.h"
#include "tp-pipeline.h"
#include "tp-prune.h"
#include "tp-sgd.h"
#include "tp-test.h"
#include "tp-train.h"
#include "tp-zoo.h"

/* clang-format off */
#define LOSS_RTOL       1e-4 /* per step's loss, relative */
#define WEIGHT_ATOL     1e-5 /* parameters after the steps */
#define WEIGHT_RTOL     1e-4
#define TIE_RTOL        1e-4 /* criterion scores this close may swap ranks */
#define ACCURACY_POINTS 0.5  /* pipeline test accuracy, in percentage points */
/* clang-format on */

#define DATA "[dataset]\nplugin=synthetic\nclasses=4\nsamples=100\nheight=16\nwidth=16\n"

/* The backend under test (TP_TEST_PARITY_BACKEND, or cuda). */
static const char *target;

/* ---------------------------------------------------------------- helpers */

static TpModel *
build(TpBackend *backend, const char *arch, const TpZooConfig *zoo)
{
    g_autoptr(GError) error = NULL;
    TpModel *model = tp_zoo_build(backend, arch, zoo, &error);

    ck_assert_msg(model != NULL, "%s on %s: %s", arch, backend->info->name,
                  error ? error->message : "");
    return model;
}

/* A host copy of tensor t (owned). */
static float *
fetch(const TpTensor *t)
{
    g_autoptr(GError) error = NULL;
    float *host = tp_tensor_dup_host(t, &error);

    ck_assert_msg(host != NULL, "%s", error ? error->message : "");
    return host;
}

/* Copies every parameter and BatchNorm statistic of from into to (the same
 * architecture on another backend). */
static void
copy_params(TpModel *from, TpModel *to)
{
    g_autoptr(GError) error = NULL;

    ck_assert_uint_eq(tp_model_get_n_nodes(from), tp_model_get_n_nodes(to));
    for (guint i = 0; i < tp_model_get_n_nodes(from); i++) {
        for (int p = 0; p < tp_model_get_node(from, i)->n_params; p++) {
            g_autofree float *host = fetch(tp_model_get_param(from, i, p));
            ck_assert_msg(tp_tensor_upload(tp_model_get_param(to, i, p), host, &error), "%s",
                          error ? error->message : "");
        }
    }
}

/* One forward, loss, backward and SGD step of model on a batch; returns
 * the loss. */
static double
train_step(TpModel *model, TpSgd *sgd, const float *images, const gint32 *labels, int batch)
{
    g_autoptr(GError) error = NULL;
    double loss = NAN;

    ck_assert_msg(tp_model_forward(model, images, batch, TP_MODE_TRAIN, &error) &&
                      tp_model_loss(model, labels, 0.0f, &loss, &error) &&
                      tp_model_backward(model, tp_model_get_logits(model), &error) &&
                      tp_sgd_step(sgd, &error),
                  "%s: %s", tp_model_get_backend(model)->info->name, error ? error->message : "");
    return loss;
}

/* ---------------------------------------------------------------- train step */

static const struct {
    const char *arch;
    TpZooConfig zoo;
    int batch;
} train_cases[] = {
    /*               channels  h   w  classes width seed   batch */
    {"vgg11", {1, 28, 28, 10, 0.25, 5}, 16},
    {"resnet20", {3, 32, 32, 10, 0.5, 5}, 16},
};

START_TEST(test_train_step)
{
    const char *arch = train_cases[_i].arch;
    const int batch = train_cases[_i].batch;
    const TpZooConfig *zoo = &train_cases[_i].zoo;
    const gsize per_sample = (gsize)zoo->channels * zoo->height * zoo->width;
    const TpSgdHyper hyper = {.lr = 0.05f, .momentum = 0.9f, .weight_decay = 5e-4f};
    g_autoptr(TpBackend) cpu = tp_test_backend_open("cpu");
    g_autoptr(TpBackend) gpu = tp_test_backend_open(target);
    g_autoptr(TpModel) want = build(cpu, arch, zoo);
    g_autoptr(TpModel) got = build(gpu, arch, zoo);
    g_autoptr(GError) error = NULL;
    g_autoptr(TpSgd) want_sgd = NULL;
    g_autoptr(TpSgd) got_sgd = NULL;
    g_autofree float *images = g_new(float, 2 * batch * per_sample);
    g_autofree gint32 *labels = g_new(gint32, 2 * batch);

    copy_params(want, got);
    tp_model_set_seed(want, 9);
    tp_model_set_seed(got, 9);
    want_sgd = tp_sgd_new(want, &hyper, &error);
    got_sgd = tp_sgd_new(got, &hyper, &error);
    ck_assert_msg(want_sgd != NULL && got_sgd != NULL, "%s", error ? error->message : "");
    tp_test_fill_uniform(images, 2 * batch * per_sample, -1.0f, 1.0f, 17);
    for (int i = 0; i < 2 * batch; i++)
        labels[i] = (i * 7) % zoo->classes;

    for (int step = 0; step < 2; step++) {
        const float *x = images + (gsize)step * batch * per_sample;
        const gint32 *y = labels + step * batch;
        double want_loss = train_step(want, want_sgd, x, y, batch);
        double got_loss = train_step(got, got_sgd, x, y, batch);

        ck_assert_msg(isfinite(got_loss) &&
                          fabs(got_loss - want_loss) <= LOSS_RTOL * fabs(want_loss),
                      "%s, step %d: loss on %s %.9g, on cpu %.9g (relative tolerance %g)", arch,
                      step, target, got_loss, want_loss, LOSS_RTOL);
    }
    for (guint i = 0; i < tp_model_get_n_nodes(want); i++) {
        const TpNode *node = tp_model_get_node(want, i);

        for (int p = 0; p < node->n_params; p++) {
            const TpTensor *t = tp_model_get_param(want, i, p);
            g_autofree float *w = fetch(t);
            g_autofree float *g = fetch(tp_model_get_param(got, i, p));
            g_autofree char *what = g_strdup_printf("%s after 2 steps on %s: node %u (%s) param %d",
                                                    arch, target, i, node->name, p);

            tp_test_assert_close(g, w, t->numel, WEIGHT_ATOL, WEIGHT_RTOL, what);
        }
    }
}
END_TEST

/* ---------------------------------------------------------------- criteria */

static gboolean
tie(double a, double b)
{
    return fabs(a - b) <= TIE_RTOL * MAX(fabs(a), fabs(b));
}

/* Fails at the first pair of units that want orders one way and got
 * strictly the other, neither pair being a tie. */
static void
assert_same_ranking(const double *got, const double *want, int n, const char *what)
{
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) {
            gboolean flipped = want[i] < want[j] && got[i] > got[j];

            ck_assert_msg(!flipped || tie(want[i], want[j]) || tie(got[i], got[j]),
                          "%s: units %d and %d ranked apart: cpu %.9g < %.9g, but %s %.9g > %.9g",
                          what, i, j, want[i], want[j], target, got[i], got[j]);
        }
    }
}

/* The criteria found, for the loop test; at least 1 so none fails. */
static int
count_criteria(void)
{
    g_autoptr(GPtrArray) plugins = tp_registry_list(tp_test_registry(), TP_PLUGIN_KIND_CRITERION);

    return MAX((int)plugins->len, 1);
}

/* Scores model with criterion `name` over every sample of data. */
static TpCriterionContext *
score(const char *name, TpModel *model, const TpUnits *units, TpDataset *data)
{
    g_autoptr(GError) error = NULL;
    const TpPlugin *plugin =
        tp_registry_lookup(tp_test_registry(), TP_PLUGIN_KIND_CRITERION, name, &error);
    g_autoptr(TpCriterion) criterion = NULL;
    g_autoptr(TpLoader) loader = NULL;
    TpLoaderConfig lc = {.batch_size = 50, .seed = 3};
    TpCriterionContext *context;

    ck_assert_msg(plugin != NULL, "%s", error ? error->message : "");
    criterion = tp_criterion_new(plugin->info, NULL, &error);
    ck_assert_msg(criterion != NULL, "%s", error ? error->message : "");
    loader = tp_loader_new(data, &lc, &error);
    ck_assert_msg(loader != NULL, "%s", error ? error->message : "");
    context = tp_criterion_score(criterion, model, units, loader, 21, &error);
    ck_assert_msg(context != NULL, "criterion %s on %s: %s", name,
                  tp_model_get_backend(model)->info->name, error ? error->message : "");
    return context;
}

START_TEST(test_ranking)
{
    g_autoptr(GPtrArray) plugins = tp_registry_list(tp_test_registry(), TP_PLUGIN_KIND_CRITERION);
    const TpZooConfig zoo = {1, 16, 16, 4, 0.25, 3};
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autoptr(GError) error = NULL;
    g_autoptr(TpBackend) cpu = tp_test_backend_open("cpu");
    g_autoptr(TpBackend) gpu = tp_test_backend_open(target);
    g_autoptr(TpModel) want_model = build(cpu, "vgg11", &zoo);
    g_autoptr(TpModel) got_model = build(gpu, "vgg11", &zoo);
    g_autoptr(TpUnits) units = NULL;
    g_autoptr(TpDataset) data = NULL;
    g_autoptr(TpCriterionContext) want = NULL;
    g_autoptr(TpCriterionContext) got = NULL;
    const char *name;

    ck_assert_msg(plugins->len > 0, "no criterion plugin found on TASKPRUNE_PLUGIN_PATH");
    name = ((const TpPlugin *)g_ptr_array_index(plugins, _i))->info->name;
    ck_assert(g_key_file_load_from_data(kf, DATA, -1, 0, NULL));
    data = tp_dataset_new_from_keyfile(kf, "dataset", "t", TP_SPLIT_TRAIN, &error);
    ck_assert_msg(data != NULL, "%s", error ? error->message : "");
    copy_params(want_model, got_model);
    units = tp_units_new(want_model, TRUE, &error);
    ck_assert_msg(units != NULL, "%s", error ? error->message : "");

    want = score(name, want_model, units, data);
    got = score(name, got_model, units, data);
    for (guint s = 0; s < tp_units_get_n_spaces(units); s++) {
        const TpUnitSpace *space = tp_units_get_space(units, s);

        for (guint p = 0; p < space->n_producers; p++) {
            const guint node = space->producers[p];
            g_autofree char *what = g_strdup_printf("criterion %s, producer node %u", name, node);

            assert_same_ranking(tp_criterion_context_get_scores(got, node),
                                tp_criterion_context_get_scores(want, node), space->n_units, what);
        }
    }
}
END_TEST

/* ---------------------------------------------------------------- pipeline */

/* A VGG-11 (width 1/8) trained on cpu for a few epochs, saved in folder. */
static char *
make_base(const char *folder)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autoptr(GError) error = NULL;
    g_autoptr(TpBackend) cpu = tp_test_backend_open("cpu");
    const TpZooConfig zoo = {1, 16, 16, 4, 0.125, 1};
    TpTrainConfig train = {
        .epochs = 3, .batch_size = 20, .lr = 0.05, .momentum = 0.9, .step_epochs = 1, .gamma = 1};
    TpLoaderConfig lc = {.batch_size = 20, .shuffle = TRUE, .seed = 2};
    char *path = g_build_filename(folder, "base.onnx", NULL);
    gboolean stopped;

    ck_assert(g_key_file_load_from_data(kf, DATA, -1, 0, NULL));
    g_autoptr(TpDataset) data =
        tp_dataset_new_from_keyfile(kf, "dataset", "t", TP_SPLIT_TRAIN, &error);
    ck_assert_msg(data != NULL, "%s", error ? error->message : "");
    g_autoptr(TpModel) model = build(cpu, "vgg11", &zoo);
    tp_model_set_class_names(model, data->meta.class_names);
    g_autoptr(TpLoader) loader = tp_loader_new(data, &lc, &error);
    g_autoptr(TpTrainer) trainer = tp_trainer_new(model, &train, &error);
    ck_assert_msg(loader != NULL && trainer != NULL, "%s", error ? error->message : "");
    for (int e = 0; e < train.epochs; e++)
        ck_assert_msg(tp_trainer_run_epoch(trainer, loader, NULL, NULL, &stopped, NULL, &error),
                      "%s", error ? error->message : "");
    ck_assert_msg(tp_onnx_save(model, path, &error), "%s", error ? error->message : "");
    return path;
}

/* Runs the pipeline on backend `backend_name`; returns its test accuracy. */
static double
run_pipeline(const char *folder, const char *base, const char *backend_name)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autoptr(GError) error = NULL;
    g_autofree char *text = g_strdup_printf(
        "[model]\npath=%s\n" DATA "[task]\nclasses=class-0,2\n[criterion]\nplugin=magnitude\n"
        "[prune]\nstep=0.2\ngoal=0.5\n[finetune]\nsteps=10\nlr=0.02\n"
        "[backend]\nplugin=%s\n[output]\nmodel=%s/%s.onnx\nlatency-runs=3\n",
        base, backend_name, folder, backend_name);
    g_autoptr(TpPipeline) pipeline = NULL;

    ck_assert_msg(g_key_file_load_from_data(kf, text, -1, G_KEY_FILE_NONE, &error), "%s",
                  error ? error->message : "");
    pipeline = tp_pipeline_new(kf, "parity.ini", &error);
    ck_assert_msg(pipeline != NULL, "%s", error ? error->message : "");
    ck_assert_msg(tp_pipeline_run(pipeline, FALSE, NULL, NULL, &error), "pipeline on %s: %s",
                  backend_name, error ? error->message : "");
    return tp_pipeline_get_result(pipeline)->test_accuracy;
}

START_TEST(test_pipeline)
{
    g_autoptr(TpTestDir) folder = tp_test_make_temp_dir();
    g_autofree char *base = make_base(folder);
    g_autofree char *want_dir = g_build_filename(folder, "cpu", NULL);
    g_autofree char *got_dir = g_build_filename(folder, "target", NULL);
    double want, got;

    ck_assert(g_mkdir(want_dir, 0700) == 0 && g_mkdir(got_dir, 0700) == 0);
    want = run_pipeline(want_dir, base, "cpu");
    got = run_pipeline(got_dir, base, target);
    g_print("pipeline test accuracy: cpu %.2f%%, %s %.2f%%\n", 100 * want, target, 100 * got);
    ck_assert_msg(fabs(got - want) * 100 <= ACCURACY_POINTS,
                  "pipeline test accuracy on %s %.2f%%, on cpu %.2f%% (more than %g points apart)",
                  target, 100 * got, 100 * want, ACCURACY_POINTS);
}
END_TEST

/* ---------------------------------------------------------------- suite */

static Suite *
parity_suite(void)
{
    Suite *suite = suite_create("backend-parity");
    TCase *tc;

    tc = tcase_create("train_step");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_train_step, 0, G_N_ELEMENTS(train_cases));
    suite_add_tcase(suite, tc);

    tc = tcase_create("ranking");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_ranking, 0, count_criteria());
    suite_add_tcase(suite, tc);

    tc = tcase_create("pipeline");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_pipeline);
    suite_add_tcase(suite, tc);

    return suite;
}

int
main(void)
{
    const TpPlugin *plugin;

    tp_test_init();
    target = g_getenv("TP_TEST_PARITY_BACKEND");
    if (target == NULL || *target == '\0')
        target = "cuda";
    plugin = tp_registry_lookup(tp_test_registry(), TP_PLUGIN_KIND_BACKEND, target, NULL);
    if (plugin == NULL) {
        g_print("SKIP: backend '%s' is not built here (configure --enable-cuda)\n", target);
        return 77;
    }
    if (!tp_test_backend_available(target)) {
        g_print("SKIP: backend '%s' has no device here: the GPU parity tests did not run\n",
                target);
        return 77;
    }
    g_print("parity: %s against cpu\n", target);
    return tp_test_run(parity_suite());
}
