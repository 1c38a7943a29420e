/* test-sgd.c — SGD on every backend: two steps on a one-Gemm model against
 * numbers worked out by hand (plain with a learning-rate change, momentum with
 * weight decay, Nesterov); every parameter of a small CNN against the
 * reference update, BatchNorm's running statistics left alone; a short
 * training run that lowers the loss; and the errors. */
#include "config.h"

#include <math.h>
#include <string.h>

#include "tp-reference.h"
#include "tp-test.h"

/* ------------------------------------------------------------ by hand */

/* y = W·x + b with x = [1, 2] (one sample, [2, 1, 1] flattened), W = [0.5, -1],
 * b = 0.25, and dL/dy = 1: so dW = [1, 2] and db = 1 at every step. */
typedef struct {
    TpBackend *backend;
    TpModel *model;
    TpSgd *sgd;
} Tiny;

static const float tiny_x[2] = {1.0f, 2.0f};

static void
tiny_init(Tiny *t, int backend_index, const TpSgdHyper *hyper)
{
    g_autoptr(GError) error = NULL;
    TpOpAttrs fc = {.gemm = {.out_features = 1, .bias = TRUE}};
    int v = 0;

    t->backend = tp_test_backend_open(tp_test_backend_name(backend_index));
    t->model = tp_model_new(t->backend, 2, 1, 1);
    v = tp_model_add(t->model, TP_OP_FLATTEN, "flat", &v, NULL, &error);
    v = tp_model_add(t->model, TP_OP_GEMM, "fc", &v, &fc, &error);
    ck_assert_msg(v == 2, "%s", error ? error->message : "");
    ck_assert(
        tp_tensor_upload(tp_model_get_param(t->model, 1, 0), (const float[]){0.5f, -1.0f}, &error));
    ck_assert(tp_tensor_upload(tp_model_get_param(t->model, 1, 1), (const float[]){0.25f}, &error));
    t->sgd = tp_sgd_new(t->model, hyper, &error);
    ck_assert_msg(t->sgd != NULL, "%s", error ? error->message : "");
}

static void
tiny_clear(Tiny *t)
{
    tp_sgd_free(t->sgd);
    tp_model_free(t->model);
    tp_backend_free(t->backend);
}

/* Forward, dL/dy = 1, backward, one step; then W and b must be as given. */
static void
tiny_step(Tiny *t, float w0, float w1, float b, const char *what)
{
    g_autoptr(GError) error = NULL;
    float w[2], bias[1];
    TpTensor *seed;

    ck_assert(tp_model_forward(t->model, tiny_x, 1, TP_MODE_TRAIN, &error));
    seed = tp_model_ensure_grad(t->model, 2, &error);
    ck_assert(seed != NULL && tp_tensor_fill(seed, 1.0f, &error));
    ck_assert(tp_model_backward(t->model, 2, &error));
    ck_assert_msg(tp_sgd_step(t->sgd, &error), "%s", error ? error->message : "");

    ck_assert(tp_tensor_download(tp_model_get_param(t->model, 1, 0), w, &error));
    ck_assert(tp_tensor_download(tp_model_get_param(t->model, 1, 1), bias, &error));
    tp_test_assert_close(w, (const float[]){w0, w1}, 2, 1e-6, 1e-6, what);
    tp_test_assert_close(bias, (const float[]){b}, 1, 1e-6, 1e-6, what);
}

/* lr 0.5: W = [0.5, -1] - 0.5·[1, 2] = [0, -2], b = 0.25 - 0.5 = -0.25;
 * then lr 0.25: W = [0, -2] - 0.25·[1, 2] = [-0.25, -2.5], b = -0.5. */
START_TEST(test_plain)
{
    const TpSgdHyper hyper = {.lr = 0.5f};
    Tiny t;

    tiny_init(&t, _i, &hyper);
    tiny_step(&t, 0.0f, -2.0f, -0.25f, "plain SGD, step 1");
    tp_sgd_set_lr(t.sgd, 0.25f);
    tiny_step(&t, -0.25f, -2.5f, -0.5f, "plain SGD, step 2 at lr 0.25");
    tiny_clear(&t);
}
END_TEST

