/* cpu-parallel.c — the cpu backend's fork-join pool (cpu-parallel.h).
 *
 * A job is a range cut into `chunks` contiguous chunks, several per thread.
 * The caller publishes it by storing `ticket` = (generation << 32) | chunks
 * left to claim, and every thread, the caller included, claims chunks by
 * decrementing the count with a compare-and-swap that also checks the
 * generation. So no thread waits for a worker that has not started: a
 * worker that wakes late (descheduled on a busy machine, or still asleep)
 * finds nothing left to claim, and the caller has done its share. The caller
 * waits only for chunks already claimed, to be finished (`done`).
 *
 * A thread reads the job's fields only while it holds a claimed chunk: the
 * job cannot end before that chunk is done, so the caller cannot be writing
 * the next job's fields then. Waiting threads spin for a short, timed while
 * (kernels come back to back) and then sleep: workers on `wake`, the caller
 * on `finished`.
 */
#include "config.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cpu-parallel.h"

/* How long a waiting thread spins before it sleeps. */
#define SPIN_US 50

/* Chunks a job is cut into per thread (where its grain allows): the threads
 * that are running take over the chunks of one that is not. */
#define CHUNKS_PER_THREAD 4

struct _CpuPool {
    int threads;       /* the caller and the workers that started */
    GThread **workers; /* threads - 1 */
    GMutex lock;
    GCond wake;              /* a new job or quit, for workers */
    GCond finished;          /* the last chunk is done, for the caller */
    int sleepers;            /* workers waiting on wake; under lock */
    guint32 generation;      /* the caller's: the current job's */
    _Atomic uint64_t ticket; /* (generation << 32) | chunks not yet claimed */
    atomic_int done;         /* chunks of the current job finished */
    atomic_int caller_sleeps;
    atomic_int quit;
    /* The job: written before the ticket publishes it; read only by a thread
     * that holds one of its chunks. */
    CpuRangeFunc func;
    gpointer data;
    gsize n;
    int chunks;
};

static inline void
relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Claims a chunk of job `generation`: TRUE and its index in *out_chunk, or
 * FALSE when that job has none left (or is not the current one). */
static gboolean
claim(CpuPool *pool, guint32 generation, int *out_chunk)
{
    uint64_t ticket = atomic_load(&pool->ticket);

    while ((guint32)(ticket >> 32) == generation && (guint32)ticket > 0) {
        if (atomic_compare_exchange_weak(&pool->ticket, &ticket, ticket - 1)) {
            *out_chunk = (int)(guint32)ticket - 1;
            return TRUE;
        }
    }
    return FALSE;
}

/* Runs the chunks of job `generation` this thread can claim. */
static void
run_chunks(CpuPool *pool, guint32 generation)
{
    int chunk;

    while (claim(pool, generation, &chunk)) {
        gsize n = pool->n;
        gsize chunks = (gsize)pool->chunks;

        pool->func(pool->data, n * (gsize)chunk / chunks, n * (gsize)(chunk + 1) / chunks);
        if (atomic_fetch_add(&pool->done, 1) + 1 == (int)chunks &&
            atomic_load(&pool->caller_sleeps)) {
            g_mutex_lock(&pool->lock);
            g_cond_signal(&pool->finished);
            g_mutex_unlock(&pool->lock);
        }
    }
}

/* Spins for up to SPIN_US while `keep_waiting` holds; FALSE if it stopped
 * holding. */
static gboolean
spin(gboolean (*keep_waiting)(CpuPool *, guint32), CpuPool *pool, guint32 value)
{
    gint64 until = 0;

    for (int spins = 0;; spins++) {
        if (!keep_waiting(pool, value))
            return FALSE;
        if ((spins & 255) == 255) {
            gint64 now = g_get_monotonic_time();

            if (until == 0)
                until = now + SPIN_US;
            else if (now > until)
                return TRUE;
        }
        relax();
    }
}

/* TRUE while job `seen` is the current one and the pool runs. */
static gboolean
no_new_job(CpuPool *pool, guint32 seen)
{
    return (guint32)(atomic_load(&pool->ticket) >> 32) == seen && !atomic_load(&pool->quit);
}

/* TRUE while fewer than `chunks` chunks are done. */
static gboolean
unfinished(CpuPool *pool, guint32 chunks)
{
    return (guint32)atomic_load(&pool->done) < chunks;
}

static gpointer
worker_main(gpointer data)
{
    CpuPool *pool = data;
    guint32 seen = 0; /* the generation cpu_pool_new() left */

    for (;;) {
        if (spin(no_new_job, pool, seen)) {
            g_mutex_lock(&pool->lock);
            pool->sleepers++;
            while (no_new_job(pool, seen))
                g_cond_wait(&pool->wake, &pool->lock);
            pool->sleepers--;
            g_mutex_unlock(&pool->lock);
        }
        if (atomic_load(&pool->quit))
            break;
        seen = (guint32)(atomic_load(&pool->ticket) >> 32);
        run_chunks(pool, seen);
    }
    return NULL;
}

/* The CPUs a cgroup's quota allows its processes, rounded up (1.5 -> 2),
 * from its folder: cgroup v2's cpu.max ("150000 100000") or v1's
 * cpu.cfs_quota_us and cpu.cfs_period_us; G_MAXINT where it sets none. */
