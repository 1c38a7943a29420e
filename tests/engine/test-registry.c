/* test-registry.c — the plugin loader and registry: the bundled plugins load,
 * each deliberately broken plugin (tests/test-plugins/broken.c) is skipped
 * with a warning naming the file and the reason, duplicates and shadowing
 * follow tp-registry.h, and a missing plugin's error lists those there. */
#include "config.h"

#include <glib/gstdio.h>
#include <string.h>

#include "tp-test.h"

static char *
test_plugin(const char *name)
{
    const char *dir = g_getenv("TP_TEST_PLUGIN_DIR");
    ck_assert_msg(dir != NULL, "TP_TEST_PLUGIN_DIR is not set (run through make check)");
    g_autofree char *file = g_strconcat(name, ".so", NULL);
    return g_build_filename(dir, file, NULL);
}

/* A new temporary folder holding copies of the named test plugins. */
static char *
folder_with(const char *const *names)
{
    g_autoptr(GError) error = NULL;
    char *dir = tp_test_make_temp_dir();

    for (guint i = 0; names[i] != NULL; i++) {
        g_autofree char *from = test_plugin(names[i]);
        g_autofree char *file = g_strconcat(names[i], ".so", NULL);
        g_autofree char *to = g_build_filename(dir, file, NULL);
        g_autofree char *contents = NULL;
        gsize length;

        ck_assert_msg(g_file_get_contents(from, &contents, &length, &error), "%s",
                      error ? error->message : "");
        ck_assert(g_file_set_contents(to, contents, length, NULL));
    }
    return dir;
}

START_TEST(test_bundled)
{
    g_autoptr(GError) error = NULL;
    const TpPlugin *cpu =
        tp_registry_lookup(tp_test_registry(), TP_PLUGIN_KIND_BACKEND, "cpu", &error);

    ck_assert_msg(cpu != NULL, "%s", error ? error->message : "");
    ck_assert_str_eq(cpu->info->name, "cpu");
    ck_assert_int_eq(cpu->info->abi_major, TP_PLUGIN_ABI_MAJOR);
    ck_assert_uint_eq(tp_registry_get_skipped(tp_test_registry())->len, 0);
}
END_TEST

START_TEST(test_not_found)
{
    g_autoptr(GError) error = NULL;

    ck_assert_ptr_null(
        tp_registry_lookup(tp_test_registry(), TP_PLUGIN_KIND_BACKEND, "tpu", &error));
    ck_assert(g_error_matches(error, TP_PLUGIN_ERROR, TP_PLUGIN_ERROR_NOT_FOUND));
    ck_assert_msg(strstr(error->message, "no backend plugin named 'tpu'") &&
                      strstr(error->message, "available: cpu"),
                  "%s", error->message);
}
END_TEST

/* Each broken plugin: loading fails with this code and message, and a scan
 * skips it with a warning saying the same. */
static const struct {
    const char *file;
    int code;
    const char *reason;
} broken[] = {
    {"bad-abi", TP_PLUGIN_ERROR_ABI, "built for plugin ABI 999"},
    {"small-struct", TP_PLUGIN_ERROR_ABI, "TpPluginInfo is 8 bytes"},
    {"no-entry", TP_PLUGIN_ERROR_NO_ENTRY, "does not export tp_plugin_describe()"},
    {"bad-kind", TP_PLUGIN_ERROR_INVALID, "unknown kind 7"},
    {"bad-name", TP_PLUGIN_ERROR_INVALID, "plugin name 'Bad Name' is not valid"},
    {"missing-kernel", TP_PLUGIN_ERROR_INVALID, "lacks the required kernel 'gemm'"},
    {"bad-params", TP_PLUGIN_ERROR_INVALID, "parameter 'level', default value"},
    {"partial-prepared", TP_PLUGIN_ERROR_INVALID, "set all three or none"},
};

