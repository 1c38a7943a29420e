/* test-grad-buckets.c — gradients summed in buckets that start during the
 * backward pass (engine/tp-grad-buckets.c), in one process: a communicator
 * written here plays rank 0 of 2 whose partner holds the same gradients, so
 * a sum doubles the buffer. It records every bucket's contents at the moment
 * its sum starts; they must be exactly the gradients that a backward pass
 * without buckets leaves (computed on a twin model), scaled, in the layout's
 * order (nodes last to first). A bucket started before backward has
 * finished its nodes sends stale gradients and fails that comparison. */
#include "config.h"

#include <stddef.h>
#include <string.h>

#include "tp-grad-buckets.h"
#include "tp-test.h"

#define SCALE 0.375f /* a share of the batch: exact in binary */
#define BUCKET 500   /* floats: the LeNet's gradients make several buckets */

/* What the fake communicator saw. */
static struct {
    TpModel *model;      /* whose backward runs, for a look at it at the first start */
    GArray *started;     /* float: each bucket's contents at its start, in order */
    guint n_starts;      /* starts (or blocking sums) */
    guint n_tests;       /* tests of unfinished sums */
    guint first_node;    /* the first node with a trainable parameter */
    float *first_at_start; /* its gradient at the first start (host copy) */
} seen;

static void
record(const float *buffer, gsize count)
{
    g_autoptr(GError) error = NULL;

    g_array_append_vals(seen.started, buffer, (guint)count);
    if (seen.n_starts++ == 0) {
        seen.first_at_start =
            tp_tensor_dup_host(tp_model_get_param_grad(seen.model, seen.first_node, 0), &error);
        ck_assert_msg(seen.first_at_start != NULL, "%s", error ? error->message : "");
    }
}

typedef struct {
    float *buffer;
    gsize count;
} Pending;

static gpointer
fake_open(const TpParams *params, GError **error)
{
    return GINT_TO_POINTER(1);
}

static void
fake_close(gpointer self)
{
}

static int
fake_rank(gpointer self)
{
    return 0;
}

static int
fake_size(gpointer self)
{
    return 2;
}

static gboolean
fake_reduce_float(gpointer self, float *buffer, gsize count, GError **error)
{
    record(buffer, count);
    for (gsize k = 0; k < count; k++)
        buffer[k] *= 2;
    return TRUE;
}

static gboolean
fake_reduce_double(gpointer self, double *buffer, gsize count, GError **error)
{
    for (gsize k = 0; k < count; k++)
        buffer[k] *= 2;
    return TRUE;
}

static gboolean
fake_broadcast(gpointer self, void *buffer, gsize bytes, int root, GError **error)
{
    return TRUE;
}

static gboolean
fake_barrier(gpointer self, GError **error)
{
    return TRUE;
}

static void
fake_abort(gpointer self, const char *message)
{
    ck_abort_msg("abort: %s", message);
}

/* Sums only when waited for: the buffer must stay untouched until then. */
static gpointer
fake_start(gpointer self, float *buffer, gsize count, GError **error)
{
    Pending *pending = g_new(Pending, 1);

    record(buffer, count);
    pending->buffer = buffer;
    pending->count = count;
    return pending;
}

static gboolean
fake_test(gpointer self, gpointer request, gboolean *out_done, GError **error)
{
    seen.n_tests++;
    *out_done = FALSE;
    return TRUE;
}

static gboolean
fake_wait(gpointer self, gpointer request, GError **error)
{
    g_autofree Pending *pending = request;

    for (gsize k = 0; k < pending->count; k++)
        pending->buffer[k] *= 2;
    return TRUE;
}

