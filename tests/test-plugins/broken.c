/* broken.c — test-only backend plugins for the loader tests, one defect per
 * build, chosen by a BROKEN_* macro (see Makefile.am):
 *   BROKEN_NOTHING         a valid plugin "test-good" (built twice: duplicate names)
 *   BROKEN_ABI             abi_major 999
 *   BROKEN_STRUCT_SIZE     a TpPluginInfo smaller than ABI 1's
 *   BROKEN_NO_ENTRY        no tp_plugin_describe symbol
 *   BROKEN_KIND            kind 7
 *   BROKEN_NAME            a name with spaces and capitals
 *   BROKEN_MISSING_KERNEL  gemm is NULL
 *   BROKEN_PARAMS          a parameter whose default is out of its range
 *   BROKEN_PARTIAL_PREPARED  conv2d_prepare without its two partners
 * The kernels are never called: the loader must reject or accept the file
 * from its descriptor alone. */
#include "config.h"

#include "tp-backend.h"

#define STUB(name, ...)                                                                            \
    static gboolean name(gpointer self, __VA_ARGS__, GError **error)                               \
    {                                                                                              \
        g_set_error(error, TP_BACKEND_ERROR, TP_BACKEND_ERROR_FAILED, "test plugin");              \
        return FALSE;                                                                              \
    }

static gpointer
test_open(const TpParams *params, GError **error)
{
    return (gpointer)1;
}

static void
test_close(gpointer self)
{
}

static float *
test_alloc(gpointer self, gsize n, GError **error)
{
    return NULL;
}

static void
test_free(gpointer self, float *mem)
{
}

STUB(test_upload, float *dst, const float *host, gsize n)
STUB(test_download, float *host, const float *src, gsize n)
STUB(test_copy, float *dst, const float *src, gsize n)
STUB(test_fill, float *dst, float value, gsize n)
STUB(test_conv, const TpConvGeometry *g, const float *x, const float *w, const float *b, float *y)
STUB(test_conv_data, const TpConvGeometry *g, const float *dy, const float *w, float *dx)
STUB(test_conv_filter, const TpConvGeometry *g, const float *x, const float *dy, float *dw,
     float *db)
#ifndef BROKEN_MISSING_KERNEL
STUB(test_gemm, gboolean ta, gboolean tb, int m, int n, int k, float alpha, const float *a,
     const float *b, float beta, float *c)
#endif
STUB(test_add_bias, int rows, int cols, const float *bias, float *y)
STUB(test_sum_rows, int rows, int cols, const float *x, float *y)
STUB(test_bn_train, const TpBatchNormGeometry *g, const float *x, const float *scale,
     const float *bias, float *rm, float *rv, float *y, float *sm, float *si)
STUB(test_bn_eval, const TpBatchNormGeometry *g, const float *x, const float *scale,
     const float *bias, const float *mean, const float *var, float *y)
STUB(test_bn_backward, const TpBatchNormGeometry *g, const float *x, const float *dy,
     const float *scale, const float *sm, const float *si, float *dx, float *ds, float *db)
STUB(test_relu, gsize n, const float *x, float *y)
STUB(test_relu_backward, gsize n, const float *y, const float *dy, float *dx)
STUB(test_add, gsize n, const float *a, const float *b, float *y)
STUB(test_dropout, gsize n, float ratio, guint64 seed, const float *x, float *y)
STUB(test_pool, const TpPoolGeometry *g, const float *x, float *y)
STUB(test_pool_backward, const TpPoolGeometry *g, const float *x, const float *y, const float *dy,
     float *dx)
STUB(test_softmax, int rows, int cols, const float *x, float *y)
STUB(test_softmax_backward, int rows, int cols, const float *y, const float *dy, float *dx)
STUB(test_xent, int rows, int cols, const float *logits, const gint32 *labels, float smoothing,
     float *dlogits, double *out_loss)
STUB(test_sgd, gsize n, float *w, const float *g, float *v, const TpSgdHyper *hyper)
STUB(test_mul, gsize n, const float *a, const float *b, float *y)
STUB(test_axpby, gsize n, float alpha, const float *x, float beta, float *y)
STUB(test_clamp, gsize n, const float *x, float lo, float hi, float *y)
STUB(test_divide, gsize n, const float *r, const float *z, float epsilon, float *y)
#ifdef BROKEN_PARTIAL_PREPARED
STUB(test_prepare, const TpConvGeometry *g, const float *weights, float *prepared)
#endif

