/* cuda-backend.h — the cuda backend's state and kernels, shared by the files
 * of the plugin and by nothing else (the plugin exports only
 * tp_plugin_describe; these names stay inside the .so).
 *
 * Every kernel has the signature of its TpBackendVTable member in
 * tp-backend.h, whose contract it implements; `self` is the CudaBackend that
 * open() returned. Memory is device memory of the backend's device. All work
 * is queued on the backend's one stream, in call order, and runs
 * asynchronously (rule 2 of tp-backend.h): download() and synchronize() wait
 * for it, and an error raised while a kernel runs is reported by the first
 * call that waits. One backend serves one thread at a time (its kernels share
 * its scratch, and CUDA's current device is per thread).
 *
 * Scratch (the cuDNN workspace, padded copies for convolutions cuDNN cannot
 * pad, labels and per-row losses) lives in grow-only buffers, and each
 * convolution geometry's descriptors and algorithms are chosen once and kept,
 * so once a network's shapes have been seen no kernel allocates again.
 */
#ifndef CUDA_BACKEND_H
#define CUDA_BACKEND_H

#include <glib.h>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include "tp-backend.h"

G_BEGIN_DECLS

/* Device memory that only ever grows. */
typedef struct {
    void *data;
    gsize bytes;
} CudaScratch;

/* The state behind one open cuda backend (the vtable's `self`). */
typedef struct {
    int device;             /* the `device` key */
    gboolean tf32;          /* the `tf32` key: TF32 tensor cores in cuDNN and cuBLAS */
    cudaStream_t stream;    /* every kernel, copy and library call */
    cublasHandle_t cublas;  /* bound to stream */
    cudnnHandle_t cudnn;    /* bound to stream */
    GHashTable *conv_plans; /* TpConvGeometry -> CudaConvPlan (cuda-dnn.c) */
    CudaScratch workspace;  /* cuDNN workspace */
    CudaScratch padded;     /* zero-padded x or dx of a convolution */
    CudaScratch labels;     /* softmax_cross_entropy: the labels, then the row losses */
} CudaBackend;

/* Makes scratch hold at least bytes (its contents are not kept); failing
 * that, NO_MEMORY naming what the scratch is for. */
gboolean cuda_scratch_reserve(CudaScratch *scratch, gsize bytes, const char *what, GError **error);
void cuda_scratch_clear(CudaScratch *scratch);

/* The per-geometry convolution plans: a table for CudaBackend.conv_plans. */
GHashTable *cuda_conv_plans_new(void);

/* Kernels: see the members of the same name in tp-backend.h. cuda-dnn.c
 * (cuDNN and cuBLAS): */
gboolean cuda_conv2d_forward(gpointer self, const TpConvGeometry *g, const float *x,
                             const float *weights, const float *bias, float *y, GError **error);
gboolean cuda_conv2d_backward_data(gpointer self, const TpConvGeometry *g, const float *dy,
                                   const float *weights, float *dx, GError **error);
gboolean cuda_conv2d_backward_filter(gpointer self, const TpConvGeometry *g, const float *x,
                                     const float *dy, float *dweights, float *dbias,
                                     GError **error);
gboolean cuda_gemm(gpointer self, gboolean trans_a, gboolean trans_b, int m, int n, int k,
                   float alpha, const float *a, const float *b, float beta, float *c,
                   GError **error);
gboolean cuda_batch_norm_forward_train(gpointer self, const TpBatchNormGeometry *g, const float *x,
                                       const float *scale, const float *bias, float *running_mean,
                                       float *running_var, float *y, float *save_mean,
                                       float *save_invstd, GError **error);
gboolean cuda_batch_norm_backward(gpointer self, const TpBatchNormGeometry *g, const float *x,
                                  const float *dy, const float *scale, const float *save_mean,
                                  const float *save_invstd, float *dx, float *dscale, float *dbias,
                                  GError **error);

/* cuda-ops.c (the kernels of cuda-kernels.cu): */
gboolean cuda_fill(gpointer self, float *dst, float value, gsize n, GError **error);
gboolean cuda_add_bias(gpointer self, int rows, int cols, const float *bias, float *y,
                       GError **error);
