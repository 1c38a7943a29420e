/* cpu-parallel.c — the cpu backend's fork-join pool (cpu-parallel.h).
 *
 * A job is published by bumping `generation` after its fields are written;
 * every worker, whether it has a part or not, takes the job and then
 * decrements `pending`, so the caller, which waits for pending to reach 0,
 * never rewrites a job a worker may still be reading. A worker spins for a
 * while on `generation` before it sleeps on `wake`; the caller bumps the
 * generation under `lock`, so a worker going to sleep cannot miss it.
 */
#include "config.h"

#include "cpu-parallel.h"

/* Spins of a waiting worker before it sleeps (a few hundred microseconds). */
#define SPINS 20000

struct _CpuPool {
    int threads;       /* the caller and the workers that started */
    GThread **workers; /* threads - 1 */
    GMutex lock;
    GCond wake;
    int sleepers;   /* workers waiting on wake; under lock */
    gint generation; /* atomic: bumped once per job */
    gint pending;    /* atomic: workers that have not finished the job */
    gint quit;       /* atomic */
    /* The job, written before generation is bumped. */
    CpuRangeFunc func;
    gpointer data;
    gsize n;
    int parts;
};

typedef struct {
    CpuPool *pool;
    int index; /* 1 .. threads - 1: part `index` of a job */
} Worker;

static inline void
relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* The items of part `part` of `parts` over [0, n). */
static void
part_range(gsize n, int part, int parts, gsize *begin, gsize *end)
{
    *begin = n * (gsize)part / (gsize)parts;
    *end = n * (gsize)(part + 1) / (gsize)parts;
}

/* Waits until the generation differs from `seen` or the pool quits. */
static int
wait_job(CpuPool *pool, int seen)
{
    int gen;

    for (int spins = 0; spins < SPINS; spins++) {
        if ((gen = g_atomic_int_get(&pool->generation)) != seen || g_atomic_int_get(&pool->quit))
            return gen;
        relax();
    }
    g_mutex_lock(&pool->lock);
    pool->sleepers++;
    while ((gen = g_atomic_int_get(&pool->generation)) == seen && !g_atomic_int_get(&pool->quit))
        g_cond_wait(&pool->wake, &pool->lock);
    pool->sleepers--;
    g_mutex_unlock(&pool->lock);
    return gen;
}

static gpointer
worker_main(gpointer data)
{
    Worker *worker = data;
    CpuPool *pool = worker->pool;
    int seen = 0; /* the generation cpu_pool_new() left */

    for (;;) {
        seen = wait_job(pool, seen);
        if (g_atomic_int_get(&pool->quit))
            break;
        if (worker->index < pool->parts) {
            gsize begin, end;
            part_range(pool->n, worker->index, pool->parts, &begin, &end);
            pool->func(pool->data, begin, end);
        }
        g_atomic_int_dec_and_test(&pool->pending);
    }
    g_free(worker);
    return NULL;
}

CpuPool *
cpu_pool_new(int threads)
{
    CpuPool *pool = g_new0(CpuPool, 1);

    g_mutex_init(&pool->lock);
    g_cond_init(&pool->wake);
    pool->threads = 1;
    pool->workers = g_new0(GThread *, MAX(threads, 1));
    for (int i = 1; i < threads; i++) {
        Worker *worker = g_new(Worker, 1);
        g_autoptr(GError) error = NULL;

        worker->pool = pool;
        worker->index = i;
        pool->workers[i - 1] = g_thread_try_new("tp-cpu", worker_main, worker, &error);
        if (pool->workers[i - 1] == NULL) {
            g_debug("cpu backend: %d of %d threads: %s", i, threads, error->message);
            g_free(worker);
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
    g_atomic_int_set(&pool->quit, 1);
    g_cond_broadcast(&pool->wake);
    g_mutex_unlock(&pool->lock);
    for (int i = 0; i < pool->threads - 1; i++)
        g_thread_join(pool->workers[i]);
    g_free(pool->workers);
    g_mutex_clear(&pool->lock);
    g_cond_clear(&pool->wake);
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
    gsize parts = MIN((gsize)pool->threads, n / MAX(grain, 1));
    gsize begin, end;

    if (parts <= 1) {
        if (n > 0)
            func(data, 0, n);
        return;
    }
    pool->func = func;
    pool->data = data;
    pool->n = n;
    pool->parts = (int)parts;
    g_atomic_int_set(&pool->pending, pool->threads - 1);
    g_mutex_lock(&pool->lock);
    g_atomic_int_inc(&pool->generation);
    if (pool->sleepers > 0)
        g_cond_broadcast(&pool->wake);
    g_mutex_unlock(&pool->lock);

    part_range(n, 0, (int)parts, &begin, &end);
    func(data, begin, end);
    for (int spins = 0; g_atomic_int_get(&pool->pending) > 0; spins++) {
        if (spins < SPINS)
            relax();
        else
            g_thread_yield();
    }
}
