/* test-model.c — the model as a whole, on every backend: a small CNN with a
 * residual branch checked end to end against finite differences in training
 * mode; the tape (every value and gradient, and only those backward reaches);
 * reproducible forwards; the memory plan (a smaller batch reuses memory and
 * allocates nothing per step, a larger one reallocates); errors that name the
 * node; the loss against the reference; parameter and MAC counts of a
 * VGG-like and a LeNet-5-like network against formulas written out here. */
#include "config.h"

#include <math.h>
#include <string.h>

#include "tp-reference.h"
#include "tp-test.h"

#define SEED 77

/* ------------------------------------------------------------ the small CNN */

#define CNN_C 3
#define CNN_H 8
#define CNN_W 8
#define CNN_CLASSES 5

/* Node indices of the CNN below. */
enum {
    N_CONV1,
    N_BN1,
    N_RELU1,
    N_POOL1,
    N_CONV2,
    N_BN2,
    N_RES,
    N_RELU2,
    N_GAP,
    N_FLAT,
    N_FC1,
    N_RELU3,
    N_DROP,
    N_FC2,
    N_PROB,
    N_NODES
};

/* conv(3→8, 3x3, bias) → BN → relu → maxpool 2/2 ─┬─ conv(8→8, no bias) → BN ─ Add → relu
 *                                                  └─────────────────────────────┘
 * → global average pool → flatten → gemm(8→16) → relu → dropout 0.25 → gemm(16→5) → softmax.
 * The pooled value is read twice (conv2 and the Add): its gradient is a sum. */
static TpModel *
build_cnn(TpBackend *backend)
{
    TpModel *model = tp_model_new(backend, CNN_C, CNN_H, CNN_W);
    TpOpAttrs conv1 = {
        .conv = {.out_channels = 8, .kernel = {3, 3}, .pads = {1, 1, 1, 1}, .bias = TRUE}};
    TpOpAttrs conv2 = {.conv = {.out_channels = 8, .kernel = {3, 3}, .pads = {1, 1, 1, 1}}};
    TpOpAttrs pool = {.pool = {.kernel = {2, 2}, .stride = {2, 2}}};
    TpOpAttrs fc1 = {.gemm = {.out_features = 16, .bias = TRUE}};
    TpOpAttrs fc2 = {.gemm = {.out_features = CNN_CLASSES, .bias = TRUE}};
    TpOpAttrs drop = {.dropout = {.ratio = 0.25f}};
    int v, pooled, branch;

    v = tp_test_add(model, TP_OP_CONV, "conv1", 0, 0, &conv1);
    v = tp_test_add(model, TP_OP_BATCH_NORM, "bn1", v, 0, NULL);
    v = tp_test_add(model, TP_OP_RELU, "relu1", v, 0, NULL);
    pooled = tp_test_add(model, TP_OP_MAX_POOL, "pool1", v, 0, &pool);
    branch = tp_test_add(model, TP_OP_CONV, "conv2", pooled, 0, &conv2);
    branch = tp_test_add(model, TP_OP_BATCH_NORM, "bn2", branch, 0, NULL);
    v = tp_test_add(model, TP_OP_ADD, "res", branch, pooled, NULL);
    v = tp_test_add(model, TP_OP_RELU, "relu2", v, 0, NULL);
    v = tp_test_add(model, TP_OP_GLOBAL_AVERAGE_POOL, "gap", v, 0, NULL);
    v = tp_test_add(model, TP_OP_FLATTEN, "flat", v, 0, NULL);
    v = tp_test_add(model, TP_OP_GEMM, "fc1", v, 0, &fc1);
    v = tp_test_add(model, TP_OP_RELU, "relu3", v, 0, NULL);
    v = tp_test_add(model, TP_OP_DROPOUT, "drop", v, 0, &drop);
    v = tp_test_add(model, TP_OP_GEMM, "fc2", v, 0, &fc2);
    tp_test_add(model, TP_OP_SOFTMAX, "prob", v, 0, NULL);
    ck_assert_uint_eq(tp_model_get_n_nodes(model), N_NODES);
    tp_test_randomize_model(model, SEED);
    return model;
}

static float *
cnn_input(int batch, guint32 seed)
{
    float *x = g_new(float, (gsize)batch *CNN_C *CNN_H *CNN_W);

    tp_test_fill_uniform(x, (gsize)batch * CNN_C * CNN_H * CNN_W, -2.0f, 2.0f, seed);
    return x;
}

static const gint32 cnn_labels[] = {3, 0, 4, 1, 2, 2, 0, 1};

/* Training-mode loss of the CNN at x (reseeded: the same dropout mask). */
static double
cnn_loss(TpModel *model, const float *x, int batch)
{
    g_autoptr(GError) error = NULL;
    double loss = NAN;

    tp_model_set_seed(model, SEED);
    ck_assert_msg(tp_model_forward(model, x, batch, TP_MODE_TRAIN, &error), "%s",
                  error ? error->message : "");
    ck_assert_msg(tp_model_loss(model, cnn_labels, 0.0f, &loss, &error), "%s",
                  error ? error->message : "");
    return loss;
}

/* Finite differences of the whole network on float32 forwards. MaxPool and
 * three ReLUs make the loss only piecewise smooth: a weight of conv1 moves
 * every activation of its channel, and h = 1e-2 already crosses kinks, so
 * h = 1e-3 (no probe crosses one with these seeds). The loss is computed from
 * float32 logits, whose rounding puts about 2e-5 of noise on the differences:
 * hence the absolute tolerance. */
#define NET_PROBES 12
#define NET_H 1e-3
#define NET_ATOL 5e-5
#define NET_RTOL 1e-2

/* Compares grad (analytic, n floats) with central differences of the loss in
 * `host` (the input when target is NULL, else target's host copy). */