gboolean cuda_sum_rows(gpointer self, int rows, int cols, const float *x, float *y, GError **error);
gboolean cuda_batch_norm_forward_eval(gpointer self, const TpBatchNormGeometry *g, const float *x,
                                      const float *scale, const float *bias, const float *mean,
                                      const float *var, float *y, GError **error);
gboolean cuda_relu_forward(gpointer self, gsize n, const float *x, float *y, GError **error);
gboolean cuda_relu_backward(gpointer self, gsize n, const float *y, const float *dy, float *dx,
                            GError **error);
gboolean cuda_add(gpointer self, gsize n, const float *a, const float *b, float *y, GError **error);
gboolean cuda_dropout_forward(gpointer self, gsize n, float ratio, guint64 seed, const float *x,
                              float *y, GError **error);
gboolean cuda_dropout_backward(gpointer self, gsize n, float ratio, guint64 seed, const float *dy,
                               float *dx, GError **error);
gboolean cuda_pool2d_forward(gpointer self, const TpPoolGeometry *g, const float *x, float *y,
                             GError **error);
gboolean cuda_pool2d_backward(gpointer self, const TpPoolGeometry *g, const float *x,
                              const float *y, const float *dy, float *dx, GError **error);
gboolean cuda_softmax_forward(gpointer self, int rows, int cols, const float *x, float *y,
                              GError **error);
gboolean cuda_softmax_backward(gpointer self, int rows, int cols, const float *y, const float *dy,
                               float *dx, GError **error);
gboolean cuda_softmax_cross_entropy(gpointer self, int rows, int cols, const float *logits,
                                    const gint32 *labels, float smoothing, float *dlogits,
                                    double *out_loss, GError **error);
gboolean cuda_sgd_update(gpointer self, gsize n, float *w, const float *g, float *v,
                         const TpSgdHyper *hyper, GError **error);
gboolean cuda_mul(gpointer self, gsize n, const float *a, const float *b, float *y, GError **error);
gboolean cuda_axpby(gpointer self, gsize n, float alpha, const float *x, float beta, float *y,
                    GError **error);
gboolean cuda_clamp(gpointer self, gsize n, const float *x, float lo, float hi, float *y,
                    GError **error);
gboolean cuda_stabilized_divide(gpointer self, gsize n, const float *r, const float *z,
                                float epsilon, float *y, GError **error);

/* The generic kernel families (cuda-families.c). */
gboolean cuda_unary_forward(gpointer self, const TpUnaryOp *op, gsize n, const float *x, float *y,
                            GError **error);
gboolean cuda_unary_backward(gpointer self, const TpUnaryOp *op, gsize n, const float *x,
                             const float *y, const float *dy, float *dx, GError **error);
gboolean cuda_binary_forward(gpointer self, TpBinaryOp op, const TpBroadcastGeometry *g,
                             const float *a, const float *b, float *y, GError **error);
gboolean cuda_binary_backward(gpointer self, TpBinaryOp op, const TpBroadcastGeometry *g,
                              const float *a, const float *b, const float *dy, float *da,
                              float *db, GError **error);
gboolean cuda_reduce_forward(gpointer self, TpReduceOp op, const TpReduceGeometry *g,
                             const float *x, float *y, GError **error);
gboolean cuda_reduce_backward(gpointer self, TpReduceOp op, const TpReduceGeometry *g,
                              const float *dy, float *dx, GError **error);
gboolean cuda_strided_copy(gpointer self, const TpStridedCopy *g, const float *src, float *dst,
                           GError **error);
gboolean cuda_layer_norm_forward(gpointer self, const TpLayerNormGeometry *g, const float *x,
                                 const float *scale, const float *bias, float *y,
                                 float *save_mean, float *save_invstd, GError **error);
gboolean cuda_layer_norm_backward(gpointer self, const TpLayerNormGeometry *g, const float *x,
                                  const float *dy, const float *scale, const float *save_mean,
                                  const float *save_invstd, float *dx, float *dscale, float *dbias,
                                  GError **error);

G_END_DECLS

#endif /* CUDA_BACKEND_H */