/* lr 0.1, momentum 0.9, weight decay 0.01; g' = g + 0.01·w, v = 0.9·v + g', w -= 0.1·v.
 * Step 1: g'(W) = [1 + 0.005, 2 - 0.01] = [1.005, 1.99] = v,
 *         W = [0.5 - 0.1005, -1 - 0.199] = [0.3995, -1.199];
 *         g'(b) = 1 + 0.0025 = 1.0025 = v, b = 0.25 - 0.10025 = 0.14975.
 * Step 2: g'(W) = [1 + 0.003995, 2 - 0.01199] = [1.003995, 1.98801],
 *         v = [0.9045 + 1.003995, 1.791 + 1.98801] = [1.908495, 3.77901],
 *         W = [0.3995 - 0.1908495, -1.199 - 0.377901] = [0.2086505, -1.576901];
 *         g'(b) = 1.0014975, v = 0.90225 + 1.0014975 = 1.9037475,
 *         b = 0.14975 - 0.19037475 = -0.04062475. */
START_TEST(test_momentum_weight_decay)
{
    const TpSgdHyper hyper = {.lr = 0.1f, .momentum = 0.9f, .weight_decay = 0.01f};
    Tiny t;

    tiny_init(&t, _i, &hyper);
    tiny_step(&t, 0.3995f, -1.199f, 0.14975f, "momentum + weight decay, step 1");
    tiny_step(&t, 0.2086505f, -1.576901f, -0.04062475f, "momentum + weight decay, step 2");
    tiny_clear(&t);
}
END_TEST

/* lr 0.1, momentum 0.9, Nesterov: v = 0.9·v + g, w -= 0.1·(g + 0.9·v).
 * Step 1: v = [1, 2], W = [0.5 - 0.19, -1 - 0.38] = [0.31, -1.38];
 *         v(b) = 1, b = 0.25 - 0.19 = 0.06.
 * Step 2: v = [1.9, 3.8], W = [0.31 - 0.271, -1.38 - 0.542] = [0.039, -1.922];
 *         v(b) = 1.9, b = 0.06 - 0.271 = -0.211. */
START_TEST(test_nesterov)
{
    const TpSgdHyper hyper = {.lr = 0.1f, .momentum = 0.9f, .nesterov = TRUE};
    Tiny t;

    tiny_init(&t, _i, &hyper);
    tiny_step(&t, 0.31f, -1.38f, 0.06f, "nesterov, step 1");
    tiny_step(&t, 0.039f, -1.922f, -0.211f, "nesterov, step 2");
    tiny_clear(&t);
}
END_TEST

/* ------------------------------------------------------------ a small CNN */

#define CNN_BATCH 6
#define CNN_CLASSES 3

static const gint32 cnn_labels[CNN_BATCH] = {0, 1, 2, 2, 1, 0};

/* conv(1→4, 3x3, bias) → BN → relu → global average pool → flatten → gemm(4→3),
 * parameters drawn small and random. */