static void
check_net_gradient(TpModel *model, float *x, int batch, TpTensor *target, float *host, gsize n,
                   const float *grad, const char *what)
{
    g_autoptr(GRand) rand = g_rand_new_with_seed(SEED + (guint32)n);
    g_autoptr(GError) error = NULL;
    float analytic[NET_PROBES], numeric[NET_PROBES];
    int probes = n < NET_PROBES ? (int)n : NET_PROBES;

    for (int k = 0; k < probes; k++) {
        gsize i = n <= NET_PROBES ? (gsize)k : (gsize)g_rand_int_range(rand, 0, (gint32)n);
        float saved = host[i];
        float plus = (float)(saved + NET_H), minus = (float)(saved - NET_H);
        double l_plus, l_minus;

        host[i] = plus;
        if (target != NULL)
            ck_assert(tp_tensor_upload(target, host, &error));
        l_plus = cnn_loss(model, x, batch);
        host[i] = minus;
        if (target != NULL)
            ck_assert(tp_tensor_upload(target, host, &error));
        l_minus = cnn_loss(model, x, batch);
        host[i] = saved;
        if (target != NULL)
            ck_assert(tp_tensor_upload(target, host, &error));

        analytic[k] = grad[i];
        numeric[k] = (float)((l_plus - l_minus) / ((double)plus - (double)minus));
    }
    tp_test_assert_close(analytic, numeric, (gsize)probes, NET_ATOL, NET_RTOL, what);
}

START_TEST(test_network_gradients)
{
    const char *name = tp_test_backend_name(_i);
    g_autoptr(TpBackend) backend = tp_test_backend_open(name);
    g_autoptr(TpModel) model = build_cnn(backend);
    g_autoptr(GError) error = NULL;
    const int batch = 4;
    g_autofree float *x = cnn_input(batch, SEED);
    g_autofree float *dx = NULL;
    static const struct {
        int node, param;
    } checked[] = {
        {N_CONV1, 0}, {N_CONV1, 1}, {N_BN1, 0}, {N_BN1, 1}, {N_CONV2, 0},
        {N_BN2, 0},   {N_FC1, 0},   {N_FC2, 0}, {N_FC2, 1},
    };

    cnn_loss(model, x, batch);
    ck_assert_msg(tp_model_backward(model, tp_model_get_logits(model), &error), "%s",
                  error ? error->message : "");

    dx = tp_tensor_dup_host(tp_model_get_grad(model, 0), &error);
    {
        g_autofree char *what = g_strdup_printf("CNN [%s]: d input", name);

        check_net_gradient(model, x, batch, NULL, x, (gsize)batch * CNN_C * CNN_H * CNN_W, dx,
                           what);
    }
    for (guint k = 0; k < G_N_ELEMENTS(checked); k++) {
        TpTensor *param = tp_model_get_param(model, (guint)checked[k].node, checked[k].param);
        TpTensor *grad = tp_model_get_param_grad(model, (guint)checked[k].node, checked[k].param);
        g_autofree float *host = tp_tensor_dup_host(param, &error);
        g_autofree float *g = tp_tensor_dup_host(grad, &error);
        g_autofree char *what = g_strdup_printf(
            "CNN [%s]: d %s parameter %d", name,
            tp_model_get_node(model, (guint)checked[k].node)->name, checked[k].param);

        check_net_gradient(model, x, batch, param, host, param->numel, g, what);
    }
}
END_TEST

/* After forward, loss and backward every value is on the tape with its batch
 * shape, and every value the logits depend on has a gradient; the softmax
 * output (past the logits) has none. Backward from an inner value reaches
 * only what that value depends on. */
START_TEST(test_tape)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open(tp_test_backend_name(_i));
    g_autoptr(TpModel) model = build_cnn(backend);
    g_autoptr(GError) error = NULL;
    const int batch = 3;
    g_autofree float *x = cnn_input(batch, 1);
    int logits = tp_model_get_logits(model), output = tp_model_get_output(model);
    TpTensor *seed;

    ck_assert_int_eq(output, N_NODES);
    ck_assert_int_eq(logits, N_NODES - 1);
    ck_assert_uint_eq(tp_model_get_n_values(model), N_NODES + 1);
    ck_assert_ptr_null(tp_model_get_value(model, 0)); /* no forward yet */

    cnn_loss(model, x, batch);
    ck_assert_msg(tp_model_backward(model, logits, &error), "%s", error ? error->message : "");

    for (int v = 0; v <= output; v++) {
        const TpShape *shape = tp_model_get_shape(model, v);
        TpTensor *value = tp_model_get_value(model, v);
        TpTensor *grad = tp_model_get_grad(model, v);

        ck_assert_msg(value != NULL, "value %d is not on the tape", v);
        ck_assert_int_eq(value->ndim, shape->ndim + 1);
        ck_assert_int_eq(value->shape[0], batch);
        for (int d = 0; d < shape->ndim; d++)
            ck_assert_int_eq(value->shape[d + 1], shape->dim[d]);
        if (v == output) {
            ck_assert_msg(grad == NULL, "the softmax output has a gradient");
            continue;
        }
        ck_assert_msg(grad != NULL, "value %d has no gradient", v);
        ck_assert_int_eq(grad->numel, value->numel);
        ck_assert_int_eq(grad->ndim, value->ndim);
    }
    for (guint i = 0; i < N_NODES; i++) {
        const TpNode *node = tp_model_get_node(model, i);

        ck_assert_int_eq(node->output, (int)i + 1);
        for (int p = 0; p < node->n_params; p++)
            ck_assert_msg((tp_model_get_param_grad(model, i, p) != NULL) ==
                              tp_model_param_is_trainable(model, i, p),
                          "%s parameter %d: gradient present iff trainable", node->name, p);
    }
    ck_assert(!tp_model_param_is_trainable(model, N_BN1, 2));
    ck_assert(!tp_model_param_is_trainable(model, N_BN1, 3));
    ck_assert(tp_model_param_is_trainable(model, N_BN1, 0));
    ck_assert_ptr_null(tp_model_get_param(model, N_CONV2, 1)); /* no bias */

    /* From the pooled value: nothing after it gets a gradient. */
    seed = tp_model_ensure_grad(model, N_POOL1 + 1, &error);
    ck_assert_ptr_nonnull(seed);
    ck_assert(tp_tensor_fill(seed, 1.0f, &error));
    ck_assert_msg(tp_model_backward(model, N_POOL1 + 1, &error), "%s", error ? error->message : "");
    for (int v = 0; v <= output; v++)
        ck_assert_msg((tp_model_get_grad(model, v) != NULL) == (v <= N_POOL1 + 1),
                      "value %d: gradient after a backward from value %d", v, N_POOL1 + 1);
}
END_TEST

