/* mpi.c — the `mpi` communicator: MPI_COMM_WORLD of the job mpirun or srun
 * started (docs/scaling.md). The only file of taskprune that links libmpi.
 *
 * open() calls MPI_Init_thread (FUNNELED: collectives come from the thread
 * that runs the engine) unless the host program initialized MPI already;
 * close() finalizes only what it initialized. Sums use MPI_SUM over
 * MPI_FLOAT / MPI_DOUBLE in chunks of at most INT_MAX elements; the
 * non-blocking ones MPI_Iallreduce per chunk, moved on by MPI_Testall (Open
 * MPI progresses them only inside MPI calls) and finished by MPI_Waitall.
 *
 * A failing rank: abort() prints the message and calls MPI_Abort, which
 * ends every process. When another process of the job dies, mpirun sends
 * the survivors SIGTERM; the handler installed here writes one line naming
 * the rank to stderr before the process ends, so every rank reports the
 * failure (the last checkpoint stays intact: files are renamed into place). */
#include "config.h"

#include <limits.h>
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tp-comm.h"

typedef struct {
    int rank, size;
    gboolean initialized_here;
} Mpi;

static char stop_message[160];

/* SIGTERM from the launcher: only async-signal-safe calls. */
static void
on_terminate(int signum)
{
    ssize_t ignored = write(STDERR_FILENO, stop_message, strlen(stop_message));
    (void)ignored;
    signal(signum, SIG_DFL);
    raise(signum);
}

static gboolean
mpi_failed(int code, const char *call, GError **error)
{
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;

    if (code == MPI_SUCCESS)
        return TRUE;
    MPI_Error_string(code, text, &length);
    g_set_error(error, TP_COMM_ERROR, TP_COMM_ERROR_FAILED, "%s: %.*s", call, length, text);
    return FALSE;
}

static gpointer
mpi_open(const TpParams *params, GError **error)
{
    g_autofree Mpi *mpi = g_new0(Mpi, 1);
    int initialized = 0, provided;

    MPI_Initialized(&initialized);
    if (!initialized) {
        if (!mpi_failed(MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided),
                        "MPI_Init_thread", error))
            return NULL;
        mpi->initialized_here = TRUE;
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &mpi->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &mpi->size);
    g_snprintf(stop_message, sizeof(stop_message),
               "taskprune: rank %d of %d: stopped because another process of the job failed; "
               "continue with --resume from the last checkpoint\n",
               mpi->rank, mpi->size);
    signal(SIGTERM, on_terminate);
    return g_steal_pointer(&mpi);
}

static void
mpi_close(gpointer self)
{
    Mpi *mpi = self;

    if (mpi->initialized_here)
        MPI_Finalize();
    g_free(mpi);
}

static int
mpi_rank(gpointer self)
{
    return ((Mpi *)self)->rank;
}

static int
mpi_size(gpointer self)
{
    return ((Mpi *)self)->size;
}

static gboolean
reduce(void *buffer, gsize count, MPI_Datatype type, gsize element, GError **error)
{
    for (gsize done = 0; done < count;) {
        int n = (int)MIN(count - done, (gsize)INT_MAX);
        if (!mpi_failed(MPI_Allreduce(MPI_IN_PLACE, (char *)buffer + done * element, n, type,
                                      MPI_SUM, MPI_COMM_WORLD),
                        "MPI_Allreduce", error))
            return FALSE;
        done += (gsize)n;
    }
    return TRUE;
}

static gboolean
mpi_reduce_float(gpointer self, float *buffer, gsize count, GError **error)
{
    return reduce(buffer, count, MPI_FLOAT, sizeof(float), error);
}

static gboolean
mpi_reduce_double(gpointer self, double *buffer, gsize count, GError **error)
{
    return reduce(buffer, count, MPI_DOUBLE, sizeof(double), error);
}

/* A non-blocking sum: one MPI request per chunk. */
typedef struct {
    int n;
    MPI_Request requests[];
} Request;

