/* test-params.c — keyfile parameters: defaults, types, ranges, choices,
 * unknown keys, and messages that name the file, group and key. */
#include "config.h"

#include <string.h>

#include "tp-test.h"

static const TpParamSpec specs[] = {
    {"threads", TP_PARAM_INT, "0", 0, 64, NULL, "worker threads"},
    {"step", TP_PARAM_DOUBLE, "0.05", 0.0, 1.0, NULL, "fraction per step"},
    {"linear", TP_PARAM_BOOLEAN, "true", 0, 0, NULL, "prune linear layers"},
    {"norm", TP_PARAM_CHOICE, "l1", 0, 0, "l1|l2|none", "normalization"},
    {"label", TP_PARAM_STRING, "base", 0, 0, NULL, "a label"},
    {NULL},
};

static GKeyFile *
keyfile(const char *text)
{
    GKeyFile *kf = g_key_file_new();
    g_autoptr(GError) error = NULL;

    ck_assert_msg(g_key_file_load_from_data(kf, text, -1, G_KEY_FILE_NONE, &error), "%s",
                  error ? error->message : "");
    return kf;
}

START_TEST(test_defaults)
{
    ck_assert(tp_param_specs_check(specs, NULL));
    ck_assert_uint_eq(tp_param_specs_count(specs), 5);
    g_autoptr(TpParams) p = tp_params_new(specs);
    ck_assert_int_eq(tp_params_get_int(p, "threads"), 0);
    ck_assert_double_eq(tp_params_get_double(p, "step"), 0.05);
    ck_assert(tp_params_get_boolean(p, "linear"));
    ck_assert_str_eq(tp_params_get_string(p, "norm"), "l1");
    ck_assert_str_eq(tp_params_get_string(p, "label"), "base");
}
END_TEST

START_TEST(test_load)
{
    g_autoptr(GKeyFile) kf = keyfile("[criterion]\nplugin=magnitude\nthreads = 4\nstep=0.25\n"
                                     "linear=false\nnorm=l2\nlabel=a b\n");
    g_autoptr(TpParams) p = tp_params_new(specs);
    g_autoptr(GError) error = NULL;
    const char *const skip[] = {"plugin", NULL};

    ck_assert_msg(tp_params_load(p, kf, "criterion", "p.ini", skip, &error), "%s",
                  error ? error->message : "");
    ck_assert_int_eq(tp_params_get_int(p, "threads"), 4);
    ck_assert_double_eq(tp_params_get_double(p, "step"), 0.25);
    ck_assert(!tp_params_get_boolean(p, "linear"));
    ck_assert_str_eq(tp_params_get_string(p, "norm"), "l2");
    ck_assert_str_eq(tp_params_get_string(p, "label"), "a b");

    /* A missing group changes nothing. */
    ck_assert(tp_params_load(p, kf, "absent", "p.ini", NULL, NULL));
    ck_assert_int_eq(tp_params_get_int(p, "threads"), 4);
}
END_TEST

/* Each bad keyfile fails with a message naming file, group and key, and
 * leaves the earlier values. */
static const struct {
    const char *text;
    int code;
    const char *expect[3];
} bad[] = {
    {"[g]\nthread=2\n",
     TP_PARAMS_ERROR_UNKNOWN_KEY,
     {"p.ini: [g] unknown key 'thread'", "valid keys: threads, step", NULL}},
    {"[g]\nthreads=two\n", TP_PARAMS_ERROR_BAD_VALUE, {"p.ini: [g] threads:", "not an integer"}},
    {"[g]\nthreads=1.5\n", TP_PARAMS_ERROR_BAD_VALUE, {"threads:", "not an integer"}},
    {"[g]\nthreads=65\n", TP_PARAMS_ERROR_BAD_VALUE, {"threads:", "out of range", "0 to 64"}},
    {"[g]\nthreads=-1\n", TP_PARAMS_ERROR_BAD_VALUE, {"threads:", "out of range"}},
    {"[g]\nstep=1.5\n", TP_PARAMS_ERROR_BAD_VALUE, {"step:", "out of range"}},
    {"[g]\nstep=nan\n", TP_PARAMS_ERROR_BAD_VALUE, {"step:", "not a number"}},
    {"[g]\nstep=\n", TP_PARAMS_ERROR_BAD_VALUE, {"step:", "not a number"}},
    {"[g]\nlinear=yes\n", TP_PARAMS_ERROR_BAD_VALUE, {"linear:", "true or false"}},
    {"[g]\nnorm=l3\n", TP_PARAMS_ERROR_BAD_VALUE, {"norm:", "l1|l2|none"}},
    {"[g]\nthreads=2\nnorm=l3\n", TP_PARAMS_ERROR_BAD_VALUE, {"norm:"}},
};

