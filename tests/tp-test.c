/* tp-test.c — fixtures shared by every test program (see tp-test.h). */
#include "config.h"

#include <glib/gstdio.h>
#include <math.h>

#include "tp-test.h"

static gboolean capturing;
static GString *captured;

static void
capture_handler(const char *domain, GLogLevelFlags level, const char *message, gpointer data)
{
    if (captured == NULL)
        captured = g_string_new(NULL);
    if (captured->len > 0)
        g_string_append_c(captured, '\n');
    g_string_append(captured, message);
}

void
tp_test_init(void)
{
    g_log_set_always_fatal(G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING | G_LOG_FATAL_MASK);
}

int
tp_test_run(Suite *suite)
{
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_ENV);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? 0 : 1;
}

void
tp_test_capture_warnings(gboolean on)
{
    static guint handler;

    if (on == capturing)
        return;
    capturing = on;
    if (on) {
        g_log_set_always_fatal(G_LOG_LEVEL_CRITICAL | G_LOG_FATAL_MASK);
        handler = g_log_set_handler("taskprune", G_LOG_LEVEL_WARNING, capture_handler, NULL);
    } else {
        g_log_remove_handler("taskprune", handler);
        tp_test_init();
    }
}

char *
tp_test_take_warnings(void)
{
    if (captured == NULL)
        return g_strdup("");
    return g_string_free(g_steal_pointer(&captured), FALSE);
}

TpRegistry *
tp_test_registry(void)
{
    return tp_registry_get_default();
}

gboolean
tp_test_backend_available(const char *name)
{
    /* name -> GINT_TO_POINTER(1 + available), for this process's life. */
    static GHashTable *probed;
    g_autoptr(GError) error = NULL;
    const TpPlugin *plugin;
    TpBackend *backend;
    gpointer known;

    if (probed == NULL)
        probed = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    known = g_hash_table_lookup(probed, name);
    if (known != NULL)
        return GPOINTER_TO_INT(known) - 1;

    /* Called outside tests too, where Check's passing asserts cannot report:
     * only a failure goes through Check. */
    plugin = tp_registry_lookup(tp_test_registry(), TP_PLUGIN_KIND_BACKEND, name, &error);
    if (plugin == NULL)
        ck_abort_msg("%s", error->message);
    backend = tp_backend_new(plugin->info, NULL, &error);
    if (backend == NULL) {
        if (!g_error_matches(error, TP_BACKEND_ERROR, TP_BACKEND_ERROR_NO_DEVICE))
            ck_abort_msg("backend %s: %s", name, error->message);
        g_printerr("skipped: %s\n", error->message);
    }
    g_clear_pointer(&backend, tp_backend_free);
    g_hash_table_insert(probed, g_strdup(name), GINT_TO_POINTER(1 + (error == NULL)));
    return error == NULL;
}

GPtrArray *
tp_test_backend_names(void)
{
    g_autoptr(GPtrArray) plugins = tp_registry_list(tp_test_registry(), TP_PLUGIN_KIND_BACKEND);
    GPtrArray *names = g_ptr_array_new();

    for (guint i = 0; i < plugins->len; i++) {
        const TpPlugin *plugin = g_ptr_array_index(plugins, i);
        if (tp_test_backend_available(plugin->info->name))
            g_ptr_array_add(names, (gpointer)plugin->info->name);
    }
    ck_assert_msg(names->len > 0, "no usable backend plugin found on TASKPRUNE_PLUGIN_PATH");
    return names;
}

int
tp_test_count_backends(void)
{
    g_autoptr(GPtrArray) plugins = tp_registry_list(tp_test_registry(), TP_PLUGIN_KIND_BACKEND);
    int count = 0;

    for (guint i = 0; i < plugins->len; i++) {
        const TpPlugin *plugin = g_ptr_array_index(plugins, i);
        count += tp_test_backend_available(plugin->info->name);
    }
    return MAX(count, 1);
}

const char *
tp_test_backend_name(int i)
{
    g_autoptr(GPtrArray) names = tp_test_backend_names();

    ck_assert_int_lt(i, (int)names->len);
    return g_ptr_array_index(names, i);
}

