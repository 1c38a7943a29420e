/* cpu-parallel.h — the cpu backend's threads: a fork-join "parallel for".
 *
 * A pool of `threads` threads counts the caller: it starts threads - 1
 * workers, which spin briefly between jobs (kernels come back to back) and
 * then sleep. cpu_pool_run() splits a range into contiguous parts, runs the
 * first on the calling thread and the others on the workers, and returns
 * when all are done. One caller at a time (a backend serves one thread).
 */
#ifndef CPU_PARALLEL_H
#define CPU_PARALLEL_H

#include <glib.h>

G_BEGIN_DECLS

typedef struct _CpuPool CpuPool;

/* Runs the items [begin, end) of a job; data is the job's. */
typedef void (*CpuRangeFunc)(gpointer data, gsize begin, gsize end);

/* A pool of `threads` >= 1 threads, the caller included. Workers that cannot
 * be started are done without (the pool is then smaller); never fails. */
CpuPool *cpu_pool_new(int threads);
void cpu_pool_free(CpuPool *pool);

/* Threads the pool runs jobs on, the caller included (>= 1). */
int cpu_pool_get_threads(const CpuPool *pool);

/* Calls func on contiguous parts of [0, n) covering it once, in parallel,
 * each part at least `grain` items (>= 1) unless n is smaller; returns when
 * every part is done. A job too small to split runs on the caller alone. */
void cpu_pool_run(CpuPool *pool, gsize n, gsize grain, CpuRangeFunc func, gpointer data);

G_END_DECLS

#endif /* CPU_PARALLEL_H */