/* Output of the last forward, as a host copy. */
static float *
output_copy(TpModel *model)
{
    return tp_tensor_dup_host(tp_model_get_value(model, tp_model_get_output(model)), NULL);
}

START_TEST(test_reproducible)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open(tp_test_backend_name(_i));
    g_autoptr(TpModel) model = build_cnn(backend);
    g_autoptr(GError) error = NULL;
    const int batch = 4;
    g_autofree float *x = cnn_input(batch, 2);
    g_autofree float *eval1 = NULL, *eval2 = NULL, *train1 = NULL, *train2 = NULL, *train3 = NULL;
    gsize n = (gsize)batch * CNN_CLASSES;

    ck_assert(tp_model_forward(model, x, batch, TP_MODE_EVAL, &error));
    eval1 = output_copy(model);
    ck_assert(tp_model_forward(model, x, batch, TP_MODE_EVAL, &error));
    eval2 = output_copy(model);
    ck_assert_msg(memcmp(eval1, eval2, n * sizeof(float)) == 0, "eval forward not reproducible");

    tp_model_set_seed(model, 5);
    ck_assert(tp_model_forward(model, x, batch, TP_MODE_TRAIN, &error));
    train1 = output_copy(model);
    ck_assert(tp_model_forward(model, x, batch, TP_MODE_TRAIN, &error));
    train2 = output_copy(model);
    tp_model_set_seed(model, 5);
    ck_assert(tp_model_forward(model, x, batch, TP_MODE_TRAIN, &error));
    train3 = output_copy(model);
    ck_assert_msg(memcmp(train1, train3, n * sizeof(float)) == 0,
                  "training forwards after the same seed differ");
    ck_assert_msg(memcmp(train1, train2, n * sizeof(float)) != 0,
                  "two training forwards drew the same dropout masks");
}
END_TEST

/* A backend that counts allocations: the real one with alloc wrapped. */
static float *(*real_alloc)(gpointer self, gsize n, GError **error);
static int n_allocs;
static gboolean (*real_backward_data)(gpointer self, const TpConvGeometry *g, const float *dy,
                                      const float *weights, float *dx, GError **error);
static int n_backward_data;

static gboolean
counting_backward_data(gpointer self, const TpConvGeometry *g, const float *dy,
                       const float *weights, float *dx, GError **error)
{
    n_backward_data++;
    return real_backward_data(self, g, dy, weights, dx, error);
}
static gsize n_floats;

static float *
counting_alloc(gpointer self, gsize n, GError **error)
{
    n_allocs++;
    n_floats += n;
    return real_alloc(self, n, error);
}

/* One training step: forward, loss, backward, SGD. */
static void
train_step(TpModel *model, TpSgd *sgd, const float *x, int batch)
{
    g_autoptr(GError) error = NULL;

    ck_assert_msg(tp_model_forward(model, x, batch, TP_MODE_TRAIN, &error) &&
                      tp_model_loss(model, cnn_labels, 0.1f, NULL, &error) &&
                      tp_model_backward(model, tp_model_get_logits(model), &error) &&
                      tp_sgd_step(sgd, &error),
                  "%s", error ? error->message : "");
}

START_TEST(test_memory_plan)
{
    g_autoptr(TpBackend) real = tp_test_backend_open(tp_test_backend_name(_i));
    TpBackend counting = *real;
    g_autoptr(TpModel) model = NULL;
    g_autoptr(TpSgd) sgd = NULL;
    g_autoptr(GError) error = NULL;
    const TpSgdHyper hyper = {.lr = 0.01f, .momentum = 0.9f};
    g_autofree float *x = cnn_input(6, 3);
    g_autofree float *y4 = NULL, *y2 = NULL;
    TpTensor *values[N_NODES + 1];
    gsize capacity[N_NODES + 1];

    real_alloc = real->vt.alloc;
    counting.vt.alloc = counting_alloc;
    model = build_cnn(&counting);
    sgd = tp_sgd_new(model, &hyper, &error);
    ck_assert_ptr_nonnull(sgd);

    /* Batch 4, then a smaller batch 2: the same tensors, the same capacity. */
    train_step(model, sgd, x, 4);
    ck_assert(tp_model_forward(model, x, 4, TP_MODE_EVAL, &error));
    y4 = output_copy(model);
    n_allocs = 0;
    for (int v = 0; v <= N_NODES; v++) {
        values[v] = tp_model_get_value(model, v);
        capacity[v] = values[v]->capacity;
    }
    ck_assert(tp_model_forward(model, x, 2, TP_MODE_EVAL, &error));
    y2 = output_copy(model);
    tp_test_assert_close(y2, y4, 2 * CNN_CLASSES, 1e-6, 1e-5,
                         "the first 2 samples at batch 2 and at batch 4");
    for (int v = 0; v <= N_NODES; v++) {
        TpTensor *t = tp_model_get_value(model, v);

        ck_assert_ptr_eq(t, values[v]);
        ck_assert_uint_eq(t->capacity, capacity[v]);
        ck_assert_int_eq(t->shape[0], 2);
        ck_assert_uint_eq(t->numel * 2, capacity[v]);
    }

    /* Once shapes are known, steps at a batch that fits allocate nothing. */
    train_step(model, sgd, x, 2);
    train_step(model, sgd, x, 2);
    train_step(model, sgd, x, 3);
    ck_assert_msg(n_allocs == 0, "%d allocations in steps whose batch fits the plan", n_allocs);

    /* A larger batch reallocates. */
    train_step(model, sgd, x, 6);
    ck_assert_int_gt(n_allocs, 0);
    for (int v = 0; v <= N_NODES; v++)
        ck_assert_uint_eq(tp_model_get_value(model, v)->capacity, capacity[v] / 4 * 6);
    g_clear_pointer(&sgd, tp_sgd_free);
    g_clear_pointer(&model, tp_model_free);
}
END_TEST

