/* cpu-kernels.h — the cpu backend's state and kernels, shared by the two files
 * of the plugin and by nothing else (the plugin exports only
 * tp_plugin_describe; these names stay inside the .so).
 *
 * Every kernel has the signature of its TpBackendVTable member in
 * tp-backend.h, whose contract it implements; `self` is the CpuBackend that
 * open() returned. Memory is plain host memory. Kernels return when done,
 * having split their work over the backend's thread pool (cpu-parallel.h);
 * one backend serves one thread at a time (its kernels share its scratch).
 *
 * The convolution kernels are the only ones that need scratch memory; they
 * take it from the backend's grow-only buffers, so once the shapes of a
 * network have been seen no kernel allocates again. Only two things make a
 * kernel return FALSE: a convolution whose scratch cannot grow
 * (TP_BACKEND_ERROR_NO_MEMORY), and softmax_cross_entropy given a label
 * outside [0, cols) (TP_BACKEND_ERROR_FAILED, instead of reading out of
 * bounds). Every other kernel always returns TRUE.
 */
#ifndef CPU_KERNELS_H
#define CPU_KERNELS_H

#include <glib.h>

#include "cpu-parallel.h"
#include "tp-backend.h"

G_BEGIN_DECLS

/* A 64-byte aligned float buffer that only ever grows. */
typedef struct {
    float *data;
    gsize capacity; /* in floats */
} CpuScratch;

/* The state behind one open cpu backend (the vtable's `self`). */
typedef struct {
    CpuPool *pool;   /* the kernels' threads, as many as the `threads` key says */
    gboolean prepare; /* the `prepare` key: offer prepared convolution weights */
    CpuScratch col;  /* im2col matrices: [c * kh * kw, nb * out_h * out_w] */
    CpuScratch rows; /* a chunk of y or dy gathered as [out_c, nb * out_h * out_w] */
    /* Winograd convolutions (cpu-winograd.c) keep a chunk's transformed input in
     * col, its products in rows, and the transformed filters here. */
    CpuScratch winograd;
    /* Tensor memory (cpu-backend.c): every live block's size in floats, and
     * freed blocks kept for an allocation of the same size. */
    GMutex memory_lock;
    GHashTable *live; /* float * -> size */
    GHashTable *kept; /* size -> GSList of float * */
} CpuBackend;

/* n floats, 64-byte aligned, uninitialized; free with cpu_free_floats().
 * NULL with TP_BACKEND_ERROR_NO_MEMORY (naming the size) when that fails. */
float *cpu_alloc_floats(gsize n, GError **error);
void cpu_free_floats(float *mem);

/* Makes scratch hold at least n floats; its contents are not kept. */
gboolean cpu_scratch_reserve(CpuScratch *scratch, gsize n, GError **error);
/* Frees the buffer and leaves scratch empty. */
void cpu_scratch_clear(CpuScratch *scratch);

/* Kernels: see the members of the same name in tp-backend.h. */
gboolean cpu_conv2d_forward(gpointer self, const TpConvGeometry *g, const float *x,
                            const float *weights, const float *bias, float *y, GError **error);
gboolean cpu_conv2d_backward_data(gpointer self, const TpConvGeometry *g, const float *dy,
                                  const float *weights, float *dx, GError **error);
gboolean cpu_conv2d_backward_filter(gpointer self, const TpConvGeometry *g, const float *x,
                                    const float *dy, float *dweights, float *dbias, GError **error);
gsize cpu_conv2d_prepared_size(gpointer self, const TpConvGeometry *g);
gboolean cpu_conv2d_prepare(gpointer self, const TpConvGeometry *g, const float *weights,
                            float *prepared, GError **error);
gboolean cpu_conv2d_forward_prepared(gpointer self, const TpConvGeometry *g, const float *x,
                                     const float *prepared, const float *bias, float *y,
                                     GError **error);
gboolean cpu_conv2d_forward_relu(gpointer self, const TpConvGeometry *g, const float *x,
                                 const float *weights, const float *prepared, const float *bias,
                                 float *y, GError **error);

gboolean cpu_gemm(gpointer self, gboolean trans_a, gboolean trans_b, int m, int n, int k,
                  float alpha, const float *a, const float *b, float beta, float *c,
                  GError **error);
gboolean cpu_add_bias(gpointer self, int rows, int cols, const float *bias, float *y,
                      GError **error);
gboolean cpu_sum_rows(gpointer self, int rows, int cols, const float *x, float *y, GError **error);

