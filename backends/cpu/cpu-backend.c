/* cpu-backend.c — the `cpu` backend plugin: host memory and the kernels of
 * cpu-kernels.c (im2col + OpenBLAS sgemm for convolutions and GEMM, 3x3
 * convolutions by Winograd's algorithm in cpu-winograd.c, packed weights for
 * convolutions with few output pixels in cpu-packed.c, plain loops for the
 * rest) and of the kernel families (cpu-unary.c, cpu-broadcast.c,
 * cpu-strided.c, cpu-layer-norm.c), split over the backend's own threads.
 *
 * Keys:
 *   threads  threads the kernels run on; 0 (default) means one per processor
 *            this process may use (its affinity mask and cgroup CPU quota).
 *   prepare  offer the engine a prepared form of the convolution weights to
 *            keep between eval-mode passes (default true): the weights
 *            packed for few output pixels (VGG-11 at batch 1 infers 1.4x
 *            faster), and Winograd's transformed filters (16% faster at
 *            batch 64). It holds 2 more floats per weight, 5 per weight of
 *            a 3x3 convolution that Winograd fits.
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
        .help = "threads the kernels run on; 0 uses one per processor this process may use",
    },
    {
        .key = "prepare",
        .type = TP_PARAM_BOOLEAN,
        .default_value = "true",
        .help = "keep packed and Winograd-transformed weights between inference passes "
                "(faster; 2 to 5 floats more per convolution weight)",
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
    cpu->pool = cpu_pool_new(threads > 0 ? (int)threads : cpu_pool_default_threads());
    cpu->prepare = params != NULL ? tp_params_get_boolean(params, "prepare") : TRUE;
    g_mutex_init(&cpu->memory_lock);
    cpu->live = g_hash_table_new(NULL, NULL);
    cpu->kept = g_hash_table_new(NULL, NULL);
    g_debug("cpu backend: %d threads", cpu_pool_get_threads(cpu->pool));
    return cpu;
}

static void release_kept(CpuBackend *cpu);

/* Frees the state, its scratch and the blocks it keeps; every tensor made on
 * the backend has been freed before (tp-backend.h). */
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
    release_kept(cpu);
    g_hash_table_destroy(cpu->kept);
    g_hash_table_destroy(cpu->live);
    g_mutex_clear(&cpu->memory_lock);
    g_free(cpu);
}

/* ---------------------------------------------------------------- memory */

/* A freed block is kept for the next allocation of the same size: a scoring
 * round or a pruning step allocates the tensors of the one before again, and
 * fresh memory costs a page fault and zeroing per 4 KiB (a fifth of an LRP
 * scoring round's time on ResNet-18 without this). An allocation of a size
 * that is not kept first releases every kept block, so that they never make
 * the peak larger than the live blocks alone would. */

/* Frees every kept block; with memory_lock held (or at close). */
static void
release_kept(CpuBackend *cpu)
{
    GHashTableIter iter;
    gpointer blocks;

    g_hash_table_iter_init(&iter, cpu->kept);
    while (g_hash_table_iter_next(&iter, NULL, &blocks))
        g_slist_free_full(blocks, (GDestroyNotify)cpu_free_floats);
    g_hash_table_remove_all(cpu->kept);
}

/* n floats of 64-byte aligned host memory, a kept block of n floats if there
 * is one; NULL with TP_BACKEND_ERROR_NO_MEMORY naming the size when that
 * fails. */
static float *
cpu_alloc(gpointer self, gsize n, GError **error)
{
    CpuBackend *cpu = self;
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&cpu->memory_lock);
    GSList *blocks = g_hash_table_lookup(cpu->kept, GSIZE_TO_POINTER(n));
    float *mem;

    if (blocks != NULL) {
        mem = blocks->data;
        blocks = g_slist_delete_link(blocks, blocks);
        if (blocks != NULL)
            g_hash_table_insert(cpu->kept, GSIZE_TO_POINTER(n), blocks);
        else
            g_hash_table_remove(cpu->kept, GSIZE_TO_POINTER(n));
    } else {
        release_kept(cpu);
        if ((mem = cpu_alloc_floats(n, error)) == NULL)
            return NULL;
    }
    g_hash_table_insert(cpu->live, mem, GSIZE_TO_POINTER(n));
    return mem;
}

/* Keeps mem for the next allocation of its size. A block this backend did
 * not hand out, or freed twice, is a programmer error (a critical warning). */
static void
cpu_free(gpointer self, float *mem)
{
    CpuBackend *cpu = self;
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&cpu->memory_lock);
    gpointer n;

    if (mem == NULL)
        return;
    g_return_if_fail(g_hash_table_steal_extended(cpu->live, mem, NULL, &n));
    g_hash_table_insert(cpu->kept, n, g_slist_prepend(g_hash_table_lookup(cpu->kept, n), mem));
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
    /* .conv2d_prepared_size =     */ cpu_conv2d_prepared_size,
    /* .conv2d_prepare =           */ cpu_conv2d_prepare,
    /* .conv2d_forward_prepared =  */ cpu_conv2d_forward_prepared,
    /* .conv2d_forward_relu =      */ cpu_conv2d_forward_relu,
    /* .unary_forward =            */ cpu_unary_forward,
    /* .unary_backward =           */ cpu_unary_backward,
    /* .binary_forward =           */ cpu_binary_forward,
    /* .binary_backward =          */ cpu_binary_backward,
    /* .strided_copy =             */ cpu_strided_copy,
    /* .reduce_forward =           */ cpu_reduce_forward,
    /* .reduce_backward =          */ cpu_reduce_backward,
    /* .layer_norm_forward =       */ cpu_layer_norm_forward,
    /* .layer_norm_backward =      */ cpu_layer_norm_backward,
};

static const TpPluginInfo cpu_info = {
    /* .abi_major =   */ TP_PLUGIN_ABI_MAJOR,
    /* .struct_size = */ sizeof(TpPluginInfo),
    /* .kind =        */ TP_PLUGIN_KIND_BACKEND,
    /* .name =        */ "cpu",
    /* .version =     */ "1.0",
    /* .description = */ "host CPU kernels: OpenBLAS sgemm with im2col, Winograd F(4x4,3x3) or packed weights, plain loops elsewhere, on its own threads",
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