/* Every trainable parameter's gradient, concatenated on the host. */
static GArray *
param_grads(TpModel *model)
{
    g_autoptr(GError) error = NULL;
    GArray *all = g_array_new(FALSE, FALSE, sizeof(float));

    for (guint i = 0; i < tp_model_get_n_nodes(model); i++) {
        for (int p = 0; p < tp_model_get_node(model, i)->n_params; p++) {
            TpTensor *g = tp_model_get_param_grad(model, i, p);
            g_autofree float *host = NULL;
            if (g == NULL)
                continue;
            host = tp_tensor_dup_host(g, &error);
            ck_assert_ptr_nonnull(host);
            g_array_append_vals(all, host, g->numel);
        }
    }
    return all;
}

/* Floats allocated by one forward, loss and backward of a fresh model, with
 * the parameter gradients it left in *out_grads. */
static gsize
step_floats(TpBackend *counting, gboolean keep_values, GArray **out_grads)
{
    g_autoptr(TpModel) model = build_cnn(counting);
    g_autoptr(GError) error = NULL;
    g_autofree float *x = cnn_input(6, 3);
    gsize before = n_floats;
    int logits = tp_model_get_logits(model);

    tp_model_set_seed(model, 9);
    ck_assert_msg(tp_model_forward(model, x, 6, TP_MODE_TRAIN, &error) &&
                      tp_model_loss(model, cnn_labels, 0.0f, NULL, &error) &&
                      (keep_values ? tp_model_backward(model, logits, &error)
                                   : tp_model_backward_params(model, logits, &error)),
                  "%s", error ? error->message : "");
    for (int v = 0; !keep_values && v <= N_NODES; v++)
        ck_assert_msg(tp_model_get_grad(model, v) == NULL, "value %d kept its gradient", v);
    *out_grads = param_grads(model);
    return n_floats - before;
}

/* tp_model_backward_params: the same parameter gradients, bit for bit, from
 * fewer allocated floats and no gradient of the input, and nothing allocated
 * once the plan is made. */
START_TEST(test_backward_params)
{
    g_autoptr(TpBackend) real = tp_test_backend_open(tp_test_backend_name(_i));
    TpBackend counting = *real;
    g_autoptr(GArray) kept = NULL, transient = NULL;
    g_autoptr(TpModel) model = NULL;
    g_autoptr(TpSgd) sgd = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree float *x = cnn_input(6, 3);
    const TpSgdHyper hyper = {.lr = 0.01f, .momentum = 0.9f};
    gsize floats_kept, floats_transient;

    real_alloc = real->vt.alloc;
    counting.vt.alloc = counting_alloc;
    real_backward_data = real->vt.conv2d_backward_data;
    counting.vt.conv2d_backward_data = counting_backward_data;
    n_backward_data = 0;
    floats_kept = step_floats(&counting, TRUE, &kept);
    ck_assert_int_eq(n_backward_data, 2); /* conv1's dx is the input's gradient */
    floats_transient = step_floats(&counting, FALSE, &transient);
    ck_assert_int_eq(n_backward_data, 3); /* training wants no input gradient */
    ck_assert_uint_eq(kept->len, transient->len);
    ck_assert_msg(memcmp(kept->data, transient->data, kept->len * sizeof(float)) == 0,
                  "the parameter gradients differ");
    ck_assert_msg(floats_transient < floats_kept,
                  "backward_params allocated %" G_GSIZE_FORMAT " floats, backward %" G_GSIZE_FORMAT,
                  floats_transient, floats_kept);

    model = build_cnn(&counting);
    sgd = tp_sgd_new(model, &hyper, &error);
    for (int step = 0; step < 3; step++) {
        if (step == 1)
            n_allocs = 0;
        ck_assert_msg(tp_model_forward(model, x, 6 - step, TP_MODE_TRAIN, &error) &&
                          tp_model_loss(model, cnn_labels, 0.0f, NULL, &error) &&
                          tp_model_backward_params(model, tp_model_get_logits(model), &error) &&
                          tp_sgd_step(sgd, &error),
                      "%s", error ? error->message : "");
    }
    ck_assert_msg(n_allocs == 0, "%d allocations in steps after the first", n_allocs);
    /* A criterion's backward after training ones still gets every value's gradient. */
    ck_assert(tp_model_forward(model, x, 4, TP_MODE_EVAL, &error) &&
              tp_model_loss(model, cnn_labels, 0.0f, NULL, &error) &&
              tp_model_backward(model, tp_model_get_logits(model), &error));
    for (int v = 0; v <= N_NODES - 1; v++)
        ck_assert_msg(tp_model_get_grad(model, v) != NULL, "value %d has no gradient", v);
    g_clear_pointer(&sgd, tp_sgd_free);
    g_clear_pointer(&model, tp_model_free);

    /* A BatchNormalization reading the input computes its gradient anyway
     * (its backward needs somewhere to write it). */
    TpOpAttrs fc = {.gemm = {.out_features = CNN_CLASSES, .bias = TRUE}};
    int v;
    model = tp_model_new(real, CNN_C, CNN_H, CNN_W);
    v = tp_test_add(model, TP_OP_BATCH_NORM, "bn0", 0, 0, NULL);
    v = tp_test_add(model, TP_OP_GLOBAL_AVERAGE_POOL, "gap", v, 0, NULL);
    v = tp_test_add(model, TP_OP_FLATTEN, "flat", v, 0, NULL);
    tp_test_add(model, TP_OP_GEMM, "fc", v, 0, &fc);
    tp_test_randomize_model(model, SEED);
    ck_assert_msg(tp_model_forward(model, x, 4, TP_MODE_TRAIN, &error) &&
                      tp_model_loss(model, cnn_labels, 0.0f, NULL, &error) &&
                      tp_model_backward_params(model, tp_model_get_logits(model), &error),
                  "%s", error ? error->message : "");
    ck_assert_ptr_nonnull(tp_model_get_param_grad(model, 0, 0));
    g_clear_pointer(&model, tp_model_free);
}
END_TEST

