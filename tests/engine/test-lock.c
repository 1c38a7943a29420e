/* test-lock.c — output lock files: a second taker is refused naming the
 * holder's pid, a lock of a dead process is taken over, release removes it. */
#include "config.h"

#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tp-test.h"

START_TEST(test_lock)
{
    g_autofree char *dir = tp_test_make_temp_dir();
    g_autofree char *out = g_build_filename(dir, "model.onnx", NULL);
    g_autofree char *lock_path = g_strconcat(out, ".lock", NULL);
    g_autofree char *pid = g_strdup_printf("%ld", (long)getpid());
    g_autofree char *text = NULL;
    g_autoptr(GError) error = NULL;

    TpLock *lock = tp_lock_acquire(out, &error);
    ck_assert_msg(lock != NULL, "%s", error ? error->message : "");
    ck_assert(g_file_get_contents(lock_path, &text, NULL, NULL));
    ck_assert_str_eq(g_strstrip(text), pid);

    /* The same process (or another live one) asking again is refused. */
    ck_assert_ptr_null(tp_lock_acquire(out, &error));
    ck_assert(g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_EXIST));
    ck_assert_msg(strstr(error->message, out) && strstr(error->message, pid), "%s",
                  error->message);
    g_clear_error(&error);
    tp_lock_release(lock);
    ck_assert(!g_file_test(lock_path, G_FILE_TEST_EXISTS));

    /* A lock left by a process that is gone is taken over. */
    pid_t child = fork();
    if (child == 0)
        _exit(0);
    ck_assert(waitpid(child, NULL, 0) == child);
    g_autofree char *stale = g_strdup_printf("%ld\n", (long)child);
    ck_assert(g_file_set_contents(lock_path, stale, -1, NULL));
    lock = tp_lock_acquire(out, &error);
    ck_assert_msg(lock != NULL, "%s", error ? error->message : "");
    g_free(text);
    ck_assert(g_file_get_contents(lock_path, &text, NULL, NULL));
    ck_assert_str_eq(g_strstrip(text), pid);
    tp_lock_release(lock);

    /* A folder that cannot hold the lock is an error naming it. */
    ck_assert_ptr_null(tp_lock_acquire("/nonexistent-folder/model.onnx", &error));
    ck_assert_ptr_nonnull(strstr(error->message, "/nonexistent-folder/model.onnx.lock"));
    tp_test_remove_dir(dir);
}
END_TEST

int
main(void)
{
    Suite *suite = suite_create("lock");
    TCase *tc = tcase_create("lock");

    tp_test_init();
    tcase_add_test(tc, test_lock);
    suite_add_tcase(suite, tc);
    return tp_test_run(suite);
}
