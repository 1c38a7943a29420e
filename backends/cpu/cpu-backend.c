/* cpu-backend.c — the `cpu` backend plugin: host memory and the kernels of
 * cpu-kernels.c (im2col + OpenBLAS sgemm for convolutions and GEMM, 3x3
 * convolutions by Winograd's algorithm in cpu-winograd.c, plain loops for the
 * rest), split over the backend's own threads.
 *
 * Keys:
 *   threads  threads the kernels run on; 0 (default) means one per processor.
 *
 * OpenBLAS is told to use one thread (process-wide, the same for every
 * backend): each backend parallelizes its own calls, so backends with
 * different `threads` keys coexist.
 */
#include "config.h"

#include <cblas.h>
#include <string.h>

#include "cpu-kernels.h"
#include "tp-backend.h"
#include "tp-params.h"
#include "tp-plugin.h"

static const TpParamSpec cpu_params[] = {
    {
        .key = "threads",
        .type = TP_PARAM_INT,
        .default_value = "0",
        .min = 0,
        .max = 1024,
        .help = "threads the kernels run on; 0 uses one per processor",
    },
    {NULL},
};

/* ---------------------------------------------------------------- lifecycle */

/* Returns a new CpuBackend; never fails. */
static gpointer
cpu_open(const TpParams *params, GError **error)
{
    CpuBackend *cpu = g_new0(CpuBackend, 1);
    gint64 threads = params != NULL ? tp_params_get_int(params, "threads") : 0;

    openblas_set_num_threads(1);
    cpu->pool = cpu_pool_new(threads > 0 ? (int)threads : (int)g_get_num_processors());
    g_debug("cpu backend: %d threads", cpu_pool_get_threads(cpu->pool));
    return cpu;
}

/* Frees the state and its scratch; backend memory is the caller's to free. */
static void
cpu_close(gpointer self)
{
    CpuBackend *cpu = self;

    if (cpu == NULL)
        return;
    cpu_pool_free(cpu->pool);
    cpu_scratch_clear(&cpu->col);
    cpu_scratch_clear(&cpu->rows);
    cpu_scratch_clear(&cpu->winograd);
    g_free(cpu);
}

/* ---------------------------------------------------------------- memory */

/* n floats of 64-byte aligned host memory; NULL with
 * TP_BACKEND_ERROR_NO_MEMORY naming the size when that fails. */
static float *
cpu_alloc(gpointer self, gsize n, GError **error)
{
    return cpu_alloc_floats(n, error);
}

static void
cpu_free(gpointer self, float *mem)
{
    cpu_free_floats(mem);
}

static gboolean
cpu_upload(gpointer self, float *dst, const float *host, gsize n, GError **error)
{
    memcpy(dst, host, n * sizeof(float));
    return TRUE;
}

static gboolean
cpu_download(gpointer self, float *host, const float *src, gsize n, GError **error)
{
    memcpy(host, src, n * sizeof(float));
    return TRUE;
}

static gboolean
cpu_copy(gpointer self, float *dst, const float *src, gsize n, GError **error)
{
    memmove(dst, src, n * sizeof(float));
    return TRUE;
}

static gboolean
cpu_fill(gpointer self, float *dst, float value, gsize n, GError **error)
{
    for (gsize i = 0; i < n; i++)
        dst[i] = value;
    return TRUE;
}

/* ---------------------------------------------------------------- descriptor */

static const TpBackendVTable cpu_vtable = {
    /* .open =                     */ cpu_open,
    /* .close =                    */ cpu_close,
    /* .alloc =                    */ cpu_alloc,
    /* .free =                     */ cpu_free,
    /* .upload =                   */ cpu_upload,
    /* .download =                 */ cpu_download,
    /* .copy =                     */ cpu_copy,
    /* .fill =                     */ cpu_fill,
    /* .conv2d_forward =           */ cpu_conv2d_forward,
    /* .conv2d_backward_data =     */ cpu_conv2d_backward_data,
    /* .conv2d_backward_filter =   */ cpu_conv2d_backward_filter,
    /* .gemm =                     */ cpu_gemm,
    /* .add_bias =                 */ cpu_add_bias,
    /* .sum_rows =                 */ cpu_sum_rows,
    /* .batch_norm_forward_train = */ cpu_batch_norm_forward_train,
    /* .batch_norm_forward_eval =  */ cpu_batch_norm_forward_eval,
    /* .batch_norm_backward =      */ cpu_batch_norm_backward,
    /* .relu_forward =             */ cpu_relu_forward,
    /* .relu_backward =            */ cpu_relu_backward,
    /* .add =                      */ cpu_add,
    /* .dropout_forward =          */ cpu_dropout_forward,
    /* .dropout_backward =         */ cpu_dropout_backward,
    /* .pool2d_forward =           */ cpu_pool2d_forward,
    /* .pool2d_backward =          */ cpu_pool2d_backward,
    /* .softmax_forward =          */ cpu_softmax_forward,
    /* .softmax_backward =         */ cpu_softmax_backward,
    /* .softmax_cross_entropy =    */ cpu_softmax_cross_entropy,
    /* .sgd_update =               */ cpu_sgd_update,
    /* .synchronize =              */ NULL,
    /* .mul =                      */ cpu_mul,
    /* .axpby =                    */ cpu_axpby,
    /* .clamp =                    */ cpu_clamp,
    /* .stabilized_divide =        */ cpu_stabilized_divide,
};

static const TpPluginInfo cpu_info = {
    /* .abi_major =   */ TP_PLUGIN_ABI_MAJOR,
    /* .struct_size = */ sizeof(TpPluginInfo),
    /* .kind =        */ TP_PLUGIN_KIND_BACKEND,
    /* .name =        */ "cpu",
    /* .version =     */ "1.0",
    /* .description = */ "host CPU kernels: OpenBLAS sgemm with im2col or Winograd F(4x4,3x3), plain loops elsewhere, on its own threads",
    /* .license =     */ "MIT",
    /* .vtable =      */ &cpu_vtable,
    /* .vtable_size = */ sizeof(TpBackendVTable),
    /* .params =      */ cpu_params,
};

TP_PLUGIN_EXPORT const TpPluginInfo *tp_plugin_describe(void);

/* The plugin's one exported symbol. */
TP_PLUGIN_EXPORT const TpPluginInfo *
tp_plugin_describe(void)
{
    return &cpu_info;
}