/* ------------------------------------------------------------ errors */

/* Asserts error is set in domain/code and its message contains every needle. */
static void
assert_error(GError *error, int code, const char *const *needles)
{
    ck_assert_msg(error != NULL, "no error set");
    ck_assert_msg(error->domain == TP_MODEL_ERROR && error->code == code,
                  "wrong domain or code for \"%s\"", error->message);
    for (int i = 0; needles[i] != NULL; i++)
        ck_assert_msg(strstr(error->message, needles[i]) != NULL, "\"%s\" does not mention \"%s\"",
                      error->message, needles[i]);
}

#define NEEDLES(...) ((const char *const[]){__VA_ARGS__, NULL})

START_TEST(test_errors)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open(tp_test_backend_name(_i));
    g_autoptr(TpModel) model = tp_model_new(backend, 64, 8, 8);
    g_autoptr(GError) error = NULL;
    TpOpAttrs bad_groups = {.conv = {.out_channels = 48, .kernel = {3, 3}, .groups = 3}};
    TpOpAttrs conv = {.conv = {.out_channels = 4, .kernel = {3, 3}, .pads = {1, 1, 1, 1}}};
    TpOpAttrs huge = {.conv = {.out_channels = 4, .kernel = {11, 11}}};
    TpOpAttrs fc = {.gemm = {.out_features = 3, .bias = TRUE}};
    TpOpAttrs drop = {.dropout = {.ratio = 1.0f}};
    TpOpAttrs pool = {.pool = {.kernel = {2, 2}, .pads = {2, 0, 0, 0}}};
    const int zero = 0, seven = 7;
    float x[2 * 64 * 8 * 8] = {0};
    gint32 labels[2] = {1, 300};
    int v, flat, bn;

    /* Bad attributes or shapes: -1, the model unchanged, the node named. */
    ck_assert_int_eq(tp_model_add(model, TP_OP_CONV, "conv2", &zero, &bad_groups, &error), -1);
    assert_error(error, TP_MODEL_ERROR_INVALID,
                 NEEDLES("Conv 'conv2'", "groups 3 does not divide 64 input channels"));
    g_clear_error(&error);
    ck_assert_uint_eq(tp_model_get_n_nodes(model), 0);
    ck_assert_uint_eq(tp_model_get_n_values(model), 1);

    ck_assert_int_eq(tp_model_add(model, TP_OP_CONV, "big", &zero, &huge, &error), -1);
    assert_error(error, TP_MODEL_ERROR_INVALID, NEEDLES("Conv 'big'", "kernel 11x11"));
    g_clear_error(&error);

    ck_assert_int_eq(tp_model_add(model, TP_OP_CONV, NULL, &zero, NULL, &error), -1);
    assert_error(error, TP_MODEL_ERROR_INVALID, NEEDLES("Conv 'Conv_0'", "out_channels"));
    g_clear_error(&error);

    v = tp_model_add(model, TP_OP_CONV, "conv1", &zero, &conv, &error);
    ck_assert_int_eq(v, 1);
    ck_assert_int_eq(tp_model_add(model, TP_OP_ADD, "res", (const int[]){0, v}, NULL, &error), -1);
    assert_error(error, TP_MODEL_ERROR_INVALID, NEEDLES("Add 'res'", "[64, 8, 8]", "[4, 8, 8]"));
    g_clear_error(&error);

    ck_assert_int_eq(tp_model_add(model, TP_OP_GEMM, "fc", &v, &fc, &error), -1);
    assert_error(error, TP_MODEL_ERROR_INVALID, NEEDLES("Gemm 'fc'", "Flatten"));
    g_clear_error(&error);

    ck_assert_int_eq(tp_model_add(model, TP_OP_RELU, "r", &seven, NULL, &error), -1);
    assert_error(error, TP_MODEL_ERROR_INVALID, NEEDLES("Relu 'r'", "value 7"));
    g_clear_error(&error);

    ck_assert_int_eq(tp_model_add(model, TP_OP_DROPOUT, "d", &v, &drop, &error), -1);
    assert_error(error, TP_MODEL_ERROR_INVALID, NEEDLES("Dropout 'd'", "ratio"));
    g_clear_error(&error);

    ck_assert_int_eq(tp_model_add(model, TP_OP_MAX_POOL, "p", &v, &pool, &error), -1);
    assert_error(error, TP_MODEL_ERROR_INVALID, NEEDLES("MaxPool 'p'", "pads"));
    g_clear_error(&error);

    ck_assert_int_eq(tp_model_add(model, TP_OP_SOFTMAX, "s", &v, NULL, &error), -1);
    assert_error(error, TP_MODEL_ERROR_INVALID, NEEDLES("Softmax 's'", "1-D"));
    g_clear_error(&error);

    flat = tp_model_add(model, TP_OP_FLATTEN, NULL, &v, NULL, &error);
    ck_assert_int_eq(flat, 2);
    ck_assert_str_eq(tp_model_get_node(model, 1)->name, "Flatten_1");
    bn = tp_model_add(model, TP_OP_BATCH_NORM, "bn", &flat, NULL, &error);
    ck_assert_int_eq(bn, 3);

    /* Calls out of order. */
    ck_assert(!tp_model_backward(model, bn, &error));
    assert_error(error, TP_MODEL_ERROR_STATE, NEEDLES("forward"));
    g_clear_error(&error);
    ck_assert(!tp_model_loss(model, labels, 0.0f, NULL, &error));
    assert_error(error, TP_MODEL_ERROR_STATE, NEEDLES("forward"));
    g_clear_error(&error);
    ck_assert_ptr_null(tp_model_ensure_grad(model, bn, &error));
    assert_error(error, TP_MODEL_ERROR_STATE, NEEDLES("forward"));
    g_clear_error(&error);

    ck_assert(tp_model_forward(model, x, 2, TP_MODE_EVAL, &error));
    ck_assert(!tp_model_backward(model, bn, &error));
    assert_error(error, TP_MODEL_ERROR_STATE, NEEDLES("seeded"));
    g_clear_error(&error);

    /* Labels are checked on the host. */
    ck_assert(!tp_model_loss(model, labels, 0.0f, NULL, &error));
    assert_error(error, TP_MODEL_ERROR_INVALID, NEEDLES("label 300 of sample 1", "[0, 256)"));
    g_clear_error(&error);

    /* Training BatchNorm on one value per channel fails in forward, naming it. */
    ck_assert(!tp_model_forward(model, x, 1, TP_MODE_TRAIN, &error));
    assert_error(error, TP_MODEL_ERROR_INVALID, NEEDLES("BatchNormalization 'bn'"));
    g_clear_error(&error);
    ck_assert_ptr_null(tp_model_get_value(model, bn));

    /* Adding a node invalidates the tape. */
    ck_assert(tp_model_forward(model, x, 2, TP_MODE_EVAL, &error));
    ck_assert_ptr_nonnull(tp_model_get_value(model, bn));
    ck_assert_int_ge(tp_model_add(model, TP_OP_RELU, NULL, &bn, NULL, &error), 0);
    ck_assert_ptr_null(tp_model_get_value(model, bn));
    ck_assert_str_eq(tp_op_type_to_string(TP_OP_BATCH_NORM), "BatchNormalization");
    ck_assert_str_eq(tp_op_type_to_string(TP_OP_GLOBAL_AVERAGE_POOL), "GlobalAveragePool");
}
END_TEST