START_TEST(test_broken)
{
    const char *names[] = {broken[_i].file, NULL};
    g_autofree char *dir = folder_with(names);
    g_autofree char *file = g_strconcat(broken[_i].file, ".so", NULL);
    g_autofree char *path = g_build_filename(dir, file, NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(TpRegistry) registry = tp_registry_new();

    ck_assert_ptr_null(tp_plugin_load(path, &error));
    ck_assert_msg(g_error_matches(error, TP_PLUGIN_ERROR, broken[_i].code), "%s: code %d",
                  error->message, error->code);
    ck_assert_msg(g_str_has_prefix(error->message, path), "'%s' does not start with the file",
                  error->message);
    ck_assert_msg(strstr(error->message, broken[_i].reason) != NULL, "'%s' lacks '%s'",
                  error->message, broken[_i].reason);

    tp_test_capture_warnings(TRUE);
    tp_registry_scan(registry, dir);
    tp_test_capture_warnings(FALSE);
    g_autofree char *warnings = tp_test_take_warnings();
    ck_assert_msg(strstr(warnings, path) && strstr(warnings, broken[_i].reason),
                  "warning '%s' lacks the file or '%s'", warnings, broken[_i].reason);
    ck_assert_uint_eq(tp_registry_get_skipped(registry)->len, 1);
    g_autoptr(GPtrArray) loaded = tp_registry_list(registry, TP_PLUGIN_KIND_BACKEND);
    ck_assert_uint_eq(loaded->len, 0);
    tp_test_remove_dir(dir);
}
END_TEST

START_TEST(test_not_shared_object)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *dir = tp_test_make_temp_dir();
    g_autofree char *path = g_build_filename(dir, "notes.so", NULL);
    g_autoptr(TpRegistry) registry = tp_registry_new();

    ck_assert(g_file_set_contents(path, "this is not ELF\n", -1, NULL));
    ck_assert_ptr_null(tp_plugin_load(path, &error));
    ck_assert(g_error_matches(error, TP_PLUGIN_ERROR, TP_PLUGIN_ERROR_NOT_LOADABLE));
    ck_assert_msg(strstr(error->message, "notes.so: not a loadable shared object"), "%s",
                  error->message);

    tp_test_capture_warnings(TRUE);
    tp_registry_scan(registry, dir);
    tp_test_capture_warnings(FALSE);
    g_autofree char *warnings = tp_test_take_warnings();
    ck_assert_ptr_nonnull(strstr(warnings, "notes.so: not a loadable shared object"));
    tp_test_remove_dir(dir);
}
END_TEST

START_TEST(test_valid)
{
    const char *names[] = {"good", NULL};
    g_autofree char *dir = folder_with(names);
    g_autoptr(TpRegistry) registry = tp_registry_new();

    tp_registry_scan(registry, dir); /* a warning here would be fatal */
    const TpPlugin *plugin =
        tp_registry_lookup(registry, TP_PLUGIN_KIND_BACKEND, "test-good", NULL);
    ck_assert_ptr_nonnull(plugin);
    ck_assert_ptr_nonnull(strstr(plugin->path, "good.so"));
    ck_assert_ptr_null(tp_registry_lookup(registry, TP_PLUGIN_KIND_CRITERION, "test-good", NULL));
    tp_test_remove_dir(dir);
}
END_TEST

START_TEST(test_duplicate)
{
    const char *names[] = {"good", "good-twin", NULL};
    g_autofree char *dir = folder_with(names);
    g_autoptr(TpRegistry) registry = tp_registry_new();

    tp_test_capture_warnings(TRUE);
    tp_registry_scan(registry, dir);
    tp_test_capture_warnings(FALSE);
    g_autofree char *warnings = tp_test_take_warnings();
    ck_assert_msg(strstr(warnings, "good.so: a backend named 'test-good' is already loaded from") &&
                      strstr(warnings, "good-twin.so"),
                  "%s", warnings);
    g_autoptr(GPtrArray) loaded = tp_registry_list(registry, TP_PLUGIN_KIND_BACKEND);
    ck_assert_uint_eq(loaded->len, 1);
    tp_test_remove_dir(dir);
}
END_TEST

START_TEST(test_shadowing)
{
    const char *first[] = {"good-twin", NULL};
    const char *second[] = {"good", NULL};
    g_autofree char *dir1 = folder_with(first);
    g_autofree char *dir2 = folder_with(second);
    g_autofree char *path = g_strjoin(G_SEARCHPATH_SEPARATOR_S, dir1, dir2, NULL);
    g_autoptr(TpRegistry) registry = tp_registry_new();

    /* Two scans are two sources: the earlier one wins without a warning. */
    tp_registry_scan(registry, dir1);
    tp_registry_scan(registry, dir2);
    const TpPlugin *plugin =
        tp_registry_lookup(registry, TP_PLUGIN_KIND_BACKEND, "test-good", NULL);
    ck_assert_ptr_nonnull(strstr(plugin->path, "good-twin.so"));
    ck_assert_uint_eq(tp_registry_get_skipped(registry)->len, 0);

    /* Folders of one ':'-separated path are one source: a conflict. */
    g_autoptr(TpRegistry) one = tp_registry_new();
    tp_test_capture_warnings(TRUE);
    tp_registry_scan_default(one, path);
    tp_test_capture_warnings(FALSE);
    g_free(tp_test_take_warnings());
    ck_assert_uint_eq(tp_registry_get_skipped(one)->len, 1);
    tp_test_remove_dir(dir1);
    tp_test_remove_dir(dir2);
}
END_TEST

int
main(void)
{
    Suite *suite = suite_create("registry");
    TCase *tc = tcase_create("registry");

    tp_test_init();
    tcase_add_test(tc, test_bundled);
    tcase_add_test(tc, test_not_found);
    tcase_add_loop_test(tc, test_broken, 0, G_N_ELEMENTS(broken));
    tcase_add_test(tc, test_not_shared_object);
    tcase_add_test(tc, test_valid);
    tcase_add_test(tc, test_duplicate);
    tcase_add_test(tc, test_shadowing);
    suite_add_tcase(suite, tc);
    return tp_test_run(suite);
}
