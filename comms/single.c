/* single.c — the `single` communicator: one process, rank 0 of 1. Every
 * collective leaves its buffer as it is (the sum over one rank), so the
 * engine runs exactly as it does without a communicator (tp-comm.h). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "tp-comm.h"

static gpointer
single_open(const TpParams *params, GError **error)
{
    return GINT_TO_POINTER(1);
}

static void
single_close(gpointer self)
{
}

static int
single_rank(gpointer self)
{
    return 0;
}

static int
single_size(gpointer self)
{
    return 1;
}

static gboolean
single_reduce_float(gpointer self, float *buffer, gsize count, GError **error)
{
    return TRUE;
}

static gboolean
single_reduce_double(gpointer self, double *buffer, gsize count, GError **error)
{
    return TRUE;
}

static gpointer
single_reduce_float_start(gpointer self, float *buffer, gsize count, GError **error)
{
    return GINT_TO_POINTER(1); /* nothing to wait for */
}

static gboolean
single_test(gpointer self, gpointer request, gboolean *out_done, GError **error)
{
    *out_done = TRUE;
    return TRUE;
}

static gboolean
single_wait(gpointer self, gpointer request, GError **error)
{
    return TRUE;
}

static gboolean
single_broadcast(gpointer self, void *buffer, gsize bytes, int root, GError **error)
{
    return TRUE;
}

static gboolean
single_barrier(gpointer self, GError **error)
{
    return TRUE;
}

static void
single_abort(gpointer self, const char *message)
{
    fprintf(stderr, "%s\n", message);
    exit(1);
}

static const TpCommVTable single_vtable = {
    /* .open =                  */ single_open,
    /* .close =                 */ single_close,
    /* .rank =                  */ single_rank,
    /* .size =                  */ single_size,
    /* .all_reduce_sum_float =  */ single_reduce_float,
    /* .all_reduce_sum_double = */ single_reduce_double,
    /* .broadcast =             */ single_broadcast,
    /* .barrier =               */ single_barrier,
    /* .abort =                 */ single_abort,
    /* .all_reduce_sum_float_start = */ single_reduce_float_start,
    /* .test =                  */ single_test,
    /* .wait =                  */ single_wait,
};

static const TpPluginInfo single_info = {
    /* .abi_major =   */ TP_PLUGIN_ABI_MAJOR,
    /* .struct_size = */ sizeof(TpPluginInfo),
    /* .kind =        */ TP_PLUGIN_KIND_COMM,
    /* .name =        */ "single",
    /* .version =     */ "1.0",
    /* .description = */ "one process (the default)",
    /* .license =     */ "MIT",
    /* .vtable =      */ &single_vtable,
    /* .vtable_size = */ sizeof(TpCommVTable),
    /* .params =      */ NULL,
};

/* The plugin's one exported symbol. */
TP_PLUGIN_EXPORT const TpPluginInfo *
tp_plugin_describe(void)
{
    return &single_info;
}
