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

/* Elementary operations (multiply-adds, or floats moved) a part must be worth
 * before it is handed to another thread: a hand-off costs microseconds, and
 * milliseconds when the thread taking it was descheduled by other work, so
 * smaller jobs run on the calling thread alone. */
#define CPU_PART_WORK 65536

/* The grain for items that cost `work` elementary operations each: the
 * fewest items a part worth CPU_PART_WORK needs (>= 1). */
static inline gsize
cpu_grain(gsize work)
{
    return MAX(CPU_PART_WORK / MAX(work, 1), 1);
}

/* Runs the items [begin, end) of a job; data is the job's. */
typedef void (*CpuRangeFunc)(gpointer data, gsize begin, gsize end);

/* The threads a pool should have by default: the processors this process
 * may run on (its affinity mask), no more than its cgroup's CPU quota
 * allows (cgroup v2 cpu.max, rounded up), at least 1. */
int cpu_pool_default_threads(void);

/* min(cpus, what the CPU quotas of the cgroups listed in `cgroups` (the text
 * of /proc/<pid>/cgroup) allow), at least 1; `root` prefixes the folders
 * the hierarchies are mounted at ("" but in tests). */
int cpu_pool_quota_threads(int cpus, const char *cgroups, const char *root);

/* A pool of `threads` >= 1 threads, the caller included. Workers that cannot
 * be started are done without (the pool is then smaller); never fails. */
CpuPool *cpu_pool_new(int threads);
void cpu_pool_free(CpuPool *pool);

/* Threads the pool runs jobs on, the caller included (>= 1). */
int cpu_pool_get_threads(const CpuPool *pool);

/* Calls func on contiguous parts of [0, n) covering it once, in parallel,
 * each part at least `grain` items (>= 1) unless n is smaller; returns when
 * every part is done. A job too small to split runs on the caller alone.
 * Which thread runs which part is not fixed, so parts must not depend on
 * it. */
void cpu_pool_run(CpuPool *pool, gsize n, gsize grain, CpuRangeFunc func, gpointer data);

G_END_DECLS

#endif /* CPU_PARALLEL_H */
