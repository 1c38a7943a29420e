/* tp-comm.h — the communicator interface: a plugin that connects the
 * processes of one job (ranks 0 .. size-1) for data-parallel training,
 * scoring and evaluation (docs/scaling.md), and the TpComm handle the engine
 * uses it through.
 *
 * Bundled: `single` (one process; every collective is a no-op) and `mpi`
 * (MPI_COMM_WORLD; only that plugin links libmpi, libtaskprune never does).
 *
 * Rules of the calls:
 *  1. open() once per process, before any other call; close() at the end.
 *  2. Collectives (all_reduce_*, broadcast, barrier) are called by every rank
 *     in the same order with the same counts; a rank that cannot go on calls
 *     abort(), never returns early from a sequence the others are in.
 *  3. all_reduce_sum_* replace buffer, on every rank, by the element-wise sum
 *     of every rank's buffer. The order of summation is the plugin's; every
 *     rank receives the same bits.
 *  4. abort() ends every process of the job, printing message first; it does
 *     not return.
 *  5. all_reduce_sum_float_start() begins the same sum without waiting for
 *     it (a collective: every rank starts its requests in the same order);
 *     the buffer is the plugin's until wait() has returned, which it must be
 *     called for exactly once. test() never blocks; the engine calls it now
 *     and then while it computes, so a plugin without a progress thread of
 *     its own can move the sum on. The three are optional (all or none): a
 *     plugin without them sums at start, blocking, and waits for nothing.
 *
 * Members are only ever appended (tp-plugin.h).
 */
#ifndef TP_COMM_H
#define TP_COMM_H

#include <glib.h>

#include "tp-params.h"
#include "tp-plugin.h"
#include "tp-registry.h"

G_BEGIN_DECLS

#define TP_COMM_ERROR (tp_comm_error_quark())
GQuark tp_comm_error_quark(void);

typedef enum {
    TP_COMM_ERROR_FAILED,   /* a collective failed (the plugin's message) */
    TP_COMM_ERROR_DIVERGED, /* ranks hold different models (a digest check failed) */
} TpCommError;

typedef struct {
    gpointer (*open)(const TpParams *params, GError **error);
    void (*close)(gpointer self);
    int (*rank)(gpointer self);
    int (*size)(gpointer self);
    gboolean (*all_reduce_sum_float)(gpointer self, float *buffer, gsize count, GError **error);
    gboolean (*all_reduce_sum_double)(gpointer self, double *buffer, gsize count, GError **error);
    /* Copies root's `bytes` bytes of buffer into every other rank's. */
    gboolean (*broadcast)(gpointer self, void *buffer, gsize bytes, int root, GError **error);
    gboolean (*barrier)(gpointer self, GError **error);
    void (*abort)(gpointer self, const char *message);
    /* Optional, appended: non-blocking sums (rule 5). start returns a
     * request (never NULL on success); wait finishes and frees it, also
     * when it fails. */
    gpointer (*all_reduce_sum_float_start)(gpointer self, float *buffer, gsize count,
                                           GError **error);
    gboolean (*test)(gpointer self, gpointer request, gboolean *out_done, GError **error);
    gboolean (*wait)(gpointer self, gpointer request, GError **error);
} TpCommVTable;

/* An open communicator. */
typedef struct {
    const TpPluginInfo *info;
    TpCommVTable vt;
    gpointer self;
    int rank, size; /* what rank() and size() said at open */
} TpComm;

/* Checks a communicator descriptor's vtable (used by the loader of plugins). */
gboolean tp_comm_vtable_check(const TpPluginInfo *info, GError **error);

/* Opens the communicator plugin `info` with params (NULL: defaults). */
TpComm *tp_comm_new(const TpPluginInfo *info, const TpParams *params, GError **error);
void tp_comm_free(TpComm *comm);

/* The plugin a process started by a launcher should use: "mpi" when the
 * environment says mpirun or srun started more than one process
 * (OMPI_COMM_WORLD_SIZE, PMI_SIZE, PMIX_SIZE... see tp-comm.c), else
 * "single". */
const char *tp_comm_detect(void);

/* The process-wide communicator the engine's training, scoring and
 * evaluation use: NULL (one process) until set. comm is borrowed and must
 * outlive its use; set NULL to forget it. */
void tp_comm_set_default(TpComm *comm);
TpComm *tp_comm_get_default(void);

/* The default communicator when it connects more than one process, else NULL. */
TpComm *tp_comm_get_parallel(void);

/* Rank and size of the default communicator (0 and 1 without one). */
int tp_comm_rank(void);
int tp_comm_size(void);

gboolean tp_comm_all_reduce_float(TpComm *comm, float *buffer, gsize count, GError **error);
gboolean tp_comm_all_reduce_double(TpComm *comm, double *buffer, gsize count, GError **error);
/* A sum in flight (rule 5 of the calls). */
typedef struct _TpCommRequest TpCommRequest;

/* Starts summing buffer over the ranks, like tp_comm_all_reduce_float();
 * buffer must stay untouched until tp_comm_wait() returns. With a plugin
 * that has no non-blocking sum, sums at once. Returns the request, owned
 * until passed to tp_comm_wait(). */
TpCommRequest *tp_comm_all_reduce_float_start(TpComm *comm, float *buffer, gsize count,
                                              GError **error);
/* Moves the request on; *out_done says whether it has finished. Never blocks. */
gboolean tp_comm_test(TpComm *comm, TpCommRequest *request, gboolean *out_done, GError **error);
/* Waits until the request has finished and frees it (also on failure). */
gboolean tp_comm_wait(TpComm *comm, TpCommRequest *request, GError **error);

gboolean tp_comm_broadcast(TpComm *comm, void *buffer, gsize bytes, int root, GError **error);
gboolean tp_comm_barrier(TpComm *comm, GError **error);
G_NORETURN void tp_comm_abort(TpComm *comm, const char *message);

/* Whether every rank passed the same `bytes` bytes of `data`: rank 0's are
 * broadcast and compared, and the verdict summed, so every rank returns the
 * same answer. On a difference, fails with TP_COMM_ERROR_DIVERGED naming
 * `what` and the ranks that differ. */
gboolean tp_comm_check_equal(TpComm *comm, const void *data, gsize bytes, const char *what,
                             GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(TpComm, tp_comm_free)

G_END_DECLS

#endif /* TP_COMM_H */