START_TEST(test_bad_values)
{
    g_autoptr(GKeyFile) kf = keyfile(bad[_i].text);
    g_autoptr(TpParams) p = tp_params_new(specs);
    g_autoptr(GError) error = NULL;

    ck_assert(!tp_params_load(p, kf, "g", "p.ini", NULL, &error));
    ck_assert(g_error_matches(error, TP_PARAMS_ERROR, bad[_i].code));
    for (int i = 0; i < 3 && bad[_i].expect[i]; i++)
        ck_assert_msg(strstr(error->message, bad[_i].expect[i]) != NULL, "'%s' lacks '%s'",
                      error->message, bad[_i].expect[i]);
    ck_assert_int_eq(tp_params_get_int(p, "threads"), 0);
    ck_assert_str_eq(tp_params_get_string(p, "norm"), "l1");
}
END_TEST

START_TEST(test_set)
{
    g_autoptr(TpParams) p = tp_params_new(specs);
    g_autoptr(GError) error = NULL;

    ck_assert(tp_params_set(p, "norm", "none", NULL));
    ck_assert_str_eq(tp_params_get_string(p, "norm"), "none");
    ck_assert(!tp_params_set(p, "nrom", "l1", &error));
    ck_assert(g_error_matches(error, TP_PARAMS_ERROR, TP_PARAMS_ERROR_UNKNOWN_KEY));
    ck_assert_ptr_nonnull(strstr(error->message, "nrom"));
}
END_TEST

static const struct {
    TpParamSpec spec[3];
    const char *expect;
} bad_specs[] = {
    {{{"a", TP_PARAM_INT, "1", 0, 9, NULL, "h"}, {"a", TP_PARAM_INT, "1", 0, 9, NULL, "h"}},
     "'a' is declared twice"},
    {{{"Bad", TP_PARAM_INT, "1", 0, 9, NULL, "h"}}, "'Bad'"},
    {{{"a", TP_PARAM_INT, "10", 0, 9, NULL, "h"}}, "default value"},
    {{{"a", TP_PARAM_CHOICE, "x", 0, 0, NULL, "h"}}, "lists no choices"},
    {{{"a", TP_PARAM_CHOICE, "x", 0, 0, "y|z", "h"}}, "default value"},
    {{{"a", (TpParamType)42, "x", 0, 0, NULL, "h"}}, "unknown type"},
    {{{"a", TP_PARAM_DOUBLE, "1", 2, 1, NULL, "h"}}, "empty range"},
    {{{"a", TP_PARAM_STRING, "x", 0, 0, NULL, NULL}}, "help"},
};

START_TEST(test_bad_specs)
{
    g_autoptr(GError) error = NULL;

    ck_assert(!tp_param_specs_check(bad_specs[_i].spec, &error));
    ck_assert(g_error_matches(error, TP_PARAMS_ERROR, TP_PARAMS_ERROR_BAD_SPEC));
    ck_assert_msg(strstr(error->message, bad_specs[_i].expect) != NULL, "'%s' lacks '%s'",
                  error->message, bad_specs[_i].expect);
}
END_TEST

START_TEST(test_describe)
{
    g_autoptr(GString) out = g_string_new(NULL);

    tp_param_specs_describe(specs, "  ", out);
    ck_assert_ptr_nonnull(strstr(out->str, "  threads          integer, 0 to 64 (default 0)"));
    ck_assert_ptr_nonnull(strstr(out->str, "l1|l2|none (default l1)"));
    ck_assert_ptr_nonnull(strstr(out->str, "prune linear layers"));
}
END_TEST

int
main(void)
{
    Suite *suite = suite_create("params");
    TCase *tc = tcase_create("params");

    tp_test_init();
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_load);
    tcase_add_loop_test(tc, test_bad_values, 0, G_N_ELEMENTS(bad));
    tcase_add_test(tc, test_set);
    tcase_add_loop_test(tc, test_bad_specs, 0, G_N_ELEMENTS(bad_specs));
    tcase_add_test(tc, test_describe);
    suite_add_tcase(suite, tc);
    return tp_test_run(suite);
}
