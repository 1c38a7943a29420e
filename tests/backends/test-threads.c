/* test-threads.c — a backend that declares a `threads` key computes the
 * same training step (forward, loss, backward, SGD update) of a VGG and a
 * ResNet from the zoo at every thread count, with odd channel counts so that
 * work splits unevenly: at a given count, twice, bit for bit (no races, no
 * order that depends on timing); at 2 and 3 threads against 1, within
 * float rounding (a GEMM split by rows may round differently), so a part
 * of the work done twice or not at all fails.
 *
 * Generic: the backends come from tp_test_backend_names(); one without a
 * `threads` key is skipped with a message.
 */
#include "config.h"

#include <string.h>

#include "tp-test.h"

/* Opens backend `name` with threads = n; NULL when it has no threads key. */
static TpBackend *
open_with_threads(const char *name, int n)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(TpParams) params = NULL;
    g_autofree char *value = g_strdup_printf("%d", n);
    const TpPlugin *plugin =
        tp_registry_lookup(tp_test_registry(), TP_PLUGIN_KIND_BACKEND, name, &error);
    TpBackend *backend;

    ck_assert_msg(plugin != NULL, "%s", error ? error->message : "?");
    params = tp_params_new(plugin->info->params);
    if (!tp_params_set(params, "threads", value, NULL))
        return NULL;
    backend = tp_backend_new(plugin->info, params, &error);
    ck_assert_msg(backend != NULL, "backend %s: %s", name, error ? error->message : "?");
    return backend;
}

/* What a training step leaves: the logits, the input gradient, every
 * parameter gradient and every updated parameter, concatenated. */
static GArray *
train_step(TpBackend *backend, const char *arch)
{
    g_autoptr(GError) error = NULL;
    const TpZooConfig config = {.channels = 3, .height = 12, .width = 12, .classes = 5,
                                .width_multiplier = 0.37, .seed = 7};
    const TpSgdHyper hyper = {.lr = 0.1f, .momentum = 0.9f, .weight_decay = 1e-4f};
    const int batch = 5;
    g_autoptr(TpModel) model = tp_zoo_build(backend, arch, &config, &error);
    g_autoptr(TpSgd) sgd = NULL;
    g_autofree float *images = g_new(float, batch * 3 * 12 * 12);
    const gint32 labels[] = {0, 4, 2, 1, 3};
    GArray *out = g_array_new(FALSE, FALSE, sizeof(float));
    double loss;

    ck_assert_msg(model != NULL, "%s", error ? error->message : "");
    tp_test_fill_uniform(images, batch * 3 * 12 * 12, -1, 1, 3);
    sgd = tp_sgd_new(model, &hyper, &error);
    ck_assert_msg(sgd != NULL && tp_model_forward(model, images, batch, TP_MODE_TRAIN, &error) &&
                      tp_model_loss(model, labels, 0.0f, &loss, &error) &&
                      tp_model_backward(model, tp_model_get_logits(model), &error) &&
                      tp_sgd_step(sgd, &error),
                  "%s: %s", arch, error ? error->message : "");

    TpTensor *tensors[] = {tp_model_get_value(model, tp_model_get_logits(model)),
                           tp_model_get_grad(model, 0)};
    for (guint t = 0; t < G_N_ELEMENTS(tensors); t++) {
        g_autofree float *host = g_new(float, tensors[t]->numel);
        ck_assert(tp_tensor_download(tensors[t], host, &error));
        g_array_append_vals(out, host, tensors[t]->numel);
    }
    for (guint i = 0; i < tp_model_get_n_nodes(model); i++) {
        for (int p = 0; p < tp_model_get_node(model, i)->n_params; p++) {
            TpTensor *pair[] = {tp_model_get_param(model, i, p), tp_model_get_param_grad(model, i, p)};
            for (int k = 0; k < 2; k++) {
                g_autofree float *host = NULL;
                if (pair[k] == NULL)
                    continue;
                host = g_new(float, pair[k]->numel);
                ck_assert(tp_tensor_download(pair[k], host, &error));
                g_array_append_vals(out, host, pair[k]->numel);
            }
        }
    }
    return out;
}

static const char *const archs[] = {"vgg11", "resnet20"};

START_TEST(test_thread_counts)
{
    const char *arch = archs[_i % G_N_ELEMENTS(archs)];
    const char *name = tp_test_backend_name(_i / (int)G_N_ELEMENTS(archs));
    g_autoptr(TpBackend) one = open_with_threads(name, 1);
    g_autoptr(GArray) want = NULL;

    if (one == NULL) {
        g_print("skipped: backend %s has no threads key\n", name);
        return;
    }
    want = train_step(one, arch);
    for (int n = 2; n <= 3; n++) {
        g_autoptr(TpBackend) many = open_with_threads(name, n);
        g_autoptr(GArray) got = train_step(many, arch);
        g_autoptr(GArray) again = train_step(many, arch);
        g_autofree char *what = g_strdup_printf("backend %s, %s, %d threads", name, arch, n);

        ck_assert_uint_eq(got->len, want->len);
        ck_assert_msg(memcmp(got->data, again->data, got->len * sizeof(float)) == 0,
                      "%s: two runs differ", what);
        tp_test_assert_close((float *)got->data, (float *)want->data, got->len, 1e-5, 1e-3, what);
    }
}
END_TEST

static Suite *
threads_suite(void)
{
    Suite *suite = suite_create("threads");
    TCase *tc = tcase_create("thread counts");

    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_thread_counts, 0,
                        tp_test_count_backends() * (int)G_N_ELEMENTS(archs));
    suite_add_tcase(suite, tc);
    return suite;
}

int
main(void)
{
    tp_test_init();
    return tp_test_run(threads_suite());
}
