/* tp-comm.c — opening a communicator plugin and the collectives the engine
 * calls through it (the contract is in tp-comm.h). */
#include "config.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tp-comm.h"

G_DEFINE_QUARK(tp_comm_error, tp_comm_error)

#define REQUIRED_END (offsetof(TpCommVTable, abort) + sizeof(gpointer))

static void
copy_vtable(const TpPluginInfo *info, TpCommVTable *out)
{
    memset(out, 0, sizeof(*out));
    memcpy(out, info->vtable, MIN(info->vtable_size, sizeof(*out)));
}

gboolean
tp_comm_vtable_check(const TpPluginInfo *info, GError **error)
{
    TpCommVTable vt;

    if (info->vtable == NULL || info->vtable_size < REQUIRED_END) {
        g_set_error(error, TP_PLUGIN_ERROR, TP_PLUGIN_ERROR_ABI,
                    "communicator '%s' has a vtable of %zu bytes, ABI %d needs at least %zu: "
                    "rebuild it against the installed tp-comm.h",
                    info->name, (size_t)(info->vtable ? info->vtable_size : 0), TP_PLUGIN_ABI_MAJOR,
                    (size_t)REQUIRED_END);
        return FALSE;
    }
    copy_vtable(info, &vt);
    if (vt.open == NULL || vt.close == NULL || vt.rank == NULL || vt.size == NULL ||
        vt.all_reduce_sum_float == NULL || vt.all_reduce_sum_double == NULL ||
        vt.broadcast == NULL || vt.barrier == NULL || vt.abort == NULL) {
        g_set_error(error, TP_PLUGIN_ERROR, TP_PLUGIN_ERROR_INVALID,
                    "communicator '%s' lacks one of open, close, rank, size, all_reduce_sum_float, "
                    "all_reduce_sum_double, broadcast, barrier and abort",
                    info->name);
        return FALSE;
    }
    if ((vt.all_reduce_sum_float_start != NULL) != (vt.test != NULL) ||
        (vt.test != NULL) != (vt.wait != NULL)) {
        g_set_error(error, TP_PLUGIN_ERROR, TP_PLUGIN_ERROR_INVALID,
                    "communicator '%s' has only some of all_reduce_sum_float_start, test and "
                    "wait: give it all three or none",
                    info->name);
        return FALSE;
    }
    return TRUE;
}

TpComm *
tp_comm_new(const TpPluginInfo *info, const TpParams *params, GError **error)
{
    g_autoptr(TpParams) defaults = NULL;
    g_autoptr(GError) local = NULL;
    TpComm *comm;

    g_return_val_if_fail(info != NULL && info->kind == TP_PLUGIN_KIND_COMM, NULL);

    if (params == NULL)
        params = defaults = tp_params_new(info->params);
    comm = g_new0(TpComm, 1);
    comm->info = info;
    copy_vtable(info, &comm->vt);
    comm->self = comm->vt.open(params, &local);
    if (comm->self == NULL) {
        g_set_error(error, TP_COMM_ERROR, TP_COMM_ERROR_FAILED, "communicator '%s': %s",
                    info->name, local ? local->message : "open() failed without a reason");
        g_free(comm);
        return NULL;
    }
    comm->rank = comm->vt.rank(comm->self);
    comm->size = comm->vt.size(comm->self);
    if (comm->size < 1 || comm->rank < 0 || comm->rank >= comm->size) {
        g_set_error(error, TP_COMM_ERROR, TP_COMM_ERROR_FAILED,
                    "communicator '%s' says rank %d of %d processes", info->name, comm->rank,
                    comm->size);
        comm->vt.close(comm->self);
        g_free(comm);
        return NULL;
    }
    return comm;
}

void
tp_comm_free(TpComm *comm)
{
    if (comm == NULL)
        return;
    if (tp_comm_get_default() == comm)
        tp_comm_set_default(NULL);
    comm->vt.close(comm->self);
    g_free(comm);
}

/* A size > 1 in any of the variables the launchers set (Open MPI's mpirun,
 * MPICH's and Slurm's PMI, PMIx). */
const char *
tp_comm_detect(void)
{
    static const char *const sizes[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE",
                                        "SLURM_NTASKS"};

    for (gsize i = 0; i < G_N_ELEMENTS(sizes); i++) {
        const char *value = g_getenv(sizes[i]);
        if (value != NULL && g_ascii_strtoll(value, NULL, 10) > 1 &&
            (i != 3 || g_getenv("SLURM_PROCID") != NULL))
            return "mpi";
    }
    return "single";
}

static TpComm *default_comm;

void
tp_comm_set_default(TpComm *comm)
{
    default_comm = comm;
}

TpComm *
tp_comm_get_default(void)
{
    return default_comm;
}

TpComm *
tp_comm_get_parallel(void)
{
    return default_comm != NULL && default_comm->size > 1 ? default_comm : NULL;
}

