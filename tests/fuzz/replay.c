/* replay.c — make check's driver of a fuzz harness without libFuzzer: runs
 * LLVMFuzzerTestOneInput() on every file of tests/fuzz/corpus/FUZZ_CORPUS
 * (seeds and every input that ever crashed), then removes the harness's
 * folder. A crash, abort or fatal warning fails the test. */
#include "config.h"

#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>

#include "fuzz.h"

static void
remove_tree(const char *path)
{
    g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
    const char *name;

    while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
        g_autofree char *child = g_build_filename(path, name, NULL);
        if (g_file_test(child, G_FILE_TEST_IS_DIR) && !g_file_test(child, G_FILE_TEST_IS_SYMLINK))
            remove_tree(child);
        else
            g_unlink(child);
    }
    g_rmdir(path);
}

static gint
by_name(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int
main(void)
{
    const char *source = g_getenv("TP_SOURCE_DIR");
    g_autofree char *folder =
        g_build_filename(source ? source : ".", "tests", "fuzz", "corpus", FUZZ_CORPUS, NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(GDir) dir = g_dir_open(folder, 0, &error);
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    const char *name;

    if (dir == NULL) {
        fprintf(stderr, "replay: %s\n", error->message);
        return 1;
    }
    while ((name = g_dir_read_name(dir)) != NULL)
        g_ptr_array_add(names, g_strdup(name));
    g_ptr_array_sort(names, by_name);
    for (guint i = 0; i < names->len; i++) {
        g_autofree char *path = g_build_filename(folder, g_ptr_array_index(names, i), NULL);
        g_autofree char *bytes = NULL;
        gsize length;

        if (!g_file_get_contents(path, &bytes, &length, &error)) {
            fprintf(stderr, "replay: %s\n", error->message);
            return 1;
        }
        printf("%s\n", path);
        fflush(stdout);
        LLVMFuzzerTestOneInput((const guint8 *)bytes, length);
    }
    printf("%s: %u inputs replayed\n", FUZZ_CORPUS, names->len);
    remove_tree(fuzz_dir());
    return names->len > 0 ? 0 : 1;
}