static const TpBackendVTable vtable = {
    /* .open = */ test_open,
    /* .close = */ test_close,
    /* .alloc = */ test_alloc,
    /* .free = */ test_free,
    /* .upload = */ test_upload,
    /* .download = */ test_download,
    /* .copy = */ test_copy,
    /* .fill = */ test_fill,
    /* .conv2d_forward = */ test_conv,
    /* .conv2d_backward_data = */ test_conv_data,
    /* .conv2d_backward_filter = */ test_conv_filter,
#ifdef BROKEN_MISSING_KERNEL
    /* .gemm = */ NULL,
#else
    /* .gemm = */ test_gemm,
#endif
    /* .add_bias = */ test_add_bias,
    /* .sum_rows = */ test_sum_rows,
    /* .batch_norm_forward_train = */ test_bn_train,
    /* .batch_norm_forward_eval = */ test_bn_eval,
    /* .batch_norm_backward = */ test_bn_backward,
    /* .relu_forward = */ test_relu,
    /* .relu_backward = */ test_relu_backward,
    /* .add = */ test_add,
    /* .dropout_forward = */ test_dropout,
    /* .dropout_backward = */ test_dropout,
    /* .pool2d_forward = */ test_pool,
    /* .pool2d_backward = */ test_pool_backward,
    /* .softmax_forward = */ test_softmax,
    /* .softmax_backward = */ test_softmax_backward,
    /* .softmax_cross_entropy = */ test_xent,
    /* .sgd_update = */ test_sgd,
    /* .synchronize = */ NULL,
    /* .mul = */ test_mul,
    /* .axpby = */ test_axpby,
    /* .clamp = */ test_clamp,
    /* .stabilized_divide = */ test_divide,
#ifdef BROKEN_PARTIAL_PREPARED
    /* .conv2d_prepared_size = */ NULL,
    /* .conv2d_prepare = */ test_prepare,
#else
    /* .conv2d_prepared_size = */ NULL,
    /* .conv2d_prepare = */ NULL,
#endif
    /* .conv2d_forward_prepared = */ NULL,
    /* .conv2d_forward_relu = */ NULL,
    /* .unary_forward = */ NULL,
    /* .unary_backward = */ NULL,
    /* .binary_forward = */ NULL,
    /* .binary_backward = */ NULL,
    /* .strided_copy = */ NULL,
    /* .reduce_forward = */ NULL,
    /* .reduce_backward = */ NULL,
    /* .layer_norm_forward = */ NULL,
    /* .layer_norm_backward = */ NULL,
};

static const TpParamSpec params[] = {
    {"level", TP_PARAM_INT,
#ifdef BROKEN_PARAMS
     "11",
#else
      "3",
#endif
     0, 10, NULL, "how hard to try"},
    {"mode", TP_PARAM_CHOICE, "fast", 0, 0, "fast|slow", "which way"},
    {NULL},
};

static const TpPluginInfo info = {
#ifdef BROKEN_ABI
    /* .abi_major = */ 999,
#else
    /* .abi_major = */ TP_PLUGIN_ABI_MAJOR,
#endif
#ifdef BROKEN_STRUCT_SIZE
    /* .struct_size = */ 8,
#else
    /* .struct_size = */ sizeof(TpPluginInfo),
#endif
#ifdef BROKEN_KIND
    /* .kind = */ (TpPluginKind)7,
#else
    /* .kind = */ TP_PLUGIN_KIND_BACKEND,
#endif
#ifdef BROKEN_NAME
    /* .name = */ "Bad Name",
#else
    /* .name = */ "test-good",
#endif
    /* .version = */ "0",
    /* .description = */ "a test plugin",
    /* .license = */ "MIT",
    /* .vtable = */ &vtable,
    /* .vtable_size = */ sizeof(vtable),
    /* .params = */ params,
};

#ifdef BROKEN_NO_ENTRY
TP_PLUGIN_EXPORT const TpPluginInfo *tp_plugin_describe_misspelled(void);

TP_PLUGIN_EXPORT const TpPluginInfo *
tp_plugin_describe_misspelled(void)
#else
TP_PLUGIN_EXPORT const TpPluginInfo *
tp_plugin_describe(void)
#endif
{
    return &info;
}