static const TpCommVTable fake_vtable = {
    /* .open =                  */ fake_open,
    /* .close =                 */ fake_close,
    /* .rank =                  */ fake_rank,
    /* .size =                  */ fake_size,
    /* .all_reduce_sum_float =  */ fake_reduce_float,
    /* .all_reduce_sum_double = */ fake_reduce_double,
    /* .broadcast =             */ fake_broadcast,
    /* .barrier =               */ fake_barrier,
    /* .abort =                 */ fake_abort,
    /* .all_reduce_sum_float_start = */ fake_start,
    /* .test =                  */ fake_test,
    /* .wait =                  */ fake_wait,
};

/* The same plugin built against the header before the non-blocking sums:
 * the engine sums at start, blocking. */
static const TpPluginInfo fake_infos[] = {
    {TP_PLUGIN_ABI_MAJOR, sizeof(TpPluginInfo), TP_PLUGIN_KIND_COMM, "fake", "1.0",
     "rank 0 of 2, the partner's gradients equal", "MIT", &fake_vtable, sizeof(TpCommVTable),
     NULL},
    {TP_PLUGIN_ABI_MAJOR, sizeof(TpPluginInfo), TP_PLUGIN_KIND_COMM, "fake-blocking", "1.0",
     "the same without non-blocking sums", "MIT", &fake_vtable,
     offsetof(TpCommVTable, all_reduce_sum_float_start), NULL},
};

static TpModel *
lenet(TpBackend *backend)
{
    g_autoptr(GError) error = NULL;
    TpZooConfig config = {1, 16, 16, 4, 0.5, 5};
    TpModel *model = tp_zoo_build(backend, "lenet5", &config, &error);

    ck_assert_msg(model != NULL, "%s", error ? error->message : "");
    return model;
}

/* A training forward and loss on batch `step`'s data (both models draw the
 * same dropout masks). */
static void
forward(TpModel *model, int step)
{
    g_autoptr(GError) error = NULL;
    float images[6 * 16 * 16];
    gint32 labels[6];

    tp_test_fill_uniform(images, G_N_ELEMENTS(images), -1, 1, 40 + step);
    for (int i = 0; i < 6; i++)
        labels[i] = (i + step) % 4;
    tp_model_set_seed(model, 9 + step);
    ck_assert_msg(tp_model_forward(model, images, 6, TP_MODE_TRAIN, &error) &&
                      tp_model_loss(model, labels, 0, NULL, &error),
                  "%s", error ? error->message : "");
}

/* Every trainable gradient of model, nodes last to first, times factor. */
static GArray *
gradients(TpModel *model, float factor)
{
    g_autoptr(GError) error = NULL;
    GArray *all = g_array_new(FALSE, FALSE, sizeof(float));

    for (guint i = tp_model_get_n_nodes(model); i-- > 0;) {
        for (int p = 0; p < tp_model_get_node(model, i)->n_params; p++) {
            if (!tp_model_param_is_trainable(model, i, p))
                continue;
            TpTensor *grad = tp_model_get_param_grad(model, i, p);
            g_autofree float *host = tp_tensor_dup_host(grad, &error);
            ck_assert_msg(host != NULL, "%s", error ? error->message : "");
            for (gsize k = 0; k < grad->numel; k++)
                host[k] *= factor;
            g_array_append_vals(all, host, (guint)grad->numel);
        }
    }
    return all;
}

static void
assert_same(GArray *got, GArray *want, const char *what, int step)
{
    ck_assert_msg(got->len == want->len, "step %d: %s: %u floats, want %u", step, what, got->len,
                  want->len);
    for (guint k = 0; k < want->len; k++)
        ck_assert_msg(memcmp(&g_array_index(got, float, k), &g_array_index(want, float, k),
                             sizeof(float)) == 0,
                      "step %d: %s: float %u of the layout is %.9g, want %.9g", step, what, k,
                      g_array_index(got, float, k), g_array_index(want, float, k));
}

/* Loop index: 0 the fake with non-blocking sums and overlap, 1 the blocking
 * fake with overlap, 2 non-blocking without overlap. Two steps each: at the
 * second, the gradients the buckets could wrongly send are the first's. */