/* ------------------------------------------------------------ loss */

/* A forward of the CNN in mode, and host copies of its logits and of the
 * first Relu's output. */
static void
forward_values(TpModel *model, const float *x, int batch, TpMode mode, float **out_logits,
               float **out_relu)
{
    g_autoptr(GError) error = NULL;

    ck_assert_msg(tp_model_forward(model, x, batch, mode, &error), "%s",
                  error ? error->message : "");
    *out_logits = tp_tensor_dup_host(tp_model_get_value(model, tp_model_get_logits(model)), NULL);
    *out_relu = tp_tensor_dup_host(tp_model_get_value(model, N_RELU1 + 1), NULL);
}

/* Sets every element of node i's parameter p to value. */
static void
set_param(TpModel *model, guint i, int p, float value)
{
    g_autoptr(GError) error = NULL;

    ck_assert(tp_tensor_fill(tp_model_get_param(model, i, p), value, &error));
}

/* TP_MODE_INFER runs conv1 with bn1 folded in and relu1 fused, and conv2
 * with bn2 folded in: the same logits and relu1 output as TP_MODE_EVAL (to
 * rounding), again after each kind of parameter changes (the fold is
 * redone), and no backward. */
START_TEST(test_infer)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open(tp_test_backend_name(_i));
    g_autoptr(TpModel) model = build_cnn(backend);
    g_autoptr(GError) error = NULL;
    const int batch = 4;
    g_autofree float *x = cnn_input(batch, 5);
    gsize n_logits = (gsize)batch * CNN_CLASSES, n_relu = (gsize)batch * 8 * CNN_H * CNN_W;
    /* one change per parameter kind that the fold reads, then a training
     * forward (new running statistics) */
    const struct {
        guint node;
        int param;
        float value;
    } changes[] = {
        {N_CONV1, 0, 0.1f}, {N_CONV1, 1, -0.2f}, {N_BN1, 0, 1.5f},     {N_BN1, 1, 0.3f},
        {N_BN1, 2, 0.25f},  {N_BN1, 3, 3.0f},    {N_CONV2, 0, -0.05f}, {N_BN2, 3, 0.5f},
    };

    for (gsize c = 0; c <= G_N_ELEMENTS(changes) + 1; c++) {
        g_autofree float *want_logits = NULL, *want_relu = NULL;
        g_autofree float *got_logits = NULL, *got_relu = NULL;

        if (c > 0 && c <= G_N_ELEMENTS(changes))
            set_param(model, changes[c - 1].node, changes[c - 1].param, changes[c - 1].value);
        if (c == G_N_ELEMENTS(changes) + 1)
            cnn_loss(model, x, batch);
        /* INFER right after the change, then EVAL: what the fold made from
         * the last INFER's parameters must not serve */
        forward_values(model, x, batch, TP_MODE_INFER, &got_logits, &got_relu);
        forward_values(model, x, batch, TP_MODE_EVAL, &want_logits, &want_relu);
        tp_test_assert_close(got_relu, want_relu, n_relu, 1e-5, 1e-5, "relu1 output, fused");
        tp_test_assert_close(got_logits, want_logits, n_logits, 1e-5, 1e-5, "logits, folded");
        /* and INFER again, so that the next change follows an INFER */
        g_clear_pointer(&got_logits, g_free);
        g_clear_pointer(&got_relu, g_free);
        forward_values(model, x, batch, TP_MODE_INFER, &got_logits, &got_relu);
        tp_test_assert_close(got_logits, want_logits, n_logits, 1e-5, 1e-5, "logits, again");
    }

    /* a Conv with dead taps (3x3 on a 1x1 map), folded, after a change */
    {
        g_autoptr(TpModel) deep = tp_model_new(backend, 6, 1, 1);
        TpOpAttrs conv = {.conv = {.out_channels = 7, .kernel = {3, 3}, .pads = {1, 1, 1, 1}}};
        TpOpAttrs fc = {.gemm = {.out_features = CNN_CLASSES, .bias = TRUE}};
        g_autofree float *x6 = g_new(float, (gsize)batch * 6);
        int v;

        v = tp_test_add(deep, TP_OP_CONV, "conv", 0, 0, &conv);
        v = tp_test_add(deep, TP_OP_BATCH_NORM, "bn", v, 0, NULL);
        v = tp_test_add(deep, TP_OP_RELU, "relu", v, 0, NULL);
        v = tp_test_add(deep, TP_OP_FLATTEN, "flat", v, 0, NULL);
        tp_test_add(deep, TP_OP_GEMM, "fc", v, 0, &fc);
        tp_test_randomize_model(deep, SEED);
        tp_test_fill_uniform(x6, (gsize)batch * 6, -2.0f, 2.0f, 8);
        for (int c = 0; c < 2; c++) {
            g_autofree float *want = NULL, *got = NULL;
            if (c == 1)
                set_param(deep, 1, 3, 4.0f);
            ck_assert(tp_model_forward(deep, x6, batch, TP_MODE_INFER, &error));
            got = tp_tensor_dup_host(tp_model_get_value(deep, tp_model_get_output(deep)), NULL);
            ck_assert(tp_model_forward(deep, x6, batch, TP_MODE_EVAL, &error));
            want = tp_tensor_dup_host(tp_model_get_value(deep, tp_model_get_output(deep)), NULL);
            tp_test_assert_close(got, want, n_logits, 1e-5, 1e-5, "dead taps, folded");
        }
    }

    /* the engine's default for a backend without conv2d_forward_relu */
    {
        g_autofree float *want_logits = NULL, *want_relu = NULL;
        g_autofree float *got_logits = NULL, *got_relu = NULL;

        forward_values(model, x, batch, TP_MODE_EVAL, &want_logits, &want_relu);
        backend->vt.conv2d_forward_relu = NULL;
        forward_values(model, x, batch, TP_MODE_INFER, &got_logits, &got_relu);
        tp_test_assert_close(got_relu, want_relu, n_relu, 1e-5, 1e-5, "relu1 output, default");
        tp_test_assert_close(got_logits, want_logits, n_logits, 1e-5, 1e-5, "logits, default");
    }

    ck_assert_ptr_nonnull(tp_model_ensure_grad(model, tp_model_get_logits(model), &error));
    ck_assert(!tp_model_backward(model, tp_model_get_logits(model), &error));
    assert_error(error, TP_MODEL_ERROR_STATE, NEEDLES("TP_MODE_INFER"));
}
END_TEST