int
tp_comm_rank(void)
{
    return default_comm ? default_comm->rank : 0;
}

int
tp_comm_size(void)
{
    return default_comm ? default_comm->size : 1;
}

/* Prefixes a plugin's error with the call and the rank. */
static gboolean
checked(TpComm *comm, gboolean ok, GError *local, const char *call, GError **error)
{
    if (ok)
        return TRUE;
    g_set_error(error, TP_COMM_ERROR, TP_COMM_ERROR_FAILED, "%s on rank %d of %d: %s", call,
                comm->rank, comm->size, local ? local->message : "failed without a reason");
    g_clear_error(&local);
    return FALSE;
}

gboolean
tp_comm_all_reduce_float(TpComm *comm, float *buffer, gsize count, GError **error)
{
    GError *local = NULL;
    gboolean ok = comm->vt.all_reduce_sum_float(comm->self, buffer, count, &local);
    return checked(comm, ok, local, "all-reduce", error);
}

gboolean
tp_comm_all_reduce_double(TpComm *comm, double *buffer, gsize count, GError **error)
{
    GError *local = NULL;
    gboolean ok = comm->vt.all_reduce_sum_double(comm->self, buffer, count, &local);
    return checked(comm, ok, local, "all-reduce", error);
}

struct _TpCommRequest {
    gpointer plugin; /* the plugin's request; NULL: summed at start */
};

TpCommRequest *
tp_comm_all_reduce_float_start(TpComm *comm, float *buffer, gsize count, GError **error)
{
    GError *local = NULL;
    gpointer plugin = NULL;

    if (comm->vt.all_reduce_sum_float_start == NULL) {
        if (!tp_comm_all_reduce_float(comm, buffer, count, error))
            return NULL;
    } else {
        plugin = comm->vt.all_reduce_sum_float_start(comm->self, buffer, count, &local);
        if (!checked(comm, plugin != NULL, local, "all-reduce start", error))
            return NULL;
    }
    TpCommRequest *request = g_new(TpCommRequest, 1);
    request->plugin = plugin;
    return request;
}

gboolean
tp_comm_test(TpComm *comm, TpCommRequest *request, gboolean *out_done, GError **error)
{
    GError *local = NULL;
    gboolean ok;

    if (request->plugin == NULL) {
        *out_done = TRUE;
        return TRUE;
    }
    ok = comm->vt.test(comm->self, request->plugin, out_done, &local);
    return checked(comm, ok, local, "all-reduce test", error);
}

gboolean
tp_comm_wait(TpComm *comm, TpCommRequest *request, GError **error)
{
    GError *local = NULL;
    gboolean ok = TRUE;

    if (request->plugin != NULL)
        ok = comm->vt.wait(comm->self, request->plugin, &local);
    g_free(request);
    return checked(comm, ok, local, "all-reduce wait", error);
}

gboolean
tp_comm_broadcast(TpComm *comm, void *buffer, gsize bytes, int root, GError **error)
{
    GError *local = NULL;
    gboolean ok = comm->vt.broadcast(comm->self, buffer, bytes, root, &local);
    return checked(comm, ok, local, "broadcast", error);
}

gboolean
tp_comm_barrier(TpComm *comm, GError **error)
{
    GError *local = NULL;
    gboolean ok = comm->vt.barrier(comm->self, &local);
    return checked(comm, ok, local, "barrier", error);
}

void
tp_comm_abort(TpComm *comm, const char *message)
{
    comm->vt.abort(comm->self, message);
    /* A plugin whose abort() returned: end at least this process. */
    fprintf(stderr, "%s\n", message);
    exit(1);
}

gboolean
tp_comm_check_equal(TpComm *comm, const void *data, gsize bytes, const char *what,
                    GError **error)
{
    g_autofree guint8 *root = g_memdup2(data, bytes);
    g_autofree double *differs = g_new0(double, comm->size);
    g_autoptr(GString) ranks = g_string_new(NULL);

    if (!tp_comm_broadcast(comm, root, bytes, 0, error))
        return FALSE;
    differs[comm->rank] = memcmp(root, data, bytes) != 0;
    if (!tp_comm_all_reduce_double(comm, differs, (gsize)comm->size, error))
        return FALSE;
    for (int r = 0; r < comm->size; r++)
        if (differs[r] != 0)
            g_string_append_printf(ranks, "%s%d", ranks->len ? ", " : "", r);
    if (ranks->len == 0)
        return TRUE;
    g_set_error(error, TP_COMM_ERROR, TP_COMM_ERROR_DIVERGED,
                "%s differs between ranks: rank%s %s disagree%s with rank 0 (a backend that is "
                "not deterministic across processes, or different data on the ranks); stopping",
                what, strchr(ranks->str, ',') ? "s" : "", ranks->str,
                strchr(ranks->str, ',') ? "" : "s");
    return FALSE;
}
