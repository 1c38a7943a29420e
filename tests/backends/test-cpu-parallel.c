/* test-cpu-parallel.c — the cpu backend's pool (backends/cpu/cpu-parallel.c,
 * compiled into this test): every job covers its range exactly once in parts
 * of at least its grain, at every thread count; a worker that stalls in the
 * middle of a job (as one descheduled on a busy machine does) holds up only
 * the part it took, the caller doing the rest; and the default thread count
 * follows the cgroup CPU quotas (v1 and v2) of a made-up /sys tree.
 */
#include "config.h"

#include <stdatomic.h>

#include "cpu-parallel.h"
#include "tp-test.h"

typedef struct {
    atomic_int *hits;  /* per item: times a part covered it */
    atomic_size_t min_part;
    GThread *caller;
    atomic_size_t caller_items; /* items the calling thread ran */
    atomic_int stalls;          /* parts left to stall (on a worker) */
} Job;

static void
count(gpointer data, gsize begin, gsize end)
{
    Job *job = data;
    gsize size = end - begin;
    gsize min = atomic_load(&job->min_part);

    while (size < min && !atomic_compare_exchange_weak(&job->min_part, &min, size))
        ;
    for (gsize i = begin; i < end; i++)
        atomic_fetch_add(&job->hits[i], 1);
    if (g_thread_self() == job->caller)
        atomic_fetch_add(&job->caller_items, size);
    else if (atomic_fetch_sub(&job->stalls, 1) > 0)
        g_usleep(300 * 1000);
}

START_TEST(test_covers_once)
{
    const gsize sizes[] = {0, 1, 2, 7, 64, 1000, 10007};
    const gsize grains[] = {1, 5, 64, 1 << 20};

    for (int threads = 1; threads <= 3; threads++) {
        CpuPool *pool = cpu_pool_new(threads);

        ck_assert_int_eq(cpu_pool_get_threads(pool), threads);
        for (gsize s = 0; s < G_N_ELEMENTS(sizes); s++) {
            for (gsize g = 0; g < G_N_ELEMENTS(grains); g++) {
                /* Back-to-back jobs: a worker still in one must not take the next's parts. */
                for (int repeat = 0; repeat < 4; repeat++) {
                    gsize n = sizes[s];
                    g_autofree atomic_int *hits = g_new0(atomic_int, MAX(n, 1));
                    Job job = {.hits = hits, .caller = g_thread_self()};

                    atomic_init(&job.min_part, G_MAXSIZE);
                    atomic_init(&job.caller_items, 0);
                    atomic_init(&job.stalls, 0);
                    cpu_pool_run(pool, n, grains[g], count, &job);
                    for (gsize i = 0; i < n; i++)
                        ck_assert_msg(atomic_load(&hits[i]) == 1,
                                      "%d threads, n %zu, grain %zu: item %zu run %d times",
                                      threads, n, grains[g], i, atomic_load(&hits[i]));
                    if (n > 0)
                        ck_assert_msg(atomic_load(&job.min_part) >= MIN(grains[g], n),
                                      "%d threads, n %zu: a part of %zu items, grain %zu",
                                      threads, n, atomic_load(&job.min_part), grains[g]);
                }
            }
        }
        cpu_pool_free(pool);
    }
}
END_TEST

START_TEST(test_stalled_worker)
{
    const gsize n = 4096;
    CpuPool *pool = cpu_pool_new(2);
    g_autofree atomic_int *hits = g_new0(atomic_int, n);
    Job job = {.hits = hits, .caller = g_thread_self()};
    gsize caller;

    atomic_init(&job.min_part, G_MAXSIZE);
    atomic_init(&job.caller_items, 0);
    atomic_init(&job.stalls, 1);
    cpu_pool_run(pool, n, 1, count, &job);
    for (gsize i = 0; i < n; i++)
        ck_assert_msg(atomic_load(&hits[i]) == 1, "item %zu run %d times", i, atomic_load(&hits[i]));
    /* The worker stalls in the first part it takes (if it takes any before
     * the caller is done): the caller runs every other part, not just its
     * half. */
    caller = atomic_load(&job.caller_items);
    ck_assert_msg(caller >= n * 3 / 4, "the caller ran %zu of %zu items", caller, n);
    cpu_pool_free(pool);
}
END_TEST