START_TEST(test_loss_reference)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open(tp_test_backend_name(_i));
    g_autoptr(TpModel) model = build_cnn(backend);
    g_autoptr(GError) error = NULL;
    const int batch = 5;
    const float smoothing = 0.1f;
    g_autofree float *x = cnn_input(batch, 4);
    g_autofree float *logits = NULL, *dlogits = NULL;
    float want_d[5 * CNN_CLASSES];
    double loss = NAN, want;
    int l = tp_model_get_logits(model);

    ck_assert_int_eq(l, tp_model_get_node(model, N_PROB)->inputs[0]);
    ck_assert(tp_model_forward(model, x, batch, TP_MODE_EVAL, &error));
    ck_assert_msg(tp_model_loss(model, cnn_labels, smoothing, &loss, &error), "%s",
                  error ? error->message : "");
    logits = tp_tensor_dup_host(tp_model_get_value(model, l), &error);
    dlogits = tp_tensor_dup_host(tp_model_get_grad(model, l), &error);
    want = ref_softmax_cross_entropy(batch, CNN_CLASSES, logits, cnn_labels, smoothing, want_d);
    ck_assert_double_eq_tol(loss, want, 1e-5 * (1.0 + fabs(want)));
    tp_test_assert_close(dlogits, want_d, (gsize)batch * CNN_CLASSES, 1e-6, 1e-5,
                         "d logits of the loss");
}
END_TEST

/* ------------------------------------------------------------ counts */

/* VGG-like on [3, 32, 32]:
 *   conv 3→16 3x3 p1 bias, BN, relu, maxpool 2; conv 16→32 3x3 p1 bias, BN,
 *   relu, maxpool 2; flatten (32·8·8); gemm →64 bias; relu; gemm →10 bias. */