static TpModel *
build_cnn(TpBackend *backend)
{
    g_autoptr(GError) error = NULL;
    TpModel *model = tp_model_new(backend, 1, 6, 6);
    TpOpAttrs conv = {.conv = {.out_channels = 4, .kernel = {3, 3}, .bias = TRUE}};
    TpOpAttrs fc = {.gemm = {.out_features = CNN_CLASSES, .bias = TRUE}};
    int v = 0;

    v = tp_model_add(model, TP_OP_CONV, "conv", &v, &conv, &error);
    v = tp_model_add(model, TP_OP_BATCH_NORM, "bn", &v, NULL, &error);
    v = tp_model_add(model, TP_OP_RELU, "relu", &v, NULL, &error);
    v = tp_model_add(model, TP_OP_GLOBAL_AVERAGE_POOL, "gap", &v, NULL, &error);
    v = tp_model_add(model, TP_OP_FLATTEN, "flat", &v, NULL, &error);
    v = tp_model_add(model, TP_OP_GEMM, "fc", &v, &fc, &error);
    ck_assert_msg(v == 6, "%s", error ? error->message : "");

    for (guint i = 0; i < tp_model_get_n_nodes(model); i++) {
        for (int p = 0; p < tp_model_get_node(model, i)->n_params; p++) {
            TpTensor *t = tp_model_get_param(model, i, p);
            g_autofree float *host = NULL;

            if (!tp_model_param_is_trainable(model, i, p))
                continue;
            host = g_new(float, t->numel);
            tp_test_fill_uniform(host, t->numel, -0.5f, 0.5f, 100 + 10 * i + (guint32)p);
            if (tp_model_get_node(model, i)->op == TP_OP_BATCH_NORM && p == 0)
                for (gsize k = 0; k < t->numel; k++)
                    host[k] += 1.0f;
            ck_assert(tp_tensor_upload(t, host, &error));
        }
    }
    return model;
}

/* Forward in training mode, loss, backward; returns the loss. */
static double
cnn_backward(TpModel *model, const float *x)
{
    g_autoptr(GError) error = NULL;
    double loss = NAN;

    ck_assert_msg(tp_model_forward(model, x, CNN_BATCH, TP_MODE_TRAIN, &error) &&
                      tp_model_loss(model, cnn_labels, 0.0f, &loss, &error) &&
                      tp_model_backward(model, tp_model_get_logits(model), &error),
                  "%s", error ? error->message : "");
    return loss;
}

/* Two steps through the CNN: every trainable parameter follows the reference
 * update (velocities kept here on the host), running statistics do not move. */
START_TEST(test_model_matches_reference)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open(tp_test_backend_name(_i));
    g_autoptr(TpModel) model = build_cnn(backend);
    g_autoptr(TpSgd) sgd = NULL;
    g_autoptr(GError) error = NULL;
    const TpSgdHyper hyper = {
        .lr = 0.05f, .momentum = 0.9f, .weight_decay = 5e-4f, .nesterov = TRUE};
    float x[CNN_BATCH * 36];
    float *velocity[16] = {NULL};
    int slot;

    tp_test_fill_uniform(x, G_N_ELEMENTS(x), -1.0f, 1.0f, 5);
    sgd = tp_sgd_new(model, &hyper, &error);
    ck_assert_ptr_nonnull(sgd);

    for (int step = 0; step < 2; step++) {
        float *want[16] = {NULL};
        float *running[2];
        const TpNode *bn = tp_model_get_node(model, 1);

        cnn_backward(model, x);
        running[0] = tp_tensor_dup_host(bn->params[2], &error);
        running[1] = tp_tensor_dup_host(bn->params[3], &error);

        slot = 0;
        for (guint i = 0; i < tp_model_get_n_nodes(model); i++)
            for (int p = 0; p < tp_model_get_node(model, i)->n_params; p++) {
                TpTensor *w = tp_model_get_param(model, i, p);
                g_autofree float *g = NULL;

                if (!tp_model_param_is_trainable(model, i, p))
                    continue;
                g = tp_tensor_dup_host(tp_model_get_param_grad(model, i, p), &error);
                want[slot] = tp_tensor_dup_host(w, &error);
                if (velocity[slot] == NULL)
                    velocity[slot] = g_new0(float, w->numel);
                ref_sgd_update(w->numel, want[slot], g, velocity[slot], &hyper);
                slot++;
            }

        ck_assert_msg(tp_sgd_step(sgd, &error), "%s", error ? error->message : "");

        slot = 0;
        for (guint i = 0; i < tp_model_get_n_nodes(model); i++)
            for (int p = 0; p < tp_model_get_node(model, i)->n_params; p++) {
                TpTensor *w = tp_model_get_param(model, i, p);
                g_autofree float *got = NULL;
                g_autofree char *what = NULL;

                if (!tp_model_param_is_trainable(model, i, p))
                    continue;
                got = tp_tensor_dup_host(w, &error);
                what = g_strdup_printf("step %d, %s parameter %d", step + 1,
                                       tp_model_get_node(model, i)->name, p);
                tp_test_assert_close(got, want[slot], w->numel, 1e-6, 1e-5, what);
                g_free(want[slot]);
                slot++;
            }
        for (int k = 0; k < 2; k++) {
            g_autofree float *after = tp_tensor_dup_host(bn->params[2 + k], &error);

            ck_assert_msg(memcmp(after, running[k], 4 * sizeof(float)) == 0,
                          "SGD changed a BatchNorm running statistic");
            g_free(running[k]);
        }
    }
    for (int k = 0; k < 16; k++)
        g_free(velocity[k]);
}
END_TEST