char *
tp_test_make_temp_dir(void)
{
    g_autoptr(GError) error = NULL;
    char *dir = g_dir_make_tmp("taskprune-test-XXXXXX", &error);

    ck_assert_msg(dir != NULL, "%s", error ? error->message : "");
    return dir;
}

void
tp_test_remove_dir(const char *dir)
{
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *name;

    while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
        g_autofree char *path = g_build_filename(dir, name, NULL);

        if (g_file_test(path, G_FILE_TEST_IS_DIR) && !g_file_test(path, G_FILE_TEST_IS_SYMLINK))
            tp_test_remove_dir(path);
        else
            g_unlink(path);
    }
    g_rmdir(dir);
}

void
tp_test_dir_free(TpTestDir *dir)
{
    if (dir == NULL)
        return;
    tp_test_remove_dir(dir);
    g_free(dir);
}

TpBackend *
tp_test_backend_open(const char *name)
{
    g_autoptr(GError) error = NULL;
    const TpPlugin *plugin =
        tp_registry_lookup(tp_test_registry(), TP_PLUGIN_KIND_BACKEND, name, &error);
    ck_assert_msg(plugin != NULL, "%s", error ? error->message : "?");
    TpBackend *backend = tp_backend_new(plugin->info, NULL, &error);
    ck_assert_msg(backend != NULL, "backend %s: %s", name, error ? error->message : "?");
    return backend;
}

void
tp_test_fill_uniform(float *x, gsize n, float lo, float hi, guint32 seed)
{
    g_autoptr(GRand) rand = g_rand_new_with_seed(seed);

    for (gsize i = 0; i < n; i++)
        x[i] = (float)g_rand_double_range(rand, lo, hi);
}

void
tp_test_assert_close(const float *got, const float *want, gsize n, double atol, double rtol,
                     const char *what)
{
    for (gsize i = 0; i < n; i++) {
        double diff = fabs((double)got[i] - (double)want[i]);
        /* ck_assert only on failure: each passing check is a system call
         * (Check marks the point for the forked runner) */
        if (isfinite(got[i]) && diff <= atol + rtol * fabs((double)want[i]))
            continue;
        ck_assert_msg(FALSE,
                      "%s: element %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT
                      ": got %.9g, want %.9g (|diff| %.3g > atol %.3g + rtol %.3g)",
                      what, i, n, got[i], want[i], diff, atol, rtol);
    }
}

int
tp_test_add(TpModel *model, TpOpType op, const char *name, int in0, int in1, const TpOpAttrs *attrs)
{
    g_autoptr(GError) error = NULL;
    int inputs[2] = {in0, in1};
    int v = tp_model_add(model, op, name, inputs, attrs, &error);

    ck_assert_msg(v >= 0, "%s: %s", name ? name : tp_op_type_to_string(op),
                  error ? error->message : "");
    return v;
}

void
tp_test_randomize_model(TpModel *model, guint32 seed)
{
    g_autoptr(GError) error = NULL;

    for (guint i = 0; i < tp_model_get_n_nodes(model); i++) {
        const TpNode *node = tp_model_get_node(model, i);

        for (int p = 0; p < node->n_params; p++) {
            TpTensor *t = tp_model_get_param(model, i, p);
            g_autofree float *host = g_new(float, t->numel);
            float lo = -0.5f, hi = 0.5f;

            if (p == 0 && (node->op == TP_OP_CONV || node->op == TP_OP_GEMM)) {
                hi = sqrtf(3.0f * (float)t->shape[0] / (float)t->numel);
                lo = -hi;
            } else if (node->op == TP_OP_BATCH_NORM && p == 0) {
                lo = 0.5f;
                hi = 1.5f;
            } else if (node->op == TP_OP_BATCH_NORM && p == 3) {
                lo = 0.5f;
                hi = 2.0f;
            }
            tp_test_fill_uniform(host, t->numel, lo, hi, seed + 31 * i + (guint32)p);
            ck_assert_msg(tp_tensor_upload(t, host, &error), "%s", error ? error->message : "");
        }
    }
}