START_TEST(test_count_vgg)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open(tp_test_backend_name(_i));
    g_autoptr(TpModel) model = tp_model_new(backend, 3, 32, 32);
    TpOpAttrs c1 = {
        .conv = {.out_channels = 16, .kernel = {3, 3}, .pads = {1, 1, 1, 1}, .bias = TRUE}};
    TpOpAttrs c2 = {
        .conv = {.out_channels = 32, .kernel = {3, 3}, .pads = {1, 1, 1, 1}, .bias = TRUE}};
    TpOpAttrs pool = {.pool = {.kernel = {2, 2}, .stride = {2, 2}}};
    TpOpAttrs fc1 = {.gemm = {.out_features = 64, .bias = TRUE}};
    TpOpAttrs fc2 = {.gemm = {.out_features = 10, .bias = TRUE}};
    TpCount count, node;
    int v;

    v = tp_test_add(model, TP_OP_CONV, "c1", 0, 0, &c1);
    v = tp_test_add(model, TP_OP_BATCH_NORM, "bn1", v, 0, NULL);
    v = tp_test_add(model, TP_OP_RELU, "r1", v, 0, NULL);
    v = tp_test_add(model, TP_OP_MAX_POOL, "p1", v, 0, &pool);
    v = tp_test_add(model, TP_OP_CONV, "c2", v, 0, &c2);
    v = tp_test_add(model, TP_OP_BATCH_NORM, "bn2", v, 0, NULL);
    v = tp_test_add(model, TP_OP_RELU, "r2", v, 0, NULL);
    v = tp_test_add(model, TP_OP_MAX_POOL, "p2", v, 0, &pool);
    v = tp_test_add(model, TP_OP_FLATTEN, "flat", v, 0, NULL);
    v = tp_test_add(model, TP_OP_GEMM, "fc1", v, 0, &fc1);
    v = tp_test_add(model, TP_OP_RELU, "r3", v, 0, NULL);
    tp_test_add(model, TP_OP_GEMM, "fc2", v, 0, &fc2);

    tp_model_count(model, &count);
    ck_assert_uint_eq(count.params, (16 * 3 * 3 * 3 + 16) + 2 * 16 + (32 * 16 * 3 * 3 + 32) +
                                        2 * 32 + (32 * 8 * 8 * 64 + 64) + (64 * 10 + 10));
    ck_assert_uint_eq(count.running_stats, 2 * 16 + 2 * 32);
    ck_assert_uint_eq(count.macs, 16 * 32 * 32 * (3 * 3 * 3) + 32 * 16 * 16 * (16 * 3 * 3) +
                                      2048 * 64 + 64 * 10);

    tp_model_count_node(model, 4, &node); /* c2 */
    ck_assert_uint_eq(node.params, 32 * 16 * 9 + 32);
    ck_assert_uint_eq(node.macs, 32 * 16 * 16 * 16 * 9);
    tp_model_count_node(model, 3, &node); /* a pool counts nothing */
    ck_assert_uint_eq(node.params + node.running_stats + node.macs, 0);
}
END_TEST

/* LeNet-5-like on [1, 28, 28]:
 *   conv 1→6 5x5 p2, relu, avgpool 2; conv 6→16 5x5, relu, avgpool 2;
 *   flatten (16·5·5); gemm →120, relu, gemm →84, relu, gemm →10 (all with bias);
 * plus a grouped conv to check the C_in / groups factor. */
START_TEST(test_count_lenet)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open(tp_test_backend_name(_i));
    g_autoptr(TpModel) model = tp_model_new(backend, 1, 28, 28);
    TpOpAttrs c1 = {
        .conv = {.out_channels = 6, .kernel = {5, 5}, .pads = {2, 2, 2, 2}, .bias = TRUE}};
    TpOpAttrs c2 = {.conv = {.out_channels = 16, .kernel = {5, 5}, .bias = TRUE}};
    TpOpAttrs pool = {.pool = {.kernel = {2, 2}, .stride = {2, 2}}};
    TpOpAttrs f1 = {.gemm = {.out_features = 120, .bias = TRUE}};
    TpOpAttrs f2 = {.gemm = {.out_features = 84, .bias = TRUE}};
    TpOpAttrs f3 = {.gemm = {.out_features = 10, .bias = TRUE}};
    TpOpAttrs grouped = {.conv = {.out_channels = 8, .kernel = {3, 3}, .groups = 2}};
    TpCount count, node;
    int v, g;

    v = tp_test_add(model, TP_OP_CONV, "c1", 0, 0, &c1);
    v = tp_test_add(model, TP_OP_RELU, "r1", v, 0, NULL);
    v = tp_test_add(model, TP_OP_AVERAGE_POOL, "p1", v, 0, &pool);
    g = v;
    v = tp_test_add(model, TP_OP_CONV, "c2", v, 0, &c2);
    v = tp_test_add(model, TP_OP_RELU, "r2", v, 0, NULL);
    v = tp_test_add(model, TP_OP_AVERAGE_POOL, "p2", v, 0, &pool);
    v = tp_test_add(model, TP_OP_FLATTEN, "flat", v, 0, NULL);
    v = tp_test_add(model, TP_OP_GEMM, "f1", v, 0, &f1);
    v = tp_test_add(model, TP_OP_RELU, "r3", v, 0, NULL);
    v = tp_test_add(model, TP_OP_GEMM, "f2", v, 0, &f2);
    v = tp_test_add(model, TP_OP_RELU, "r4", v, 0, NULL);
    tp_test_add(model, TP_OP_GEMM, "f3", v, 0, &f3);

    tp_model_count(model, &count);
    ck_assert_uint_eq(count.params, (6 * 25 + 6) + (16 * 6 * 25 + 16) + (400 * 120 + 120) +
                                        (120 * 84 + 84) + (84 * 10 + 10));
    ck_assert_uint_eq(count.params, 61706);
    ck_assert_uint_eq(count.running_stats, 0);
    ck_assert_uint_eq(count.macs,
                      6 * 28 * 28 * 25 + 16 * 10 * 10 * (6 * 25) + 400 * 120 + 120 * 84 + 84 * 10);

    /* A side branch: grouped conv on [6, 14, 14], groups 2: 8·12·12·(6/2)·3·3. */
    tp_test_add(model, TP_OP_CONV, "grouped", g, 0, &grouped);
    tp_model_count_node(model, tp_model_get_n_nodes(model) - 1, &node);
    ck_assert_uint_eq(node.params, 8 * 3 * 3 * 3);
    ck_assert_uint_eq(node.macs, 8 * 12 * 12 * 3 * 3 * 3);
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

    suite = suite_create("model");
    tc = tcase_create("model");
    tcase_add_loop_test(tc, test_network_gradients, 0, n);
    tcase_add_loop_test(tc, test_tape, 0, n);
    tcase_add_loop_test(tc, test_reproducible, 0, n);
    tcase_add_loop_test(tc, test_memory_plan, 0, n);
    tcase_add_loop_test(tc, test_backward_params, 0, n);
    tcase_add_loop_test(tc, test_errors, 0, n);
    tcase_add_loop_test(tc, test_infer, 0, n);
    tcase_add_loop_test(tc, test_loss_reference, 0, n);
    tcase_add_loop_test(tc, test_count_vgg, 0, n);
    tcase_add_loop_test(tc, test_count_lenet, 0, n);
    suite_add_tcase(suite, tc);
    return tp_test_run(suite);
}
