/* allreduce.c — the all-reduce bandwidth of a communicator plugin, for
 * docs/scaling.md. Run under the launcher with the build tree's plugins:
 *     TASKPRUNE_PLUGIN_PATH=comms/.libs mpirun -np 2 bench/allreduce RUNS
 * Built by hand (see docs/scaling.md). For each size from 4 KiB to 64 MiB
 * of floats: RUNS timed all-reduces (after one untimed), the median time,
 * and the bus bandwidth 2 (n - 1) / n × bytes / time (what each rank sends
 * in a ring all-reduce, per second). Rank 0 prints one line per size. */
#include <stdio.h>
#include <stdlib.h>

#include "tp-comm.h"

static int
compare(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int
main(int argc, char **argv)
{
    g_autoptr(GError) error = NULL;
    int runs = argc > 1 ? atoi(argv[1]) : 20;
    const TpPlugin *plugin;
    TpComm *comm;

    plugin = tp_registry_lookup(tp_registry_get_default(), TP_PLUGIN_KIND_COMM, tp_comm_detect(),
                                &error);
    if (plugin == NULL || runs < 1 || !(comm = tp_comm_new(plugin->info, NULL, &error))) {
        fprintf(stderr, "allreduce: %s\n", error ? error->message : "usage: allreduce RUNS");
        return 1;
    }
    if (comm->rank == 0)
        printf("%10s %12s %14s\n", "bytes", "median ms", "bus GB/s");
    for (gsize bytes = 4096; bytes <= ((gsize)64 << 20); bytes *= 4) {
        gsize n = bytes / sizeof(float);
        g_autofree float *buffer = g_new0(float, n);
        g_autofree double *ms = g_new(double, runs);
        for (int r = -1; r < runs; r++) {
            gint64 start;
            if (!tp_comm_barrier(comm, &error))
                tp_comm_abort(comm, error->message);
            start = g_get_monotonic_time();
            if (!tp_comm_all_reduce_float(comm, buffer, n, &error))
                tp_comm_abort(comm, error->message);
            if (r >= 0)
                ms[r] = (g_get_monotonic_time() - start) / 1000.0;
        }
        qsort(ms, (size_t)runs, sizeof(double), compare);
        double median = ms[runs / 2];
        double bus = 2.0 * (comm->size - 1) / comm->size * (double)bytes / (median / 1000.0) / 1e9;
        if (comm->rank == 0)
            printf("%10zu %12.3f %14.2f\n", (size_t)bytes, median, bus);
    }
    tp_comm_free(comm);
    return 0;
}