static int
quota_cpus(const char *folder)
{
    g_autofree char *max = g_build_filename(folder, "cpu.max", NULL);
    g_autofree char *quota_us = g_build_filename(folder, "cpu.cfs_quota_us", NULL);
    g_autofree char *period_us = g_build_filename(folder, "cpu.cfs_period_us", NULL);
    g_autofree char *text = NULL;
    g_autofree char *text2 = NULL;
    long long quota = 0, period = 0;

    if (g_file_get_contents(max, &text, NULL, NULL)) {
        if (sscanf(text, "%lld %lld", &quota, &period) != 2)
            return G_MAXINT; /* "max 100000" */
    } else if (g_file_get_contents(quota_us, &text, NULL, NULL) &&
               g_file_get_contents(period_us, &text2, NULL, NULL)) {
        quota = g_ascii_strtoll(text, NULL, 10);
        period = g_ascii_strtoll(text2, NULL, 10);
    }
    if (quota <= 0 || period <= 0)
        return G_MAXINT;
    return (int)MIN((quota + period - 1) / period, G_MAXINT);
}

/* The smallest quota on the way from cgroup `path` (as /proc/self/cgroup
 * names it) up to the root of the hierarchy mounted at `mount`. */
static int
path_quota_cpus(const char *mount, const char *path)
{
    g_autofree char *folder = g_build_filename(mount, path, NULL);
    int cpus = G_MAXINT;

    while (strlen(folder) >= strlen(mount)) {
        char *slash = strrchr(folder, '/');

        cpus = MIN(cpus, quota_cpus(folder));
        if (slash == NULL || strlen(folder) == strlen(mount))
            break;
        *slash = '\0';
    }
    return cpus;
}

int
cpu_pool_quota_threads(int cpus, const char *cgroups, const char *root)
{
    /* Where Debian and common container runtimes mount the hierarchies. */
    static const char *const v2[] = {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"};
    static const char *const v1[] = {"/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct"};
    g_auto(GStrv) lines = g_strsplit(cgroups, "\n", -1);

    for (char **line = lines; *line != NULL; line++) {
        g_auto(GStrv) fields = g_strsplit(*line, ":", 3); /* id, controllers, path */
        g_auto(GStrv) controllers = NULL;
        const char *const *mounts;

        if (g_strv_length(fields) != 3)
            continue;
        controllers = g_strsplit(fields[1], ",", -1);
        if (fields[1][0] == '\0')
            mounts = v2;
        else if (g_strv_contains((const char *const *)controllers, "cpu"))
            mounts = v1;
        else
            continue;
        for (gsize i = 0; i < 2; i++) {
            g_autofree char *mount = g_strconcat(root, mounts[i], NULL);

            cpus = MIN(cpus, path_quota_cpus(mount, fields[2]));
        }
    }
    return MAX(cpus, 1);
}

int
cpu_pool_default_threads(void)
{
    int cpus = (int)g_get_num_processors();
    g_autofree char *cgroups = NULL;
#ifdef CPU_COUNT
    cpu_set_t mask;

    if (sched_getaffinity(0, sizeof mask, &mask) == 0)
        cpus = MIN(cpus, CPU_COUNT(&mask));
#endif
    if (!g_file_get_contents("/proc/self/cgroup", &cgroups, NULL, NULL))
        return MAX(cpus, 1);
    return cpu_pool_quota_threads(cpus, cgroups, "");
}

CpuPool *
cpu_pool_new(int threads)
{
    CpuPool *pool = g_new0(CpuPool, 1);

    g_mutex_init(&pool->lock);
    g_cond_init(&pool->wake);
    g_cond_init(&pool->finished);
    atomic_init(&pool->ticket, 0);
    atomic_init(&pool->done, 0);
    atomic_init(&pool->caller_sleeps, 0);
    atomic_init(&pool->quit, 0);
    pool->threads = 1;
    pool->workers = g_new0(GThread *, MAX(threads, 1));
    for (int i = 1; i < threads; i++) {
        g_autoptr(GError) error = NULL;

        pool->workers[i - 1] = g_thread_try_new("tp-cpu", worker_main, pool, &error);
        if (pool->workers[i - 1] == NULL) {
            g_debug("cpu backend: %d of %d threads: %s", i, threads, error->message);
            break;
        }
        pool->threads++;
    }
    return pool;
}

void
cpu_pool_free(CpuPool *pool)
{
    if (pool == NULL)
        return;
    g_mutex_lock(&pool->lock);
    atomic_store(&pool->quit, 1);
    g_cond_broadcast(&pool->wake);
    g_mutex_unlock(&pool->lock);
    for (int i = 0; i < pool->threads - 1; i++)
        g_thread_join(pool->workers[i]);
    g_free(pool->workers);
    g_mutex_clear(&pool->lock);
    g_cond_clear(&pool->wake);
    g_cond_clear(&pool->finished);
    g_free(pool);
}

int
cpu_pool_get_threads(const CpuPool *pool)
{
    return pool->threads;
}

void
cpu_pool_run(CpuPool *pool, gsize n, gsize grain, CpuRangeFunc func, gpointer data)
{
    gsize chunks = MIN((gsize)pool->threads * CHUNKS_PER_THREAD, n / MAX(grain, 1));

    if (chunks <= 1 || pool->threads == 1) {
        if (n > 0)
            func(data, 0, n);
        return;
    }
    pool->func = func;
    pool->data = data;
    pool->n = n;
    pool->chunks = (int)chunks;
    atomic_store(&pool->done, 0);
    pool->generation++;
    g_mutex_lock(&pool->lock);
    atomic_store(&pool->ticket, (uint64_t)pool->generation << 32 | chunks);
    if (pool->sleepers > 0)
        g_cond_broadcast(&pool->wake);
    g_mutex_unlock(&pool->lock);

    run_chunks(pool, pool->generation);
    if (spin(unfinished, pool, (guint32)chunks)) {
        g_mutex_lock(&pool->lock);
        atomic_store(&pool->caller_sleeps, 1);
        while (unfinished(pool, (guint32)chunks))
            g_cond_wait(&pool->finished, &pool->lock);
        atomic_store(&pool->caller_sleeps, 0);
        g_mutex_unlock(&pool->lock);
    }
}