/* Thirty steps on six fixed samples lower the training loss clearly. */
START_TEST(test_training_lowers_loss)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open(tp_test_backend_name(_i));
    g_autoptr(TpModel) model = build_cnn(backend);
    g_autoptr(TpSgd) sgd = NULL;
    g_autoptr(GError) error = NULL;
    const TpSgdHyper hyper = {.lr = 0.1f, .momentum = 0.9f};
    float x[CNN_BATCH * 36];
    double first, last = 0.0;

    tp_test_fill_uniform(x, G_N_ELEMENTS(x), -1.0f, 1.0f, 6);
    sgd = tp_sgd_new(model, &hyper, &error);
    first = cnn_backward(model, x);
    for (int step = 0; step < 30; step++) {
        ck_assert_msg(tp_sgd_step(sgd, &error), "%s", error ? error->message : "");
        last = cnn_backward(model, x);
    }
    ck_assert_msg(last < 0.7 * first, "loss %g after 30 steps, %g at first", last, first);
}
END_TEST

START_TEST(test_errors)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open(tp_test_backend_name(_i));
    g_autoptr(TpModel) model = build_cnn(backend);
    g_autoptr(TpSgd) sgd = NULL;
    g_autoptr(GError) error = NULL;
    const TpSgdHyper good = {.lr = 0.1f, .momentum = 0.9f};
    const TpSgdHyper no_momentum = {.lr = 0.1f, .nesterov = TRUE};
    const TpSgdHyper negative = {.lr = -0.1f};

    ck_assert_ptr_null(tp_sgd_new(model, &no_momentum, &error));
    ck_assert(g_error_matches(error, TP_MODEL_ERROR, TP_MODEL_ERROR_INVALID));
    ck_assert_ptr_nonnull(strstr(error->message, "nesterov"));
    g_clear_error(&error);
    ck_assert_ptr_null(tp_sgd_new(model, &negative, &error));
    ck_assert(g_error_matches(error, TP_MODEL_ERROR, TP_MODEL_ERROR_INVALID));
    g_clear_error(&error);

    /* A step before any backward: no gradients yet. */
    sgd = tp_sgd_new(model, &good, &error);
    ck_assert_ptr_nonnull(sgd);
    ck_assert(!tp_sgd_step(sgd, &error));
    ck_assert(g_error_matches(error, TP_MODEL_ERROR, TP_MODEL_ERROR_STATE));
    ck_assert_msg(strstr(error->message, "Conv 'conv'") != NULL &&
                      strstr(error->message, "tp_model_backward") != NULL,
                  "%s", error->message);
}
END_TEST

int
main(void)
{
    Suite *suite;
    TCase *tc;
    int n;

    tp_test_init();
    n = tp_test_count_backends();

    suite = suite_create("sgd");
    tc = tcase_create("sgd");
    tcase_add_loop_test(tc, test_plain, 0, n);
    tcase_add_loop_test(tc, test_momentum_weight_decay, 0, n);
    tcase_add_loop_test(tc, test_nesterov, 0, n);
    tcase_add_loop_test(tc, test_model_matches_reference, 0, n);
    tcase_add_loop_test(tc, test_training_lowers_loss, 0, n);
    tcase_add_loop_test(tc, test_errors, 0, n);
    suite_add_tcase(suite, tc);
    return tp_test_run(suite);
}