static gpointer
mpi_reduce_float_start(gpointer self, float *buffer, gsize count, GError **error)
{
    gsize chunks = MAX((count + INT_MAX - 1) / INT_MAX, 1);
    g_autofree Request *request = g_malloc(sizeof(Request) + chunks * sizeof(MPI_Request));

    request->n = 0;
    for (gsize done = 0; request->n == 0 || done < count; request->n++) {
        int n = (int)MIN(count - done, (gsize)INT_MAX);
        if (!mpi_failed(MPI_Iallreduce(MPI_IN_PLACE, buffer + done, n, MPI_FLOAT, MPI_SUM,
                                       MPI_COMM_WORLD, &request->requests[request->n]),
                        "MPI_Iallreduce", error)) {
            /* The chunks already started finish before the error returns. */
            MPI_Waitall(request->n, request->requests, MPI_STATUSES_IGNORE);
            return NULL;
        }
        done += (gsize)n;
    }
    return g_steal_pointer(&request);
}

static gboolean
mpi_test(gpointer self, gpointer request, gboolean *out_done, GError **error)
{
    Request *r = request;
    int flag = 0;

    if (!mpi_failed(MPI_Testall(r->n, r->requests, &flag, MPI_STATUSES_IGNORE), "MPI_Testall",
                    error))
        return FALSE;
    *out_done = flag != 0;
    return TRUE;
}

static gboolean
mpi_wait(gpointer self, gpointer request, GError **error)
{
    g_autofree Request *r = request;

    return mpi_failed(MPI_Waitall(r->n, r->requests, MPI_STATUSES_IGNORE), "MPI_Waitall", error);
}

static gboolean
mpi_broadcast(gpointer self, void *buffer, gsize bytes, int root, GError **error)
{
    for (gsize done = 0; done < bytes;) {
        int n = (int)MIN(bytes - done, (gsize)INT_MAX);
        if (!mpi_failed(MPI_Bcast((char *)buffer + done, n, MPI_BYTE, root, MPI_COMM_WORLD),
                        "MPI_Bcast", error))
            return FALSE;
        done += (gsize)n;
    }
    return TRUE;
}

static gboolean
mpi_barrier(gpointer self, GError **error)
{
    return mpi_failed(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier", error);
}

static void
mpi_abort(gpointer self, const char *message)
{
    fprintf(stderr, "%s\n", message);
    fflush(stderr);
    signal(SIGTERM, SIG_DFL);
    MPI_Abort(MPI_COMM_WORLD, 1);
}

static const TpCommVTable mpi_vtable = {
    /* .open =                  */ mpi_open,
    /* .close =                 */ mpi_close,
    /* .rank =                  */ mpi_rank,
    /* .size =                  */ mpi_size,
    /* .all_reduce_sum_float =  */ mpi_reduce_float,
    /* .all_reduce_sum_double = */ mpi_reduce_double,
    /* .broadcast =             */ mpi_broadcast,
    /* .barrier =               */ mpi_barrier,
    /* .abort =                 */ mpi_abort,
    /* .all_reduce_sum_float_start = */ mpi_reduce_float_start,
    /* .test =                  */ mpi_test,
    /* .wait =                  */ mpi_wait,
};

static const TpPluginInfo mpi_info = {
    /* .abi_major =   */ TP_PLUGIN_ABI_MAJOR,
    /* .struct_size = */ sizeof(TpPluginInfo),
    /* .kind =        */ TP_PLUGIN_KIND_COMM,
    /* .name =        */ "mpi",
    /* .version =     */ "1.0",
    /* .description = */ "MPI_COMM_WORLD of a job started by mpirun or srun (Open MPI)",
    /* .license =     */ "MIT",
    /* .vtable =      */ &mpi_vtable,
    /* .vtable_size = */ sizeof(TpCommVTable),
    /* .params =      */ NULL,
};

/* The plugin's one exported symbol. */
TP_PLUGIN_EXPORT const TpPluginInfo *
tp_plugin_describe(void)
{
    return &mpi_info;
}