gboolean cpu_batch_norm_forward_train(gpointer self, const TpBatchNormGeometry *g, const float *x,
                                      const float *scale, const float *bias, float *running_mean,
                                      float *running_var, float *y, float *save_mean,
                                      float *save_invstd, GError **error);
gboolean cpu_batch_norm_forward_eval(gpointer self, const TpBatchNormGeometry *g, const float *x,
                                     const float *scale, const float *bias, const float *mean,
                                     const float *var, float *y, GError **error);
gboolean cpu_batch_norm_backward(gpointer self, const TpBatchNormGeometry *g, const float *x,
                                 const float *dy, const float *scale, const float *save_mean,
                                 const float *save_invstd, float *dx, float *dscale, float *dbias,
                                 GError **error);

gboolean cpu_relu_forward(gpointer self, gsize n, const float *x, float *y, GError **error);
gboolean cpu_relu_backward(gpointer self, gsize n, const float *y, const float *dy, float *dx,
                           GError **error);
gboolean cpu_add(gpointer self, gsize n, const float *a, const float *b, float *y, GError **error);
gboolean cpu_dropout_forward(gpointer self, gsize n, float ratio, guint64 seed, const float *x,
                             float *y, GError **error);
gboolean cpu_dropout_backward(gpointer self, gsize n, float ratio, guint64 seed, const float *dy,
                              float *dx, GError **error);

gboolean cpu_pool2d_forward(gpointer self, const TpPoolGeometry *g, const float *x, float *y,
                            GError **error);
gboolean cpu_pool2d_backward(gpointer self, const TpPoolGeometry *g, const float *x, const float *y,
                             const float *dy, float *dx, GError **error);

gboolean cpu_softmax_forward(gpointer self, int rows, int cols, const float *x, float *y,
                             GError **error);
gboolean cpu_softmax_backward(gpointer self, int rows, int cols, const float *y, const float *dy,
                              float *dx, GError **error);
gboolean cpu_softmax_cross_entropy(gpointer self, int rows, int cols, const float *logits,
                                   const gint32 *labels, float smoothing, float *dlogits,
                                   double *out_loss, GError **error);

gboolean cpu_sgd_update(gpointer self, gsize n, float *w, const float *g, float *v,
                        const TpSgdHyper *hyper, GError **error);

gboolean cpu_mul(gpointer self, gsize n, const float *a, const float *b, float *y, GError **error);
gboolean cpu_axpby(gpointer self, gsize n, float alpha, const float *x, float beta, float *y,
                   GError **error);
gboolean cpu_clamp(gpointer self, gsize n, const float *x, float lo, float hi, float *y,
                   GError **error);
gboolean cpu_stabilized_divide(gpointer self, gsize n, const float *r, const float *z,
                               float epsilon, float *y, GError **error);

/* The kernel families: unary (cpu-unary.c), binary and reduce
 * (cpu-broadcast.c), strided (cpu-strided.c), layer-norm (cpu-layer-norm.c). */
gboolean cpu_unary_forward(gpointer self, const TpUnaryOp *op, gsize n, const float *x, float *y,
                           GError **error);
gboolean cpu_unary_backward(gpointer self, const TpUnaryOp *op, gsize n, const float *x,
                            const float *y, const float *dy, float *dx, GError **error);
gboolean cpu_binary_forward(gpointer self, TpBinaryOp op, const TpBroadcastGeometry *g,
                            const float *a, const float *b, float *y, GError **error);
gboolean cpu_binary_backward(gpointer self, TpBinaryOp op, const TpBroadcastGeometry *g,
                             const float *a, const float *b, const float *dy, float *da,
                             float *db, GError **error);
gboolean cpu_reduce_forward(gpointer self, TpReduceOp op, const TpReduceGeometry *g,
                            const float *x, float *y, GError **error);
gboolean cpu_reduce_backward(gpointer self, TpReduceOp op, const TpReduceGeometry *g,
                             const float *dy, float *dx, GError **error);
gboolean cpu_strided_copy(gpointer self, const TpStridedCopy *g, const float *src, float *dst,
                          GError **error);
gboolean cpu_layer_norm_forward(gpointer self, const TpLayerNormGeometry *g, const float *x,
                                const float *scale, const float *bias, float *y, float *save_mean,
                                float *save_invstd, GError **error);
gboolean cpu_layer_norm_backward(gpointer self, const TpLayerNormGeometry *g, const float *x,
                                 const float *dy, const float *scale, const float *save_mean,
                                 const float *save_invstd, float *dx, float *dscale, float *dbias,
                                 GError **error);

G_END_DECLS

#endif /* CPU_KERNELS_H */