/* Writes `text` to root/relative, making its folders. */
static void
write_file(const char *root, const char *relative, const char *text)
{
    g_autofree char *path = g_build_filename(root, relative, NULL);
    g_autofree char *folder = g_path_get_dirname(path);
    g_autoptr(GError) error = NULL;

    ck_assert_int_eq(g_mkdir_with_parents(folder, 0755), 0);
    ck_assert_msg(g_file_set_contents(path, text, -1, &error), "%s", error ? error->message : "");
}

START_TEST(test_quota)
{
    g_autofree char *root = tp_test_make_temp_dir();

    /* v1: 2.5 CPUs on the job's cgroup, 1.5 on its parent: 2 (rounded up). */
    write_file(root, "sys/fs/cgroup/cpu/a/b/cpu.cfs_quota_us", "250000\n");
    write_file(root, "sys/fs/cgroup/cpu/a/b/cpu.cfs_period_us", "100000\n");
    write_file(root, "sys/fs/cgroup/cpu/a/cpu.cfs_quota_us", "150000\n");
    write_file(root, "sys/fs/cgroup/cpu/a/cpu.cfs_period_us", "100000\n");
    write_file(root, "sys/fs/cgroup/cpu/cpu.cfs_quota_us", "-1\n");
    write_file(root, "sys/fs/cgroup/cpu/cpu.cfs_period_us", "100000\n");
    ck_assert_int_eq(cpu_pool_quota_threads(16, "5:memory:/a\n4:cpu,cpuacct:/a/b\n0::/\n", root), 2);
    ck_assert_int_eq(cpu_pool_quota_threads(1, "4:cpu,cpuacct:/a/b\n", root), 1);
    ck_assert_int_eq(cpu_pool_quota_threads(16, "4:cpu:/\n", root), 16);
    /* a controller list without cpu does not count */
    ck_assert_int_eq(cpu_pool_quota_threads(16, "4:cpuacct:/a/b\n", root), 16);

    /* v2 (hybrid: mounted at unified/): "max" on the leaf, 0.5 CPU above it: 1. */
    write_file(root, "sys/fs/cgroup/unified/x/y/cpu.max", "max 100000\n");
    write_file(root, "sys/fs/cgroup/unified/x/cpu.max", "50000 100000\n");
    ck_assert_int_eq(cpu_pool_quota_threads(16, "0::/x/y\n", root), 1);
    write_file(root, "sys/fs/cgroup/unified/x/cpu.max", "300000 100000\n");
    ck_assert_int_eq(cpu_pool_quota_threads(16, "0::/x/y\n", root), 3);
    /* no such cgroup, and text that is not a cgroup list: no limit */
    ck_assert_int_eq(cpu_pool_quota_threads(16, "0::/nowhere\n", root), 16);
    ck_assert_int_eq(cpu_pool_quota_threads(16, "garbage", root), 16);
    ck_assert_int_eq(cpu_pool_quota_threads(0, "", root), 1);

    ck_assert_int_ge(cpu_pool_default_threads(), 1);
    ck_assert_int_le(cpu_pool_default_threads(), (int)g_get_num_processors());
    tp_test_remove_dir(root);
}
END_TEST

static Suite *
pool_suite(void)
{
    Suite *suite = suite_create("cpu-parallel");
    TCase *tc = tcase_create("pool");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_covers_once);
    tcase_add_test(tc, test_stalled_worker);
    tcase_add_test(tc, test_quota);
    suite_add_tcase(suite, tc);
    return suite;
}

int
main(void)
{
    return tp_test_run(pool_suite());
}