START_TEST(test_buckets_send_final_gradients)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open("cpu");
    g_autoptr(TpModel) model = lenet(backend);
    g_autoptr(TpModel) twin = lenet(backend);
    g_autoptr(GError) error = NULL;
    gboolean overlap = _i != 2;
    g_autoptr(TpComm) comm = tp_comm_new(&fake_infos[_i == 1], NULL, &error);
    g_autoptr(TpGradBuckets) buckets = NULL;

    ck_assert_msg(comm != NULL, "%s", error ? error->message : "");
    buckets = tp_grad_buckets_new(comm, BUCKET);
    memset(&seen, 0, sizeof(seen));
    seen.model = model;
    while (!tp_model_param_is_trainable(model, seen.first_node, 0))
        seen.first_node++;
    for (int step = 0; step < 2; step++) {
        seen.started = g_array_new(FALSE, FALSE, sizeof(float));
        seen.n_starts = seen.n_tests = 0;
        g_clear_pointer(&seen.first_at_start, g_free);

        forward(twin, step);
        ck_assert_msg(tp_model_backward_params(twin, tp_model_get_logits(twin), &error), "%s",
                      error ? error->message : "");
        tp_grad_buckets_begin(buckets, model, SCALE, overlap);
        forward(model, step);
        ck_assert_msg(tp_model_backward_params(model, tp_model_get_logits(model), &error), "%s",
                      error ? error->message : "");
        g_autofree float *first_final = tp_tensor_dup_host(
            tp_model_get_param_grad(model, seen.first_node, 0), &error);
        gsize first_numel = tp_model_get_param_grad(model, seen.first_node, 0)->numel;
        ck_assert_int_eq(seen.n_starts == 0, !overlap);
        ck_assert_msg(tp_grad_buckets_finish(buckets, &error), "%s", error ? error->message : "");

        g_autoptr(GArray) want = gradients(twin, SCALE);
        g_autoptr(GArray) summed = gradients(model, 1);
        g_autoptr(GArray) doubled = gradients(twin, 2 * SCALE);
        assert_same(seen.started, want, "the buckets as they started", step);
        assert_same(summed, doubled, "the sums written back", step);
        ck_assert_msg(seen.n_starts > 3, "only %u buckets", seen.n_starts);
        /* With overlap, the first bucket started before backward reached
         * the first layer: its gradient then was not yet this step's. */
        ck_assert_int_eq(memcmp(seen.first_at_start, first_final, first_numel * sizeof(float)) != 0,
                         overlap);
        /* Sums in flight were moved on while backward ran. */
        ck_assert_int_eq(seen.n_tests > 0, overlap && _i == 0);
        g_array_unref(seen.started);
    }
    g_clear_pointer(&seen.first_at_start, g_free);
}
END_TEST

/* A plugin with only some of the non-blocking members is refused. */
START_TEST(test_partial_vtable_refused)
{
    g_autoptr(GError) error = NULL;
    TpCommVTable vt = fake_vtable;
    TpPluginInfo info = fake_infos[0];

    vt.test = NULL;
    info.vtable = &vt;
    ck_assert(!tp_comm_vtable_check(&info, &error));
    ck_assert_msg(strstr(error->message, "all_reduce_sum_float_start, test and wait"), "%s",
                  error->message);
    g_clear_error(&error);
    ck_assert_msg(tp_comm_vtable_check(&fake_infos[1], &error), "%s",
                  error ? error->message : "");
}
END_TEST

int
main(void)
{
    Suite *suite = suite_create("grad-buckets");
    TCase *tc = tcase_create("grad-buckets");

    tp_test_init();
    tcase_add_loop_test(tc, test_buckets_send_final_gradients, 0, 3);
    tcase_add_test(tc, test_partial_vtable_refused);
    suite_add_tcase(suite, tc);
    return tp_test_run(suite);
}
